"""The node's own durable state, in SQLite under the data dir: accepted specs, the offer
sequence, which physical GPU is which chain GPU slot, and the host ports of each lease.
Everything else the node knows it reads again from the chain or the runtime.

A spec row is written before SubmitWorkload answers, so an accepted spec survives a kill -9.
Rows of ended leases are kept (marked ended) so GetLeaseStatus can say TERMINATED.

GPU slots (bit i of the machine's `gpus_present` on chain) are tied to GPU UUIDs, not NVML
indexes: NVML numbers boards by bus order, so when one board vanishes the later ones move down
an index, and a lease on slot 5 would silently land on another board. Host ports are allocated
once per lease for the same reason: a workload re-created after a crash keeps its SSH port.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common import canonical_json

__all__ = ["MAX_GPU_SLOTS", "NodeStore", "PortsExhausted", "StoredSpec"]

# The chain's GPU set is a u64 bit mask.
MAX_GPU_SLOTS = 64

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
CREATE TABLE IF NOT EXISTS gpu_slots (
    slot INTEGER PRIMARY KEY,       -- bit index in the machine's gpus_present on chain, 0..63
    uuid TEXT NOT NULL UNIQUE       -- NVML UUID of the board that holds the slot
);
CREATE TABLE IF NOT EXISTS lease_ports (
    lease_id INTEGER NOT NULL,
    container_port INTEGER NOT NULL, -- 2222 (sshd) or a port of the spec
    host_port INTEGER NOT NULL,      -- where the runtime publishes it, for the lease's lifetime
    PRIMARY KEY (lease_id, container_port)
);
"""


