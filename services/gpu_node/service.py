"""NodeService: a thin gRPC servicer over admission (SubmitWorkload) and the runtime's view
(GetLeaseStatus). Blocking work (chain reads, SQLite, podman) runs in worker threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from services.common import GridleaseError, Unavailable, abort_with, get_logger
from services.common._chain import ChainClient, ChainLease, ChainUnavailable
from services.common.grpc_gen.gridlease.v1 import node_pb2, node_pb2_grpc
from services.gpu_node.admission import SubmissionRequest, admit
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.runtime.base import (
    WorkloadNotFound,
    WorkloadPhase,
    WorkloadRuntime,
)
from services.gpu_node.runtime.images import SSHD_CONTAINER_PORT
from services.gpu_node.store import NodeStore

__all__ = ["SERVICE_NAME", "NodeServicer", "lease_status"]

log = get_logger(__name__)
SERVICE_NAME = node_pb2.DESCRIPTOR.services_by_name["NodeService"].full_name
_PHASES = {
    WorkloadPhase.PENDING: node_pb2.WORKLOAD_STATUS_PENDING,
    WorkloadPhase.RUNNING: node_pb2.WORKLOAD_STATUS_RUNNING,
    WorkloadPhase.FAILED: node_pb2.WORKLOAD_STATUS_FAILED,
    WorkloadPhase.STOPPED: node_pb2.WORKLOAD_STATUS_FAILED,
}


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def lease_status(
    lease_id: int, store: NodeStore, runtime: WorkloadRuntime, public_host: str
) -> node_pb2.GetLeaseStatusResponse:
    """What the node does for a lease: from its store (accepted? ended?) and the runtime."""
    reply = node_pb2.GetLeaseStatusResponse(lease_id=lease_id)
    stored = store.get(lease_id)
    if stored is None:
        reply.status = node_pb2.WORKLOAD_STATUS_UNKNOWN
        reply.message = "no spec accepted for this lease"
        return reply
    if stored.ended:
        reply.status = node_pb2.WORKLOAD_STATUS_TERMINATED
        reply.message = "the lease ended; its workload was removed"
        return reply
    try:
        status = runtime.status(lease_id)
    except WorkloadNotFound:
        reply.status = node_pb2.WORKLOAD_STATUS_PENDING
        reply.message = "accepted; the workload is being created"
        return reply
    reply.status = _PHASES[status.phase]
    reply.message = status.message
    if status.phase is WorkloadPhase.RUNNING and SSHD_CONTAINER_PORT in status.endpoints:
        reply.host = public_host
        reply.ssh_port = _port(status.endpoints[SSHD_CONTAINER_PORT])
        for container_port, endpoint in sorted(status.endpoints.items()):
            if container_port != SSHD_CONTAINER_PORT:
                reply.ports.add(container_port=container_port, host_port=_port(endpoint))
    return reply


class NodeServicer(node_pb2_grpc.NodeServiceServicer):  # type: ignore[misc]  # generated base is untyped
    def __init__(
        self,
        *,
        chain: ChainClient,
        machine_id: bytes,
        start_window: int,
        store: NodeStore,
        runtime: WorkloadRuntime,
        public_host: str,
        metrics: AgentMetrics,
        on_accepted: Callable[[int], None] = lambda lease_id: None,
        gpus_usable: Callable[[], int | None] = lambda: None,
    ) -> None:
        """`gpus_usable` returns the bit mask of GPU slots the node can run now."""
        self._chain = chain
        self._machine_id = machine_id
        self._start_window = start_window
        self._store = store
        self._runtime = runtime
        self._public_host = public_host
        self._metrics = metrics
        self._on_accepted = on_accepted
        self._gpus_usable = gpus_usable

    def _lookup(self, lease_id: int) -> tuple[ChainLease | None, int]:
        # The best block, not the finalized one: the API submits right after create_lease's
        # block, and the lease must be visible then. The plan still waits for finality.
        block = self._chain.block_number()
        head = self._chain.block_hash(block)
        return self._chain.lease(lease_id, head), block

    def _submit(self, request: SubmissionRequest) -> node_pb2.SubmitWorkloadResponse:
        parsed, lease, block = admit(
            request, self._lookup, self._machine_id, self._start_window, self._gpus_usable()
        )
        self._store.accept(lease.lease_id, parsed.document, parsed.digest, lease.customer, block)
        status = lease_status(lease.lease_id, self._store, self._runtime, self._public_host)
        return node_pb2.SubmitWorkloadResponse(
            accepted=True, status=status.status, message="accepted"
        )

    async def SubmitWorkload(
        self,
        request: node_pb2.SubmitWorkloadRequest,
        context: grpc.aio.ServicerContext[
            node_pb2.SubmitWorkloadRequest, node_pb2.SubmitWorkloadResponse
        ],
    ) -> node_pb2.SubmitWorkloadResponse:
        with self._metrics.rpc_seconds.labels("SubmitWorkload").time():
            submission = SubmissionRequest(
                lease_id=request.lease_id,
                spec=request.spec,
                customer=request.customer,
                signature=request.signature,
            )
            try:
                reply = await asyncio.to_thread(self._submit, submission)
            except ChainUnavailable as exc:
                self._metrics.submissions.labels("chain_unavailable").inc()
                await abort_with(context, Unavailable(str(exc), reason="chain_unavailable"))
            except GridleaseError as exc:
                self._metrics.submissions.labels(exc.reason).inc()
                log.info(
                    "node.submission_refused",
                    extra={"lease_id": request.lease_id, "reason": exc.reason},
                )
                await abort_with(context, exc)
            self._metrics.submissions.labels("accepted").inc()
            log.info("node.submission_accepted", extra={"lease_id": request.lease_id})
            self._on_accepted(request.lease_id)
            return reply

    async def GetLeaseStatus(
        self,
        request: node_pb2.GetLeaseStatusRequest,
        context: grpc.aio.ServicerContext[
            node_pb2.GetLeaseStatusRequest, node_pb2.GetLeaseStatusResponse
        ],
    ) -> node_pb2.GetLeaseStatusResponse:
        with self._metrics.rpc_seconds.labels("GetLeaseStatus").time():
            try:
                return await asyncio.to_thread(self._status, request.lease_id)
            except ChainUnavailable as exc:
                await abort_with(context, Unavailable(str(exc), reason="chain_unavailable"))
            raise AssertionError("unreachable")  # abort_with raises

    def _status(self, lease_id: int) -> node_pb2.GetLeaseStatusResponse:
        reply = lease_status(lease_id, self._store, self._runtime, self._public_host)
        if reply.status != node_pb2.WORKLOAD_STATUS_UNKNOWN:
            lease = self._chain.lease(lease_id)
            reply.chain_state = lease.state if lease is not None else ""
        return reply
