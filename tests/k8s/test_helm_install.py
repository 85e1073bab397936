"""The chart installed for real (deploy/helm/gridlease, issue 9): `helm install` on the test
cluster puts the whole platform in one release, as `ci/chain-node-values.yaml` describes it: our
Substrate node (a dev validator), the customer API, two seeds and the GPU node agent's DaemonSet,
from the images deploy/images/build-images.sh builds, imported into the real node's containerd
(no registry). Then, as an operator and a customer would:

- every pod becomes Ready on the real node (kubelet, containerd, runc; cluster DNS from CoreDNS)
  and `helm test` passes (its pods call the API and each seed);
- a customer signs up through the API's Service (a NodePort), leases a GPU of the agent's
  machine, and logs in to the workload over SSH;
- `helm upgrade` with changed values rolls the API and the seeds without losing the API's
  database (the customer and the lease are still there) or the seeds' offers;
- `helm uninstall` leaves nothing of the release but what the operator asked to keep: the
  volumes (the API's claim carries `helm.sh/resource-policy: keep`, StatefulSet claims stay).

The real node's GPUs are SIMULATED (`gpuNode.simulateGpus`; the node advertises two
`nvidia.com/gpu` without a device plugin, tests/k8s/kube.py REAL_NODE). Volumes are hostPath
PersistentVolumes made here (a bare cluster has no provisioner). Needs root, Podman and what the
real node needs (conftest.py); the images' first build takes minutes (then cached)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from services.customer_cli.cli import wait_until_running
from services.customer_cli.client import ApiClient, ClientConfig
from services.devstack.cluster import DevCluster
from services.devstack.demo import demo_customer
from services.devstack.processes import REPO
from services.gpu_node import labels
from tests.k8s.kube import REAL_NODE, describe_namespace, wait_for
from tests.utils.helm import CHART, built_helm
from tests.utils.ssh import new_ssh_key, ssh_when_ready

RELEASE = "gl"
STORAGE_CLASS = "gridlease-test-hostpath"
BUILD_IMAGES = REPO / "deploy" / "images" / "build-images.sh"
# The user and group every Gridlease container runs as (values podSecurity): hostPath volumes
# are not chowned by fsGroup, so their folders are made theirs here.
APP_UID = 10001
SSHD_IMAGE = "localhost/gridlease-sshd:1"
IMAGE_NAME = re.compile(r"^localhost/gridlease-[a-z-]+:\S+$")


@pytest.fixture(scope="module")
def helm() -> Path:
    return built_helm()


@pytest.fixture(scope="module")
def node_images(k8s_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every Gridlease image, built (or found) in Podman's store and imported into the real
    node's containerd as one archive (shared layers once)."""
    built = subprocess.run(
        ["bash", str(BUILD_IMAGES)], capture_output=True, text=True, timeout=3600, check=False
    )
    assert built.returncode == 0, built.stderr[-3000:]
    names = [line for line in built.stdout.split() if IMAGE_NAME.match(line)]
    assert SSHD_IMAGE in names and len(names) == 6, names
    archive = tmp_path_factory.mktemp("images") / "gridlease.tar"
    subprocess.run(
        ["podman", "save", "-m", "--format", "docker-archive", "-o", str(archive), *names],
        check=True, capture_output=True,
    )  # fmt: skip
    k8s_cluster.node.import_image(archive)
    archive.unlink()
    listed = k8s_cluster.node.ctr("images", "ls", "-q").stdout.split()
    assert set(names) <= set(listed), listed
    return names


@dataclass
class Release:
    """An installed release: its namespace, the values file it was installed with, the helm
    binary and the cluster's admin kubeconfig; the machines its agent announced (their lease
    namespaces are cleaned up after the test, whatever happened)."""

    namespace: str
    values: Path
    helm: Path
    kubeconfig: Path
    machines: list[str] = field(default_factory=list)

    def lease_namespaces(self, core: Any) -> list[str]:
        """The namespaces the agent made for leases of this release's machines."""
        return [
            ns.metadata.name
            for machine in self.machines
            for ns in core.list_namespace(
                label_selector=labels.machine_selector(labels.kube_node_value(machine))
            ).items
        ]

    def helm_run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.helm), "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip


