"""Keeps the OfferIndex current from the seeds: a full load (ListOffers pages), then the
WatchOffers stream; on a lost stream, backs off and starts over (the reload drops offers that
expired meanwhile). Level-triggered: replaying an offer changes nothing.

The stream is alive while messages come: offers, or the heartbeats seeds send on a quiet
stream. The seed client abandons a stream silent for its watch_idle_s for the next seed, and
`status()` (readiness) reports a watch that has been silent that long, so a seed that hangs
rather than dies is noticed within seconds. One bad event is logged, counted and skipped; it
never stops the watch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from services.common import GridleaseError, get_logger, new_registry
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2
from services.customer_api.offers.index import OfferIndex
from services.seed.client import SeedClient

__all__ = ["OfferWatcher"]

log = get_logger(__name__)
_MAX_BACKOFF_S = 30.0


class OfferWatcher:
    """Feeds index from seeds. `fresh(max_age_s)` says whether searches can trust the index,
    `status()` whether the watch is alive (readiness)."""

    def __init__(
        self,
        seeds: SeedClient,
        index: OfferIndex,
        *,
        retry_s: float = 1.0,
        verify: Callable[[], Coroutine[Any, Any, None]] | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """verify: a coroutine run beside the watch for as long as run() runs (the offers'
        chain checks, OfferSearch.verify_loop). registry: where the skipped-events counter
        goes."""
        self.seeds = seeds
        self.index = index
        self.retry_s = retry_s
        self.streaming = False
        self._verify = verify
        self._clock = clock
        self._last_message: float | None = None  # monotonic; a page, an event or a heartbeat
        self.skipped = Counter(
            "gridlease_api_offer_events_skipped",
            "Offers from seeds that could not be applied to the index (logged with traceback).",
            registry=registry or new_registry(),
        )

    def silent_s(self) -> float | None:
        """Seconds since the seeds last sent anything; None before the first message."""
        return None if self._last_message is None else self._clock() - self._last_message

    def fresh(self, max_age_s: float) -> bool:
        """True when the seeds sent something within max_age_s (a live stream sends at least a
        heartbeat every few seconds)."""
        silent = self.silent_s()
        return silent is not None and silent < max_age_s

    def status(self) -> str:
        """ "ok" while the watch stream is open and not silent for longer than the seed client
        tolerates; otherwise "unavailable: <why>"."""
        silent = self.silent_s()
        if not self.streaming:
            return "unavailable: not watching any seed"
        if silent is None or silent > self.seeds.watch_idle_s:
            return f"unavailable: watch silent for {silent or 0:.1f} s"
        return "ok"

    async def wait_streaming(self, timeout_s: float) -> bool:
        """Wait up to timeout_s for a live watch (at start-up); True when status() is ok."""
        deadline = self._clock() + timeout_s
        while self.status() != "ok" and self._clock() < deadline:
            await asyncio.sleep(0.05)
        return self.status() == "ok"

    def _mark(self) -> None:
        self._last_message = self._clock()

    async def load(self) -> int:
        """One full pass over the seeds' offers; drops what they no longer hold."""
        seen: list[bytes] = []
        async for entry in self.seeds.iter_offers(page_size=1000):
            self._mark()
            self._apply_offer(entry.offer)
            seen.append(bytes(entry.offer.machine_id))
        self.index.retain(seen)
        return len(seen)

    async def run(self) -> None:
        """Forever: load, then follow the stream; cancel the task to stop."""
        verifier: asyncio.Task[None] | None = None
        if self._verify is not None:
            verifier = asyncio.create_task(self._verify(), name="offers-verify")
        failures = 0
        try:
            while True:
                try:
                    count = await self.load()
                    self._mark()
                    log.info("offers.synced", extra={"offers": count})
                    failures = 0
                    self.streaming = True
                    async for event in self.seeds.watch(include_existing=True):
                        self._mark()
                        self.apply(event)
                except GridleaseError as exc:
                    log.warning("offers.seeds_lost", extra={"error": str(exc)})
                except Exception:  # noqa: BLE001 - the watch must outlive any one failure
                    log.exception("offers.watch_failed")
                self.streaming = False
                failures += 1
                await asyncio.sleep(min(_MAX_BACKOFF_S, self.retry_s * 2 ** (failures - 1)))
        finally:
            self.streaming = False
            if verifier is not None:
                verifier.cancel()

    def apply(self, event: seed_pb2.WatchOffersResponse) -> None:
        """Apply one change (heartbeats change nothing)."""
        if event.type == seed_pb2.OFFER_EVENT_TYPE_STORED:
            self._apply_offer(event.entry.offer)
        elif event.type == seed_pb2.OFFER_EVENT_TYPE_EXPIRED:
            offer = event.entry.offer
            held = self.index.get(bytes(offer.machine_id))
            if held is not None and held[0].sequence <= offer.sequence:
                self.index.remove(bytes(offer.machine_id))

    def _apply_offer(self, offer: offer_pb2.Offer) -> None:
        try:
            self.index.upsert(offer)
        except Exception:  # noqa: BLE001 - one bad offer must not stop the watch
            self.skipped.inc()
            log.exception("offers.offer_skipped", extra={"machine_id": offer.machine_id.hex()})
