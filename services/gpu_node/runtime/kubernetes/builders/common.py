"""What every builder shares: configuration, names, metadata and canonical quantities."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import V1ObjectMeta

from services.gpu_node import labels
from services.gpu_node.runtime.base import LeaseWorkload

__all__ = [
    "BuildConfig",
    "SSH_KEY_DIR",
    "SSH_KEY_FILE",
    "SSH_SECRET_KEY",
    "SSH_SECRET_NAME",
    "WORKLOAD_NAME",
    "cpu_quantity",
    "lease_metadata",
    "memory_quantity",
    "namespace_name",
]

# Fixed names inside a lease's namespace: the namespace itself carries the lease id.
WORKLOAD_NAME = "workload"
SSH_SECRET_NAME = "ssh-authorized-key"
SSH_SECRET_KEY = "authorized_key"
SSH_KEY_DIR = "/etc/gridlease/ssh"
SSH_KEY_FILE = f"{SSH_KEY_DIR}/{SSH_SECRET_KEY}"


@dataclass(frozen=True)
class BuildConfig:
    # RuntimeClass that gives containers the NVIDIA runtime; None on clusters where the NVIDIA
    # runtime is the node default.
    runtime_class_name: str | None = "nvidia"
    gpu_resource: str = "nvidia.com/gpu"
    # Pod Security level enforced on lease namespaces; see namespace.py for why not restricted.
    pod_security_level: str = "baseline"


def namespace_name(lease_id: int) -> str:
    # A u64 has at most 20 digits, so the name stays far below the 63-character limit.
    return f"gridlease-lease-{lease_id}"


def lease_metadata(workload: LeaseWorkload, name: str) -> V1ObjectMeta:
    return V1ObjectMeta(
        name=name,
        namespace=namespace_name(workload.lease_id),
        labels=labels.lease_labels(workload.lease_id),
        # Annotation, not label: label values cannot hold the commas of a UUID list.
        annotations={labels.GPU_UUIDS: ",".join(workload.gpu_uuids)},
    )


# Short, readable quantities. The API server may still spell them differently ("1024Gi" comes
# back as "1Ti"); apply.py compares quantities by value, so notation never causes a patch.
def cpu_quantity(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_quantity(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"
