"""A NodePort Service: SSH and the lease's exposed ports, reachable on the node's address.

Node ports are the lease's allocated host ports (LeaseWorkload.host_ports, kept by the node's
store), not left to the API server: a Service re-created with the lease's namespace would get
new random ones and the customer's SSH port would move. They must lie in the cluster's
service-node-port-range (30000-32767 unless the cluster changed it)."""

from __future__ import annotations

from kubernetes.client import V1Service, V1ServicePort, V1ServiceSpec

from services.gpu_node import labels
from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.images import SSHD_CONTAINER_PORT
from services.gpu_node.runtime.kubernetes.builders.common import WORKLOAD_NAME, lease_metadata

__all__ = ["build_service"]


def build_service(workload: LeaseWorkload) -> V1Service:
    named = [("ssh", SSHD_CONTAINER_PORT)] + [(f"p{port}", port) for port in workload.ports]
    ports = [
        V1ServicePort(
            name=name,
            port=port,
            target_port=port,
            protocol="TCP",
            node_port=workload.host_ports.get(port),
        )
        for name, port in named
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
