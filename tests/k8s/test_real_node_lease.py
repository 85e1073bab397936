"""One lease really runs: on the test cluster's real node (kubelet, containerd, runc, CNI bridge,
kube-proxy), the GPU node agent's own code (gpu_node_harness.LeaseNode: observe, plan, executor,
NodeStore, DesiredWorkloads, and the KubernetesRuntime its factory makes from its settings, as its
service account, never admin) turns the lease into its objects; the pod runs the Podman backend's
sshd image (imported into containerd from `podman save`, no registry); the customer logs in over
SSH on the node's address and the lease's NodePort with their key, as on the Podman backend
(tests/gpu_node/test_podman_runtime.py), and with no other key; ending the lease removes it all.

The real node's GPUs are SIMULATED (`nvidia.com/gpu` advertised, no board, no NVIDIA container
runtime), so the agent runs as a provider of such a node would: GRIDLEASE_NODE_KUBE_RUNTIME_CLASS
empty, lease pods name no RuntimeClass.

Needs what the cluster's real node needs (conftest.py), plus podman and openssh-client; the
sshd image is built once with debootstrap and cached (services/gpu_node/runtime/images.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from services.common.grpc_gen.gridlease.v1 import node_pb2
from services.devstack.cluster import GPU_RESOURCE, DevCluster
from services.gpu_node import labels
from services.gpu_node.runtime.base import WorkloadPhase
from services.gpu_node.runtime.factory import make_runtime
from services.gpu_node.runtime.images import SSHD_CONTAINER_PORT, ensure_sshd_image
from services.gpu_node.runtime.kubernetes.builders import WORKLOAD_NAME, namespace_name
from services.gpu_node.runtime.kubernetes.client import CountingApiClient
from services.gpu_node.runtime.kubernetes.runtime import KubernetesRuntime
from services.gpu_node.runtime.podman_cli import PodmanCli
from services.gpu_node.service import lease_status
from services.gpu_node.settings import NodeSettings
from tests.k8s.gpu_node_harness import (
    AgentAccess,
    LeaseNode,
    delete_machine_namespaces,
    new_machine_id,
    spec,
    token_kubeconfig,
)
from tests.k8s.kube import REAL_NODE, describe_namespace, wait_for
from tests.utils.ssh import new_ssh_key, ssh, ssh_when_ready

LEASE = 12


@pytest.fixture(scope="module")
def sshd_image(k8s_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Podman backend's lease image, in the real node's containerd: built (or found) in
    Podman's store, `podman save`d as a Docker archive (a few seconds, so not cached), imported
    with `ctr images import`."""
    podman = PodmanCli()
    image = ensure_sshd_image(podman)
    archive = tmp_path_factory.mktemp("images") / "gridlease-sshd.tar"
    podman.run_checked(["save", "--format", "docker-archive", "-o", str(archive), image])
    k8s_cluster.node.import_image(archive)
    listed = k8s_cluster.node.ctr("images", "ls", "-q")
    assert image in listed.stdout.split(), listed
    return image


@pytest.fixture
def agent(
    k8s_cluster: DevCluster,
    k8s_api: Any,
    agent_access: AgentAccess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LeaseNode]:
    """A new machine's agent on the real node, its runtime made as `gridlease-node run` makes
    it: settings from GRIDLEASE_NODE_* (runtime kubernetes, the real node's name, an empty
    runtime class), the factory, and a kubeconfig holding the service account's token."""
    kubeconfig = token_kubeconfig(tmp_path / "kubeconfig", k8s_cluster, agent_access.token)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("GRIDLEASE_CONFIG_FILE", raising=False)
    monkeypatch.setenv("GRIDLEASE_NODE_RUNTIME", "kubernetes")
    monkeypatch.setenv("GRIDLEASE_NODE_KUBE_NODE_NAME", REAL_NODE.name)
    monkeypatch.setenv("GRIDLEASE_NODE_KUBE_RUNTIME_CLASS", "")
    settings = NodeSettings()
    machine = new_machine_id()
    runtime = make_runtime(
        settings.runtime,
        simulated=True,
        publish_host=settings.publish_host,
        node=machine,
        kube_context=settings.kube_context,
        kube_node_name=settings.kube_node_name,
        kube_runtime_class=settings.kube_runtime_class,
    )
    assert isinstance(runtime, KubernetesRuntime)
    assert runtime.config.runtime_class_name is None
    api = runtime.apis.core.api_client
    assert isinstance(api, CountingApiClient)
    (tmp_path / "node").mkdir()
    node = LeaseNode(api, machine, REAL_NODE.name, tmp_path / "node", REAL_NODE.gpus, None, runtime)
    yield node
    node.close()
    delete_machine_namespaces(k8s_api, machine)
    api.close()


