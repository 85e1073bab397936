"""A NodePort Service: SSH and the lease's exposed ports, reachable on the node's address.

Node ports: the API server allocates them, not the agent. Many agents (one per GPU machine) share
one cluster and one NodePort range, and a port an agent picked itself could already belong to
another agent's Service ("provided port is already allocated"); the API server allocates from the
whole range without such races. The first Service of a lease leaves `nodePort` unset; the agent
records what the server chose in its store (Executor, NodeStore.record_host_ports), and every
later build asks for exactly those ports (LeaseWorkload.host_ports), so a Service re-created after
a deletion keeps the customer's SSH port.

`externalTrafficPolicy: Local` keeps the client's source address (abuse reports) and skips the
extra hop; the pod is pinned to the agent's node, which is the address customers are given.
"""

from __future__ import annotations

from kubernetes.client import V1Service, V1ServicePort, V1ServiceSpec

from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.images import SSHD_CONTAINER_PORT
from services.gpu_node.runtime.kubernetes.builders.common import (
    WORKLOAD_NAME,
    BuildConfig,
    lease_metadata,
    selector_labels,
)

__all__ = ["build_service"]


def build_service(workload: LeaseWorkload, config: BuildConfig) -> V1Service:
    named = [("ssh", SSHD_CONTAINER_PORT)] + [(f"p{port}", port) for port in workload.ports]
    ports = [
        V1ServicePort(
            name=name,
            port=port,
            target_port=port,
            protocol="TCP",
            # None: the API server allocates one (the first time).
            node_port=workload.host_ports.get(port),
        )
        for name, port in named
    ]
    return V1Service(
        api_version="v1",
        kind="Service",
        metadata=lease_metadata(workload, config, WORKLOAD_NAME),
        spec=V1ServiceSpec(
            type="NodePort",
            selector=selector_labels(workload, config),
            ports=ports,
            external_traffic_policy="Local",
        ),
    )