class PortsExhausted(RuntimeError):
    """Every host port of the configured range is taken by a live lease or another process."""


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
        """Record an accepted spec (its digest checked against the chain's lease just now).
        Accepting the same spec again keeps the first row. A row with another digest was
        accepted for a lease a fork abandoned, whose id the chain has since given to this
        lease: this spec replaces it."""
        with self._lock:
            self._db.execute(
                "INSERT INTO specs (lease_id, spec, spec_hash, customer, accepted_block) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (lease_id) DO UPDATE SET "
                "spec = excluded.spec, spec_hash = excluded.spec_hash, "
                "customer = excluded.customer, accepted_block = excluded.accepted_block, "
                "ended_block = NULL WHERE specs.spec_hash != excluded.spec_hash",
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

    def _transaction(self, body: Callable[[], object]) -> None:
        # Caller holds self._lock. BEGIN IMMEDIATE: the read-then-write is one step.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            body()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def gpu_slots(self) -> dict[int, str]:
        """Slot -> GPU UUID, as remembered (boards absent now included)."""
        with self._lock:
            rows = self._db.execute("SELECT slot, uuid FROM gpu_slots").fetchall()
        return {int(r["slot"]): str(r["uuid"]) for r in rows}

    def assign_gpu_slots(
        self, uuids: Iterable[str], max_slots: int = MAX_GPU_SLOTS
    ) -> dict[int, str]:
        """Give each UUID in `uuids` (the boards seen now, in NVML order) a slot below
        `max_slots` (the chain's MaxGpusPerMachine), keeping the slot it already has; returns
        the whole slot table.

        A new board takes the lowest slot that is free or whose board is not among `uuids` (a
        replaced board takes the vanished one's slot, so the set does not creep towards the
        limit). The board that lost its slot gets a new one if it ever comes back. Boards
        beyond the limit get none (the caller reports them as unusable).
        """
        seen = list(dict.fromkeys(uuids))
        known = self.gpu_slots()
        if set(seen) <= set(known.values()):
            return known  # every reconcile run asks; usually nothing is new

        def assign() -> None:
            rows = self._db.execute("SELECT slot, uuid FROM gpu_slots").fetchall()
            table = {int(r["slot"]): str(r["uuid"]) for r in rows}
            slotted = set(table.values())
            for uuid in seen:
                if uuid in slotted:
                    continue
                free = [
                    slot
                    for slot in range(min(max_slots, MAX_GPU_SLOTS))
                    if slot not in table or table[slot] not in seen
                ]
                if not free:
                    return
                slot = free[0]
                self._db.execute(
                    "INSERT INTO gpu_slots (slot, uuid) VALUES (?, ?) "
                    "ON CONFLICT (slot) DO UPDATE SET uuid = excluded.uuid",
                    (slot, uuid),
                )
                table[slot] = uuid
                slotted.add(uuid)

        with self._lock:
            self._transaction(assign)
        return self.gpu_slots()

    def host_ports(
        self,
        lease_id: int,
        container_ports: Iterable[int],
        port_range: tuple[int, int],
        is_free: Callable[[int], bool],
    ) -> Mapping[int, int]:
        """Container port -> host port for a lease, allocated on first use and then kept.

        New ports come from `port_range` (inclusive), skipping ports held by leases not yet
        ended and ports `is_free` says another process holds. PortsExhausted when none is left.
        """
        wanted = list(dict.fromkeys(container_ports))
        result: dict[int, int] = {}

        def allocate() -> None:
            rows = self._db.execute(
                "SELECT container_port, host_port FROM lease_ports WHERE lease_id = ?",
                (lease_id,),
            ).fetchall()
            result.update({int(r["container_port"]): int(r["host_port"]) for r in rows})
            missing = [port for port in wanted if port not in result]
            if not missing:
                return
            # Ports of other leases stay theirs until the lease's spec is marked ended.
            taken = {
                int(r["host_port"])
                for r in self._db.execute(
                    "SELECT p.host_port FROM lease_ports p LEFT JOIN specs s "
                    "ON s.lease_id = p.lease_id "
                    "WHERE s.ended_block IS NULL OR p.lease_id = ?",
                    (lease_id,),
                ).fetchall()
            }
            candidates = (
                port
                for port in range(port_range[0], port_range[1] + 1)
                if port not in taken and is_free(port)
            )
            for container_port in missing:
                host_port = next(candidates, None)
                if host_port is None:
                    raise PortsExhausted(
                        f"no free host port left in {port_range[0]}-{port_range[1]} for lease "
                        f"{lease_id}"
                    )
                self._db.execute(
                    "INSERT INTO lease_ports (lease_id, container_port, host_port) "
                    "VALUES (?, ?, ?) ON CONFLICT (lease_id, container_port) "
                    "DO UPDATE SET host_port = excluded.host_port",
                    (lease_id, container_port, host_port),
                )
                result[container_port] = host_port

        with self._lock:
            self._transaction(allocate)
        return {port: result[port] for port in wanted}

    def recorded_host_ports(self, lease_id: int) -> dict[int, int]:
        """Container port -> host port of a lease as recorded (allocated here or by the runtime);
        empty when none is."""
        with self._lock:
            rows = self._db.execute(
                "SELECT container_port, host_port FROM lease_ports WHERE lease_id = ?",
                (lease_id,),
            ).fetchall()
        return {int(r["container_port"]): int(r["host_port"]) for r in rows}

    def record_host_ports(self, lease_id: int, ports: Mapping[int, int]) -> None:
        """Record where the runtime published a lease's ports (container port -> host port), for
        ports the runtime chose itself (Kubernetes: the API server allocates node ports). A port
        already recorded for that container port is replaced: the runtime's word is what
        customers reach."""
        recorded = self.recorded_host_ports(lease_id)
        changed = {c: h for c, h in ports.items() if recorded.get(c) != h}
        if not changed:
            return  # the usual case: every reconcile run reports the same ports

        def record() -> None:
            self._db.executemany(
                "INSERT INTO lease_ports (lease_id, container_port, host_port) "
                "VALUES (?, ?, ?) ON CONFLICT (lease_id, container_port) "
                "DO UPDATE SET host_port = excluded.host_port",
                [(lease_id, c, h) for c, h in sorted(changed.items())],
            )

        with self._lock:
            self._transaction(record)

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
