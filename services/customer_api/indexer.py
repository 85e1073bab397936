"""The chain indexer: reads finalized blocks in order and applies the GPU rental events of this
API's leases to their records. Each block's changes and the cursor move commit together, so a
restart resumes at the next block and nothing is applied twice. Ended leases leave chain storage;
their end (reason, refund) is known only from these events."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.common import get_logger
from services.common._chain import PALLET, ChainClient, ChainEvent
from services.customer_api import crud
from services.customer_api.models import DeliveryState, LeaseRecord, LeaseState, utcnow

__all__ = ["CURSOR", "Indexer", "IndexerError", "apply_events"]

log = get_logger(__name__)
CURSOR = "chain"
# A SUBMITTING row is adopted by a LeaseCreated event only once its own request must be gone
# (crashed between inclusion and recording); younger rows are finished by their request.
ORPHAN_AFTER = timedelta(seconds=60)


class IndexerError(Exception):
    """The database's cursor names a block the chain does not have (another chain?)."""


def _hex(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value).lower()


def _add(amount: str, delta: Any) -> str:
    return str(int(amount) + int(delta))


def _adopt(session: Session, attrs: dict[str, Any]) -> LeaseRecord | None:
    return session.exec(
        select(LeaseRecord)
        .where(
            LeaseRecord.chain_state == LeaseState.SUBMITTING,
            LeaseRecord.customer_address == attrs["customer"],
            LeaseRecord.spec_hash == _hex(attrs["spec_hash"]),
            col(LeaseRecord.created_at) < utcnow() - ORPHAN_AFTER,
        )
        .order_by(col(LeaseRecord.created_at))
    ).first()


def apply_events(session: Session, block_number: int, events: list[ChainEvent]) -> int:
    """Apply one block's events to the records they concern; returns how many changed."""
    changed = 0
    for event in events:
        if event.module != PALLET or "lease_id" not in event.attributes:
            continue
        attrs = event.attributes
        lease_id = int(attrs["lease_id"])
        record = crud.lease_by_chain_id(session=session, lease_id=lease_id)
        if record is None and event.name == "LeaseCreated":
            record = _adopt(session, attrs)
            if record is not None:
                record.lease_id = lease_id
        if record is None:
            continue
        _apply(record, event.name, attrs, block_number)
        record.updated_at = utcnow()
        session.add(record)
        changed += 1
    return changed


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


class Indexer:
    """Brings the records up to a finalized block. Safe to call from several threads."""

    def __init__(
        self,
        engine: Engine,
        chain: ChainClient,
        *,
        start_block: int | None = None,
        on_block: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.chain = chain
        self.start_block = start_block
        self.on_block = on_block
        self._lock = threading.Lock()

    def finalized_number(self) -> int:
        return self.chain.block_number(self.chain.finalized_head())

    def cursor(self) -> int | None:
        with Session(self.engine) as session:
            found = crud.get_cursor(session=session, name=CURSOR)
            return None if found is None else found.block_number

    def sync(self, target: int | None = None) -> int:
        """Index every finalized block up to target (default: the finalized head); returns the
        cursor afterwards."""
        with self._lock:
            head = self.finalized_number()
            last = self._resume(head)
            end = head if target is None else min(target, head)
            for number in range(last + 1, end + 1):
                self._index(number)
                last = number
            return last

    def _resume(self, head: int) -> int:
        with Session(self.engine) as session:
            cursor = crud.get_cursor(session=session, name=CURSOR)
            if cursor is not None:
                if self.chain.block_hash(cursor.block_number) != cursor.block_hash:
                    raise IndexerError(
                        f"block {cursor.block_number} on chain is not the one indexed"
                    )
                return cursor.block_number
            first = head + 1 if self.start_block is None else self.start_block
            number = max(first - 1, 0)
            block_hash = self.chain.block_hash(number) or ""
            crud.set_cursor(
                session=session, name=CURSOR, block_number=number, block_hash=block_hash
            )
            session.commit()
            log.info("indexer.start", extra={"block": number})
            return number

    def _index(self, number: int) -> None:
        block_hash = self.chain.block_hash(number)
        if block_hash is None:
            raise IndexerError(f"chain has no block {number}")
        events = self.chain.events(block_hash)
        with Session(self.engine) as session:
            apply_events(session, number, events)
            crud.set_cursor(
                session=session, name=CURSOR, block_number=number, block_hash=block_hash
            )
            session.commit()
        if self.on_block is not None:
            self.on_block(number)
