"""A ResourceQuota capping the namespace at what the lease paid for.

It backs the Deployment's limits: even a second pod created by some other path cannot take more
GPUs, CPU or memory, nor open more NodePorts or any LoadBalancer or volume claim.
"""

from __future__ import annotations

from kubernetes.client import V1ResourceQuota, V1ResourceQuotaSpec

from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.kubernetes.builders.common import (
    QUOTA_NAME,
    BuildConfig,
    cpu_quantity,
    lease_metadata,
    memory_quantity,
)

__all__ = ["build_resource_quota"]


def build_resource_quota(workload: LeaseWorkload, config: BuildConfig) -> V1ResourceQuota:
    cpu = cpu_quantity(workload.cpu_millicores)
    memory = memory_quantity(workload.memory_mib)
    hard = {
        "pods": "1",
        "services": "1",
        # The quota counts node ports, not services: SSH plus each exposed port.
        "services.nodeports": str(1 + len(workload.ports)),
        "services.loadbalancers": "0",
        "persistentvolumeclaims": "0",
        "requests.cpu": cpu,
        "limits.cpu": cpu,
        "requests.memory": memory,
        "limits.memory": memory,
        # Extended resources are quota'd by requests only (Kubernetes has no limits.<ext>).
        f"requests.{config.gpu_resource}": str(len(workload.gpu_indices)),
    }
    return V1ResourceQuota(
        api_version="v1",
        kind="ResourceQuota",
        metadata=lease_metadata(workload, config, QUOTA_NAME),
        spec=V1ResourceQuotaSpec(hard=hard),
    )
