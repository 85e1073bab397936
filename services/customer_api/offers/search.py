"""Offer search: the index answers, then the machines on the page are checked against the chain
(reused for chain_state_ttl_s) and the search is repeated if the chain changed the answer."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.common._chain import ChainMachine
from services.customer_api.models import (
    FilterExclusion,
    NearestOffer,
    NoMatch,
    OfferPublic,
    OffersPublic,
)
from services.customer_api.offers.index import ChainView, Hit, OfferIndex, OfferQuery, SearchResult

__all__ = ["ChainReader", "OfferSearch"]

ChainReader = Callable[[list[bytes]], dict[bytes, ChainMachine | None]]
_ROUNDS = 3


class OfferSearch:
    def __init__(
        self,
        index: OfferIndex,
        read_machines: ChainReader,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self.read_machines = read_machines
        self.ttl_s = ttl_s
        self.clock = clock

    def _stale(self, hit: Hit, now: float) -> bool:
        return hit.chain is None or now - hit.chain.checked_at > self.ttl_s

    def search(self, query: OfferQuery) -> SearchResult:
        """Search, refreshing the chain state of what is shown (ChainUnavailable propagates)."""
        result = self.index.search(query)
        for _ in range(_ROUNDS):
            now = self.clock()
            stale = [
                h.offer.machine_id for h in (*result.hits, *result.nearest) if self._stale(h, now)
            ]
            if not stale:
                break
            machines = self.read_machines(stale)
            checked = self.clock()
            for machine_id, machine in machines.items():
                self.index.set_chain(machine_id, ChainView.of(machine, checked))
            result = self.index.search(query)
        return result

    def one(self, machine_id: bytes) -> OfferPublic | None:
        """One machine's offer with its chain state read now."""
        held = self.index.get(machine_id)
        if held is None:
            return None
        machines = self.read_machines([machine_id])
        view = ChainView.of(machines.get(machine_id), self.clock())
        self.index.set_chain(machine_id, view)
        return self.offer_public(Hit(held[0], view), self.clock())

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
