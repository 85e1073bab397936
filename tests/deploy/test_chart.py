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

from tests.deploy.conftest import REPO

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
    api_versions: Iterable[str] = (), tmp: Path | None = None,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    args = [str(helm), "template", "rel", str(CHART), "--namespace", "gl",
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
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "rel-gridlease-api"


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
        ({}, "/chain/url"),
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
        (merged(CHAIN, {"chainNode": {"enabled": True}}), "/chainNode/enabled"),
        (merged(CHAIN, {"seed": {"enabled": False}}), "the API and GPU nodes need seeds"),
    ],
    ids=["no-chain", "chain-not-ws", "database-type", "sqlite-replicas", "pg-without-secret",
         "unknown-key", "no-seeds", "node-port-range", "simulate-syntax", "foreign-env",
         "root", "chain-node", "seeds-off"],
)  # fmt: skip
def test_wrong_values_are_refused_with_the_key_at_fault(
    helm: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    result = helm_template(helm, values, tmp=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
