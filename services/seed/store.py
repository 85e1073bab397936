"""The seed's offers: an in-memory index for queries, backed by SQLite (WAL) for restarts.

Reads are served from memory. Writes are committed to SQLite by one writer task in batches
(group commit), and only then applied to memory and told to watchers: memory never holds what
the disk refused, so what a seed serves, replicates and digests is what survives a restart.
put() returns after its batch is committed, so an acknowledged announcement survives a crash of
the process, while concurrent announcements share a commit; when a shared commit fails, its
writes are retried one by one, so one bad record fails only its own caller.

Commits run on the event loop itself: in WAL mode with synchronous=NORMAL a commit is a write
to the log without fsync (about a tenth of a millisecond), whereas handing it to a worker
thread made every commit wait on the GIL behind the loop and cut throughput by more than half.
"""

from __future__ import annotations

import asyncio
import bisect
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, create_engine

from services.common import (
    DuplicateSequence,
    RejectedError,
    StaleSequence,
    blake2b_256,
    get_logger,
)
from services.common.grpc_gen.gridlease.v1 import offer_pb2

__all__ = ["OfferFilterSpec", "OfferRecord", "OfferRow", "OfferStore"]

log = get_logger(__name__)
_COMMIT_WINDOW_S = 0.002
_WRITER_BACKOFF_S = 0.1  # after an unexpected writer failure, before taking the next batch


class OfferRow(SQLModel, table=True):
    """One machine's newest signed offer; everything else is derived from signed_offer."""

    __tablename__ = "offers"

    machine_id: bytes = Field(primary_key=True)
    sequence: int
    timestamp_ms: int = Field(index=True)
    signed_offer: bytes


@dataclass(slots=True)
class OfferRecord:
    """What the index keeps per machine: filter fields plus the signed bytes to serve."""

    machine_id: bytes
    sequence: int
    timestamp_ms: int
    gpu_model: str
    gpu_count: int
    memory_mib: int
    price: int
    region: str
    labels: dict[str, str]
    signed_offer: bytes  # serialized SignedOffer, exactly as received

    @classmethod
    def from_offer(cls, offer: offer_pb2.Offer, signed: offer_pb2.SignedOffer) -> OfferRecord:
        return cls(
            machine_id=offer.machine_id,
            sequence=offer.sequence,
            timestamp_ms=offer.timestamp_ms,
            gpu_model=offer.gpu.model,
            gpu_count=offer.gpu.count,
            memory_mib=offer.gpu.memory_mib,
            price=int(offer.price_per_gpu_per_block),
            region=offer.region,
            labels=dict(offer.labels),
            signed_offer=signed.SerializeToString(deterministic=True),
        )

    @classmethod
    def from_signed_bytes(cls, data: bytes) -> OfferRecord:
        """Rebuild from stored bytes (already verified when first admitted)."""
        signed = offer_pb2.SignedOffer.FromString(data)
        return cls.from_offer(offer_pb2.Offer.FromString(signed.offer), signed)

    def signed(self) -> offer_pb2.SignedOffer:
        return offer_pb2.SignedOffer.FromString(self.signed_offer)


@dataclass(frozen=True)
class OfferFilterSpec:
    """A query filter in plain Python terms; empty values do not filter."""

    gpu_model: str = ""
    min_gpu_count: int = 0
    min_memory_mib: int = 0
    max_price: int | None = None
    region: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def matches(self, rec: OfferRecord) -> bool:
        return (
            (not self.gpu_model or rec.gpu_model == self.gpu_model)
            and rec.gpu_count >= self.min_gpu_count
            and rec.memory_mib >= self.min_memory_mib
            and (self.max_price is None or rec.price <= self.max_price)
            and (not self.region or rec.region == self.region)
            and all(rec.labels.get(k) == v for k, v in self.labels.items())
        )


Listener = Callable[[str, OfferRecord], None]


@dataclass(slots=True)
class _Write:
    """One change waiting for the writer: store rec, or (rec None) delete the machine's offer
    if the sequence held is still at most `sequence` (expiry). done carries the outcome."""

    machine_id: bytes
    rec: OfferRecord | None
    sequence: int
    done: asyncio.Future[None] | None


