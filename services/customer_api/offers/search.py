"""Offer search over the chain-checked index.

The index serves only offers the chain shows leasable (see offers.index). Before answering, a
search reads from the chain the offers that could make its page but were never checked
(cheapest first) and the page's own rows whose chain state is older than ttl_s, and repeats the
search while that changes the answer (at most _ROUNDS reads). In the background, verify_loop
reads every offer never checked, and rechecks each one every recheck_s, a batch per chain read,
so a flood of junk offers is sorted out within seconds and never ranks above a real machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from services.common import GridleaseError, get_logger
from services.common._chain import ChainMachine
from services.customer_api.models import (
    FilterExclusion,
    NearestOffer,
    NoMatch,
    OfferPublic,
    OffersPublic,
)
from services.customer_api.offers.index import ChainView, Hit, OfferIndex, OfferQuery, SearchResult

__all__ = ["VERIFY_BATCH", "ChainReader", "OfferSearch"]

log = get_logger(__name__)

# Reads machines' chain state in one RPC (state_queryStorageAt): ids -> machine, None if absent.
ChainReader = Callable[[list[bytes]], dict[bytes, ChainMachine | None]]
_ROUNDS = 3
# Machines per chain read. Small: background reads share the reader connection with searches,
# and a search must not wait long behind one (on the dev chain, 200 keys take about a second).
VERIFY_BATCH = 200
_MAX_BACKOFF_S = 30.0


class OfferSearch:
    def __init__(
        self,
        index: OfferIndex,
        read_machines: ChainReader,
        *,
        ttl_s: float,
        recheck_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """ttl_s: how long a page's chain state is reused; recheck_s: how often the background
        loop reads every offer's chain state again (registrations, deregistrations, owners)."""
        self.index = index
        self.read_machines = read_machines
        self.ttl_s = ttl_s
        self.recheck_s = recheck_s
        self.clock = clock

    def _stale(self, hit: Hit, now: float) -> bool:
        return hit.chain is None or now - hit.chain.checked_at > self.ttl_s

    def read(self, machine_ids: list[bytes]) -> None:
        """Read machine_ids' chain state into the index, VERIFY_BATCH per chain read
        (ChainUnavailable/ChainError propagate)."""
        for start in range(0, len(machine_ids), VERIFY_BATCH):
            batch = machine_ids[start : start + VERIFY_BATCH]
            machines = self.read_machines(batch)
            checked = self.clock()
            for machine_id in batch:
                self.index.set_chain(machine_id, ChainView.of(machines.get(machine_id), checked))

    def search(self, query: OfferQuery) -> SearchResult:
        """Leasable offers matching query, with fresh chain state (ChainUnavailable propagates)."""
        result = self.index.search(query)
        for _ in range(_ROUNDS):
            now = self.clock()
            due = [
                h.offer.machine_id for h in (*result.hits, *result.nearest) if self._stale(h, now)
            ]
            # Never-checked offers that could make this page; when nothing matched, any of them
            # (they may be the nearest offers to suggest).
            due += self.index.unchecked(
                query if result.count else None, limit=query.offset + query.limit
            )
            if not due:
                break
            self.read(list(dict.fromkeys(due)))
            result = self.index.search(query)
        return result

    def one(self, machine_id: bytes) -> OfferPublic | None:
        """One machine's offer with its chain state read now; None unless it is leasable."""
        held = self.index.get(machine_id)
        if held is None:
            return None
        machines = self.read_machines([machine_id])
        view = ChainView.of(machines.get(machine_id), self.clock())
        self.index.set_chain(machine_id, view)
        if not view.leases(held[0]):
            return None
        return self.offer_public(Hit(held[0], view), self.clock())

    def verify_pending(self) -> int:
        """Read one batch of offers due for a check (never checked first, then those checked
        longer than recheck_s ago); returns how many were read."""
        due = self.index.due_for_check(self.clock() - self.recheck_s, VERIFY_BATCH)
        self.read(due)
        return len(due)

    async def verify_loop(self, idle_s: float = 1.0) -> None:
        """Forever (cancel to stop): verify_pending in a worker thread (the chain client
        blocks), at once again while batches come full, else after idle_s; after a failure,
        backs off (doubling up to 30 s) and logs it, with the traceback unless the chain named
        it."""
        failures = 0
        while True:
            read = 0
            try:
                read = await asyncio.to_thread(self.verify_pending)
                failures = 0
            except GridleaseError as exc:
                failures += 1
                log.warning("offers.verify_failed", extra={"error": str(exc), "reason": exc.reason})
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure
                failures += 1
                log.exception("offers.verify_failed")
            if failures:
                delay = min(_MAX_BACKOFF_S, idle_s * 2**failures)
            else:
                delay = 0.0 if read >= VERIFY_BATCH else idle_s
            await asyncio.sleep(delay)

    def public(self, result: SearchResult, query: OfferQuery) -> OffersPublic:
        now = self.clock()
        no_match = None
        if result.count == 0 and result.total:
            no_match = NoMatch(
                total_offers=result.total,
                excluded_by=[FilterExclusion(filter=f, excluded=n) for f, n in result.excluded_by],
                nearest=[
                    NearestOffer(
                        offer=self.offer_public(h, now), failed_filters=list(h.failed_filters)
                    )
                    for h in result.nearest
                ],
            )
        return OffersPublic(
            data=[self.offer_public(h, now) for h in result.hits],
            count=result.count,
            offset=query.offset,
            limit=query.limit,
            no_match=no_match,
        )

    def offer_public(self, hit: Hit, now: float) -> OfferPublic:
        view, chain = hit.offer, hit.chain
        checked = chain is not None and now - chain.checked_at <= self.ttl_s
        return OfferPublic(
            machine_id="0x" + view.machine_id.hex(),
            provider=view.provider,
            region=view.region,
            gpu_model=view.gpu_model,
            gpu_count=view.gpu_count,
            memory_mib=view.memory_mib,
            compute_capability=view.compute_capability,
            labels=view.labels,
            offer_price_per_gpu_block=str(view.price),
            price_per_gpu_block=str(chain.price if chain else view.price),
            free_gpus=chain.free_gpus if chain else view.gpu_count,
            chain_checked=checked,
        )
