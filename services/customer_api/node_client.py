"""Talking to GPU nodes' NodeService: hand over a lease's spec signed by the customer's key, ask
how its workload is doing, and read its GPUs (a request signed by the customer's key). One
channel per node endpoint, reused."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import grpc
from substrateinterface import Keypair

from services.common import (
    LEASE_GPUS_NONCE_BYTES,
    canonical_json,
    channel_options,
    lease_gpus_request_payload,
    now_ms,
    spec_hash,
    workload_submission_payload,
)
from services.common.grpc_gen.gridlease.v1 import node_pb2, node_pb2_grpc

__all__ = [
    "NodeClient",
    "NodeLeaseUnknown",
    "NodeRejected",
    "NodeStatus",
    "NodeUnreachable",
    "signed_lease_gpus_request",
    "signed_submission",
]

_UNREACHABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN}
)


class NodeUnreachable(Exception):
    """The node did not answer; try again later."""


class NodeRejected(Exception):
    """The node answered and refused the spec; retrying the same spec will not help."""


class NodeLeaseUnknown(NodeRejected):
    """The node does not see the lease on chain for its machine (ended, or never there)."""


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


def signed_lease_gpus_request(
    lease_id: int, keypair: Keypair, *, timestamp_ms: int | None = None, nonce: bytes | None = None
) -> node_pb2.GetLeaseGpusRequest:
    """The GetLeaseGpus request for lease_id, signed by the customer, stamped now with a fresh
    random nonce (the node answers each signed request once, within a minute of its stamp)."""
    stamp = now_ms() if timestamp_ms is None else timestamp_ms
    fresh = os.urandom(LEASE_GPUS_NONCE_BYTES) if nonce is None else nonce
    payload = lease_gpus_request_payload(lease_id, stamp, fresh)
    return node_pb2.GetLeaseGpusRequest(
        lease_id=lease_id,
        customer=keypair.ss58_address,
        timestamp_ms=stamp,
        nonce=fresh,
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

    def lease_gpus(
        self, endpoint: str, request: node_pb2.GetLeaseGpusRequest
    ) -> node_pb2.GetLeaseGpusResponse:
        """The lease's GPUs as the node reports them. NodeUnreachable when it does not answer,
        NodeLeaseUnknown when it does not see the lease, NodeRejected for other refusals."""
        try:
            reply: node_pb2.GetLeaseGpusResponse = self._stub(endpoint).GetLeaseGpus(
                request, timeout=self.timeout_s
            )
        except grpc.RpcError as exc:
            code = exc.code()
            if code in _UNREACHABLE:
                raise NodeUnreachable(f"{endpoint}: {code.name}") from exc
            if code == grpc.StatusCode.NOT_FOUND:
                raise NodeLeaseUnknown(f"{code.name}: {exc.details()}") from exc
            raise NodeRejected(f"{code.name}: {exc.details()}") from exc
        return reply

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
