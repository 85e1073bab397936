"""The seed's offers: an in-memory index for queries, backed by SQLite (WAL) for restarts.

Reads are served from memory. Writes update memory at once and are committed to SQLite by one
writer task in batches (group commit): put() returns only after its batch is committed, so an
acknowledged announcement survives a crash of the process, while concurrent announcements share
a commit. Commits run on the event loop itself: in WAL mode with synchronous=NORMAL a commit is
a write to the log without fsync (about a tenth of a millisecond), whereas handing it to a worker
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

from services.common import DuplicateSequence, StaleSequence, blake2b_256, get_logger
from services.common.grpc_gen.gridlease.v1 import offer_pb2

__all__ = ["OfferFilterSpec", "OfferRecord", "OfferRow", "OfferStore"]

log = get_logger(__name__)
_COMMIT_WINDOW_S = 0.002


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


class OfferStore:
    """Newest offer per machine. Call open() inside the event loop, close() at the end."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._records: dict[bytes, OfferRecord] = {}
        self._keys: list[bytes] = []  # sorted machine_ids, for paging
        self._version = 0
        self._root: tuple[int, bytes] | None = None
        self._listeners: list[Listener] = []
        self._pending: list[tuple[OfferRecord | None, bytes, asyncio.Future[None] | None]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._engine: Engine | None = None
        self._upsert: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Create or open the database, load every row into memory, start the writer."""
        rows = self._open_db()
        for data in rows:
            rec = OfferRecord.from_signed_bytes(data)
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
        held = self._records.get(machine_id)
        if held is None or sequence > held.sequence:
            return
        if sequence == held.sequence:
            raise DuplicateSequence(f"sequence {sequence} is already held")
        raise StaleSequence(f"sequence {sequence} is older than held {held.sequence}")

    async def put(self, rec: OfferRecord) -> None:
        """Store rec if it is newer than what is held (else raise); returns once durable."""
        self.check_sequence(rec.machine_id, rec.sequence)
        self._set(rec)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rec, rec.machine_id, done))
        self._wake.set()
        await done

    def expire(self, cutoff_ms: int) -> list[OfferRecord]:
        """Drop offers with timestamp_ms <= cutoff_ms; deletion is queued to the writer."""
        gone = [rec for rec in self._records.values() if rec.timestamp_ms <= cutoff_ms]
        for rec in gone:
            del self._records[rec.machine_id]
            del self._keys[bisect.bisect_left(self._keys, rec.machine_id)]
            self._pending.append((None, rec.machine_id, None))
        if gone:
            self._version += 1
            self._wake.set()
            for rec in gone:
                self._notify("expired", rec)
        return gone

    async def bulk_load(self, records: Iterable[OfferRecord]) -> int:
        """Insert many already-verified records in one transaction (benchmarks, imports)."""
        batch = list(records)
        for rec in batch:
            if rec.machine_id not in self._records:
                bisect.insort(self._keys, rec.machine_id)
            self._records[rec.machine_id] = rec
        self._version += 1
        self._commit([(rec, rec.machine_id) for rec in batch])
        return len(batch)

    def _set(self, rec: OfferRecord) -> None:
        if rec.machine_id not in self._records:
            bisect.insort(self._keys, rec.machine_id)
        self._records[rec.machine_id] = rec
        self._version += 1
        self._notify("stored", rec)

    def _notify(self, kind: str, rec: OfferRecord) -> None:
        for listener in list(self._listeners):
            listener(kind, rec)

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
                self._commit([(rec, key) for rec, key, _ in batch])
            except Exception as exc:  # a disk error must reach the callers, not kill the writer
                log.exception("store.commit_failed")
                for _, _, done in batch:
                    if done is not None and not done.done():
                        done.set_exception(exc)
                continue
            for _, _, done in batch:
                if done is not None and not done.done():
                    done.set_result(None)

    # -- SQLite ----------------------------------------------------------------------------
    def _open_db(self) -> list[bytes]:
        self._db_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{self._db_path}")
        event.listen(engine, "connect", _sqlite_pragmas)
        SQLModel.metadata.create_all(engine, tables=[OfferRow.__table__])  # type: ignore[list-item]
        self._engine = engine
        self._upsert = _upsert_statement()
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(select(OfferRow.signed_offer))]  # type: ignore[call-overload]

    def _commit(self, batch: list[tuple[OfferRecord | None, bytes]]) -> None:
        assert self._engine is not None
        table = OfferRow.__table__  # type: ignore[attr-defined]
        # Later entries for the same machine win: collapse the batch in order, but a row deleted
        # (expired) earlier in the batch is deleted before its newer upsert is written.
        latest: dict[bytes, OfferRecord | None] = {}
        deleted: set[bytes] = set()
        for rec, key in batch:
            latest[key] = rec
            if rec is None:
                deleted.add(key)
        upserts = [
            {
                "machine_id": rec.machine_id,
                "sequence": rec.sequence,
                "timestamp_ms": rec.timestamp_ms,
                "signed_offer": rec.signed_offer,
            }
            for rec in latest.values()
            if rec is not None
        ]
        deletes = sorted(deleted)
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


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    # WAL lets readers run while we write; NORMAL sync is durable across process crashes
    # (an OS crash may lose the last commits, which peers and node refreshes restore).
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
