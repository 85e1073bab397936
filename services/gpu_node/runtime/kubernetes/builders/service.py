"""A NodePort Service: SSH and the lease's exposed ports, reachable on the node's address."""

from __future__ import annotations

from kubernetes.client import V1Service, V1ServicePort, V1ServiceSpec

from services.gpu_node import labels
from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.images import SSHD_CONTAINER_PORT
from services.gpu_node.runtime.kubernetes.builders.common import WORKLOAD_NAME, lease_metadata

__all__ = ["build_service"]


def build_service(workload: LeaseWorkload) -> V1Service:
    ports = [
        V1ServicePort(
            name="ssh", port=SSHD_CONTAINER_PORT, target_port=SSHD_CONTAINER_PORT, protocol="TCP"
        )
    ]
    ports += [
        V1ServicePort(name=f"p{port}", port=port, target_port=port, protocol="TCP")
        for port in workload.ports
    ]
    return V1Service(
        api_version="v1",
        kind="Service",
        metadata=lease_metadata(workload, WORKLOAD_NAME),
        spec=V1ServiceSpec(
            type="NodePort",
            selector=labels.lease_labels(workload.lease_id),
            ports=ports,
            # Keep the client's source address (abuse reports) and skip the extra node hop.
            external_traffic_policy="Local",
        ),
    )