def converge(node: LeaseNode, admin: Any, done: Callable[[], Any], what: str) -> Any:
    """Runs the agent's reconcile until `done()` is truthy and returns that; on a timeout the
    error shows the lease namespace's pods, container logs and events."""

    def step() -> Any:
        node.reconcile()
        return done()

    try:
        return wait_for(what, step, timeout=180)
    except TimeoutError as e:
        ns = namespace_name(node.config, LEASE)
        raise AssertionError(f"{e}\n{describe_namespace(client.CoreV1Api(admin), ns)}") from e


def answers(host: str, port: int) -> bool:
    """Whether a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def test_lease_runs_on_the_real_node_and_its_customer_logs_in_over_ssh(
    k8s_cluster: DevCluster, k8s_api: Any, sshd_image: str, agent: LeaseNode, tmp_path: Path
) -> None:
    core = client.CoreV1Api(k8s_api)
    key = new_ssh_key(tmp_path / "customer" / "id_ed25519")
    document = spec(
        image=sshd_image, ssh_public_key=key.with_suffix(".pub").read_text().strip(), ports=[]
    )
    agent.lease(LEASE, [0], document)
    converge(agent, k8s_api, lambda: LEASE in agent.ledger.started, "the agent starting the lease")
    ns = namespace_name(agent.config, LEASE)

    # The agent confirmed the start because the pod runs on the real node with sshd ready.
    status = agent.runtime.status(LEASE)
    assert status.phase is WorkloadPhase.RUNNING, status
    [pod] = core.list_namespaced_pod(ns).items
    assert (pod.spec.node_name, pod.status.phase) == (REAL_NODE.name, "Running")
    assert pod.spec.runtime_class_name is None
    assert pod.spec.containers[0].resources.limits[GPU_RESOURCE] == "1"
    node = core.read_node(REAL_NODE.name)
    node_ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    # What the customer is told (GetLeaseStatus): RUNNING, SSH on the lease's NodePort.
    reply = lease_status(LEASE, agent.store, agent.runtime, node_ip)
    assert reply.status == node_pb2.WORKLOAD_STATUS_RUNNING, reply
    service = core.read_namespaced_service(WORKLOAD_NAME, ns)
    node_ports = {p.port: p.node_port for p in service.spec.ports}
    assert reply.ssh_port == node_ports[SSHD_CONTAINER_PORT]
    endpoint = f"{reply.host}:{reply.ssh_port}"

    # Log in with the lease's key: a shell in the lease's container, with its environment and
    # no more than the three capabilities sshd needs, no new privileges.
    proc = ssh_when_ready(key, endpoint, "echo $GRIDLEASE_LEASE_ID")
    assert (proc.returncode, proc.stdout) == (0, f"{LEASE}\n"), (
        f"{proc.stderr}\n{describe_namespace(core, ns)}"
    )
    proc = ssh(key, endpoint, "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; hostname")
    assert proc.returncode == 0, proc.stderr
    cap_bnd, no_new_privs, hostname = proc.stdout.splitlines()
    # SETGID (6), SETUID (7), SYS_CHROOT (18).
    assert cap_bnd.split() == ["CapBnd:", f"{(1 << 6) | (1 << 7) | (1 << 18):016x}"]
    assert no_new_privs.split() == ["NoNewPrivs:", "1"]
    assert hostname == pod.metadata.name

    # Another key is refused.
    other = new_ssh_key(tmp_path / "other" / "id_ed25519")
    refused = ssh(other, endpoint, "echo in")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused

    # The lease ends: the agent deletes everything, containerd runs nothing of it, and the port
    # no longer answers.
    agent.ledger.end(LEASE)

    def namespace_gone() -> bool:
        try:
            core.read_namespace(ns)
        except ApiException as e:
            return e.status == 404
        return False

    converge(agent, k8s_api, namespace_gone, "the lease namespace deleted")
    assert agent.runtime.list() == []
    selector = labels.machine_selector(labels.kube_node_value(agent.machine))
    assert core.list_pod_for_all_namespaces(label_selector=selector).items == []
    assert core.list_service_for_all_namespaces(label_selector=selector).items == []

    def running_containers() -> list[str]:
        ctr = k8s_cluster.node.ctr
        listed = ctr("containers", "ls", "-q", f'labels."io.kubernetes.pod.namespace"=={ns}')
        assert listed.returncode == 0, listed.stderr
        tasks = ctr("tasks", "ls").stdout.splitlines()[1:]
        ids = set(listed.stdout.split())
        return [t for t in tasks if t.split()[0] in ids and "RUNNING" in t.split()]

    assert running_containers() == []
    wait_for("the NodePort closed", lambda: not answers(node_ip, reply.ssh_port))
    gone = ssh(key, endpoint, "true")
    assert gone.returncode == 255, gone
