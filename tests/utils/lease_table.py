"""A stand-in for the chain reads a GPU node's NodeServicer makes when it answers GetLeaseGpus:
leases from a table the test fills, at a fixed block."""

from __future__ import annotations

from services.common._chain import ChainLease


class LeaseTable:
    """lease id -> lease, read at block 60 whatever block is asked for."""

    def __init__(self, leases: dict[int, ChainLease] | None = None) -> None:
        self.leases: dict[int, ChainLease] = {} if leases is None else leases

    def block_number(self) -> int:
        return 60

    def block_hash(self, number: int) -> str:
        return f"0x{number:064x}"

    def lease(self, lease_id: int, at: str | None = None) -> ChainLease | None:
        return self.leases.get(lease_id)
