"""The node's own durable state, in SQLite under the data dir: accepted specs and the offer
sequence. Everything else the node knows it reads again from the chain or the runtime.

A spec row is written before SubmitWorkload answers, so an accepted spec survives a kill -9.
Rows of ended leases are kept (marked ended) so GetLeaseStatus can say TERMINATED.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common import canonical_json

__all__ = ["NodeStore", "StoredSpec"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS specs (
    lease_id INTEGER PRIMARY KEY,   -- chain lease ids count up from 0; far below 2**63
    spec BLOB NOT NULL,             -- canonical JSON
    spec_hash BLOB NOT NULL,
    customer TEXT NOT NULL,
    accepted_block INTEGER NOT NULL, -- chain block at which the lease was seen for this machine
    ended_block INTEGER              -- set when the lease was seen gone from the chain
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class StoredSpec:
    lease_id: int
    document: dict[str, Any]
    digest: bytes
    customer: str
    accepted_block: int
    ended_block: int | None

    @property
    def ended(self) -> bool:
        return self.ended_block is not None


def _row(row: sqlite3.Row) -> StoredSpec:
    return StoredSpec(
        lease_id=int(row["lease_id"]),
        document=json.loads(row["spec"]),
        digest=bytes(row["spec_hash"]),
        customer=str(row["customer"]),
        accepted_block=int(row["accepted_block"]),
        ended_block=None if row["ended_block"] is None else int(row["ended_block"]),
    )


class NodeStore:
    """One connection shared by the gRPC handlers and the reconcile thread, behind a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: an accepted spec must survive power loss too, not only a killed process.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def accept(
        self,
        lease_id: int,
        document: dict[str, Any],
        digest: bytes,
        customer: str,
        block: int,
    ) -> StoredSpec:
        """Record an accepted spec; accepting the same lease again keeps the first row."""
        with self._lock:
            self._db.execute(
                "INSERT INTO specs (lease_id, spec, spec_hash, customer, accepted_block) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (lease_id) DO NOTHING",
                (lease_id, canonical_json(document), digest, customer, block),
            )
            row = self._db.execute("SELECT * FROM specs WHERE lease_id = ?", (lease_id,)).fetchone()
        return _row(row)

    def get(self, lease_id: int) -> StoredSpec | None:
        if not 0 <= lease_id < 2**63:
            return None
        with self._lock:
            row = self._db.execute("SELECT * FROM specs WHERE lease_id = ?", (lease_id,)).fetchone()
        return None if row is None else _row(row)

    def active(self) -> dict[int, StoredSpec]:
        """Specs of leases not yet seen ended."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM specs WHERE ended_block IS NULL").fetchall()
        return {int(r["lease_id"]): _row(r) for r in rows}

    def mark_ended(self, lease_id: int, block: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE specs SET ended_block = ? WHERE lease_id = ? AND ended_block IS NULL",
                (block, lease_id),
            )

    def next_sequence(self, now_ms: int) -> int:
        """An offer sequence above every one handed out before, restarts included: the clock in
        milliseconds, or the last one plus one when the clock went back."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT value FROM state WHERE key = 'offer_sequence'"
                ).fetchone()
                sequence = max(now_ms, (int(row["value"]) + 1) if row else 0)
                self._db.execute(
                    "INSERT INTO state (key, value) VALUES ('offer_sequence', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (sequence,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return sequence