def _hostpath_volumes(core: Any, storage: Any, root: Path, names: list[str]) -> None:
    """A StorageClass with no provisioner and one hostPath PersistentVolume per name (folder
    under `root`, owned by the app user, on the real node), which claims of that class bind."""
    storage.create_storage_class(
        client.V1StorageClass(
            metadata=client.V1ObjectMeta(name=STORAGE_CLASS),
            provisioner="kubernetes.io/no-provisioner",
            reclaim_policy="Retain",
            volume_binding_mode="Immediate",
        )
    )
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        os.chown(folder, APP_UID, APP_UID)
        folder.chmod(0o700)
        core.create_persistent_volume(
            client.V1PersistentVolume(
                metadata=client.V1ObjectMeta(name=name, labels={"gridlease.test": "helm"}),
                spec=client.V1PersistentVolumeSpec(
                    capacity={"storage": "2Gi"},
                    access_modes=["ReadWriteOnce"],
                    persistent_volume_reclaim_policy="Retain",
                    storage_class_name=STORAGE_CLASS,
                    host_path=client.V1HostPathVolumeSource(path=str(folder), type="Directory"),
                    node_affinity=client.V1VolumeNodeAffinity(
                        required=client.V1NodeSelector(
                            node_selector_terms=[
                                client.V1NodeSelectorTerm(
                                    match_expressions=[
                                        client.V1NodeSelectorRequirement(
                                            key="kubernetes.io/hostname",
                                            operator="In",
                                            values=[REAL_NODE.name],
                                        )
                                    ]
                                )
                            ]
                        )
                    ),
                ),
            )
        )


def _remove_volumes(core: Any, storage: Any, namespace: str) -> None:
    for claim in core.list_namespaced_persistent_volume_claim(namespace).items:
        core.delete_namespaced_persistent_volume_claim(claim.metadata.name, namespace)
    for volume in core.list_persistent_volume(label_selector="gridlease.test=helm").items:
        core.delete_persistent_volume(volume.metadata.name)
    try:
        storage.delete_storage_class(STORAGE_CLASS)
    except ApiException as e:
        if e.status != 404:
            raise


