"""What every builder shares: configuration, names, metadata and canonical quantities.

Names: a lease's namespace is `gl-<machine>-<lease id>`, where <machine> is the machine's NODE
label value (labels.kube_node_value: 32 hex digits). Two machines' lease 7 live apart, and a
restarted agent finds its leases again from the labels alone. The objects inside have fixed names
with a `gridlease-` prefix: the agent's ClusterRole grants its writes (and its reads of Secrets)
for exactly these names (deploy/helm/gridlease/files/gpu-node-rbac.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import V1ObjectMeta

from services.gpu_node import labels
from services.gpu_node.runtime.base import LeaseWorkload

__all__ = [
    "NETWORK_POLICY_NAME",
    "OBJECT_NAMES",
    "POD_SECURITY_LEVELS",
    "QUOTA_NAME",
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
    "object_labels",
    "selector_labels",
]

# Fixed names inside a lease's namespace (the namespace itself carries machine and lease).
WORKLOAD_NAME = "gridlease-workload"  # the Deployment and its Service
SSH_SECRET_NAME = "gridlease-ssh-key"
NETWORK_POLICY_NAME = "gridlease-isolation"
QUOTA_NAME = "gridlease-quota"
OBJECT_NAMES = (WORKLOAD_NAME, SSH_SECRET_NAME, NETWORK_POLICY_NAME, QUOTA_NAME)
SSH_SECRET_KEY = "authorized_key"
SSH_KEY_DIR = "/etc/gridlease/ssh"
SSH_KEY_FILE = f"{SSH_KEY_DIR}/{SSH_SECRET_KEY}"
POD_SECURITY_LEVELS = ("privileged", "baseline", "restricted")


@dataclass(frozen=True)
class BuildConfig:
    """How this agent's lease objects are built.

    `machine`: the hex machine id (64 digits; scopes every name and label). `node_name`: the
    Kubernetes node that is this machine; lease pods are pinned to it. ValueError on a machine id
    that is not hex, an empty node name or an unknown Pod Security level."""

    machine: str
    node_name: str
    # RuntimeClass that gives containers the NVIDIA runtime; None (the setting
    # GRIDLEASE_NODE_KUBE_RUNTIME_CLASS="") names none: where the NVIDIA runtime is the node
    # default, and on nodes with SIMULATED GPUs, which have no NVIDIA runtime handler.
    runtime_class_name: str | None = "nvidia"
    gpu_resource: str = "nvidia.com/gpu"
    # Pod Security level enforced on lease namespaces; see namespace.py for why not restricted.
    pod_security_level: str = "baseline"
    # The machine's GPUs are SIMULATED (the node advertises the resource, nothing backs it):
    # every object says so in labels.SIMULATED_GPUS.
    simulated: bool = False

    def __post_init__(self) -> None:
        labels.kube_node_value(self.machine)  # ValueError on a malformed id
        if not self.node_name:
            raise ValueError("node_name: the agent's Kubernetes node name is required")
        if self.pod_security_level not in POD_SECURITY_LEVELS:
            raise ValueError(f"pod_security_level must be one of {POD_SECURITY_LEVELS}")

    @property
    def node_label(self) -> str:
        """The machine's NODE label value (32 hex digits)."""
        return labels.kube_node_value(self.machine)


def namespace_name(config: BuildConfig, lease_id: int) -> str:
    """`gl-<32 hex digits>-<lease id>`: at most 3 + 32 + 1 + 20 = 56 characters (a u64 has at
    most 20 digits), a DNS-1123 label as namespace names must be."""
    return f"gl-{config.node_label}-{lease_id}"


def selector_labels(workload: LeaseWorkload, config: BuildConfig) -> dict[str, str]:
    """Lease, manager and machine: what selectors (Deployment, Service, list) match on."""
    return {**labels.lease_labels(workload.lease_id), labels.NODE: config.node_label}


def object_labels(workload: LeaseWorkload, config: BuildConfig) -> dict[str, str]:
    """The labels on every object of a lease: the selector labels, plus the SIMULATED mark."""
    extra = {labels.SIMULATED_GPUS: "true"} if config.simulated else {}
    return {**selector_labels(workload, config), **extra}


def lease_metadata(workload: LeaseWorkload, config: BuildConfig, name: str) -> V1ObjectMeta:
    return V1ObjectMeta(
        name=name,
        namespace=namespace_name(config, workload.lease_id),
        labels=object_labels(workload, config),
        # The UUIDs of the chain's GPU slots of the lease, for people reading the cluster. The
        # device plugin, not this list, decides which boards the pod gets (deployment.py).
        # Annotation, not label: label values cannot hold the commas of a UUID list.
        annotations={labels.GPU_UUIDS: ",".join(workload.gpu_uuids)},
    )


# Short, readable quantities. The API server may still spell them differently ("1024Gi" comes
# back as "1Ti"); apply.py compares quantities by value, so notation never causes a patch.
def cpu_quantity(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_quantity(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"
