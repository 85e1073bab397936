"""The chain indexer: reads finalized blocks in order and applies the GPU rental events of this
API's leases to their records. Each block's changes and the cursor move commit together, and
the move is conditional on the cursor not having moved meanwhile, so a restart resumes at the
next block and nothing is applied twice, even with several API replicas on one database.
Ended leases leave chain storage; their end (reason, refund) is known only from these events.

A lease request is matched to its chain lease by the hash of the extrinsic it signed (the
block's extrinsic at the event's index), never by customer, spec or age. Requests nobody
finishes (their API process died) are settled here: their lease recorded, or their row removed
once their extrinsic failed or can no longer be included.

A block the chain does not serve (yet, or any more) is retried on the next pass; only a cursor
block whose hash differs from the chain's (another chain) is an IndexerError."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from services.common import ChainError, ChainUnavailable, ExtrinsicFailed, get_logger
from services.common._chain import PALLET, ChainClient, ChainEvent, Receipt
from services.customer_api import crud
from services.customer_api.models import DeliveryState, LeaseRecord, LeaseState, utcnow

__all__ = [
    "CURSOR",
    "ORPHAN_AFTER",
    "SETTLE_AFTER",
    "BlockUnavailable",
    "Indexer",
    "IndexerError",
    "apply_events",
    "record_receipt",
]

log = get_logger(__name__)
CURSOR = "chain"
# Rows written before requests recorded their extrinsic cannot be matched; they are dropped
# once their request must be long gone.
ORPHAN_AFTER = timedelta(seconds=60)
# A request's own thread normally records its lease within a block or two; the indexer looks
# at rows left without a lease this long.
SETTLE_AFTER = timedelta(seconds=5)
# Tries of one block while another indexer holds the database, before the pass gives up.
_MAX_STALLS = 20


class IndexerError(Exception):
    """The database's cursor names a block the chain holds with another hash (another chain?)."""


class BlockUnavailable(ChainUnavailable):
    """The chain does not serve a block the indexer needs (not yet, or forgotten): retryable."""


def _hex(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value).lower()


def _add(amount: str, delta: Any) -> str:
    return str(int(amount) + int(delta))


def apply_events(
    session: Session,
    block_number: int,
    events: list[ChainEvent],
    extrinsic_hashes: list[str] | None = None,
) -> int:
    """Apply one finalized block's events to the records they concern; returns how many changed.

    `extrinsic_hashes` are the block's extrinsics' hashes in order. A LeaseCreated goes to the
    request that signed the extrinsic at the event's index, whatever lease id its receipt said:
    a receipt comes from the best block, and a fork that abandons that block can give the same
    id to another lease (someone else's, or this request's own extrinsic included again later
    under a new id). A record holding an id only from such a receipt gives it up then, and any
    record whose receipt's block this one has passed without confirming it is a request again
    (see crud.forget_lease_id): a lease made in an abandoned block is never confirmed, paid or
    shown as running."""
    changed = 0
    for event in events:
        if event.module != PALLET or "lease_id" not in event.attributes:
            continue
        attrs = event.attributes
        lease_id = int(attrs["lease_id"])
        if event.name == "LeaseCreated":
            record = _creator(session, lease_id, event, extrinsic_hashes)
        else:
            record = crud.lease_by_chain_id(session=session, lease_id=lease_id)
        if record is None:
            continue
        _apply(record, event.name, attrs, block_number)
        record.updated_at = utcnow()
        session.add(record)
        changed += 1
    for record in crud.unfinalized_created_by(session=session, block_number=block_number):
        log.warning(
            "indexer.lease_abandoned",
            extra={"record": str(record.id), "lease_id": record.lease_id, "block": block_number},
        )
        crud.forget_lease_id(session=session, record=record)
        changed += 1
    return changed


def _creator(
    session: Session, lease_id: int, event: ChainEvent, hashes: list[str] | None
) -> LeaseRecord | None:
    """The record a finalized LeaseCreated belongs to, with the lease id set and confirmed."""
    holder = crud.lease_by_chain_id(session=session, lease_id=lease_id)
    index = event.extrinsic_index
    if holder is not None and holder.created_final:
        return holder  # known from a finalized block already: finalized lease ids are unique
    if hashes is None or index is None or not 0 <= index < len(hashes):
        # Which extrinsic made it is unknown: the record holding the id is all there is.
        if holder is not None:
            holder.created_final = True
        return holder
    signer = crud.lease_by_extrinsic_hash(session=session, extrinsic_hash=hashes[index])
    if holder is not None and holder is not signer:
        crud.forget_lease_id(session=session, record=holder)
    if signer is None:
        return None
    if signer.lease_id != lease_id:
        # No receipt yet, or one from an abandoned block that named another id.
        if signer.lease_id is not None:
            signer.delivery_state = DeliveryState.PENDING  # delivered under the wrong id
        signer.lease_id = lease_id
    signer.created_final = True
    return signer