def _values(tmp: Path) -> dict[str, Any]:
    """The whole platform in one release on the test cluster (ci/chain-node-values.yaml plus
    what this cluster needs: its storage class, the real node for every pod, simulated GPUs like
    the real node's, the API on a NodePort, an agent state folder of this test's own, the
    provider key from a Secret)."""
    volume = {"size": "1Gi", "storageClass": STORAGE_CLASS}
    # The KWOK nodes run no containers: everything goes to the real node.
    real = {"kubernetes.io/hostname": REAL_NODE.name}
    return {
        "chainNode": {
            "enabled": True,
            "nodeSelector": real,
            "mode": "validator",
            "chain": "dev",
            "devKey": "alice",
            "persistence": volume,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
        "api": {
            "devMode": True,
            "service": {"type": "NodePort"},
            "persistence": volume,
            "nodeSelector": real,
        },
        # Offers live two hours and the agent re-announces hourly: what a seed holds after the
        # upgrade below comes from its volume, not from a fresh announcement.
        "seed": {
            "replicas": 2,
            "persistence": volume,
            "nodeSelector": real,
            "offerTtlSeconds": 7200,
        },
        "gpuNode": {
            "nodeSelector": {"nvidia.com/gpu.present": "true", **real},
            "simulateGpus": f"l40s:{REAL_NODE.gpus}",
            "dataHostPath": str(tmp / "agent-state"),
            "providerKey": {"existingSecret": f"{RELEASE}-provider"},
            "extraEnv": {
                "GRIDLEASE_NODE_RECONCILE_INTERVAL_S": "2",
                "GRIDLEASE_NODE_ANNOUNCE_INTERVAL_S": "3600",
            },
        },
    }


@pytest.fixture(scope="module")
def release(
    k8s_cluster: DevCluster,
    k8s_api: Any,
    helm: Path,
    node_images: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Release]:
    """`helm install --wait` of the chart into a namespace of its own; uninstalled (if the test
    did not) and its volumes removed afterwards."""
    tmp = tmp_path_factory.mktemp("helm-install")
    core, storage = client.CoreV1Api(k8s_api), client.StorageV1Api(k8s_api)
    namespace = f"t-helm-{uuid.uuid4().hex[:6]}"
    values = tmp / "values.yaml"
    values.write_text(yaml.safe_dump(_values(tmp)))
    installed = Release(namespace, values, helm, k8s_cluster.kubeconfig)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        # The provider's dev account (as the dev stack's node uses it): registers the machine.
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=f"{RELEASE}-provider"),
                string_data={"provider-secret": "//Bob"},
            ),
        )
        # The API's claim, the chain node's and the two seeds'.
        volumes = [f"{namespace}-pv-{i}" for i in range(4)]
        _hostpath_volumes(core, storage, tmp / "volumes", volumes)
        done = installed.helm_run(
            "install", RELEASE, str(CHART), "-f", str(values), "--wait", "--timeout", "10m"
        )
        assert done.returncode == 0, (
            done.stdout + done.stderr + "\n" + describe_namespace(core, namespace)
        )
        yield installed
    finally:
        installed.helm_run("uninstall", RELEASE, "--wait", "--timeout", "5m")
        # A lease left running by a failed test would hold one of the real node's two GPUs
        # for the tests after this one.
        for lease_namespace in installed.lease_namespaces(core):
            core.delete_namespace(lease_namespace)
        _remove_volumes(core, storage, namespace)
        try:
            core.delete_namespace(namespace)
        except ApiException as e:
            if e.status != 404:
                raise


def _pods(core: Any, namespace: str) -> list[Any]:
    """The release's pods (not helm test's, not the offer listings')."""
    selector = f"app.kubernetes.io/instance={RELEASE}"
    return [
        p
        for p in core.list_namespaced_pod(namespace, label_selector=selector).items
        if not p.metadata.name.endswith("-test")
    ]


def _ready(pod: Any) -> bool:
    """Ready, on the real node (the KWOK nodes run no containers)."""
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return ready and pod.spec.node_name == REAL_NODE.name


def _api_url(core: Any, namespace: str) -> str:
    service = core.read_namespaced_service(f"{RELEASE}-gridlease-api", namespace)
    node = core.read_node(REAL_NODE.name)
    ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    return f"http://{ip}:{service.spec.ports[0].node_port}"


def _volume_files(core: Any, namespace: str) -> dict[str, dict[str, int]]:
    """Each bound claim of `namespace` -> the files in its hostPath volume and their inodes."""
    out: dict[str, dict[str, int]] = {}
    for volume in core.list_persistent_volume(label_selector="gridlease.test=helm").items:
        claim = volume.spec.claim_ref
        if claim is None or claim.namespace != namespace:
            continue
        folder = Path(volume.spec.host_path.path)
        out[claim.name] = {f.name: f.stat().st_ino for f in folder.iterdir() if f.is_file()}
    return out


