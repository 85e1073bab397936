"""NodeService: a thin gRPC servicer over admission (SubmitWorkload), the runtime's view
(GetLeaseStatus) and GPU telemetry (GetLeaseGpus). Blocking work (chain reads, SQLite, podman)
runs in worker threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from services.common import GridleaseError, Unavailable, abort_with, get_logger, now_ms
from services.common._chain import ChainClient, ChainLease, ChainUnavailable
from services.common.grpc_gen.gridlease.v1 import node_pb2, node_pb2_grpc
from services.gpu_node.admission import (
    LeaseReadRequest,
    ReplayGuard,
    SubmissionRequest,
    admit,
    authorize_lease_read,
)
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.runtime.base import (
    WorkloadNotFound,
    WorkloadPhase,
    WorkloadRuntime,
)
from services.gpu_node.runtime.images import SSHD_CONTAINER_PORT
from services.gpu_node.store import NodeStore
from services.gpu_node.telemetry import LeaseGpuView, Sample, TelemetrySampler

__all__ = ["SERVICE_NAME", "NodeServicer", "lease_gpus_reply", "lease_status"]

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


def _sample(into: node_pb2.GpuSample, sample: Sample) -> None:
    into.timestamp_ms = sample.timestamp_ms
    # Unsupported readings stay unset (proto3 optional), which is not the same as 0.
    if sample.utilization_pct is not None:
        into.utilization_pct = sample.utilization_pct
    if sample.memory_used_bytes is not None:
        into.memory_used_bytes = sample.memory_used_bytes
    if sample.temperature_c is not None:
        into.temperature_c = sample.temperature_c
    if sample.power_w is not None:
        into.power_w = sample.power_w


def lease_gpus_reply(
    lease_id: int, gpus: list[LeaseGpuView], telemetry: TelemetrySampler
) -> node_pb2.GetLeaseGpusResponse:
    """The GetLeaseGpusResponse for a lease's GPU views."""
    reply = node_pb2.GetLeaseGpusResponse(
        lease_id=lease_id,
        sample_interval_ms=round(telemetry.interval_s * 1000),
        history_limit=telemetry.history_limit,
    )
    for view in gpus:
        gpu = reply.gpus.add(
            slot=view.slot,
            uuid=view.uuid,
            model=view.model,
            memory_total_bytes=view.memory_total_bytes,
            last_xid=view.last_xid,
            healthy=view.healthy,
            health_reason=view.health_reason,
        )
        if view.current is not None:
            _sample(gpu.current, view.current)
        if view.xid_count is not None:
            gpu.xid_count = view.xid_count
        for sample in view.history:
            _sample(gpu.history.add(), sample)
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
        telemetry: TelemetrySampler | None = None,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        """`gpus_usable` returns the bit mask of GPU slots the node can run now; `telemetry`
        serves GetLeaseGpus (None: answered UNAVAILABLE); `clock_ms` is the clock requests'
        timestamps are checked against."""
        self._chain = chain
        self._machine_id = machine_id
        self._start_window = start_window
        self._store = store
        self._runtime = runtime
        self._public_host = public_host
        self._metrics = metrics
        self._on_accepted = on_accepted
        self._gpus_usable = gpus_usable
        self._telemetry = telemetry
        self._clock_ms = clock_ms
        self._replays = ReplayGuard()

    def _lookup(self, lease_id: int) -> tuple[ChainLease | None, int]:
        # The best block, not the finalized one: the API submits right after create_lease's
        # block, and the lease must be visible then (the plan starts it on the best block too).
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

    async def GetLeaseGpus(
        self,
        request: node_pb2.GetLeaseGpusRequest,
        context: grpc.aio.ServicerContext[
            node_pb2.GetLeaseGpusRequest, node_pb2.GetLeaseGpusResponse
        ],
    ) -> node_pb2.GetLeaseGpusResponse:
        with self._metrics.rpc_seconds.labels("GetLeaseGpus").time():
            read = LeaseReadRequest(
                lease_id=request.lease_id,
                customer=request.customer,
                timestamp_ms=request.timestamp_ms,
                nonce=request.nonce,
                signature=request.signature,
            )
            try:
                return await asyncio.to_thread(self._lease_gpus, read)
            except ChainUnavailable as exc:
                await abort_with(context, Unavailable(str(exc), reason="chain_unavailable"))
            except GridleaseError as exc:
                log.info(
                    "node.lease_gpus_refused",
                    extra={"lease_id": request.lease_id, "reason": exc.reason},
                )
                await abort_with(context, exc)
            raise AssertionError("unreachable")  # abort_with raises

    def _lease_gpus(self, request: LeaseReadRequest) -> node_pb2.GetLeaseGpusResponse:
        if self._telemetry is None:
            raise Unavailable("GPU telemetry is not running", reason="telemetry_off")
        # The best block's state (one read), as for SubmitWorkload: a lease just created shows.
        lease = authorize_lease_read(
            request, self._chain.lease, self._machine_id, self._clock_ms(), self._replays
        )
        # The node's slot table, not the current GPU set: a slot whose board is lost or gone
        # still belongs to the lease, and shows as unhealthy rather than disappearing.
        table = self._store.gpu_slots()
        slots = {slot: table.get(slot, "") for slot in lease.gpu_indexes}
        return lease_gpus_reply(lease.lease_id, self._telemetry.lease_gpus(slots), self._telemetry)
