"""Kubernetes backend: one namespace per lease, written by apply.py, read back by label.

Each agent (one per GPU machine, the DaemonSet install) sees only its own machine's leases: every
object it makes carries the machine's NODE label, its namespaces are named from the machine, and
`list` selects by that label. Its pods are pinned to its own Kubernetes node (deployment.py).

Status comes from the lease's objects: phase from the Deployment (and, while it is not ready, its
pods: the scheduler's reason a lease does not fit, a container's waiting reason), endpoints from
the Service's node ports, and drift (a missing or hand-edited object) from comparing each object
with its applied record. Tests: tests/k8s/test_gpu_node_backend.py, against a real API server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from services.common import ConfigError, get_logger
from services.gpu_node.runtime.base import (
    LeaseWorkload,
    WorkloadNotFound,
    WorkloadPhase,
    WorkloadStatus,
)
from services.gpu_node.runtime.kubernetes.apply import (
    DEPLOYMENT,
    KINDS,
    NAMESPACE_BODY,
    SERVICE,
    KubeApis,
    LeaseObjects,
    apply_lease,
    delete_lease,
    deployment_ready,
    drifted,
    read_lease,
    read_machine,
)
from services.gpu_node.runtime.kubernetes.builders import BuildConfig
from services.gpu_node.runtime.kubernetes.client import CountingApiClient, load_configuration

__all__ = [
    "BLOCKED_REASONS",
    "KubernetesRuntime",
    "deployment_phase",
    "lease_status",
    "pending_reason",
]

log = get_logger(__name__)


# Pending reasons that last until something outside the lease changes (another lease ends, an
# image is fixed): the agent does not poll those closely (WorkloadStatus.blocked).
BLOCKED_REASONS = ("unschedulable:", "ErrImagePull", "ImagePullBackOff", "InvalidImageName")


def pending_reason(pods: Sequence[Any] | None) -> str:
    """Why a lease's pod is not ready yet, from its pods: the scheduler's message when it fits
    no node (PodScheduled=False), else a container's waiting reason, else "starting"."""
    for pod in pods or ():
        status = pod.status
        for condition in (status.conditions if status else None) or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                return f"unschedulable: {condition.message or condition.reason}"
        for container in (status.container_statuses if status else None) or []:
            waiting = container.state.waiting if container.state else None
            if waiting is not None and waiting.reason:
                return f"{waiting.reason}: {waiting.message}" if waiting.message else waiting.reason
    return "starting" if pods else "starting: no pod yet"


def deployment_phase(
    deployment: Any, pods: Sequence[Any] | None = None
) -> tuple[WorkloadPhase, str]:
    """Running once a replica of the current generation is ready; failed when the Deployment
    reports a failure; else pending, with the reason its pods give."""
    status = deployment.status
    for condition in (status.conditions if status else None) or []:
        failed = (condition.type == "ReplicaFailure" and condition.status == "True") or (
            condition.type == "Progressing" and condition.status == "False"
        )
        if failed:
            reason = pending_reason(pods) if pods else ""
            return WorkloadPhase.FAILED, reason or condition.message or condition.reason
    if deployment_ready(deployment):
        return WorkloadPhase.RUNNING, ""
    return WorkloadPhase.PENDING, pending_reason(pods)


def _drift(found: LeaseObjects) -> tuple[str, ...]:
    drift = ["namespace changed"] if drifted(found.namespace, NAMESPACE_BODY) else []
    for kind in KINDS:
        live = found.objects.get(kind.key)
        if live is None:
            drift.append(f"{kind.key} missing")
        elif drifted(live, kind.body_fields):
            drift.append(f"{kind.key} changed")
    return tuple(drift)


def lease_status(found: LeaseObjects, node_host: str) -> WorkloadStatus:
    """The WorkloadStatus of one lease's objects; endpoints are reported on `node_host`.

    `gpu_uuids` stays empty: the device plugin picks the pod's boards and tells only the kubelet
    (deployment.py), so the API server cannot say which GPUs a lease holds."""
    deployment = found.objects.get(DEPLOYMENT.key)
    if deployment is None:
        phase, message = WorkloadPhase.PENDING, "the deployment is missing; re-creating it"
    else:
        phase, message = deployment_phase(deployment, found.pods)
    endpoints: dict[int, str] = {}
    service = found.objects.get(SERVICE.key)
    for port in (service.spec.ports if service is not None and service.spec else None) or []:
        if port.node_port:
            endpoints[int(port.port)] = f"{node_host}:{port.node_port}"
    return WorkloadStatus(
        lease_id=found.lease_id,
        phase=phase,
        endpoints=endpoints,
        message=message,
        drift=_drift(found),
        blocked=phase is WorkloadPhase.PENDING and message.startswith(BLOCKED_REASONS),
    )


class KubernetesRuntime:
    """WorkloadRuntime over a cluster, for the machine `config.machine` on the Kubernetes node
    `config.node_name`; node ports are reported on `node_host`."""

    def __init__(self, apis: KubeApis, config: BuildConfig, node_host: str = "127.0.0.1") -> None:
        self.apis = apis
        self.config = config
        self.node_host = node_host

    @classmethod
    def connect(cls, config: BuildConfig, context: str | None = None) -> KubernetesRuntime:
        """A runtime over the cluster the agent runs in (its service account) or the kubeconfig's
        `context`, checked to reach the node `config.node_name`. ConfigError when there is no
        cluster configuration, the node does not exist, or the agent may not read it."""
        try:
            configuration = load_configuration(context)
        except Exception as exc:  # noqa: BLE001 - kubernetes raises several kinds here
            raise ConfigError(f"runtime kubernetes: no cluster configuration: {exc}") from exc
        runtime = cls(KubeApis.from_client(CountingApiClient(configuration)), config)
        runtime.check_node()
        return runtime

    def check_node(self) -> int:
        """Reads this machine's Kubernetes node; returns the GPUs it advertises to the scheduler
        (allocatable `nvidia.com/gpu`; 0 when none, logged). ConfigError when it is absent or
        unreadable: every lease would stay Pending on a wrong node name."""
        name = self.config.node_name
        try:
            node = self.apis.core.read_node(name)
        except ApiException as exc:
            raise ConfigError(
                f"runtime kubernetes: cannot read node {name!r} (kube_node_name): "
                f"{exc.status} {exc.reason}"
            ) from exc
        allocatable = (node.status.allocatable if node.status else None) or {}
        gpus = int(allocatable.get(self.config.gpu_resource, "0") or 0)
        if gpus == 0:
            log.warning(
                "node.kube_node_without_gpus",
                extra={"node": name, "resource": self.config.gpu_resource},
            )
        return gpus

    def apply(self, workload: LeaseWorkload) -> WorkloadStatus:
        apply_lease(self.apis, workload, self.config)
        return self.status(workload.lease_id)

    def delete(self, lease_id: int) -> None:
        delete_lease(self.apis, self.config, lease_id)

    def list(self) -> list[WorkloadStatus]:
        found = read_machine(self.apis, self.config)
        return [lease_status(objects, self.node_host) for _, objects in sorted(found.items())]

    def status(self, lease_id: int) -> WorkloadStatus:
        found = read_lease(self.apis, self.config, lease_id)
        if found is None:
            raise WorkloadNotFound(f"no namespace for lease {lease_id}")
        return lease_status(found, self.node_host)