def _apply(record: LeaseRecord, name: str, attrs: dict[str, Any], block: int) -> None:
    if name == "LeaseCreated":
        if record.chain_state == LeaseState.SUBMITTING:
            record.chain_state = LeaseState.PENDING
        record.created_block = block
        record.price_per_gpu_block = str(attrs["price_per_gpu_block"])
        record.escrow = str(attrs["escrow"])
        record.duration_blocks = int(attrs["duration"])
    elif name == "LeaseStarted":
        record.chain_state = LeaseState.RUNNING
        record.started_block = block
        record.ends_at_block = int(attrs["ends_at"])
    elif name == "LeaseExtended":
        record.duration_blocks = int(attrs["duration"])
        record.escrow = _add(record.escrow, attrs["added_escrow"])
        if record.started_block is not None:
            record.ends_at_block = record.started_block + record.duration_blocks
    elif name == "PaymentClaimed":
        charged = int(attrs["paid"]) + int(attrs["fee"])
        record.spent = _add(record.spent, charged)
        record.escrow = str(max(int(record.escrow) - charged, 0))
    elif name == "LeaseEnded":
        record.chain_state = LeaseState.ENDED
        record.end_reason = str(attrs["reason"])
        record.refunded = str(attrs["refunded"])
        record.ended_block = block
        record.escrow = "0"
        if record.delivery_state == DeliveryState.PENDING:
            record.delivery_state = DeliveryState.ABANDONED
    elif name == "DowntimeCompensated":
        record.compensation = _add(record.compensation, attrs["amount"])
    elif name == "LeaseHealthChanged":
        record.unhealthy_since_block = None if attrs["healthy"] else block


