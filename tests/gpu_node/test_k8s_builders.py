"""Kubernetes builders, without a cluster: the isolation each object promises."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from kubernetes.client import ApiClient

from services.common import lease_share
from services.gpu_node import labels
from services.gpu_node.desired import bound_to_share
from services.gpu_node.runtime.kubernetes.builders import (
    BuildConfig,
    build_deployment,
    build_namespace,
    build_network_policy,
    build_resource_quota,
    build_service,
    build_ssh_secret,
    namespace_name,
    selector_labels,
)
from services.gpu_node.runtime.kubernetes.builders.common import cpu_quantity, memory_quantity

from .utils import HOST, SAMPLE_SSH_KEY, make_workload

MACHINE = "ab" * 32
CONFIG = BuildConfig(machine=MACHINE, node_name="gpu-h100-0")


def as_dict(obj: Any) -> dict[str, Any]:
    value: dict[str, Any] = ApiClient().sanitize_for_serialization(obj)
    return value


def pod_spec(**overrides: Any) -> dict[str, Any]:
    deployment = as_dict(build_deployment(make_workload(**overrides), CONFIG))
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def test_build_namespace_named_and_labelled_from_machine_and_lease() -> None:
    ns = as_dict(build_namespace(make_workload(lease_id=18446744073709551615), CONFIG))
    name = ns["metadata"]["name"]
    assert name == f"gl-{MACHINE[:32]}-18446744073709551615"
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    lbl = ns["metadata"]["labels"]
    assert lbl[labels.LEASE_ID] == "18446744073709551615"
    assert lbl[labels.NODE] == MACHINE[:32]
    assert lbl[labels.MANAGED_BY] == labels.MANAGED_BY_VALUE
    assert lbl["pod-security.kubernetes.io/enforce"] == "baseline"
    assert ns["metadata"]["annotations"][labels.MACHINE_ID] == MACHINE


def test_two_machines_lease_7_get_different_namespaces() -> None:
    other = BuildConfig(machine="cd" * 32, node_name="gpu-a100-0")
    w = make_workload(lease_id=7)
    assert namespace_name(CONFIG, 7) != namespace_name(other, 7)
    for obj in (build_service(w, CONFIG), build_deployment(w, CONFIG)):
        assert as_dict(obj)["metadata"]["namespace"] == namespace_name(CONFIG, 7)


@pytest.mark.parametrize(
    "fields",
    [
        {"machine": "xyz", "node_name": "n"},
        {"machine": "ab" * 15, "node_name": "n"},
        {"machine": MACHINE, "node_name": ""},
        {"machine": MACHINE, "node_name": "n", "pod_security_level": "strict"},
    ],
)
def test_build_config_refuses_bad_machine_node_or_level(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        BuildConfig(**fields)


def test_kube_node_value_fits_a_label_value() -> None:
    assert labels.kube_node_value("0x" + "AB" * 32) == MACHINE[:32]
    assert len(labels.kube_node_value(MACHINE)) <= 63


def test_build_namespace_pod_security_level_configurable() -> None:
    config = BuildConfig(machine=MACHINE, node_name="n", pod_security_level="restricted")
    ns = as_dict(build_namespace(make_workload(), config))
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_object_carries_lease_and_machine_labels_in_lease_namespace() -> None:
    w = make_workload(lease_id=7)
    objects = [
        build_ssh_secret(w, CONFIG),
        build_deployment(w, CONFIG),
        build_service(w, CONFIG),
        build_network_policy(w, CONFIG),
        build_resource_quota(w, CONFIG),
    ]
    for obj in objects:
        meta = as_dict(obj)["metadata"]
        assert meta["namespace"] == namespace_name(CONFIG, 7)
        assert meta["labels"] == {**labels.lease_labels(7), labels.NODE: MACHINE[:32]}
        assert all(key.startswith(labels.PREFIX) for key in meta["labels"])


def test_simulated_gpus_are_labelled_on_every_object() -> None:
    config = BuildConfig(machine=MACHINE, node_name="n", simulated=True)
    w = make_workload()
    for obj in (build_namespace(w, config), build_deployment(w, config), build_service(w, config)):
        assert as_dict(obj)["metadata"]["labels"][labels.SIMULATED_GPUS] == "true"
    pod_labels = as_dict(build_deployment(w, config))["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[labels.SIMULATED_GPUS] == "true"


def test_build_deployment_pinned_to_the_agents_node() -> None:
    spec = pod_spec()
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-h100-0"]}]}
    ]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]


def test_build_deployment_ready_only_once_sshd_accepts() -> None:
    probe = pod_spec()["containers"][0]["readinessProbe"]
    assert probe["tcpSocket"] == {"port": 2222}


def test_build_deployment_gpu_cpu_memory_limits() -> None:
    container = pod_spec()["containers"][0]
    resources = container["resources"]
    assert resources["limits"] == {"cpu": "1500m", "memory": "2Gi", "nvidia.com/gpu": "2"}
    assert resources["requests"] == resources["limits"]


def test_build_deployment_without_gpus_asks_for_none() -> None:
    container = pod_spec(gpu_indices=(), gpu_uuids=())["containers"][0]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_build_deployment_pod_is_locked_down() -> None:
    spec = pod_spec()
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    # Unset is false (and what the server returns for false); Pod Security refuses true.
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec)
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert all("hostPath" not in volume for volume in spec["volumes"])
    sc = spec["containers"][0]["securityContext"]
    assert sc["privileged"] is False
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["SETUID", "SETGID", "SYS_CHROOT"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_build_deployment_capabilities_within_baseline() -> None:
    # Pod Security "baseline" allows adding only these (Kubernetes docs, Pod Security Standards).
    baseline = {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }  # fmt: skip
    added = pod_spec()["containers"][0]["securityContext"]["capabilities"]["add"]
    assert set(added) <= baseline


def test_build_deployment_runtime_class_configurable() -> None:
    w = make_workload()
    config = BuildConfig(machine=MACHINE, node_name="n", runtime_class_name=None)
    spec = as_dict(build_deployment(w, config))
    assert "runtimeClassName" not in spec["spec"]["template"]["spec"]


def test_build_deployment_recreate_single_replica_selects_lease() -> None:
    w = make_workload(lease_id=9)
    spec = as_dict(build_deployment(w, CONFIG))["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"] == selector_labels(w, CONFIG)
    assert spec["template"]["metadata"]["labels"] == selector_labels(w, CONFIG)


def test_build_deployment_mounts_ssh_secret_read_only() -> None:
    spec = pod_spec()
    container = spec["containers"][0]
    assert container["volumeMounts"] == [
        {"mountPath": "/etc/gridlease/ssh", "name": "ssh-key", "readOnly": True}
    ]
    volume = spec["volumes"][0]
    assert volume["secret"] == {"secretName": "gridlease-ssh-key", "defaultMode": 0o400}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GRIDLEASE_SSH_AUTHORIZED_KEY_FILE"] == "/etc/gridlease/ssh/authorized_key"
    assert env["MODEL"] == "llama"
    assert container["args"] == ["sleep", "infinity"]


def test_build_ssh_secret_holds_key() -> None:
    secret = as_dict(build_ssh_secret(make_workload(), CONFIG))
    key = base64.b64decode(secret["data"]["authorized_key"]).decode()
    assert key == SAMPLE_SSH_KEY + "\n"


def test_build_service_node_port_for_ssh_and_exposed_ports() -> None:
    w = make_workload(lease_id=3)
    spec = as_dict(build_service(w, CONFIG))["spec"]
    assert spec["type"] == "NodePort"
    assert spec["selector"] == selector_labels(w, CONFIG)
    assert [(p["name"], p["port"], p["targetPort"]) for p in spec["ports"]] == [
        ("ssh", 2222, 2222),
        ("p8080", 8080, 8080),
        ("p8888", 8888, 8888),
    ]


def test_build_network_policy_denies_by_default_and_blocks_private_egress() -> None:
    spec = as_dict(build_network_policy(make_workload(), CONFIG))["spec"]
    assert spec["podSelector"] == {}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    internet = spec["egress"][0]["to"][0]["ipBlock"]
    assert internet["cidr"] == "0.0.0.0/0"
    assert set(internet["except"]) == {
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
    }
    dns = spec["egress"][1]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    # No rule lets traffic out unrestricted: every egress rule names a peer.
    assert all(rule.get("to") for rule in spec["egress"])


def test_build_network_policy_ingress_only_to_exposed_ports() -> None:
    spec = as_dict(build_network_policy(make_workload(ports=(8080,)), CONFIG))["spec"]
    from_anywhere = spec["ingress"][0]
    assert from_anywhere["from"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    assert sorted(p["port"] for p in from_anywhere["ports"]) == [2222, 8080]
    same_namespace = spec["ingress"][1]
    assert same_namespace["from"] == [{"podSelector": {}}]


def test_build_resource_quota_caps_lease() -> None:
    hard = as_dict(build_resource_quota(make_workload(), CONFIG))["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "2"
    assert hard["limits.cpu"] == "1500m"
    assert hard["limits.memory"] == "2Gi"
    assert hard["pods"] == "1"
    assert hard["services.nodeports"] == "3"
    assert hard["services.loadbalancers"] == "0"
    assert hard["persistentvolumeclaims"] == "0"


@pytest.mark.parametrize(
    ("millicores", "expected"), [(1000, "1"), (1500, "1500m"), (250, "250m"), (16000, "16")]
)
def test_cpu_quantity_is_canonical(millicores: int, expected: str) -> None:
    assert cpu_quantity(millicores) == expected


@pytest.mark.parametrize(("mib", "expected"), [(1024, "1Gi"), (1536, "1536Mi"), (65536, "64Gi")])
def test_memory_quantity_is_canonical(mib: int, expected: str) -> None:
    assert memory_quantity(mib) == expected


def test_build_service_node_ports_are_the_lease_recorded_ports() -> None:
    # Stable across re-creation of the Service (a restarted lease keeps its SSH port).
    w = make_workload(ports=(8080,), host_ports={2222: 30022, 8080: 30080})
    ports = as_dict(build_service(w, CONFIG))["spec"]["ports"]
    assert [(p["name"], p["nodePort"]) for p in ports] == [("ssh", 30022), ("p8080", 30080)]
    again = as_dict(build_service(w, CONFIG))["spec"]["ports"]
    assert again == ports


def test_build_service_leaves_unrecorded_node_ports_to_the_api_server() -> None:
    w = make_workload(ports=(8080,), host_ports={})
    ports = as_dict(build_service(w, CONFIG))["spec"]["ports"]
    assert all("nodePort" not in p for p in ports)


def test_build_deployment_node_env_wins_over_spec_env() -> None:
    spec = pod_spec(
        lease_id=9,
        env={"GRIDLEASE_LEASE_ID": "1", "gridlease_ssh_authorized_key_file": "/x",
             "NVIDIA_VISIBLE_DEVICES": "all", "MODEL": "llama"},
    )  # fmt: skip
    env = spec["containers"][0]["env"]
    pairs = [(e["name"], e["value"]) for e in env]
    assert pairs == [
        ("MODEL", "llama"),
        ("GRIDLEASE_LEASE_ID", "9"),
        ("GRIDLEASE_SSH_AUTHORIZED_KEY_FILE", "/etc/gridlease/ssh/authorized_key"),
    ]


def test_build_deployment_empty_env_value_is_left_out_as_the_server_stores_it() -> None:
    # The API server drops `value: ""`; a desired "" would differ from it on every reconcile.
    env = pod_spec(lease_id=9, env={"EMPTY": "", "MODEL": "llama"})["containers"][0]["env"]
    assert env[:2] == [{"name": "EMPTY"}, {"name": "MODEL", "value": "llama"}]


def test_build_deployment_and_quota_carry_the_lease_share() -> None:
    # The desired workload is bounded before any builder sees it (desired.py); a 1-GPU lease of
    # a 4-GPU machine with 8 CPUs and 32 GiB asking 1 TiB and 1,000 CPUs is built with 2 CPUs
    # and 8 GiB in the Deployment and the ResourceQuota alike.
    share = lease_share(HOST, 1, 4)
    w = bound_to_share(make_workload(cpu_millicores=1_000_000, memory_mib=1024 * 1024), share)
    limits = as_dict(build_deployment(w, CONFIG))["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]["limits"]
    assert (limits["cpu"], limits["memory"]) == ("2", "8Gi")
    hard = as_dict(build_resource_quota(w, CONFIG))["spec"]["hard"]
    assert (hard["limits.cpu"], hard["limits.memory"]) == ("2", "8Gi")
