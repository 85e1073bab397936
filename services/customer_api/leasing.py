"""Making and changing leases: validate, hash the spec, let the chain decide, record what it
decided, hand the spec to the node. A lease the chain refuses is never recorded; a node that
does not answer leaves the delivery pending for the background retry.

A lease request is tied to the one extrinsic it signed. Its row is written (SUBMITTING) with
the extrinsic's hash, nonce and bytes before anything is sent; whatever happens next (the API
killed, the connection lost, a timeout) the row names what may have reached the chain. A
retry with the same Idempotency-Key asks the chain what became of that extrinsic: included
(its own lease), failed or dead (nothing leased: the row goes and the retry starts afresh), in
the pool (409 in progress), or never seen (the same bytes are sent again, which cannot pay
twice). The indexer settles rows nobody retries the same way. No request holds a database
connection while it waits on the chain or a node."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from substrateinterface import Keypair

from services.common import (
    ChainError,
    ExtrinsicFailed,
    ExtrinsicRejected,
    SubmitOutcomeUnknown,
    blake2b_256,
    canonical_json,
    get_logger,
    hex0x,
    spec_hash,
)
from services.common._chain import PALLET, Receipt, SignedExtrinsic, SubmissionStatus
from services.common.grpc_gen.gridlease.v1 import node_pb2
from services.customer_api import crud
from services.customer_api.chain import ChainGateway
from services.customer_api.core.security import Custody
from services.customer_api.errors import (
    CHAIN_RETRY_AFTER_S,
    ApiError,
    chain_unavailable,
    from_chain_error,
    from_extrinsic_failed,
)
from services.customer_api.indexer import ORPHAN_AFTER, Indexer, IndexerError, record_receipt
from services.customer_api.models import (
    Connection,
    Customer,
    Delivery,
    DeliveryState,
    GpuSamplePublic,
    LeaseCreate,
    LeaseGpuPublic,
    LeaseGpusPublic,
    LeasePublic,
    LeaseRecord,
    LeaseState,
    PortMapping,
    utcnow,
)
from services.customer_api.node_client import (
    NodeClient,
    NodeLeaseUnknown,
    NodeRejected,
    NodeUnreachable,
    signed_lease_gpus_request,
    signed_submission,
)
from services.customer_api.offers.index import OfferIndex

__all__ = ["Leasing", "chain_unavailable", "deliver", "lease_gpus_public", "request_hash"]

log = get_logger(__name__)


def request_hash(body: LeaseCreate) -> str:
    """What an idempotent retry must repeat exactly."""
    return blake2b_256(canonical_json(body.model_dump(mode="json"))).hex()


def in_progress() -> ApiError:
    return ApiError(
        409,
        "Lease creation in progress",
        "SubmissionPending",
        headers={"Retry-After": str(CHAIN_RETRY_AFTER_S)},
    )


def deliver(session: Session, record: LeaseRecord, keypair: Keypair, nodes: NodeClient) -> None:
    """Try once to hand the record's spec to its node; records the outcome. The node is asked
    outside any transaction (no pooled connection waits on it)."""
    assert record.lease_id is not None
    session.commit()
    spec = json.loads(record.spec_json)
    record.delivery_attempts += 1
    try:
        nodes.submit(record.endpoint, signed_submission(record.lease_id, spec, keypair))
    except NodeUnreachable as exc:
        record.delivery_error = str(exc)[:500]
    except NodeRejected as exc:
        record.delivery_state = DeliveryState.REJECTED
        record.delivery_error = str(exc)[:500]
    else:
        record.delivery_state = DeliveryState.DELIVERED
        record.delivery_error = None
    record.updated_at = utcnow()
    session.add(record)
    session.commit()


class _KeyTaken(Exception):
    """Another request holds this Idempotency-Key (its row was written first)."""


@dataclass
class Leasing:
    """The lease operations of one request: its session and customer, and the shared parts."""

    session: Session
    customer: Customer
    chain: ChainGateway
    custody: Custody
    offers: OfferIndex
    nodes: NodeClient
    indexer: Indexer

    def _keypair(self) -> Keypair:
        keypair = crud.customer_keypair(
            session=self.session, customer_id=self.customer.id, custody=self.custody
        )
        self._end_transaction()
        return keypair

    def _end_transaction(self) -> None:
        """Returns the request's connection to the pool before it waits on the chain (the
        session does not expire objects on commit, so records stay readable)."""
        self.session.commit()

    # -- create -----------------------------------------------------------------------------------
    def create(self, body: LeaseCreate, idempotency_key: str | None) -> tuple[LeaseRecord, bool]:
        """The lease for body; (record, True) when made now, (record, False) on a replay."""
        digest = request_hash(body)
        if idempotency_key is not None:
            existing = crud.lease_by_idempotency_key(
                session=self.session, customer=self.customer, idempotency_key=idempotency_key
            )
            if existing is not None:
                settled = self._settle(existing, digest)
                if settled is not None:
                    return settled, False
        machine_id = bytes.fromhex(body.machine_id[2:])
        held = self.offers.get(machine_id)
        if held is None:
            raise ApiError(404, "Offer not found")
        spec = body.spec()
        keypair = self._keypair()
        try:
            if body.max_price_per_gpu_block is not None:
                max_price = int(body.max_price_per_gpu_block)
            else:
                machine = self.chain.reader.machine(machine_id)
                if machine is None:
                    raise ApiError(404, "Machine not registered on chain", "MachineNotFound")
                max_price = machine.price_per_gpu_block
        except ChainError as exc:
            raise from_chain_error(exc) from exc
        rows: list[LeaseRecord] = []

        sent: list[SignedExtrinsic] = []

        def on_signed(signed: SignedExtrinsic) -> None:
            # Written before sending, so whatever follows, the row names its extrinsic.
            sent[:] = [signed]
            if rows:  # signed again after losing a nonce race
                if crud.set_submission(session=self.session, record_id=rows[0].id, signed=signed):
                    return
                rows.clear()  # removed meanwhile (its first extrinsic was dead): write anew
            try:
                rows.append(
                    crud.reserve_lease(
                        session=self.session,
                        customer=self.customer,
                        idempotency_key=idempotency_key,
                        request_hash=digest,
                        machine_id=body.machine_id,
                        endpoint=held[0].endpoint,
                        gpus=body.gpus,
                        duration_blocks=body.duration_blocks,
                        spec=spec,
                        spec_hash=hex0x(spec_hash(spec)),
                        signed=signed,
                    )
                )
            except IntegrityError:
                self.session.rollback()
                raise _KeyTaken from None

        params = {
            "machine_id": body.machine_id,
            "gpus": body.gpus,
            "duration": body.duration_blocks,
            "max_price_per_gpu_block": max_price,
            "spec_hash": hex0x(spec_hash(spec)),
        }
        try:
            receipt = self.chain.submit(
                keypair, PALLET, "create_lease", params, on_signed=on_signed
            )
        except _KeyTaken:
            # A concurrent request with the same key wrote its row first: answer as a retry.
            assert idempotency_key is not None
            existing = crud.lease_by_idempotency_key(
                session=self.session, customer=self.customer, idempotency_key=idempotency_key
            )
            settled = None if existing is None else self._settle(existing, digest)
            if settled is None:
                raise in_progress() from None
            return settled, False
        except SubmitOutcomeUnknown as exc:
            # Sent, then the answer was lost. The row keeps its extrinsic: a retry with the
            # same key (or the indexer) finds out what became of it; nothing can pay twice.
            log.warning(
                "lease.submit_unknown",
                extra={"extrinsic": exc.extrinsic_hash, "customer": self.customer.address},
            )
            raise ApiError(
                503, "Chain did not confirm the lease in time", "SubmitOutcomeUnknown"
            ) from exc
        except ChainError as exc:
            # Refused, failed, or never sent: nothing was leased and nothing will be.
            if rows:
                crud.delete_submission(
                    session=self.session,
                    record_id=rows[0].id,
                    extrinsic_hash=sent[0].extrinsic_hash if sent else None,
                )
            raise from_chain_error(exc) from exc
        # The receipt's block is the best one: the workload may start now (the node checks the
        # lease at its best block too); the indexer confirms the lease from finalized blocks.
        record = record_receipt(self.session, rows[0], receipt, final=False)
        deliver(self.session, record, keypair, self.nodes)
        return record, True

    def _settle(self, existing: LeaseRecord, digest: str) -> LeaseRecord | None:
        """The earlier request with this Idempotency-Key: its lease, or None when it did not
        and cannot reach the chain (its row is gone: the caller creates afresh). Raises the
        chain's refusal if its extrinsic failed, 409 while it waits in the pool."""
        if existing.request_hash != digest:
            raise ApiError(409, "Idempotency key reused with a different request")
        if existing.lease_id is not None:
            return existing
        signed = crud.submission_of(existing)
        self._end_transaction()
        if signed is None:
            # A row from before requests recorded their extrinsic: the indexer has adopted it
            # by now if it was ever going to.
            if existing.created_at.replace(tzinfo=None) < (utcnow() - ORPHAN_AFTER).replace(
                tzinfo=None
            ):
                crud.delete_submission(
                    session=self.session, record_id=existing.id, extrinsic_hash=None
                )
                return None
            raise in_progress()
        try:
            status, resent = self._status(signed)
        except ChainError as exc:
            raise from_chain_error(exc) from exc
        if status.receipt is not None:
            # status() finds receipts in finalized blocks; a resend's is at the best block.
            return record_receipt(self.session, existing, status.receipt, final=not resent)
        if status.failure is not None or status.dead:
            crud.delete_submission(
                session=self.session, record_id=existing.id, extrinsic_hash=signed.extrinsic_hash
            )
            if status.failure is not None:
                raise from_extrinsic_failed(status.failure)
            log.info("lease.submission_dead", extra={"extrinsic": signed.extrinsic_hash})
            return None
        raise in_progress()

    def _status(self, signed: SignedExtrinsic) -> tuple[SubmissionStatus, bool]:
        """Where signed stands, and whether it was sent again now: one never seen (its request
        died before or while sending) is sent again, byte for byte."""
        status = self.chain.reader.status(signed)
        if status.receipt or status.failure or status.pending or status.dead:
            return status, False
        try:
            return SubmissionStatus(receipt=self.chain.resend(signed)), True
        except ExtrinsicRejected as rejection:
            if rejection.name in ("AlreadyImported", "Future"):
                return SubmissionStatus(pending=True), True
            if rejection.name == "Stale":  # its nonce went meanwhile: to it, or to another
                return self.chain.reader.status(signed), False
            if rejection.name == "AncientBirthBlock":
                return SubmissionStatus(dead=True), True
            return SubmissionStatus(failure=rejection), True
        except ExtrinsicFailed as failure:
            return SubmissionStatus(failure=failure), True

    # -- changes ----------------------------------------------------------------------------------
    def _call(self, function: str, **params: object) -> Receipt:
        keypair = self._keypair()
        try:
            return self.chain.submit(keypair, PALLET, function, dict(params))
        except ChainError as exc:
            raise from_chain_error(exc) from exc

    def _change(self, record: LeaseRecord, function: str, **params: object) -> LeaseRecord:
        if record.chain_state == LeaseState.ENDED:
            raise ApiError(409, "Lease already ended")
        receipt = self._call(function, lease_id=record.lease_id, **params)
        self._sync(receipt.block_number)
        self.session.refresh(record)
        return record

    def _sync(self, target: int | None = None) -> None:
        """Catch the index up (best effort: the record is served as it is if it cannot)."""
        try:
            self.indexer.sync(target, wait_s=self.chain.timeout_s)
        except (ChainError, IndexerError) as exc:
            log.info("lease.index_behind", extra={"error": repr(exc)[:300]})

    def extend(self, record: LeaseRecord, extra_blocks: int) -> LeaseRecord:
        return self._change(record, "extend_lease", extra_blocks=extra_blocks)

    def terminate(self, record: LeaseRecord) -> LeaseRecord:
        return self._change(record, "terminate_lease")

    def report_downtime(self, record: LeaseRecord) -> LeaseRecord:
        """The machine stopped heartbeating, or the lease's GPUs stayed unhealthy past the chain's
        grace: end the lease as failed, refund, compensate."""
        return self._change(record, "report_downtime")

    def cancel(self, record: LeaseRecord) -> LeaseRecord:
        if record.chain_state == LeaseState.RUNNING:
            raise ApiError(409, "Lease already started", "LeaseAlreadyStarted")
        return self._change(record, "cancel_lease")

    # -- reading ----------------------------------------------------------------------------------
    def refresh(self, record: LeaseRecord) -> LeaseRecord:
        """Catch the index up with the chain (best effort: the index is served if it cannot)."""
        if record.chain_state != LeaseState.ENDED:
            self._end_transaction()
            self._sync()
            self.session.refresh(record)
        return record

    def public(self, record: LeaseRecord, *, with_connection: bool = False) -> LeasePublic:
        self._end_transaction()
        return to_public(record, self.nodes if with_connection else None)

    def gpus(self, record: LeaseRecord) -> LeaseGpusPublic:
        """The lease's GPUs from its node, asked in the customer's name (the node answers only
        the lease's customer). 409 once the lease ended or when the node does not see it, 503
        when the node does not answer, 502 when it refuses otherwise."""
        assert record.lease_id is not None
        if record.chain_state == LeaseState.ENDED:
            raise ApiError(409, "Lease not running", "LeaseEnded")
        request = signed_lease_gpus_request(record.lease_id, self._keypair())
        try:
            reply = self.nodes.lease_gpus(record.endpoint, request)
        except NodeUnreachable as exc:
            raise ApiError(503, "Node unreachable", "NodeUnreachable") from exc
        except NodeLeaseUnknown as exc:  # ended on chain before the index saw it
            raise ApiError(409, "Lease not running", "LeaseNotOnNode") from exc
        except NodeRejected as exc:
            log.warning(
                "lease.gpus_refused", extra={"lease_id": record.lease_id, "error": str(exc)[:300]}
            )
            raise ApiError(502, "Node refused the request", "NodeRefused") from exc
        return lease_gpus_public(reply)