class OfferStore:
    """Newest offer per machine. Call open() inside the event loop, close() at the end."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._records: dict[bytes, OfferRecord] = {}
        self._keys: list[bytes] = []  # sorted machine_ids, for paging
        self._version = 0
        self._root: tuple[int, bytes] | None = None
        self._listeners: list[Listener] = []
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._engine: Engine | None = None
        self._upsert: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Create or open the database, load every row into memory, start the writer."""
        rows = self._open_db()
        for data in rows:
            try:
                rec = OfferRecord.from_signed_bytes(data)
            except Exception:  # noqa: BLE001 - one unreadable row must not stop the seed
                log.exception("store.row_skipped", extra={"bytes": len(data)})
                continue
            self._records[rec.machine_id] = rec
        self._keys = sorted(self._records)
        self._version += 1
        self._writer = asyncio.create_task(self._write_loop(), name="seed-db-writer")
        log.info("store.opened", extra={"offers": len(self._records), "db": str(self._db_path)})

    async def close(self) -> None:
        """Flush what is pending, then close the database."""
        if self._writer is not None:
            await self._drain()
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        if self._engine is not None:
            self._engine.dispose()

    # -- reads -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    def get(self, machine_id: bytes) -> OfferRecord | None:
        return self._records.get(machine_id)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call listener("stored"|"expired", record) on every change; returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def scan(self, after: bytes = b"") -> Iterator[OfferRecord]:
        """Records in machine_id order, starting after the given id."""
        start = bisect.bisect_right(self._keys, after) if after else 0
        # Copy the tail: the caller may await between items while writers change the list.
        for key in self._keys[start:]:
            rec = self._records.get(key)
            if rec is not None:
                yield rec

    def query(
        self, match: Callable[[OfferRecord], bool], *, after: bytes, limit: int
    ) -> tuple[list[OfferRecord], bytes]:
        """Up to limit records satisfying match after the given id, and the id to continue
        from (empty when there is nothing more)."""
        found: list[OfferRecord] = []
        for rec in self.scan(after):
            if match(rec):
                if len(found) == limit:
                    return found, found[-1].machine_id
                found.append(rec)
        return found, b""

    def root(self) -> bytes:
        """blake2b-256 over every (machine_id, sequence) in order; cached until a change."""
        if self._root is None or self._root[0] != self._version:
            parts = (k + struct.pack(">Q", self._records[k].sequence) for k in self._keys)
            self._root = (self._version, blake2b_256(b"".join(parts)))
        return self._root[1]

    # -- writes ----------------------------------------------------------------------------
    def check_sequence(self, machine_id: bytes, sequence: int) -> None:
        """Refuse anything not newer than what is held for that machine."""
        _refusal(self._records.get(machine_id), sequence)

    async def put(self, rec: OfferRecord) -> None:
        """Store rec if it is newer than what is held (else StaleSequence/DuplicateSequence);
        returns once committed. Memory and watchers see rec only after its commit succeeded;
        a failed commit raises here and leaves everything as it was."""
        self.check_sequence(rec.machine_id, rec.sequence)  # refuse early, without a commit
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(rec.machine_id, rec, rec.sequence, done))
        self._wake.set()
        await done

    async def expire(self, cutoff_ms: int) -> list[OfferRecord]:
        """Drop offers with timestamp_ms <= cutoff_ms, from disk first, then from memory;
        returns those dropped (an offer refreshed meanwhile is kept). Raises if the commit
        failed (nothing changed then)."""
        gone = [rec for rec in self._records.values() if rec.timestamp_ms <= cutoff_ms]
        if not gone:
            return []
        loop = asyncio.get_running_loop()
        writes = [_Write(rec.machine_id, None, rec.sequence, loop.create_future()) for rec in gone]
        self._pending.extend(writes)
        self._wake.set()
        await asyncio.gather(*(w.done for w in writes if w.done is not None))
        return [rec for rec in gone if rec.machine_id not in self._records]

    async def bulk_load(self, records: Iterable[OfferRecord]) -> int:
        """Store many already-verified records in one transaction (benchmarks, imports), each
        only if newer than what is held; returns how many were stored."""
        writes = [_Write(rec.machine_id, rec, rec.sequence, None) for rec in records]
        return sum(error is None for error in self._write_batch(writes))

    def _notify(self, kind: str, rec: OfferRecord) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, rec)
            except Exception:  # noqa: BLE001 - one watcher's fault must not stop the writer
                log.exception("store.listener_failed", extra={"kind": kind})

    async def _drain(self) -> None:
        while self._pending:
            self._wake.set()
            await asyncio.sleep(0.005)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            # Group commit window: announcements arriving in the next moment share this commit.
            # Costs each announcement up to this much latency; under load it amortises the
            # commit (the largest per-offer cost after gRPC itself) over the whole batch.
            await asyncio.sleep(_COMMIT_WINDOW_S)
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                outcomes = self._write_batch(batch)
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one batch
                log.exception("store.writer_failed", extra={"writes": len(batch)})
                outcomes = [exc] * len(batch)
                await asyncio.sleep(_WRITER_BACKOFF_S)
            for write, error in zip(batch, outcomes, strict=True):
                _settle(write.done, error)

    def _write_batch(self, batch: list[_Write]) -> list[Exception | None]:
        """Commit batch, then apply it to memory and tell the listeners; returns each write's
        error (None: done). When the shared commit fails, each write is retried alone, so one
        bad record fails only its own caller."""
        outcomes, changes = self._plan(batch)
        if changes:
            try:
                self._commit(changes)
            except Exception as exc:  # noqa: BLE001 - any database error: isolate the culprit
                if len(batch) > 1:
                    log.warning("store.batch_failed", extra={"writes": len(batch)}, exc_info=True)
                    return [self._write_batch([write])[0] for write in batch]
                log.exception(
                    "store.commit_failed", extra={"machine_id": batch[0].machine_id.hex()}
                )
                return [exc]
            self._apply(changes)
        return outcomes

    def _plan(
        self, batch: list[_Write]
    ) -> tuple[list[Exception | None], dict[bytes, OfferRecord | None]]:
        """Play batch in order over what memory holds (which is what the database holds):
        each write's outcome, and each machine's final state where it changes (None: deleted)."""
        overlay: dict[bytes, OfferRecord | None] = {}
        outcomes: list[Exception | None] = []
        for write in batch:
            key = write.machine_id
            held = overlay[key] if key in overlay else self._records.get(key)
            if write.rec is not None:
                try:
                    _refusal(held, write.sequence)
                except RejectedError as exc:
                    outcomes.append(exc)
                    continue
                overlay[key] = write.rec
            elif held is not None and held.sequence <= write.sequence:
                overlay[key] = None  # expiry of what is still the held offer
            outcomes.append(None)
        changes = {k: v for k, v in overlay.items() if v is not None or k in self._records}
        return outcomes, changes

    def _apply(self, changes: dict[bytes, OfferRecord | None]) -> None:
        for key, rec in changes.items():
            if rec is None:
                old = self._records.pop(key)
                del self._keys[bisect.bisect_left(self._keys, key)]
                self._notify("expired", old)
            else:
                if key not in self._records:
                    bisect.insort(self._keys, key)
                self._records[key] = rec
                self._notify("stored", rec)
        self._version += 1

    # -- SQLite ----------------------------------------------------------------------------
    def _open_db(self) -> list[bytes]:
        self._db_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{self._db_path}")
        event.listen(engine, "connect", _sqlite_pragmas)
        SQLModel.metadata.create_all(engine, tables=[OfferRow.__table__])  # type: ignore[attr-defined]
        self._engine = engine
        self._upsert = _upsert_statement()
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(select(OfferRow.signed_offer))]  # type: ignore[call-overload]

    def _commit(self, changes: dict[bytes, OfferRecord | None]) -> None:
        """Write each machine's final state (None: delete) in one transaction."""
        assert self._engine is not None
        table = OfferRow.__table__  # type: ignore[attr-defined]
        deletes = sorted(k for k, rec in changes.items() if rec is None)
        upserts = [
            {
                "machine_id": rec.machine_id,
                "sequence": rec.sequence,
                "timestamp_ms": rec.timestamp_ms,
                "signed_offer": rec.signed_offer,
            }
            for rec in changes.values()
            if rec is not None
        ]
        with self._engine.begin() as conn:
            for start in range(0, len(deletes), 500):  # stay under SQLite's variable limit
                chunk = deletes[start : start + 500]
                conn.execute(delete(table).where(table.c.machine_id.in_(chunk)))
            if upserts:
                conn.execute(self._upsert, upserts)


def _upsert_statement() -> Any:
    """INSERT .. ON CONFLICT DO UPDATE, built once: constructing it per commit cost more than
    the commit itself."""
    table = OfferRow.__table__  # type: ignore[attr-defined]
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["machine_id"],
        set_={
            "sequence": stmt.excluded.sequence,
            "timestamp_ms": stmt.excluded.timestamp_ms,
            "signed_offer": stmt.excluded.signed_offer,
        },
        # Never let a late batch replace a newer row.
        where=table.c.sequence < stmt.excluded.sequence,
    )


def _refusal(held: OfferRecord | None, sequence: int) -> None:
    """Raise unless sequence is newer than held's."""
    if held is None or sequence > held.sequence:
        return
    if sequence == held.sequence:
        raise DuplicateSequence(f"sequence {sequence} is already held")
    raise StaleSequence(f"sequence {sequence} is older than held {held.sequence}")


def _settle(done: asyncio.Future[None] | None, error: Exception | None) -> None:
    if done is None or done.done():  # no waiter, or the caller went away (RPC cancelled)
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    # WAL lets readers run while we write; NORMAL sync is durable across process crashes
    # (an OS crash may lose the last commits, which peers and node refreshes restore).
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