def _seed_offers(core: Any, namespace: str, seed: int) -> int:
    """How many offers seed number `seed` holds, asked from inside the cluster (a one-off pod of
    the API image, as helm test's)."""
    name = f"offers-{uuid.uuid4().hex[:6]}"
    target = f"{RELEASE}-gridlease-seed-{seed}.{RELEASE}-gridlease-seed:7600"
    script = (
        "import grpc\n"
        "from services.common.grpc_gen.gridlease.v1 import seed_pb2, seed_pb2_grpc\n"
        f"with grpc.insecure_channel({target!r}) as c:\n"
        "    r = seed_pb2_grpc.SeedServiceStub(c).ListOffers(seed_pb2.ListOffersRequest(), "
        "timeout=30)\n"
        "print(len(r.entries))\n"
    )
    image = core.read_namespaced_pod(f"{RELEASE}-gridlease-seed-0", namespace)
    api_image = image.spec.containers[0].image.replace("gridlease-seed", "gridlease-api")
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(
                restart_policy="Never",
                node_name=REAL_NODE.name,
                security_context=client.V1PodSecurityContext(
                    run_as_user=APP_UID, run_as_group=APP_UID, run_as_non_root=True
                ),
                containers=[
                    client.V1Container(
                        name="list", image=api_image, image_pull_policy="Never",
                        command=["python", "-c", script],
                    )  # fmt: skip
                ],
            ),
        ),
    )

    def finished() -> str | None:
        pod = core.read_namespaced_pod(name, namespace)
        return str(pod.status.phase) if pod.status.phase in ("Succeeded", "Failed") else None

    phase = wait_for("the offer listing pod", finished, timeout=120)
    log = core.read_namespaced_pod_log(name, namespace)
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    assert phase == "Succeeded", log
    return int(log.split()[-1])


