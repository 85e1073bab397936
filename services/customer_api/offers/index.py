"""A column store of live offers (numpy arrays, one row per machine) so a search over 100,000
offers is a handful of vector operations, not a Python loop.

Each row holds the offer as announced and, once read, the machine's chain state (price, free GPUs,
registered, online, owner and operator). Anyone can sign an offer with a fresh key, so the index
serves only *leasable* rows: the chain shows the machine registered and online, owned by the
offer's provider and operated by the key that signed it. Rows not checked yet are held but never
served (OfferSearch reads their chain state before answering, and in the background), so junk
offers can neither be leased through the API nor push registered machines off a page.
Filters use the chain's price and free GPUs. Every method takes the index's lock: the watch task
writes while request threads search.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from services.common import ConfigError, MachineResources, public_key_from_ss58
from services.common._chain import ChainMachine
from services.common.grpc_gen.gridlease.v1 import offer_pb2

__all__ = ["ChainView", "Hit", "OfferIndex", "OfferQuery", "OfferView", "SearchResult"]

_I64_MAX = np.iinfo(np.int64).max
_AVAILABLE = "available_on_chain"


def _clamp(value: int) -> int:
    return min(max(value, 0), int(_I64_MAX))


def _account_key(address: str) -> bytes | None:
    """The public key inside an SS58 address (any prefix), or None if it is not one."""
    try:
        return public_key_from_ss58(address)
    except ConfigError:
        return None


@dataclass(frozen=True)
class OfferView:
    """An offer as announced (signed by operator_key)."""

    machine_id: bytes
    provider: str
    operator_key: bytes
    endpoint: str
    gpu_model: str
    gpu_count: int
    memory_mib: int
    compute_capability: str
    price: int
    region: str
    labels: dict[str, str]
    sequence: int
    # The host's CPU and memory that leases share; None when the offer does not say.
    host: MachineResources | None = None

    @classmethod
    def from_offer(cls, offer: offer_pb2.Offer) -> OfferView:
        try:
            price = int(offer.price_per_gpu_per_block)
        except ValueError:
            price = int(_I64_MAX)
        return cls(
            machine_id=bytes(offer.machine_id),
            provider=offer.provider,
            operator_key=bytes(offer.operator_public_key),
            endpoint=offer.endpoint,
            gpu_model=offer.gpu.model,
            gpu_count=int(offer.gpu.count),
            memory_mib=int(offer.gpu.memory_mib),
            compute_capability=offer.gpu.compute_capability,
            price=price,
            region=offer.region,
            labels=dict(offer.labels),
            sequence=int(offer.sequence),
            host=(
                MachineResources(int(offer.host.cpu_millicores), int(offer.host.memory_mib))
                if offer.host.cpu_millicores and offer.host.memory_mib
                else None
            ),
        )


@dataclass(frozen=True)
class ChainView:
    """A machine as the chain showed it at checked_at (monotonic seconds); owner and operator
    are the accounts' public keys (None when not registered)."""

    registered: bool
    online: bool
    price: int
    free_gpus: int
    checked_at: float
    owner: bytes | None = None
    operator: bytes | None = None

    @classmethod
    def of(cls, machine: ChainMachine | None, checked_at: float) -> ChainView:
        if machine is None:
            return cls(False, False, 0, 0, checked_at)
        return cls(
            registered=True,
            online=machine.online,
            price=machine.price_per_gpu_block,
            free_gpus=machine.free_gpus,
            checked_at=checked_at,
            owner=_account_key(machine.owner),
            operator=_account_key(machine.operator),
        )

    def leases(self, offer: OfferView) -> bool:
        """Whether the chain lets offer be leased: the machine is registered and online, owned
        by the offer's provider and operated by the key that signed the offer."""
        return (
            self.registered
            and self.online
            and self.owner is not None
            and self.owner == _account_key(offer.provider)
            and self.operator == offer.operator_key
        )


@dataclass(frozen=True)
class OfferQuery:
    gpu_model: str | None = None  # case-insensitive substring of the model name
    min_gpus: int | None = None  # free GPUs at least
    min_memory_mib: int | None = None
    max_price: int | None = None  # per GPU per block
    region: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    descending: bool = False
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True)
class Hit:
    offer: OfferView
    chain: ChainView | None
    failed_filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    count: int
    total: int
    # Only when nothing matched: (filter, offers it excluded) and the nearest offers.
    excluded_by: list[tuple[str, int]] = field(default_factory=list)
    nearest: list[Hit] = field(default_factory=list)