def _sample(sample: node_pb2.GpuSample) -> GpuSamplePublic:
    return GpuSamplePublic(
        timestamp_ms=sample.timestamp_ms,
        utilization_pct=(sample.utilization_pct if sample.HasField("utilization_pct") else None),
        memory_used_bytes=(
            sample.memory_used_bytes if sample.HasField("memory_used_bytes") else None
        ),
        temperature_c=sample.temperature_c if sample.HasField("temperature_c") else None,
        power_w=sample.power_w if sample.HasField("power_w") else None,
    )


def lease_gpus_public(reply: node_pb2.GetLeaseGpusResponse) -> LeaseGpusPublic:
    """The API's shape of a node's GetLeaseGpusResponse (unset readings become null)."""
    return LeaseGpusPublic(
        lease_id=reply.lease_id,
        sample_interval_ms=reply.sample_interval_ms,
        history_limit=reply.history_limit,
        gpus=[
            LeaseGpuPublic(
                slot=gpu.slot,
                uuid=gpu.uuid,
                model=gpu.model,
                memory_total_bytes=gpu.memory_total_bytes,
                current=_sample(gpu.current) if gpu.HasField("current") else None,
                xid_count=gpu.xid_count if gpu.HasField("xid_count") else None,
                last_xid=gpu.last_xid,
                healthy=gpu.healthy,
                health_reason=gpu.health_reason,
                history=[_sample(sample) for sample in gpu.history],
            )
            for gpu in reply.gpus
        ],
    )


