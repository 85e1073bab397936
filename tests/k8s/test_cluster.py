"""The Kubernetes test cluster itself: the pinned version answers, the fake GPU nodes are
schedulable by GPU count and model, an impossible request stays unscheduled, RBAC is on, and the
real (kubelet) node runs a container from an imported image, and its pods find Services by name
(cluster DNS)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from services.devstack.cluster import (
    DEFAULT_GPU_NODES,
    GPU_RESOURCE,
    SERVICE_CIDR,
    ClusterError,
    DevCluster,
    Versions,
    binaries_dir,
)
from services.devstack.cluster_node import BUSYBOX_IMAGE
from tests.k8s.kube import REAL_NODE, processes_mentioning, wait_for

H100, A100 = DEFAULT_GPU_NODES


def _container(gpus: int) -> client.V1Container:
    return client.V1Container(
        name="work",
        image="docker.io/library/busybox:1.36",
        command=["sleep", "infinity"],
        resources=client.V1ResourceRequirements(limits={GPU_RESOURCE: str(gpus)}),
    )


def test_version_is_the_pinned_one(k8s_api: Any) -> None:
    info = client.VersionApi(k8s_api).get_code()
    assert info.git_version == Versions.pinned().k8s
    assert info.minor == Versions.pinned().k8s.split(".")[1]


def test_fake_gpu_nodes_are_ready_with_gpus(k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    for fake in DEFAULT_GPU_NODES:
        node = core.read_node(fake.name)
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.status.conditions
        assert node.status.allocatable[GPU_RESOURCE] == str(fake.gpus)
        assert node.status.capacity[GPU_RESOURCE] == str(fake.gpus)
        labels = node.metadata.labels
        assert labels["nvidia.com/gpu.product"] == fake.product
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["nvidia.com/gpu.count"] == str(fake.gpus)
    runtime_class = client.NodeV1Api(k8s_api).read_runtime_class("nvidia")
    assert runtime_class.handler == "nvidia"


@pytest.mark.parametrize("target", [A100, H100], ids=lambda n: n.name)
def test_gpu_deployment_lands_on_the_selected_node_and_runs(
    k8s_api: Any, k8s_namespace: Callable[[str], str], target: Any
) -> None:
    ns = k8s_namespace("work")
    labels = {"app": "gpu-work"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="gpu-work"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    runtime_class_name="nvidia",
                    node_selector={"nvidia.com/gpu.product": target.product},
                    containers=[_container(2)],
                ),
            ),
        ),
    )
    client.AppsV1Api(k8s_api).create_namespaced_deployment(ns, deployment)
    core = client.CoreV1Api(k8s_api)

    def running_pod() -> Any:
        pods = core.list_namespaced_pod(ns, label_selector="app=gpu-work").items
        return next((p for p in pods if p.status.phase == "Running"), None)

    pod = wait_for("the deployment's pod Running", running_pod)
    assert pod.spec.node_name == target.name
    assert pod.spec.containers[0].resources.limits[GPU_RESOURCE] == "2"
    apps = client.AppsV1Api(k8s_api)
    available = wait_for(
        "deployment available",
        lambda: apps.read_namespaced_deployment("gpu-work", ns).status.available_replicas,
    )
    assert available == 1


def test_more_gpus_than_any_node_has_stays_unschedulable(
    k8s_api: Any, k8s_namespace: Callable[[str], str]
) -> None:
    ns = k8s_namespace("big")
    most = max(n.gpus for n in (*DEFAULT_GPU_NODES, REAL_NODE))
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="too-big"),
        spec=client.V1PodSpec(containers=[_container(most + 1)]),
    )
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_pod(ns, pod)

    def unschedulable() -> Any:
        status = core.read_namespaced_pod("too-big", ns).status
        return next(
            (
                c
                for c in status.conditions or []
                if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
            ),
            None,
        )

    condition = wait_for("PodScheduled=False/Unschedulable", unschedulable)
    assert f"Insufficient {GPU_RESOURCE}" in condition.message
    current = core.read_namespaced_pod("too-big", ns)
    assert current.status.phase == "Pending"
    assert current.spec.node_name is None


def test_rbac_refuses_a_service_account_without_a_role(
    k8s_cluster: DevCluster, k8s_api: Any, k8s_namespace: Callable[[str], str]
) -> None:
    ns = k8s_namespace("rbac")
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    token = core.create_namespaced_service_account_token("nobody", ns, request).status.token
    as_nobody = k8s_cluster.token_client(token)
    try:
        # The token is accepted (authentication works) ...
        review = client.AuthenticationV1Api(as_nobody).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert review.status.user_info.username == f"system:serviceaccount:{ns}:nobody"
        # ... and the request is refused by authorization: no role grants secrets.
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(as_nobody).list_namespaced_secret(ns)
        assert refused.value.status == 403
        with pytest.raises(ApiException) as refused_all:
            client.CoreV1Api(as_nobody).list_secret_for_all_namespaces()
        assert refused_all.value.status == 403
    finally:
        as_nobody.close()
    # The admin may.
    client.CoreV1Api(k8s_api).list_namespaced_secret(ns)


def test_real_node_runs_an_imported_image_behind_a_node_port(
    k8s_api: Any, k8s_namespace: Callable[[str], str]
) -> None:
    """The kubelet node really runs a container: the busybox image reached containerd through
    `ctr images import` (no registry), the pod gets an address from the CNI bridge, its output
    comes back through the API server from the kubelet, and kube-proxy's NodePort on the node's
    address reaches its server (as a lease's SSH NodePort will)."""
    core = client.CoreV1Api(k8s_api)
    node = core.read_node(REAL_NODE.name)
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert node.status.node_info.kubelet_version == Versions.pinned().k8s
    assert node.status.allocatable[GPU_RESOURCE] == str(REAL_NODE.gpus)
    node_ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    ns = k8s_namespace("real")
    script = (
        "mkdir -p /www && echo served by $(hostname) > /www/index.html"
        " && echo started on $(hostname) && exec httpd -f -p 8080 -h /www"
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="hello", labels={"app": "hello"}),
        spec=client.V1PodSpec(
            runtime_class_name="nvidia",
            node_selector={"nvidia.com/gpu.product": REAL_NODE.product},
            termination_grace_period_seconds=1,
            containers=[
                client.V1Container(
                    name="work",
                    image=BUSYBOX_IMAGE,
                    image_pull_policy="Never",
                    command=["sh", "-c", script],
                    ports=[client.V1ContainerPort(container_port=8080)],
                    resources=client.V1ResourceRequirements(limits={GPU_RESOURCE: "1"}),
                )
            ],
        ),
    )
    core.create_namespaced_pod(ns, pod)
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="hello"),
        spec=client.V1ServiceSpec(
            type="NodePort",
            selector={"app": "hello"},
            ports=[client.V1ServicePort(port=80, target_port=8080)],
        ),
    )
    node_port = core.create_namespaced_service(ns, service).spec.ports[0].node_port

    def running() -> Any:
        current = core.read_namespaced_pod("hello", ns)
        return current if current.status.phase == "Running" else None

    current = wait_for("pod Running on the real node", running, timeout=120)
    assert current.spec.node_name == REAL_NODE.name
    assert ipaddress.ip_address(current.status.pod_ip) in ipaddress.ip_network(REAL_NODE.pod_cidr)
    log = wait_for(
        "the container's output", lambda: core.read_namespaced_pod_log("hello", ns) or None
    )
    assert log.strip() == "started on hello"

    def fetch() -> str | None:
        try:
            response = httpx.get(f"http://{node_ip}:{node_port}/index.html", timeout=2.0)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    assert wait_for("the NodePort answering", fetch).strip() == "served by hello"

    # Another pod finds it by the Service's name (cluster DNS: CoreDNS behind kube-dns, the
    # namespace's search domain), and the API server's Service by its full name.
    lookup = (
        "nslookup kubernetes.default.svc.cluster.local | grep -A1 '^Name:'"
        " && wget -q -O - http://hello/index.html"
    )
    core.create_namespaced_pod(
        ns,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="client"),
            spec=client.V1PodSpec(
                restart_policy="Never",
                node_name=REAL_NODE.name,
                termination_grace_period_seconds=1,
                containers=[
                    client.V1Container(
                        name="lookup", image=BUSYBOX_IMAGE, image_pull_policy="Never",
                        command=["sh", "-c", lookup],
                    )  # fmt: skip
                ],
            ),
        ),
    )

    def finished() -> str | None:
        phase = core.read_namespaced_pod("client", ns).status.phase
        return str(phase) if phase in ("Succeeded", "Failed") else None

    phase = wait_for("the client pod finished", finished, timeout=120)
    output = core.read_namespaced_pod_log("client", ns)
    assert phase == "Succeeded", output
    service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
    assert f"Address: {service_ip}" in output, output
    assert output.strip().endswith("served by hello"), output


def test_a_part_that_cannot_start_is_named_with_its_log(tmp_path: Path) -> None:
    """Start-up failures say which process failed and show its log; what had started is
    stopped again."""
    real_bin = binaries_dir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for binary in real_bin.iterdir():
        (bin_dir / binary.name).symlink_to(binary)
    broken = bin_dir / "kube-apiserver"
    broken.unlink()
    broken.write_text("#!/bin/sh\necho 'apiserver: simulated start-up failure' >&2\nexit 3\n")
    broken.chmod(0o755)
    cluster = DevCluster(tmp_path / "cluster", bin_dir=bin_dir, say=lambda _: None)
    with pytest.raises(ClusterError) as failed:
        cluster.up(timeout=60)
    message = str(failed.value)
    assert message.startswith("kube-apiserver exited before kube-apiserver ready")
    assert "apiserver: simulated start-up failure" in message
    assert cluster.status() == {}
    # etcd had started (its log exists) before the API server failed, and was stopped.
    assert (tmp_path / "cluster" / "logs" / "etcd.log").exists()
    assert processes_mentioning(str(tmp_path)) == []
