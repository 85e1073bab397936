"""Keeps the OfferIndex current from the seeds: a full load (ListOffers pages), then the
WatchOffers stream; on a lost stream, waits and starts over (the reload drops offers that
expired meanwhile). Level-triggered: replaying an offer changes nothing."""

from __future__ import annotations

import asyncio
import time

from services.common import GridleaseError, get_logger
from services.common.grpc_gen.gridlease.v1 import seed_pb2
from services.customer_api.offers.index import OfferIndex
from services.seed.client import SeedClient

__all__ = ["OfferWatcher"]

log = get_logger(__name__)


class OfferWatcher:
    """Feeds index from seeds. `fresh(max_age_s)` says whether searches can trust the index."""

    def __init__(self, seeds: SeedClient, index: OfferIndex, *, retry_s: float = 1.0) -> None:
        self.seeds = seeds
        self.index = index
        self.retry_s = retry_s
        self.connected = False
        self._lost_at: float | None = None
        self._synced_once = False

    def fresh(self, max_age_s: float) -> bool:
        """True while the stream is up, or lost for less than max_age_s after a sync."""
        if self.connected:
            return True
        if not self._synced_once or self._lost_at is None:
            return False
        return time.monotonic() - self._lost_at < max_age_s

    async def load(self) -> int:
        """One full pass over the seeds' offers; drops what they no longer hold."""
        seen: list[bytes] = []
        async for entry in self.seeds.iter_offers(page_size=1000):
            self.index.upsert(entry.offer)
            seen.append(bytes(entry.offer.machine_id))
        self.index.retain(seen)
        return len(seen)

    async def run(self) -> None:
        """Forever: load, then follow the stream; cancel the task to stop."""
        while True:
            try:
                count = await self.load()
                self.connected = True
                self._synced_once = True
                log.info("offers.synced", extra={"offers": count})
                async for event in self.seeds.watch(include_existing=True):
                    self.apply(event)
            except GridleaseError as exc:
                log.warning("offers.seeds_lost", extra={"error": str(exc)})
            if self.connected:
                self.connected = False
                self._lost_at = time.monotonic()
            await asyncio.sleep(self.retry_s)

    def apply(self, event: seed_pb2.WatchOffersResponse) -> None:
        offer = event.entry.offer
        if event.type == seed_pb2.OFFER_EVENT_TYPE_STORED:
            self.index.upsert(offer)
        elif event.type == seed_pb2.OFFER_EVENT_TYPE_EXPIRED:
            held = self.index.get(bytes(offer.machine_id))
            if held is not None and held[0].sequence <= offer.sequence:
                self.index.remove(bytes(offer.machine_id))
