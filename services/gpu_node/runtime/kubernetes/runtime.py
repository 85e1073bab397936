"""Kubernetes backend: one namespace per lease, written by apply.py, read back by label.

Status comes from the lease's Deployment (ready replicas) and Service (node ports). Not run in
this project's tests (no cluster here); the builders and the apply diff are tested without one.
"""

from __future__ import annotations

from typing import Any

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, NetworkingV1Api
from kubernetes.client.exceptions import ApiException

from services.common import ConfigError
from services.gpu_node import labels
from services.gpu_node.runtime.base import (
    LeaseWorkload,
    WorkloadNotFound,
    WorkloadPhase,
    WorkloadStatus,
)
from services.gpu_node.runtime.kubernetes.apply import KubeApis, apply_lease, delete_lease
from services.gpu_node.runtime.kubernetes.builders import BuildConfig, namespace_name
from services.gpu_node.runtime.kubernetes.builders.common import WORKLOAD_NAME

__all__ = ["KubernetesRuntime", "deployment_phase"]


def deployment_phase(deployment: Any) -> tuple[WorkloadPhase, str]:
    """Running once a replica is ready; failed when the Deployment reports a failure."""
    status = deployment.status
    for condition in (status.conditions if status else None) or []:
        if condition.type == "ReplicaFailure" and condition.status == "True":
            return WorkloadPhase.FAILED, condition.message or "replica failure"
        if condition.type == "Progressing" and condition.status == "False":
            return WorkloadPhase.FAILED, condition.message or "not progressing"
    if status is not None and (status.ready_replicas or 0) >= 1:
        return WorkloadPhase.RUNNING, ""
    return WorkloadPhase.PENDING, ""


class KubernetesRuntime:
    """WorkloadRuntime over a cluster; node ports are reported on `node_host`."""

    def __init__(
        self, apis: KubeApis, config: BuildConfig | None = None, node_host: str = "127.0.0.1"
    ) -> None:
        self.apis = apis
        self.config = config or BuildConfig()
        self.node_host = node_host

    @classmethod
    def from_kubeconfig(cls, context: str | None, *, simulated: bool) -> KubernetesRuntime:
        if simulated:
            # Pods ask the scheduler for nvidia.com/gpu; simulated GPUs have none to give.
            raise ConfigError("the kubernetes runtime needs real GPUs; use podman to simulate")
        try:
            kube_config.load_incluster_config()  # type: ignore[no-untyped-call]  # unannotated
        except kube_config.ConfigException:
            kube_config.load_kube_config(context=context)  # type: ignore[no-untyped-call]  # same
        client = ApiClient()
        return cls(KubeApis(CoreV1Api(client), AppsV1Api(client), NetworkingV1Api(client)))

    def apply(self, workload: LeaseWorkload) -> WorkloadStatus:
        apply_lease(self.apis, workload, self.config)
        return self.status(workload.lease_id)

    def delete(self, lease_id: int) -> None:
        delete_lease(self.apis, lease_id)

    def list(self) -> list[WorkloadStatus]:
        found = self.apis.core.list_namespace(label_selector=labels.managed_selector())
        statuses = []
        for ns in found.items:
            ns_labels = ns.metadata.labels if ns.metadata is not None else None
            lease_label = (ns_labels or {}).get(labels.LEASE_ID, "")
            if not lease_label.isdigit():
                continue
            try:
                statuses.append(self.status(int(lease_label)))
            except WorkloadNotFound:
                # A namespace without its Deployment is half-made: report it so it is replaced.
                statuses.append(WorkloadStatus(int(lease_label), WorkloadPhase.FAILED))
        return statuses

    def status(self, lease_id: int) -> WorkloadStatus:
        ns = namespace_name(lease_id)
        try:
            deployment = self.apis.apps.read_namespaced_deployment(WORKLOAD_NAME, ns)
        except ApiException as exc:
            if exc.status == 404:
                raise WorkloadNotFound(f"no deployment for lease {lease_id}") from exc
            raise
        phase, message = deployment_phase(deployment)
        endpoints: dict[int, str] = {}
        try:
            service = self.apis.core.read_namespaced_service(WORKLOAD_NAME, ns)
            for port in (service.spec.ports if service.spec is not None else None) or []:
                if port.node_port:
                    endpoints[int(port.port)] = f"{self.node_host}:{port.node_port}"
        except ApiException as exc:
            if exc.status != 404:
                raise
        meta = deployment.metadata
        uuids = ((meta.annotations if meta is not None else None) or {}).get(labels.GPU_UUIDS, "")
        return WorkloadStatus(
            lease_id=lease_id,
            phase=phase,
            endpoints=endpoints,
            gpu_uuids=tuple(u for u in uuids.split(",") if u),
            message=message,
        )
