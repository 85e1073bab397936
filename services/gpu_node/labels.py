"""Label keys stamped on everything the node creates for a lease (containers, namespaces, objects).

One prefix, one module: the runtime finds a lease's objects by these labels after a restart,
and deletes orphans by selector.
"""

from __future__ import annotations

__all__ = [
    "GPU_UUIDS",
    "LEASE_ID",
    "MANAGED_BY",
    "MANAGED_BY_VALUE",
    "NODE",
    "PREFIX",
    "SIMULATED_GPUS",
    "WORKLOAD_HASH",
    "lease_labels",
    "lease_selector",
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


def lease_labels(lease_id: int) -> dict[str, str]:
    return {LEASE_ID: str(lease_id), MANAGED_BY: MANAGED_BY_VALUE}


def lease_selector(lease_id: int) -> str:
    return f"{LEASE_ID}={lease_id},{MANAGED_BY}={MANAGED_BY_VALUE}"


def managed_selector() -> str:
    return f"{MANAGED_BY}={MANAGED_BY_VALUE}"