def lease_state(record: LeaseRecord) -> LeaseState:
    if record.chain_state == LeaseState.PENDING and (
        record.delivery_state == DeliveryState.DELIVERED
    ):
        return LeaseState.STARTING
    return LeaseState(record.chain_state)


def to_public(record: LeaseRecord, nodes: NodeClient | None = None) -> LeasePublic:
    assert record.lease_id is not None
    state = lease_state(record)
    connection = None
    # Asked while starting too: the node says why a workload waits (e.g. the scheduler's
    # "Insufficient nvidia.com/gpu"), which is the customer's only view of it.
    if nodes is not None and state in (LeaseState.RUNNING, LeaseState.STARTING):
        try:
            status = nodes.status(record.endpoint, record.lease_id)
            connection = Connection(
                status=status.status,
                message=status.message,
                host=status.host,
                ssh_port=status.ssh_port,
                ports=[PortMapping(container_port=c, host_port=h) for c, h in status.ports],
            )
        except NodeUnreachable:
            connection = Connection(status="unreachable")
    return LeasePublic(
        lease_id=record.lease_id,
        machine_id=record.machine_id,
        state=state,
        end_reason=record.end_reason,
        gpus=record.gpus,
        duration_blocks=record.duration_blocks,
        price_per_gpu_block=record.price_per_gpu_block,
        escrow=record.escrow,
        spent=record.spent,
        refunded=record.refunded,
        compensation=record.compensation,
        spec_hash=record.spec_hash,
        spec=json.loads(record.spec_json),
        created_block=record.created_block,
        created_final=record.created_final,
        started_block=record.started_block,
        ends_at_block=record.ends_at_block,
        ended_block=record.ended_block,
        unhealthy_since_block=record.unhealthy_since_block,
        delivery=Delivery(
            state=DeliveryState(record.delivery_state),
            attempts=record.delivery_attempts,
            error=record.delivery_error,
        ),
        connection=connection,
    )
