"""Talking to GPU nodes' NodeService: hand over a lease's spec signed by the customer's key, and
ask how its workload is doing. One channel per node endpoint, reused."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc
from substrateinterface import Keypair

from services.common import (
    canonical_json,
    channel_options,
    spec_hash,
    workload_submission_payload,
)
from services.common.grpc_gen.gridlease.v1 import node_pb2, node_pb2_grpc

__all__ = ["NodeClient", "NodeRejected", "NodeStatus", "NodeUnreachable", "signed_submission"]

_UNREACHABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN}
)


class NodeUnreachable(Exception):
    """The node did not answer; try again later."""


class NodeRejected(Exception):
    """The node answered and refused the spec; retrying the same spec will not help."""


@dataclass(frozen=True)
class NodeStatus:
    status: str
    message: str
    host: str | None = None
    ssh_port: int | None = None
    ports: tuple[tuple[int, int], ...] = ()


def signed_submission(
    lease_id: int, spec: dict[str, object], keypair: Keypair
) -> node_pb2.SubmitWorkloadRequest:
    """The SubmitWorkload request for lease_id: the canonical spec, signed by the customer."""
    payload = workload_submission_payload(lease_id, spec_hash(spec))
    return node_pb2.SubmitWorkloadRequest(
        lease_id=lease_id,
        spec=canonical_json(spec),
        customer=keypair.ss58_address,
        signature=bytes(keypair.sign(payload)),
    )


class NodeClient:
    def __init__(self, *, timeout_s: float = 3.0) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}

    def _stub(self, endpoint: str) -> node_pb2_grpc.NodeServiceStub:
        with self._lock:
            channel = self._channels.get(endpoint)
            if channel is None:
                # Keepalive and a short reconnect backoff, as on every channel (issue 14, 12).
                channel = grpc.insecure_channel(endpoint, options=channel_options())
                self._channels[endpoint] = channel
        return node_pb2_grpc.NodeServiceStub(channel)

    def submit(self, endpoint: str, request: node_pb2.SubmitWorkloadRequest) -> str:
        """Deliver; returns the workload status name. NodeUnreachable or NodeRejected."""
        try:
            reply = self._stub(endpoint).SubmitWorkload(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in _UNREACHABLE:
                raise NodeUnreachable(f"{endpoint}: {code.name}") from exc
            raise NodeRejected(f"{code.name}: {exc.details()}") from exc
        if not reply.accepted:
            raise NodeRejected(reply.message or "refused")
        return node_pb2.WorkloadStatus.Name(reply.status)

    def status(self, endpoint: str, lease_id: int) -> NodeStatus:
        """The node's view of a lease; NodeUnreachable if it does not answer."""
        request = node_pb2.GetLeaseStatusRequest(lease_id=lease_id)
        try:
            reply = self._stub(endpoint).GetLeaseStatus(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise NodeUnreachable(f"{endpoint}: {exc.code().name}") from exc
        name = node_pb2.WorkloadStatus.Name(reply.status).removeprefix("WORKLOAD_STATUS_")
        return NodeStatus(
            status=name.lower(),
            message=reply.message,
            host=reply.host or None,
            ssh_port=reply.ssh_port or None,
            ports=tuple((p.container_port, p.host_port) for p in reply.ports),
        )

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