class Indexer:
    """Brings the records up to a finalized block. Safe to call from several threads and from
    several processes on one database."""

    def __init__(
        self,
        engine: Engine,
        chain: ChainClient,
        *,
        start_block: int | None = None,
        on_block: Callable[[int], None] | None = None,
        on_head: Callable[[int], None] | None = None,
        on_best: Callable[[int], None] | None = None,
        on_payment: Callable[[int, int], None] | None = None,
    ) -> None:
        """Observers (metrics): `on_block(n)` the cursor (after each block, and where a pass
        found it), `on_head(n)` the finalized head and `on_best(n)` the best one at each pass,
        `on_payment(paid, fee)` each PaymentClaimed of a block this indexer committed."""
        self.engine = engine
        self.chain = chain
        self.start_block = start_block
        self.on_block = on_block
        self.on_head = on_head
        self.on_best = on_best
        self.on_payment = on_payment
        self._lock = threading.Lock()

    def finalized_number(self) -> int:
        return self.chain.block_number(self.chain.finalized_head())

    def cursor(self) -> int | None:
        with Session(self.engine) as session:
            found = crud.get_cursor(session=session, name=CURSOR)
            return None if found is None else found.block_number

    def run_once(self) -> int:
        """One pass of the background loop: index up to the finalized head, then settle lease
        requests nobody finished. Returns the cursor."""
        if self.on_best is not None:
            self.on_best(self.chain.block_number())
        cursor = self.sync()
        self.settle_submissions()
        return cursor

    def sync(self, target: int | None = None, *, wait_s: float | None = None) -> int:
        """Index every finalized block up to target (default: the finalized head); returns the
        cursor afterwards. With `wait_s`, waits at most that long for a sync running in another
        thread and then returns the cursor as it is. Raises BlockUnavailable (retry later) when
        the chain does not serve a block."""
        if not self._lock.acquire(timeout=-1 if wait_s is None else wait_s):
            return self.cursor() or 0
        try:
            head = self.finalized_number()
            if self.on_head is not None:
                self.on_head(head)
            last = self._resume(head)
            self._at(last)
            end = head if target is None else min(target, head)
            stalls = 0
            while last < end:
                if self._index(last + 1, last):
                    last, stalls = last + 1, 0
                    continue
                # Another replica indexed it first (go on from where it is), or is writing.
                moved = self.cursor() or last
                if moved > last:
                    last, stalls = moved, 0
                    self._at(last)
                    continue
                stalls += 1
                if stalls >= _MAX_STALLS:
                    raise IndexerError(f"cursor stuck at {last}: the database stays busy")
                time.sleep(0.05 * stalls)
            return last
        finally:
            self._lock.release()

    def _resume(self, head: int) -> int:
        with Session(self.engine) as session:
            cursor = crud.get_cursor(session=session, name=CURSOR)
            if cursor is not None:
                on_chain = self.chain.block_hash(cursor.block_number)
                if on_chain is None:
                    raise BlockUnavailable(f"chain does not serve block {cursor.block_number}")
                if on_chain != cursor.block_hash:
                    raise IndexerError(
                        f"block {cursor.block_number} on chain is not the one indexed"
                    )
                return cursor.block_number
            first = head + 1 if self.start_block is None else self.start_block
            number = max(first - 1, 0)
            block_hash = self.chain.block_hash(number)
            if block_hash is None:
                raise BlockUnavailable(f"chain does not serve block {number}")
            crud.set_cursor(
                session=session, name=CURSOR, block_number=number, block_hash=block_hash
            )
            try:
                session.commit()
            except IntegrityError:  # a replica created the cursor first
                session.rollback()
                found = crud.get_cursor(session=session, name=CURSOR)
                if found is None:
                    raise
                return found.block_number
            log.info("indexer.start", extra={"block": number})
            return number

    def _index(self, number: int, previous: int) -> bool:
        """Applies block `number` and moves the cursor from `previous`; False (nothing
        applied) when another indexer moved the cursor first."""
        block_hash = self.chain.block_hash(number)
        if block_hash is None:
            raise BlockUnavailable(f"chain does not serve block {number}")
        try:
            events = self.chain.events(block_hash)
        except ChainUnavailable:
            raise
        except ChainError as exc:
            raise BlockUnavailable(f"events of block {number}: {exc}") from exc
        # Read from the chain before the transaction: no database lock waits on the chain.
        created = any(e.module == PALLET and e.name == "LeaseCreated" for e in events)
        hashes = self._extrinsic_hashes(block_hash) if created else None
        with Session(self.engine) as session:
            try:
                apply_events(session, number, events, hashes)
                moved = crud.move_cursor(
                    session=session,
                    name=CURSOR,
                    expected=previous,
                    block_number=number,
                    block_hash=block_hash,
                )
                if not moved:
                    session.rollback()
                    return False
                session.commit()
            except OperationalError:
                # SQLite: another indexer wrote since this transaction began. Nothing of
                # this one is kept; the caller looks at the cursor again.
                session.rollback()
                return False
        self._at(number)
        if self.on_payment is not None:
            for event in events:
                if event.module == PALLET and event.name == "PaymentClaimed":
                    self.on_payment(int(event.attributes["paid"]), int(event.attributes["fee"]))
        return True

    def _at(self, number: int) -> None:
        if self.on_block is not None:
            self.on_block(number)

    def _extrinsic_hashes(self, block_hash: str) -> list[str]:
        found = self.chain.extrinsic_hashes(block_hash)
        if found is None:
            raise BlockUnavailable(f"chain does not serve block {block_hash}")
        return found

    # -- requests nobody finished ------------------------------------------------------------------
    def settle_submissions(self) -> int:
        """Settles lease requests left without a lease (their request died or gave up): the
        lease their extrinsic made is recorded; a row whose extrinsic failed, or can no longer
        be included, is removed. Returns how many rows changed."""
        with Session(self.engine, expire_on_commit=False) as session:
            rows = crud.submitting_leases(session=session, updated_before=utcnow() - SETTLE_AFTER)
            session.commit()
            changed = 0
            for row in rows:
                changed += self._settle(session, row)
            return changed

    def _settle(self, session: Session, row: LeaseRecord) -> int:
        signed = crud.submission_of(row)
        if signed is None:
            if row.created_at.replace(tzinfo=None) < (utcnow() - ORPHAN_AFTER).replace(tzinfo=None):
                log.warning("indexer.orphan_dropped", extra={"record": str(row.id)})
                return int(
                    crud.delete_submission(session=session, record_id=row.id, extrinsic_hash=None)
                )
            return 0
        status = self.chain.status(signed)
        if status.receipt is not None:
            record_receipt(session, row, status.receipt, final=True)  # status() reads finalized
            return 1
        if status.failure is not None or status.dead:
            reason: ExtrinsicFailed | str = status.failure or "dead"
            log.info(
                "indexer.submission_settled",
                extra={"extrinsic": signed.extrinsic_hash, "outcome": str(reason)[:200]},
            )
            return int(
                crud.delete_submission(
                    session=session, record_id=row.id, extrinsic_hash=signed.extrinsic_hash
                )
            )
        # In the pool, or not seen yet: look again after SETTLE_AFTER (its era bounds the wait).
        crud.touch_submission(session=session, record_id=row.id)
        return 0


def record_receipt(
    session: Session, record: LeaseRecord, receipt: Receipt, *, final: bool
) -> LeaseRecord:
    """The request's record as the chain's lease that receipt (of its create_lease) made; `final`
    when the receipt's block is finalized, else the indexer confirms or takes it back later."""
    created = receipt.one(PALLET, "LeaseCreated")
    return crud.record_created(
        session=session,
        record_id=record.id,
        lease_id=int(created["lease_id"]),
        block_number=receipt.block_number,
        price_per_gpu_block=int(created["price_per_gpu_block"]),
        escrow=int(created["escrow"]),
        duration_blocks=int(created["duration"]),
        final=final,
    )
