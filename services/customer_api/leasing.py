"""Making and changing leases: validate, hash the spec, let the chain decide, record what it
decided, hand the spec to the node. A lease the chain refuses is never recorded; a node that
does not answer leaves the delivery pending for the background retry."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from substrateinterface import Keypair

from services.common import blake2b_256, canonical_json, hex0x, spec_hash
from services.common._chain import ChainUnavailable, ExtrinsicFailed, Receipt
from services.customer_api import crud
from services.customer_api.chain import ChainGateway
from services.customer_api.core.security import Custody
from services.customer_api.errors import ApiError, from_extrinsic_failed
from services.customer_api.indexer import Indexer
from services.customer_api.models import (
    Connection,
    Customer,
    Delivery,
    DeliveryState,
    LeaseCreate,
    LeasePublic,
    LeaseRecord,
    LeaseState,
    PortMapping,
    utcnow,
)
from services.customer_api.node_client import (
    NodeClient,
    NodeRejected,
    NodeUnreachable,
    signed_submission,
)
from services.customer_api.offers.index import OfferIndex

__all__ = ["Leasing", "deliver", "request_hash"]


def chain_unavailable() -> ApiError:
    return ApiError(503, "Chain unavailable")


def request_hash(body: LeaseCreate) -> str:
    """What an idempotent retry must repeat exactly."""
    return blake2b_256(canonical_json(body.model_dump(mode="json"))).hex()


def deliver(session: Session, record: LeaseRecord, keypair: Keypair, nodes: NodeClient) -> None:
    """Try once to hand the record's spec to its node; records the outcome."""
    assert record.lease_id is not None
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
    session.refresh(record)


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
        return crud.customer_keypair(
            session=self.session, customer_id=self.customer.id, custody=self.custody
        )

    def _call(self, function: str, **params: object) -> Receipt:
        writer = self.chain.writer_for(self.customer.address)
        try:
            return writer.gpu_rental(self._keypair(), function, **params)
        except ExtrinsicFailed as exc:
            raise from_extrinsic_failed(exc) from exc
        except ChainUnavailable as exc:
            raise chain_unavailable() from exc

    # -- create -----------------------------------------------------------------------------------
    def create(self, body: LeaseCreate, idempotency_key: str | None) -> tuple[LeaseRecord, bool]:
        """The lease for body; (record, True) when made now, (record, False) on a replay."""
        digest = request_hash(body)
        if idempotency_key is not None:
            existing = crud.lease_by_idempotency_key(
                session=self.session, customer=self.customer, idempotency_key=idempotency_key
            )
            if existing is not None:
                return self._replay(existing, digest), False
        machine_id = bytes.fromhex(body.machine_id[2:])
        held = self.offers.get(machine_id)
        if held is None:
            raise ApiError(404, "Offer not found")
        spec = body.spec()
        writer = self.chain.writer_for(self.customer.address)
        try:
            if body.max_price_per_gpu_block is not None:
                max_price = int(body.max_price_per_gpu_block)
                writer.block_number()  # connected before anything is reserved
            else:
                machine = writer.machine(machine_id)
                if machine is None:
                    raise ApiError(404, "Machine not registered on chain", "MachineNotFound")
                max_price = machine.price_per_gpu_block
        except ChainUnavailable as exc:
            raise chain_unavailable() from exc
        try:
            record = crud.reserve_lease(
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
            )
        except IntegrityError:
            # A concurrent request with the same key reserved first.
            self.session.rollback()
            assert idempotency_key is not None
            existing = crud.lease_by_idempotency_key(
                session=self.session, customer=self.customer, idempotency_key=idempotency_key
            )
            assert existing is not None
            return self._replay(existing, digest), False
        try:
            receipt = writer.gpu_rental(
                self._keypair(),
                "create_lease",
                machine_id=body.machine_id,
                gpus=body.gpus,
                duration=body.duration_blocks,
                max_price_per_gpu_block=max_price,
                spec_hash=record.spec_hash,
            )
        except ExtrinsicFailed as exc:
            # The chain refused: nothing was paid, nothing is kept.
            crud.delete_lease_record(session=self.session, record=record)
            raise from_extrinsic_failed(exc) from exc
        except ChainUnavailable as exc:
            # Lost mid-call: it may still be included. The row stays SUBMITTING so a retry
            # cannot pay twice; the indexer adopts it if the lease appears on chain.
            raise chain_unavailable() from exc
        created = receipt.one("GpuRental", "LeaseCreated")
        record.lease_id = int(created["lease_id"])
        record.chain_state = LeaseState.PENDING
        record.created_block = receipt.block_number
        record.price_per_gpu_block = str(created["price_per_gpu_block"])
        record.escrow = str(created["escrow"])
        self.session.add(record)
        self.session.commit()
        self.session.refresh(record)
        deliver(self.session, record, self._keypair(), self.nodes)
        return record, True

    def _replay(self, existing: LeaseRecord, digest: str) -> LeaseRecord:
        if existing.request_hash != digest:
            raise ApiError(409, "Idempotency key reused with a different request")
        if existing.lease_id is None:
            raise ApiError(409, "Lease creation in progress")
        return existing

    # -- changes ----------------------------------------------------------------------------------
    def _change(self, record: LeaseRecord, function: str, **params: object) -> LeaseRecord:
        if record.chain_state == LeaseState.ENDED:
            raise ApiError(409, "Lease already ended")
        receipt = self._call(function, lease_id=record.lease_id, **params)
        self.indexer.sync(receipt.block_number)
        self.session.refresh(record)
        return record

    def extend(self, record: LeaseRecord, extra_blocks: int) -> LeaseRecord:
        return self._change(record, "extend_lease", extra_blocks=extra_blocks)

    def terminate(self, record: LeaseRecord) -> LeaseRecord:
        return self._change(record, "terminate_lease")

    def report_downtime(self, record: LeaseRecord) -> LeaseRecord:
        """The machine stopped heartbeating: end the lease as failed, refund, compensate."""
        return self._change(record, "report_downtime")

    def cancel(self, record: LeaseRecord) -> LeaseRecord:
        if record.chain_state == LeaseState.RUNNING:
            raise ApiError(409, "Lease already started", "LeaseAlreadyStarted")
        return self._change(record, "cancel_lease")

    # -- reading ----------------------------------------------------------------------------------
    def refresh(self, record: LeaseRecord) -> LeaseRecord:
        """Catch the index up with the chain (best effort: the index is served if it cannot)."""
        if record.chain_state != LeaseState.ENDED:
            try:
                self.indexer.sync()
            except ChainUnavailable:
                return record
            self.session.refresh(record)
        return record

    def public(self, record: LeaseRecord, *, with_connection: bool = False) -> LeasePublic:
        return to_public(record, self.nodes if with_connection else None)


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
    if nodes is not None and state == LeaseState.RUNNING:
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
        started_block=record.started_block,
        ends_at_block=record.ends_at_block,
        ended_block=record.ended_block,
        delivery=Delivery(
            state=DeliveryState(record.delivery_state),
            attempts=record.delivery_attempts,
            error=record.delivery_error,
        ),
        connection=connection,
    )
