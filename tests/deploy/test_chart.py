"""The Helm chart (deploy/helm/gridlease) through Helm itself: `helm lint --strict`,
`helm template --kube-version v1.37.2` of the defaults and of every documented combination
(ci/*-values.yaml), each manifest validated offline against the Kubernetes 1.37 schemas
(kubernetes-validate, strict), unit tests of what values change, and values.schema.json
refusing wrong values with the key at fault."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.devstack.processes import REPO
from services.gpu_node import labels as node_labels

CHART = REPO / "deploy" / "helm" / "gridlease"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE_VERSION = "v1.37.2"
SCHEMA_VERSION = "1.37.0"  # kubernetes-validate's schemas of that minor
# Kinds of the Prometheus Operator: kubernetes-validate has no schema for CRDs, so these are
# checked by the tests below for the fields we set, not against the operator's schema.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
MONITORING = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")
CHAIN = {"chain": {"url": "ws://chain:9944"}}
Manifest = dict[str, Any]


def helm_template(
    helm: Path, values: dict[str, Any] | None = None, *, files: Iterable[Path] = (),
    api_versions: Iterable[str] = (), tmp: Path | None = None, release: str = "rel",
    chart: Path = CHART,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    args = [str(helm), "template", release, str(chart), "--namespace", "gl",
            "--kube-version", KUBE_VERSION]  # fmt: skip
    for path in files:
        args += ["-f", str(path)]
    if values is not None:
        assert tmp is not None
        path = tmp / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        args += ["-f", str(path)]
    for version in api_versions:
        args += ["--api-versions", version]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def render(helm: Path, tmp: Path, values: dict[str, Any], **kw: Any) -> list[Manifest]:
    result = helm_template(helm, values, tmp=tmp, **kw)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in by_kind(manifests, kind) if m["metadata"]["name"] == name]
    names = [m["metadata"]["name"] for m in by_kind(manifests, kind)]
    assert len(found) == 1, f"{kind}/{name} among {names}"
    return found[0]


def env_of(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]
    return spec["template"]["spec"] if "template" in spec else spec


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


# -- lint and offline validation ----------------------------------------------------------------
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict_passes(helm: Path, values: Path) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "-f", str(values),
         "--kube-version", KUBE_VERSION],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
@pytest.mark.parametrize("monitoring", [False, True], ids=["no-crds", "prometheus-operator"])
def test_template_manifests_validate_against_kubernetes_schemas(
    helm: Path, values: Path, monitoring: bool
) -> None:
    result = helm_template(helm, files=[values], api_versions=MONITORING if monitoring else ())
    assert result.returncode == 0, result.stderr
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert manifests
    for manifest in manifests:
        if manifest["kind"] in CRD_KINDS:
            assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
            assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}
            continue
        kubernetes_validate.validate(manifest, SCHEMA_VERSION, strict=True)
    assert bool(by_kind(manifests, "ServiceMonitor")) == monitoring


def test_every_object_carries_the_recommended_labels(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, CHAIN, api_versions=MONITORING)
    for manifest in manifests:
        labels = manifest["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                    "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
                    "helm.sh/chart"):  # fmt: skip
            assert key in labels, f"{manifest['kind']}/{manifest['metadata']['name']}: {key}"
        assert labels["app.kubernetes.io/instance"] == "rel"


# -- security ------------------------------------------------------------------------------------
def test_every_container_is_locked_down_but_the_data_owner(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, merged(CHAIN, {"gpuNode": {"machineKeys": {
        "existingSecret": "keys"}}}))  # fmt: skip
    seen = set()
    for workload in [*by_kind(manifests, "Deployment"), *by_kind(manifests, "StatefulSet"),
                     *by_kind(manifests, "DaemonSet"), *by_kind(manifests, "Pod")]:  # fmt: skip
        spec = pod_spec(workload)
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not spec.get("hostNetwork") and not spec.get("hostPID")
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            seen.add(container["name"])
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["privileged"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            if container["name"] == "data-owner":
                # Root with CHOWN only: gives the agent its hostPath state and machine key.
                assert context["runAsUser"] == 0 and context["capabilities"]["add"] == ["CHOWN"]
            else:
                assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
                assert "add" not in context["capabilities"]
            assert container["resources"]["requests"]
    assert {"api", "seed", "agent", "data-owner"} <= seen


def test_only_the_gpu_node_agent_mounts_a_service_account_token(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, CHAIN)
    for workload in [*by_kind(manifests, "Deployment"), *by_kind(manifests, "StatefulSet"),
                     *by_kind(manifests, "Pod")]:  # fmt: skip
        assert pod_spec(workload)["automountServiceAccountToken"] is False
    agent = pod_spec(one(manifests, "DaemonSet", "rel-gridlease-gpu-node"))
    assert agent["serviceAccountName"] == "rel-gridlease-gpu-node"


# -- components ----------------------------------------------------------------------------------
def test_defaults_run_api_on_sqlite_two_seeds_and_the_gpu_node_agent(
    helm: Path, tmp_path: Path
) -> None:
    manifests = render(helm, tmp_path, CHAIN)
    api = one(manifests, "Deployment", "rel-gridlease-api")
    assert api["spec"]["strategy"] == {"type": "Recreate"}
    container = pod_spec(api)["containers"][0]
    env = env_of(container)
    assert env["GRIDLEASE_API_DATABASE_URL"] == "sqlite:////data/api.db"
    assert env["GRIDLEASE_API_CHAIN_URL"] == "ws://chain:9944"
    assert env["GRIDLEASE_API_SERVER_SECRET"] == {
        "secretKeyRef": {"name": "rel-gridlease-api", "key": "server-secret"}}  # fmt: skip
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pvc = one(manifests, "PersistentVolumeClaim", "rel-gridlease-api-data")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    secret = one(manifests, "Secret", "rel-gridlease-api")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert one(manifests, "StatefulSet", "rel-gridlease-seed")["spec"]["replicas"] == 2
    assert not by_kind(manifests, "Ingress")


def test_postgresql_takes_the_url_from_its_secret_and_has_no_volume(
    helm: Path, tmp_path: Path
) -> None:
    manifests = render(helm, tmp_path, merged(CHAIN, {"api": {"replicas": 3, "database": {
        "type": "postgresql", "postgresql": {"existingSecret": "pg", "key": "url"}}}}))  # fmt: skip
    api = one(manifests, "Deployment", "rel-gridlease-api")
    assert api["spec"]["replicas"] == 3 and "strategy" not in api["spec"]
    env = env_of(pod_spec(api)["containers"][0])
    assert env["GRIDLEASE_API_DATABASE_URL"] == {"secretKeyRef": {"name": "pg", "key": "url"}}
    assert not by_kind(manifests, "PersistentVolumeClaim")


def test_existing_server_secret_replaces_the_generated_one(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, merged(CHAIN, {"api": {"serverSecret": {
        "existingSecret": "mine", "key": "k"}}}))  # fmt: skip
    assert not by_kind(manifests, "Secret")
    env = env_of(pod_spec(one(manifests, "Deployment", "rel-gridlease-api"))["containers"][0])
    assert env["GRIDLEASE_API_SERVER_SECRET"] == {"secretKeyRef": {"name": "mine", "key": "k"}}


def test_ingress_routes_its_hosts_to_the_api(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, merged(CHAIN, {"api": {"ingress": {
        "enabled": True, "className": "nginx", "hosts": ["api.example.org"]}}}))  # fmt: skip
    ingress = one(manifests, "Ingress", "rel-gridlease-api")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "api.example.org"
    paths = rule["http"]["paths"]
    assert all(p["backend"]["service"]["name"] == "rel-gridlease-api" for p in paths)
    # The API (its OpenAPI document is /v1/openapi.json), its web docs and the web console; not
    # /metrics, /healthz or /readyz, which stay inside the cluster.
    assert [(p["path"], p["pathType"]) for p in paths] == [
        ("/v1", "Prefix"), ("/docs", "Prefix"), ("/redoc", "Prefix"),
        ("/console", "Prefix")]  # fmt: skip
    wildcard = merged(CHAIN, {"api": {"ingress": {"enabled": True, "hosts": ["*.example.org"]}}})
    rule = one(render(helm, tmp_path, wildcard), "Ingress", "rel-gridlease-api")["spec"]["rules"][0]
    assert rule["host"] == "*.example.org"


def test_forwarded_allow_ips_trusts_only_the_named_proxies(helm: Path, tmp_path: Path) -> None:
    # uvicorn.run (services/customer_api/__main__.py) reads FORWARDED_ALLOW_IPS when not given
    # forwarded_allow_ips; unset it trusts 127.0.0.1 only.
    main = (REPO / "services" / "customer_api" / "__main__.py").read_text()
    assert "forwarded_allow_ips" not in main
    api = one(render(helm, tmp_path, CHAIN), "Deployment", "rel-gridlease-api")
    assert "FORWARDED_ALLOW_IPS" not in env_of(pod_spec(api)["containers"][0])
    values = merged(CHAIN, {"api": {"forwardedAllowIps": "10.0.0.0/8,192.168.1.5"}})
    api = one(render(helm, tmp_path, values), "Deployment", "rel-gridlease-api")
    assert env_of(pod_spec(api)["containers"][0])["FORWARDED_ALLOW_IPS"] == "10.0.0.0/8,192.168.1.5"


def test_seeds_are_wired_to_each_other_the_api_and_the_nodes(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, merged(CHAIN, {"seed": {
        "replicas": 3, "externalEndpoints": ["far.example.org:7600"]}}))  # fmt: skip
    expected = ",".join(
        [f"rel-gridlease-seed-{i}.rel-gridlease-seed.gl.svc:7600" for i in range(3)]
        + ["far.example.org:7600"]
    )
    seeds = one(manifests, "StatefulSet", "rel-gridlease-seed")
    assert seeds["spec"]["serviceName"] == "rel-gridlease-seed"
    assert env_of(pod_spec(seeds)["containers"][0])["SEED_ENDPOINTS"] == expected
    headless = one(manifests, "Service", "rel-gridlease-seed")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    api = pod_spec(one(manifests, "Deployment", "rel-gridlease-api"))["containers"][0]
    assert env_of(api)["GRIDLEASE_API_SEED_ENDPOINTS"] == expected
    agent = pod_spec(one(manifests, "DaemonSet", "rel-gridlease-gpu-node"))["containers"][0]
    assert env_of(agent)["GRIDLEASE_NODE_SEEDS"] == expected
    for container in (pod_spec(seeds)["containers"][0], agent):
        assert container["readinessProbe"]["grpc"]["port"] in (7600, 7700)


def test_seed_leaves_itself_out_of_its_peers(tmp_path: Path, helm: Path) -> None:
    # The StatefulSet's shell line, run here as a pod of the set would run it.
    seeds = one(render(helm, tmp_path, CHAIN), "StatefulSet", "rel-gridlease-seed")
    container = pod_spec(seeds)["containers"][0]
    script = container["command"][2].replace("exec python -m services.seed",
                                             'echo "$GRIDLEASE_SEED_PEERS"')  # fmt: skip
    endpoints = env_of(container)["SEED_ENDPOINTS"]
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"SEED_ENDPOINTS": endpoints, "HOSTNAME": "rel-gridlease-seed-1",
             "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "rel-gridlease-seed-0.rel-gridlease-seed.gl.svc:7600"


def test_gpu_node_agent_runs_on_gpu_nodes_with_the_shared_rbac(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, CHAIN)
    agent = one(manifests, "DaemonSet", "rel-gridlease-gpu-node")
    spec = pod_spec(agent)
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["runtimeClassName"] == "nvidia"
    env = env_of(spec["containers"][0])
    assert env["GRIDLEASE_NODE_RUNTIME"] == "kubernetes"
    assert env["GRIDLEASE_NODE_KUBE_NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["GRIDLEASE_NODE_PUBLIC_PORT"] == "30700"
    assert "GRIDLEASE_NODE_PROVIDER_SECRET_FILE" not in env  # the provider key stays out
    service = one(manifests, "Service", "rel-gridlease-gpu-node")
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    assert service["spec"]["ports"][0]["nodePort"] == 30700
    # files/gpu-node-rbac.yaml with this release's namespace and names.
    binding = one(manifests, "ClusterRoleBinding", "rel-gridlease-gpu-node")
    account = {"kind": "ServiceAccount", "name": "rel-gridlease-gpu-node", "namespace": "gl"}
    assert binding["subjects"] == [account]
    assert binding["roleRef"]["name"] == "rel-gridlease-gpu-node"
    service_account = one(manifests, "ServiceAccount", "rel-gridlease-gpu-node")
    assert service_account["metadata"]["namespace"] == "gl"
    policy = one(manifests, "ValidatingAdmissionPolicy", "rel-gridlease-gpu-node")
    match = policy["spec"]["matchConditions"][0]["expression"]
    assert "system:serviceaccount:gl:rel-gridlease-gpu-node" in match
    assert one(manifests, "ValidatingAdmissionPolicyBinding", "rel-gridlease-gpu-node")
    rules = one(manifests, "ClusterRole", "rel-gridlease-gpu-node")["rules"]
    source = [d for d in yaml.safe_load_all((CHART / "files" / "gpu-node-rbac.yaml").read_text())
              if d and d["kind"] == "ClusterRole"][0]  # fmt: skip
    assert rules == source["rules"]


def test_machine_and_provider_keys_come_from_their_secrets(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, merged(CHAIN, {"gpuNode": {
        "machineKeys": {"existingSecret": "machine-keys"},
        "providerKey": {"existingSecret": "provider", "key": "uri"}}}))  # fmt: skip
    spec = pod_spec(one(manifests, "DaemonSet", "rel-gridlease-gpu-node"))
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["machine-keys"]["secret"]["secretName"] == "machine-keys"
    assert volumes["provider-key"]["secret"]["secretName"] == "provider"
    init = spec["initContainers"][0]
    assert env_of(init)["MACHINE_KEYS"] == "/etc/gridlease/machine-keys"
    assert "$MACHINE_KEYS/$NODE_NAME" in init["command"][2]
    env = env_of(spec["containers"][0])
    assert env["GRIDLEASE_NODE_PROVIDER_SECRET_FILE"] == "/etc/gridlease/provider/uri"


@pytest.mark.parametrize("component", ["api", "seed", "gpuNode"])
def test_each_component_switches_off(helm: Path, tmp_path: Path, component: str) -> None:
    values = merged(CHAIN, {"seed": {"externalEndpoints": ["far:7600"]}},
                    {component: {"enabled": False}})  # fmt: skip
    manifests = render(helm, tmp_path, values, api_versions=MONITORING)
    names = {"api": "api", "seed": "seed", "gpuNode": "gpu-node"}
    gone = names[component]
    for manifest in manifests:
        labels = manifest["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/component") != gone, manifest["metadata"]["name"]
    remaining = {m["metadata"].get("labels", {}).get("app.kubernetes.io/component")
                 for m in manifests}  # fmt: skip
    assert set(names.values()) - {gone} <= remaining


def test_chain_node_serves_the_services_when_no_chain_url_is_given(
    helm: Path, tmp_path: Path
) -> None:
    """ci/chain-node-values.yaml: a dev validator in the release, and every service reads its
    RPC through the headless Service's stable name."""
    manifests = render(helm, tmp_path, {}, files=[CHART / "ci" / "chain-node-values.yaml"])
    node = one(manifests, "StatefulSet", "rel-gridlease-chain")
    spec = pod_spec(node)
    container = spec["containers"][0]
    assert container["image"] == "localhost/gridlease-chain-node:0.1.0"
    args = container["args"]
    for arg in ("--chain=dev", "--rpc-methods=safe", "--validator", "--alice",
                "--state-pruning=archive", "--blocks-pruning=archive"):  # fmt: skip
        assert arg in args
    # What the node itself demands of a validator (both found by the real install,
    # tests/k8s/test_helm_install.py): RPC for other pods only with the explicit flag (plain
    # --rpc-external is refused), and a libp2p key of its own (NetworkKeyNotFound otherwise),
    # made once on its volume when no Secret gives one. Dev keys: no Secret to insert.
    assert "--unsafe-rpc-external" in args and "--rpc-external" not in args
    assert "--node-key-file=/data/node-key" in args
    [init] = spec["initContainers"]
    assert init["name"] == "node-key"
    assert init["command"][2] == (
        "[ -s /data/node-key ] || gridlease-node key generate-node-key --file /data/node-key"
    )
    # An RPC node is not an authority: plain --rpc-external, the network key it makes itself.
    rpc = render(helm, tmp_path, {"chainNode": {"mode": "rpc"}},
                 files=[CHART / "ci" / "chain-node-values.yaml"])  # fmt: skip
    rpc_spec = pod_spec(one(rpc, "StatefulSet", "rel-gridlease-chain"))
    rpc_args = rpc_spec["containers"][0]["args"]
    assert "--rpc-external" in rpc_args and "--unsafe-rpc-external" not in rpc_args
    assert "initContainers" not in rpc_spec
    assert not any(a.startswith("--node-key-file") for a in rpc_args)
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/readiness", "port": "rpc"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/data"
    claim = node["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    service = one(manifests, "Service", "rel-gridlease-chain")
    assert service["spec"]["clusterIP"] == "None"
    url = "ws://rel-gridlease-chain-0.rel-gridlease-chain.gl.svc:9944"
    api = pod_spec(one(manifests, "Deployment", "rel-gridlease-api"))["containers"][0]
    agent = pod_spec(one(manifests, "DaemonSet", "rel-gridlease-gpu-node"))["containers"][0]
    assert env_of(api)["GRIDLEASE_API_CHAIN_URL"] == url
    assert env_of(agent)["GRIDLEASE_NODE_CHAIN_URL"] == url
    # chain.url, when given, still wins (the node then only follows or validates).
    given = render(helm, tmp_path, CHAIN, files=[CHART / "ci" / "chain-node-values.yaml"])
    api = pod_spec(one(given, "Deployment", "rel-gridlease-api"))["containers"][0]
    assert env_of(api)["GRIDLEASE_API_CHAIN_URL"] == CHAIN["chain"]["url"]


def test_validator_takes_its_keys_spec_and_node_key_from_the_cluster(
    helm: Path, tmp_path: Path
) -> None:
    """ci/validator-values.yaml: the session keys go into the keystore on the volume (aura as
    sr25519, gran as ed25519) before the node starts; the chain spec and the libp2p key are
    mounted read-only; nothing of them is in the manifests themselves."""
    manifests = render(helm, tmp_path, {}, files=[CHART / "ci" / "validator-values.yaml"])
    spec = pod_spec(one(manifests, "StatefulSet", "rel-gridlease-chain"))
    init = spec["initContainers"][0]
    script = init["command"][2]
    assert "--key-type aura" in script and "--scheme sr25519" in script
    assert "--key-type gran" in script and "--scheme ed25519" in script
    assert '"$(cat /keys/aura)"' in script and '"$(cat /keys/gran)"' in script
    assert env_of(init)["CHAIN"] == "/chain-spec/chain-spec.json"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["keys"]["secret"] == {"secretName": "gridlease-validator-keys",
                                         "defaultMode": 0o400}  # fmt: skip
    assert volumes["chain-spec"]["configMap"]["name"] == "gridlease-chain-spec"
    assert volumes["node-key"]["secret"]["secretName"] == "gridlease-node-key"
    args = spec["containers"][0]["args"]
    assert "--chain=/chain-spec/chain-spec.json" in args and "--validator" in args
    assert "--node-key-file=/node-key/node-key" in args
    # An authority of a real network keeps RPC to itself (the node refuses plain
    # --rpc-external for a validator; the chart does not override that with the unsafe flag):
    # its probes use the libp2p port, as its /health is not reachable from the kubelet.
    assert not any(a.endswith("rpc-external") for a in args)
    container = spec["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["tcpSocket"] == {"port": "p2p"}, probe
    assert any(a.startswith("--bootnodes=/dns/boot-0.chain.example/") for a in args)
    assert not any(a.startswith("--state-pruning") for a in args)  # archive: false
    assert not any(a.startswith("--alice") for a in args)
    assert not by_kind(manifests, "Deployment") and not by_kind(manifests, "DaemonSet")


# -- monitoring ----------------------------------------------------------------------------------
def test_service_monitors_only_where_the_crd_exists(helm: Path, tmp_path: Path) -> None:
    assert not by_kind(render(helm, tmp_path, CHAIN), "ServiceMonitor")
    assert not by_kind(render(helm, tmp_path, CHAIN), "PrometheusRule")
    manifests = render(helm, tmp_path, CHAIN, api_versions=MONITORING)
    monitors = {m["metadata"]["name"]: m for m in by_kind(manifests, "ServiceMonitor")}
    assert set(monitors) == {"rel-gridlease-api", "rel-gridlease-seed", "rel-gridlease-gpu-node"}
    jobs = {}
    for name, monitor in monitors.items():
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [s for s in by_kind(manifests, "Service")
                    if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items())
                    and "gridlease/metrics-job" in s["metadata"]["labels"]]  # fmt: skip
        assert len(services) == 1, name
        ports = {p["name"] for p in services[0]["spec"]["ports"]}
        assert monitor["spec"]["endpoints"][0]["port"] in ports
        jobs[name] = services[0]["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    # The job names the alerts and dashboards use.
    assert sorted(jobs.values()) == ["gridlease-api", "gridlease-node", "gridlease-seed"]


def test_prometheus_rule_is_the_alerts_file(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, CHAIN, api_versions=MONITORING)
    rule = one(manifests, "PrometheusRule", "rel-gridlease")
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["spec"] == alerts
    values = merged(CHAIN, {"metrics": {"prometheusRule": {"enabled": False}}})
    assert not by_kind(render(helm, tmp_path, values, api_versions=MONITORING), "PrometheusRule")


def test_dashboards_ship_as_labelled_config_maps(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path, CHAIN)
    maps = [m for m in by_kind(manifests, "ConfigMap") if "-dashboard-" in m["metadata"]["name"]]
    files = {p.name: p.read_text() for p in (CHART / "dashboards").glob("*.json")}
    assert len(maps) == len(files) == 3
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((name, text),) = config_map["data"].items()
        assert text == files[name].rstrip("\n")
    values = merged(CHAIN, {"grafana": {"dashboards": {"enabled": False}}})
    assert not by_kind(render(helm, tmp_path, values), "ConfigMap")


def test_helm_test_hooks_call_the_api_and_the_seeds(helm: Path, tmp_path: Path) -> None:
    pods = by_kind(render(helm, tmp_path, CHAIN), "Pod")
    assert {p["metadata"]["name"] for p in pods} == {"rel-gridlease-api-test",
                                                     "rel-gridlease-seed-test"}  # fmt: skip
    for pod in pods:
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        script = pod["spec"]["containers"][0]["command"][2]
        compile(script, pod["metadata"]["name"], "exec")
    api_test = next(p for p in pods if "api" in p["metadata"]["name"])
    assert "http://rel-gridlease-api:8080" in api_test["spec"]["containers"][0]["command"][2]


def test_notes_say_how_to_reach_the_api_and_sign_up(helm: Path, tmp_path: Path) -> None:
    # NOTES.txt renders only on install, which wants a cluster; a copy of the chart renders it
    # into a ConfigMap instead (Helm parses NOTES.txt as a template of the chart).
    chart = tmp_path / "gridlease"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        '{{ include "gridlease/templates/NOTES.txt" . | indent 4 }}\n'
    )
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(CHAIN))
    result = subprocess.run(
        [str(helm), "template", "rel", str(chart), "--namespace", "gl", "--kube-version",
         KUBE_VERSION, "-f", str(path), "--show-only", "templates/zz-notes.yaml"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    notes = yaml.safe_load(result.stdout)["data"]["notes"]
    assert "kubectl --namespace gl port-forward service/rel-gridlease-api 8080:8080" in notes
    assert 'gridlease signup --name me --url "$GRIDLEASE_API_URL"' in notes
    assert "helm test rel --namespace gl" in notes


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "chain.url is required"),
        ({"chain": {"url": "http://chain:9944"}}, "/chain/url"),
        (merged(CHAIN, {"api": {"database": {"type": "mysql"}}}), "/api/database/type"),
        (merged(CHAIN, {"api": {"replicas": 2}}), "SQLite allows one API replica"),
        (merged(CHAIN, {"api": {"database": {"type": "postgresql"}}}),
         "api.database.postgresql.existingSecret"),
        (merged(CHAIN, {"api": {"colour": "blue"}}), "colour"),
        (merged(CHAIN, {"seed": {"replicas": 0}}), "/seed/replicas"),
        (merged(CHAIN, {"gpuNode": {"nodePort": 80}}), "/gpuNode/nodePort"),
        (merged(CHAIN, {"gpuNode": {"simulateGpus": "lots"}}), "/gpuNode/simulateGpus"),
        (merged(CHAIN, {"api": {"extraEnv": {"PATH": "/x"}}}),
         "'PATH' does not match pattern '^GRIDLEASE_"),
        (merged(CHAIN, {"podSecurity": {"runAsUser": 0, "runAsGroup": 0}}),
         "/podSecurity/runAsUser"),
        ({"chainNode": {"enabled": True, "mode": "validator"}}, "chainNode.keySecret"),
        ({"chainNode": {"enabled": True, "mode": "validator", "devKey": "alice",
                        "chainSpecConfigMap": "spec"}}, "chainNode.devKey"),
        ({"chainNode": {"enabled": True, "mode": "validator", "keySecret": "keys",
                        "chainSpecConfigMap": "spec"}},
         "chain.url: a validator of your own network serves RPC only to itself"),
        ({"chainNode": {"enabled": True, "chain": "mainnet"}}, "/chainNode/chain"),
        ({"chainNode": {"enabled": True, "bootnodes": ["boot:30333"]}}, "/chainNode/bootnodes/0"),
        (merged(CHAIN, {"seed": {"enabled": False}}), "the API and GPU nodes need seeds"),
        (merged(CHAIN, {"api": {"ingress": {"enabled": True}}}),
         "api.ingress.hosts: list at least one host"),
        (merged(CHAIN, {"api": {"ingress": {"enabled": True, "hosts": ["*"]}}}),
         "/api/ingress/hosts/0"),
        (merged(CHAIN, {"api": {"ingress": {"enabled": True, "hosts": ["a.*.example.org"]}}}),
         "/api/ingress/hosts/0"),
        (merged(CHAIN, {"api": {"extraEnv": {"GRIDLEASE_API_DEV_MODE": "true"}}}),
         "api.extraEnv.GRIDLEASE_API_DEV_MODE: the chart sets"),
        (merged(CHAIN, {"gpuNode": {"pricePerGpuBlock": 2**53}}), "/gpuNode/pricePerGpuBlock"),
        (merged(CHAIN, {"gpuNode": {"pricePerGpuBlock": "12.5"}}), "/gpuNode/pricePerGpuBlock"),
        (merged(CHAIN, {"gpuNode": {"pricePerGpuBlock": "0"}}), "/gpuNode/pricePerGpuBlock"),
    ],
    ids=["no-chain", "chain-not-ws", "database-type", "sqlite-replicas", "pg-without-secret",
         "unknown-key", "no-seeds", "node-port-range", "simulate-syntax", "foreign-env",
         "root", "validator-no-keys", "dev-key-own-spec", "own-validator-serving-services",
         "chain-spec-name", "bootnode-no-peer-id",
         "seeds-off", "ingress-no-hosts", "ingress-bare-wildcard",
         "ingress-inner-wildcard", "env-override", "price-float", "price-decimal", "price-zero"],
)  # fmt: skip
def test_wrong_values_are_refused_with_the_key_at_fault(
    helm: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    result = helm_template(helm, values, tmp=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


# -- reviewed faults -----------------------------------------------------------------------------
def test_agent_writes_its_named_objects_only_in_lease_namespaces(
    helm: Path, tmp_path: Path
) -> None:
    # RBAC grants the namespaced kinds by name in every namespace (kube-system too); the policy
    # must confine every such kind to namespaces labelled as the agent labels its own.
    manifests = render(helm, tmp_path, CHAIN)
    policy = one(manifests, "ValidatingAdmissionPolicy", "rel-gridlease-gpu-node")["spec"]
    covered = {(group, resource)
               for rule in policy["matchConstraints"]["resourceRules"]
               if {"CREATE", "UPDATE"} <= set(rule["operations"])
               for group in rule["apiGroups"] for resource in rule["resources"]}  # fmt: skip
    granted = {(group, resource)
               for rule in one(manifests, "ClusterRole", "rel-gridlease-gpu-node")["rules"]
               if {"create", "patch"} & set(rule["verbs"])
               for group in rule["apiGroups"] for resource in rule["resources"]}  # fmt: skip
    assert granted <= covered
    assert ("", "namespaces") in granted
    label = f"namespaceObject.metadata.labels['{node_labels.MANAGED_BY}'] == "
    label += f"'{node_labels.MANAGED_BY_VALUE}'"
    rules = [v["expression"] for v in policy["validations"] if "namespaceObject" in v["expression"]]
    assert len(rules) == 1 and label in rules[0]
    assert rules[0].startswith("request.resource.resource == 'namespaces' ||")
    # The namespace rules still apply to namespaces only, and to every other kind nothing else.
    for validation in policy["validations"]:
        if validation["expression"] not in rules:
            assert validation["expression"].startswith("request.resource.resource != 'namespaces'")
    binding = one(manifests, "ValidatingAdmissionPolicyBinding", "rel-gridlease-gpu-node")
    assert binding["spec"]["policyName"] == "rel-gridlease-gpu-node"


def test_data_owner_copies_the_machine_key_again_on_a_restart(helm: Path, tmp_path: Path) -> None:
    # The init container's script, run as its container runs it (root with CAP_CHOWN only), on
    # a state folder that a first start already gave the agent: a restart must not fail.
    manifests = render(helm, tmp_path, merged(CHAIN, {"gpuNode": {"machineKeys": {
        "existingSecret": "keys"}}}))  # fmt: skip
    init = pod_spec(one(manifests, "DaemonSet", "rel-gridlease-gpu-node"))["initContainers"][0]
    assert init["securityContext"]["capabilities"]["add"] == ["CHOWN"]
    data, keys = tmp_path / "data", tmp_path / "keys"
    data.mkdir()
    keys.mkdir()
    script = init["command"][2].replace("/data", str(data))
    for key in ("first key", "second key"):
        (keys / "node-1").write_text(key)
        result = subprocess.run(
            ["setpriv", "--bounding-set", "-all,+chown", "--inh-caps", "-all",
             "/bin/sh", "-c", script],
            env={"MACHINE_KEYS": str(keys), "NODE_NAME": "node-1", "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        stat = (data / "machine.key").stat()
        assert (data / "machine.key").read_text() == key
        assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (10001, 10001, 0o600)
        assert data.stat().st_uid == 10001


def test_long_release_names_fit_and_stay_distinct(helm: Path, tmp_path: Path) -> None:
    release = "acme-provider-production-europe-west3-a-gpu1"
    values = merged(CHAIN, {"api": {"ingress": {"enabled": True, "hosts": ["a.example.org"]}}})
    result = helm_template(helm, values, tmp=tmp_path, release=release, api_versions=MONITORING)
    assert result.returncode == 0, result.stderr
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    names: dict[str, list[str]] = {}
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        assert len(name) <= 63 and not name.endswith("-"), name
        names.setdefault(manifest["kind"], []).append(name)
    for kind, listed in names.items():
        assert len(set(listed)) == len(listed), (kind, listed)
    assert len(names["ConfigMap"]) == 3
    (seeds,) = by_kind(manifests, "StatefulSet")
    # The controller-revision-hash label is the name, "-" and a 10-character hash: 63 at most.
    assert len(seeds["metadata"]["name"]) <= 52
    assert seeds["spec"]["serviceName"] == seeds["metadata"]["name"]
    assert seeds["metadata"]["name"] in names["Service"]
    endpoints = env_of(pod_spec(seeds)["containers"][0])["SEED_ENDPOINTS"]
    assert endpoints.startswith(f"{seeds['metadata']['name']}-0.{seeds['metadata']['name']}.gl.svc")
    for pod in by_kind(manifests, "Pod"):
        assert pod["metadata"]["name"].endswith("-test")
    api = one(manifests, "Deployment", f"{release}-gridlease-api")
    claim = [v for v in pod_spec(api)["volumes"] if v["name"] == "data"][0]
    assert claim["persistentVolumeClaim"]["claimName"] in names["PersistentVolumeClaim"]


def test_extra_env_cannot_replace_what_the_chart_sets(helm: Path, tmp_path: Path) -> None:
    values = merged(CHAIN, {
        "api": {"devMode": True, "faucet": {"existingSecret": "f"}},
        "gpuNode": {"providerKey": {"existingSecret": "p"}, "simulateGpus": "a100:2",
                    "offerLabels": {"a": "b"}}})  # fmt: skip
    manifests = render(helm, tmp_path, values)
    workloads = {"api": one(manifests, "Deployment", "rel-gridlease-api"),
                 "seed": one(manifests, "StatefulSet", "rel-gridlease-seed"),
                 "gpuNode": one(manifests, "DaemonSet", "rel-gridlease-gpu-node")}  # fmt: skip
    for component, workload in workloads.items():
        for name in env_of(pod_spec(workload)["containers"][0]):
            result = helm_template(helm, merged(values, {component: {"extraEnv": {name: "x"}}}),
                                   tmp=tmp_path)  # fmt: skip
            assert result.returncode != 0, f"{component}.extraEnv.{name} accepted"
    accepted = merged(values, {"api": {"extraEnv": {"GRIDLEASE_API_RATE_LIMIT": "5"}}})
    api = one(render(helm, tmp_path, accepted), "Deployment", "rel-gridlease-api")
    assert env_of(pod_spec(api)["containers"][0])["GRIDLEASE_API_RATE_LIMIT"] == "5"


@pytest.mark.parametrize(("price", "rendered"), [
    ("123456789012345678901", "123456789012345678901"), (2500000, "2500000"),
    (2**53 - 1, str(2**53 - 1))])  # fmt: skip
def test_price_renders_exactly(helm: Path, tmp_path: Path, price: Any, rendered: str) -> None:
    values = merged(CHAIN, {"gpuNode": {"pricePerGpuBlock": price}})
    agent = one(render(helm, tmp_path, values), "DaemonSet", "rel-gridlease-gpu-node")
    env = env_of(pod_spec(agent)["containers"][0])
    assert env["GRIDLEASE_NODE_PRICE_PER_GPU_BLOCK"] == rendered


def _secret_chart(tmp_path: Path) -> Path:
    """A copy of the chart whose api-secret.yaml takes `lookup`'s answer from values (Helm's
    template has no cluster to look up), without the schema (which refuses that value)."""
    chart = tmp_path / "gridlease"
    shutil.copytree(CHART, chart)
    (chart / "values.schema.json").unlink()
    template = chart / "templates" / "api-secret.yaml"
    lookup = 'lookup "v1" "Secret" .Release.Namespace $name'
    assert template.read_text().count(lookup) == 1
    template.write_text(template.read_text().replace(lookup, ".Values.lookedUp"))
    return chart


def test_server_secret_keeps_the_existing_secret_whole(helm: Path, tmp_path: Path) -> None:
    chart = _secret_chart(tmp_path)
    existing = {"server-secret": "b2xk", "other": "a2VlcA=="}
    values = merged(CHAIN, {"lookedUp": {"data": existing}})
    secret = one(render(helm, tmp_path, values, chart=chart), "Secret", "rel-gridlease-api")
    assert secret["data"] == existing
    # The key renamed: refused, not a fresh secret in place of the old one.
    values = merged(values, {"api": {"serverSecret": {"key": "renamed"}}})
    result = helm_template(helm, values, tmp=tmp_path, chart=chart)
    assert result.returncode != 0
    assert 'Secret rel-gridlease-api exists without key "renamed"' in result.stderr
    # None yet: a fresh one.
    secret = one(render(helm, tmp_path, CHAIN, chart=chart), "Secret", "rel-gridlease-api")
    assert len(secret["data"]["server-secret"]) == 64
