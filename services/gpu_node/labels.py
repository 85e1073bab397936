"""Label keys stamped on everything the node creates for a lease (containers, namespaces, objects).

One prefix, one module: the runtime finds a lease's objects by these labels after a restart,
and deletes orphans by selector.
"""

from __future__ import annotations

__all__ = [
    "GPU_UUIDS",
    "KUBE_NODE_CHARS",
    "LEASE_ID",
    "MACHINE_ID",
    "MANAGED_BY",
    "MANAGED_BY_VALUE",
    "NODE",
    "PREFIX",
    "SIMULATED_GPUS",
    "WORKLOAD_HASH",
    "kube_node_value",
    "lease_labels",
    "lease_selector",
    "machine_selector",
    "managed_selector",
]

PREFIX = "gridlease/"
LEASE_ID = f"{PREFIX}lease-id"
MANAGED_BY = f"{PREFIX}managed-by"
MANAGED_BY_VALUE = "gpu-node"
# Comma-separated UUIDs of the leased GPUs; lets `list` report which GPUs a workload holds.
# A Podman label; in Kubernetes it is an annotation (label values cannot hold commas).
GPU_UUIDS = f"{PREFIX}gpu-uuids"
# Hash of the desired workload; a container whose hash differs is replaced.
WORKLOAD_HASH = f"{PREFIX}workload-hash"
# "true" on a workload whose GPUs are simulated (no device was attached).
SIMULATED_GPUS = f"{PREFIX}simulated-gpus"
# Hex machine id of the node that owns the workload: two nodes sharing one container host (or a
# node next to a test run) must never take each other's workloads for orphans.
NODE = f"{PREFIX}node"
# Annotation (Kubernetes) with the whole hex machine id, for people: the NODE label holds a prefix.
MACHINE_ID = f"{PREFIX}machine-id"
# Kubernetes label values hold at most 63 characters and a machine id has 64 hex digits: there the
# NODE label (and the lease namespace's name) carry its first 32. Machine ids are hashes of
# machine keys, so two machines of one cluster sharing 128 bits would take a hash collision.
KUBE_NODE_CHARS = 32


def lease_labels(lease_id: int) -> dict[str, str]:
    return {LEASE_ID: str(lease_id), MANAGED_BY: MANAGED_BY_VALUE}


def lease_selector(lease_id: int) -> str:
    return f"{LEASE_ID}={lease_id},{MANAGED_BY}={MANAGED_BY_VALUE}"


def managed_selector() -> str:
    return f"{MANAGED_BY}={MANAGED_BY_VALUE}"


def kube_node_value(machine_hex: str) -> str:
    """The NODE label value of a machine on Kubernetes: the first KUBE_NODE_CHARS hex digits of
    its id (lowercase, no 0x). ValueError if `machine_hex` is not at least that many hex digits."""
    value = machine_hex.lower().removeprefix("0x")
    if len(value) < KUBE_NODE_CHARS or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"machine id {machine_hex!r} is not a hex machine id")
    return value[:KUBE_NODE_CHARS]


def machine_selector(node: str) -> str:
    """Selects everything the node agent of machine `node` (a NODE label value) manages."""
    return f"{managed_selector()},{NODE}={node}"