def test_install_serves_a_lease_over_ssh_survives_upgrade_and_uninstalls_clean(
    k8s_cluster: DevCluster, k8s_api: Any, release: Release, tmp_path: Path
) -> None:
    core, apps = client.CoreV1Api(k8s_api), client.AppsV1Api(k8s_api)
    ns = release.namespace

    # Every pod of the release on the real node becomes Ready: chain node, API, both seeds,
    # agent. (`helm install --wait` does not wait for this: it counts a DaemonSet ready with
    # maxUnavailable pods not ready, here its only one; the agent also restarts until the chain
    # node answers.)
    components = sorted(p.metadata.labels["app.kubernetes.io/component"] for p in _pods(core, ns))
    expected = ["api", "chain", "gpu-node", "seed", "seed"]
    assert components == expected, describe_namespace(core, ns)
    try:
        wait_for("every pod Ready", lambda: all(_ready(p) for p in _pods(core, ns)), timeout=300)
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{describe_namespace(core, ns)}") from e

    tested = release.helm_run("test", RELEASE, "--timeout", "5m")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("Phase:          Succeeded") == 2, tested.stdout
    # NOTES.txt names the chain the services read: this release's node.
    chain_url = f"ws://{RELEASE}-gridlease-chain-0.{RELEASE}-gridlease-chain.{ns}.svc:9944"
    assert f"Chain: {chain_url} (this release's chain node, validator mode)" in tested.stdout

    # A customer, through the API's Service: sign up (dev faucet), lease one GPU, log in.
    url = _api_url(core, ns)
    config = demo_customer(url, tmp_path)
    key = new_ssh_key(tmp_path / "customer" / "id_ed25519")
    with ApiClient(config) as api:
        offer = wait_for(
            "an offer from the agent",
            lambda: next(iter(api.get("/offers", params={"min_gpus": 1})["data"]), None),
            timeout=180,
        )
        release.machines.append(offer["machine_id"])
        lease = api.post(
            "/leases",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={
                "machine_id": offer["machine_id"], "gpus": 1, "duration_blocks": 600,
                "image": SSHD_IMAGE, "ssh_public_key": key.with_suffix(".pub").read_text().strip(),
            },
        )  # fmt: skip
        lease_id = int(lease["lease_id"])
        try:
            running = wait_until_running(api, lease_id, timeout=300, out=io.StringIO())
        except Exception as e:
            raise AssertionError(f"{e}\n{describe_namespace(core, ns)}") from e
    conn = running["connection"]
    login = ssh_when_ready(key, f"{conn['host']}:{conn['ssh_port']}", "echo $GRIDLEASE_LEASE_ID")
    assert (login.returncode, login.stdout) == (0, f"{lease_id}\n"), login.stderr
    assert len(release.lease_namespaces(core)) == 1
    assert _seed_offers(core, ns, 1) >= 1
    files_before = _volume_files(core, ns)
    seed_db = files_before[f"data-{RELEASE}-gridlease-seed-1"]["offers.db"]

    # An upgrade with changed values rolls the API and the seeds (new pods) ...
    old = {p.metadata.name: p.metadata.uid for p in _pods(core, ns)}
    changed = yaml.safe_load(release.values.read_text())
    changed["api"]["extraEnv"] = {"GRIDLEASE_API_SEED_TIMEOUT_S": "5"}
    changed["seed"]["offerTtlSeconds"] = 7201
    release.values.write_text(yaml.safe_dump(changed))
    upgraded = release.helm_run(
        "upgrade", RELEASE, str(CHART), "-f", str(release.values), "--wait", "--timeout", "10m"
    )
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    rolled = {p.metadata.name: p.metadata.uid for p in _pods(core, ns)}
    for component in ("api", "seed"):
        now = [
            n for n, uid in rolled.items() if f"-{component}-" in n and old.get(n) != uid
        ]
        assert now, f"no new {component} pod after the upgrade: {old} -> {rolled}"
    seed = apps.read_namespaced_stateful_set(f"{RELEASE}-gridlease-seed", ns)
    env = {e.name: e.value for e in seed.spec.template.spec.containers[0].env}
    assert env.get("GRIDLEASE_SEED_OFFER_TTL_S") == "7201", env
    # ... keeping the API's database (same customer, same lease, still running) and the seeds'
    # offers: the new seed pods opened the same database files on the same volumes, and the
    # restarted seed answers with the offer (the agent announces again only in an hour).
    files_after = _volume_files(core, ns)
    assert files_after[f"data-{RELEASE}-gridlease-seed-1"]["offers.db"] == seed_db
    assert files_after.keys() == files_before.keys()
    assert _seed_offers(core, ns, 1) >= 1
    with ApiClient(ClientConfig(url=url, api_key=config.api_key)) as api:
        after = api.get(f"/leases/{lease_id}")
        assert after["state"] == "running", after
        api.post(f"/leases/{lease_id}/terminate")
        wait_for(
            "the lease ended",
            lambda: api.get(f"/leases/{lease_id}")["state"] == "ended",
            timeout=180,
        )

    # The agent deletes the lease's namespace (and so its pod, Service, Secret) once it ends.
    wait_for(
        "the lease's namespace deleted", lambda: release.lease_namespaces(core) == [], timeout=180
    )

    # Uninstall: nothing of the release remains but its volumes' claims (and the server secret
    # the chart keeps on purpose: it encrypts the customers' keys in the kept database).
    gone = release.helm_run("uninstall", RELEASE, "--wait", "--timeout", "5m")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    selector = f"app.kubernetes.io/instance={RELEASE}"
    rbac = client.RbacAuthorizationV1Api(k8s_api)

    def leftovers() -> dict[str, list[str]]:
        found = {
            "pods": core.list_namespaced_pod(ns, label_selector=selector).items,
            "services": core.list_namespaced_service(ns, label_selector=selector).items,
            "configmaps": core.list_namespaced_config_map(ns, label_selector=selector).items,
            "statefulsets": apps.list_namespaced_stateful_set(ns, label_selector=selector).items,
            "deployments": apps.list_namespaced_deployment(ns, label_selector=selector).items,
            "daemonsets": apps.list_namespaced_daemon_set(ns, label_selector=selector).items,
            "cluster roles": rbac.list_cluster_role(label_selector=selector).items,
            "cluster role bindings": rbac.list_cluster_role_binding(label_selector=selector).items,
        }
        return {k: [o.metadata.name for o in v] for k, v in found.items() if v}

    # `--wait` waits for the objects Helm deleted; their pods end within their grace period.
    try:
        wait_for("nothing of the release left", lambda: leftovers() == {}, timeout=120)
    except TimeoutError as e:
        raise AssertionError(f"{e}: {leftovers()}") from e
    kept = {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(ns).items}
    assert f"{RELEASE}-gridlease-api-data" in kept, kept
    secrets = {
        s.metadata.name
        for s in core.list_namespaced_secret(ns, label_selector=selector).items
    }
    assert secrets <= {f"{RELEASE}-gridlease-api"}, secrets