class OfferIndex:
    """Live offers by machine id, searchable by the OfferQuery filters."""

    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.RLock()
        self._rows: dict[bytes, int] = {}
        self._views: list[OfferView | None] = []
        self._chain: list[ChainView | None] = []
        self._free_rows: list[int] = []
        self._models: dict[str, int] = {}
        self._regions: dict[str, int] = {}
        self._labels: dict[tuple[str, str], set[int]] = {}
        self._size = 0
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        def grow(old: np.ndarray | None, dtype: type) -> np.ndarray:
            new: np.ndarray = np.zeros(capacity, dtype=dtype)
            if old is not None:
                new[: len(old)] = old
            return new

        self._alive = grow(getattr(self, "_alive", None), np.bool_)
        self._count = grow(getattr(self, "_count", None), np.int64)
        self._memory = grow(getattr(self, "_memory", None), np.int64)
        self._price = grow(getattr(self, "_price", None), np.int64)
        self._model = grow(getattr(self, "_model", None), np.int32)
        self._region = grow(getattr(self, "_region", None), np.int32)
        self._known = grow(getattr(self, "_known", None), np.bool_)
        self._usable = grow(getattr(self, "_usable", None), np.bool_)
        self._checked_at = grow(getattr(self, "_checked_at", None), np.float64)
        self._chain_price = grow(getattr(self, "_chain_price", None), np.int64)
        self._chain_free = grow(getattr(self, "_chain_free", None), np.int64)

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    # -- writes ------------------------------------------------------------------------------------
    def upsert(self, offer: offer_pb2.Offer) -> bool:
        """Store offer unless a newer (or the same) sequence is held; True when stored."""
        view = OfferView.from_offer(offer)
        with self._lock:
            row = self._rows.get(view.machine_id)
            if row is not None:
                held = self._views[row]
                if held is not None and held.sequence >= view.sequence:
                    return False
                self._unlabel(row)
            else:
                row = self._new_row()
                self._rows[view.machine_id] = row
                self._chain[row] = None
                self._known[row] = False
            self._views[row] = view
            chain = self._chain[row]
            # A newer offer may name another provider or key: judge it against the chain again.
            self._usable[row] = chain is not None and chain.leases(view)
            self._alive[row] = True
            self._count[row] = _clamp(view.gpu_count)
            self._memory[row] = _clamp(view.memory_mib)
            self._price[row] = _clamp(view.price)
            self._model[row] = self._models.setdefault(view.gpu_model, len(self._models))
            self._region[row] = self._regions.setdefault(view.region, len(self._regions))
            for item in view.labels.items():
                self._labels.setdefault(item, set()).add(row)
            return True

    def remove(self, machine_id: bytes) -> bool:
        with self._lock:
            row = self._rows.pop(machine_id, None)
            if row is None:
                return False
            self._unlabel(row)
            self._views[row] = None
            self._chain[row] = None
            self._alive[row] = False
            self._known[row] = False
            self._usable[row] = False
            self._free_rows.append(row)
            return True

    def retain(self, machine_ids: Iterable[bytes]) -> int:
        """Drop every offer not in machine_ids (after a full reload); returns how many."""
        keep = set(machine_ids)
        with self._lock:
            gone = [m for m in self._rows if m not in keep]
            for machine_id in gone:
                self.remove(machine_id)
            return len(gone)

    def set_chain(self, machine_id: bytes, view: ChainView) -> None:
        with self._lock:
            row = self._rows.get(machine_id)
            offer = None if row is None else self._views[row]
            if row is None or offer is None:
                return
            self._chain[row] = view
            self._known[row] = True
            self._usable[row] = view.leases(offer)
            self._checked_at[row] = view.checked_at
            self._chain_price[row] = _clamp(view.price)
            self._chain_free[row] = _clamp(view.free_gpus)

    def _new_row(self) -> int:
        if self._free_rows:
            return self._free_rows.pop()
        if self._size == len(self._alive):
            self._alloc(len(self._alive) * 2)
        self._views.append(None)
        self._chain.append(None)
        self._size += 1
        return self._size - 1

    def _unlabel(self, row: int) -> None:
        view = self._views[row]
        if view is None:
            return
        for item in view.labels.items():
            rows = self._labels.get(item)
            if rows is not None:
                rows.discard(row)
                if not rows:
                    del self._labels[item]

    # -- reads -------------------------------------------------------------------------------------
    def gpu_totals(self) -> tuple[int, int]:
        """(offered, leased): the GPUs of every offer held, and of those the ones the chain
        showed taken (offered minus free) at its last check of each machine."""
        with self._lock:
            n = self._size
            alive = self._alive[:n]
            offered = int(self._count[:n][alive].sum())
            known = alive & self._known[:n]
            taken = self._count[:n][known] - self._chain_free[:n][known]
            return offered, int(taken.clip(min=0).sum())

    def get(self, machine_id: bytes) -> tuple[OfferView, ChainView | None] | None:
        """The offer held for machine_id and its last chain state, leasable or not."""
        with self._lock:
            row = self._rows.get(machine_id)
            if row is None:
                return None
            view = self._views[row]
            return None if view is None else (view, self._chain[row])

    def leasable(self, machine_id: bytes) -> OfferView | None:
        """The offer of machine_id if its last chain state lets it be leased (ChainView.leases)."""
        with self._lock:
            row = self._rows.get(machine_id)
            if row is None or not self._usable[row]:
                return None
            return self._views[row]

    def unchecked(self, query: OfferQuery | None, limit: int) -> list[bytes]:
        """Up to limit machines whose chain state was never read, in the query's price order
        (announced prices), matching its filters (all, when query is None)."""
        if limit <= 0:
            return []
        with self._lock:
            n = self._size
            candidates = self._alive[:n] & ~self._known[:n]
            if query is not None:
                for name, mask in self._filters(query, n, self._price[:n]):
                    if name != _AVAILABLE:
                        candidates &= mask
            rows = np.flatnonzero(candidates)
            order = _page(
                rows,
                self._price[:n],
                OfferQuery(descending=query.descending if query else False, limit=limit),
            )
            return [self._machine(int(r)) for r in order]

    def due_for_check(self, checked_before: float, limit: int) -> list[bytes]:
        """Up to limit machines to read from the chain: never read first, then those read
        before checked_before (monotonic seconds), oldest first."""
        if limit <= 0:
            return []
        with self._lock:
            n = self._size
            alive, known = self._alive[:n], self._known[:n]
            never = np.flatnonzero(alive & ~known)[:limit]
            old = np.flatnonzero(alive & known & (self._checked_at[:n] < checked_before))
            old = old[np.argsort(self._checked_at[old], kind="stable")][: limit - len(never)]
            return [self._machine(int(r)) for r in (*never, *old)]

    def _machine(self, row: int) -> bytes:
        view = self._views[row]
        assert view is not None
        return view.machine_id

    def search(self, query: OfferQuery) -> SearchResult:
        with self._lock:
            n = self._size
            alive = self._alive[:n]
            price = np.where(self._known[:n], self._chain_price[:n], self._price[:n])
            filters = self._filters(query, n, price)
            matched = alive.copy()
            for _name, mask in filters:
                matched &= mask
            rows = np.flatnonzero(matched)
            page = _page(rows, price, query)
            hits = [self._hit(int(r)) for r in page]
            total = len(self._rows)
            if len(rows) or not total:
                return SearchResult(hits, len(rows), total)
            return self._explain(filters, alive, price, total)

    def _filters(self, q: OfferQuery, n: int, price: np.ndarray) -> list[tuple[str, np.ndarray]]:
        known = self._known[:n]
        # Only what the chain shows leasable is served; rows never checked are left out.
        filters = [(_AVAILABLE, known & self._usable[:n])]
        if q.gpu_model:
            needle = q.gpu_model.lower()
            codes = [code for name, code in self._models.items() if needle in name.lower()]
            filters.append(("gpu_model", np.isin(self._model[:n], codes)))
        if q.min_gpus is not None:
            free = np.where(known, self._chain_free[:n], self._count[:n])
            filters.append(("min_gpus", free >= q.min_gpus))
        if q.min_memory_mib is not None:
            filters.append(("min_memory_mib", self._memory[:n] >= q.min_memory_mib))
        if q.max_price is not None:
            filters.append(("max_price", price <= _clamp(q.max_price)))
        if q.region:
            code = self._regions.get(q.region, -1)
            filters.append(("region", self._region[:n] == code))
        for key, value in sorted(q.labels.items()):
            mask = np.zeros(n, dtype=np.bool_)
            rows = self._labels.get((key, value))
            if rows:
                mask[np.fromiter(rows, dtype=np.int64, count=len(rows))] = True
            filters.append((f"label:{key}", mask))
        return filters

    def _explain(
        self,
        filters: list[tuple[str, np.ndarray]],
        alive: np.ndarray,
        price: np.ndarray,
        total: int,
    ) -> SearchResult:
        excluded = [(name, int(np.count_nonzero(alive & ~mask))) for name, mask in filters]
        misses = np.zeros(len(alive), dtype=np.int32)
        available = alive.copy()
        for name, mask in filters:
            misses += ~mask
            if name == _AVAILABLE:
                available &= mask
        # Nearest offers are suggestions to lease: only leasable ones.
        live = np.flatnonzero(available)
        if not len(live):
            return SearchResult([], 0, total, [e for e in excluded if e[1]])
        fewest = int(misses[live].min())
        near = live[misses[live] == fewest]
        order = np.lexsort((near, price[near]))[:3]
        nearest = [
            self._hit(int(r), tuple(name for name, mask in filters if not mask[int(r)]))
            for r in near[order]
        ]
        return SearchResult([], 0, total, [e for e in excluded if e[1]], nearest)

    def _hit(self, row: int, failed: tuple[str, ...] = ()) -> Hit:
        view = self._views[row]
        assert view is not None
        return Hit(view, self._chain[row], failed)


def _page(rows: np.ndarray, price: np.ndarray, q: OfferQuery) -> np.ndarray:
    """rows ordered by price (then row, so pages are stable), sliced to the query's page.
    Only the rows up to the page's end are sorted: the cut price is found by partition."""
    if not len(rows) or q.offset >= len(rows):
        return rows[:0]
    key = -price[rows] if q.descending else price[rows]
    end = min(q.offset + q.limit, len(rows))
    if end < len(rows):
        cut = np.partition(key, end - 1)[end - 1]
        keep = key <= cut
        rows, key = rows[keep], key[keep]
    order = np.lexsort((rows, key))
    return rows[order][q.offset : end]
