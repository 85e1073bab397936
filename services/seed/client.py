"""Async client for a list of seeds, failing over to the next seed when one is down.

    client = SeedClient(["10.0.0.1:7600", "10.0.0.2:7600"])
    await client.announce(signed_offer)
    async for entry in client.iter_offers(seed_pb2.OfferFilter(gpu_model="H100")): ...
    await client.close()

A seed that does not answer (UNAVAILABLE, DEADLINE_EXCEEDED) is skipped and the next one tried;
the client then sticks to the seed that answered. Any other failure is the seeds' verdict and is
raised as the matching GridleaseError (DuplicateSequence, BadSignature, NotFound, RateLimited,
...). When no seed answers, Unavailable is raised. Page tokens are portable, so paging survives a
failover.

A seed that hangs (stopped, not dead) is noticed too: every unary call carries a deadline
(timeout_s), every channel keepalive, and a watch stream asks the seed for heartbeats and is
abandoned for the next seed once silent for watch_idle_s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import grpc

from services.common import Unavailable, channel_options, error_from_rpc, get_logger
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2, seed_pb2_grpc

__all__ = ["SeedClient"]

log = get_logger(__name__)
T = TypeVar("T")
_FAILOVER_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# A watch stream silent for this many heartbeat intervals is taken for a hung seed.
_SILENT_HEARTBEATS = 3


class SeedClient:
    """Talks to whichever seed of the list answers."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout_s: float = 3.0,
        max_message_bytes: int = 16 * 1024 * 1024,
        heartbeat_s: float = 2.0,
    ) -> None:
        """timeout_s: deadline of each unary call. heartbeat_s: the heartbeat interval watch()
        asks seeds for; a stream silent for watch_idle_s (3 intervals) fails over."""
        if not endpoints:
            raise ValueError("at least one seed endpoint is needed")
        self._endpoints = list(endpoints)
        self._timeout_s = timeout_s
        self.heartbeat_s = heartbeat_s
        options = channel_options(max_message_bytes)
        self._channels = [grpc.aio.insecure_channel(e, options=options) for e in self._endpoints]
        self._stubs = [seed_pb2_grpc.SeedServiceStub(c) for c in self._channels]
        self._current = 0

    @property
    def watch_idle_s(self) -> float:
        """How long a watch stream may stay silent (no event, no heartbeat) before the seed is
        taken for hung and the next one is tried."""
        return self.heartbeat_s * _SILENT_HEARTBEATS

    @property
    def current_endpoint(self) -> str:
        """The seed the next call goes to first."""
        return self._endpoints[self._current]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)

    async def _call(self, call: Callable[[seed_pb2_grpc.SeedServiceStub], Awaitable[T]]) -> T:
        last: grpc.aio.AioRpcError | None = None
        for step in range(len(self._stubs)):
            index = (self._current + step) % len(self._stubs)
            try:
                result = await call(self._stubs[index])
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _FAILOVER_CODES:
                    raise error_from_rpc(exc) from exc
                last = exc
                log.info(
                    "seed_client.failover",
                    extra={"seed": self._endpoints[index], "code": exc.code().name},
                )
                continue
            self._current = index
            return result
        raise Unavailable(f"no seed answered of {len(self._endpoints)}") from last

    async def announce(self, signed: offer_pb2.SignedOffer) -> seed_pb2.AnnounceResponse:
        """Store a signed offer on one seed (it replicates to the others)."""
        request = seed_pb2.AnnounceRequest(signed_offer=signed)
        return await self._call(lambda stub: stub.Announce(request, timeout=self._timeout_s))

    async def get_offer(self, machine_id: bytes) -> seed_pb2.OfferEntry:
        """The machine's newest offer; NotFound when no seed-visible live offer exists."""
        request = seed_pb2.GetOfferRequest(machine_id=machine_id)
        reply: seed_pb2.GetOfferResponse = await self._call(
            lambda stub: stub.GetOffer(request, timeout=self._timeout_s)
        )
        return reply.entry

    async def list_offers(
        self,
        offer_filter: seed_pb2.OfferFilter | None = None,
        *,
        page_size: int = 100,
        page_token: str = "",
    ) -> seed_pb2.ListOffersResponse:
        """One page of matching offers."""
        request = seed_pb2.ListOffersRequest(
            filter=offer_filter, page_size=page_size, page_token=page_token
        )
        return await self._call(lambda stub: stub.ListOffers(request, timeout=self._timeout_s))

    async def iter_offers(
        self, offer_filter: seed_pb2.OfferFilter | None = None, *, page_size: int = 500
    ) -> AsyncIterator[seed_pb2.OfferEntry]:
        """Every matching offer, page by page."""
        token = ""
        while True:
            page = await self.list_offers(offer_filter, page_size=page_size, page_token=token)
            for entry in page.entries:
                yield entry
            token = page.next_page_token
            if not token:
                return

    async def watch(
        self, offer_filter: seed_pb2.OfferFilter | None = None, *, include_existing: bool = True
    ) -> AsyncIterator[seed_pb2.WatchOffersResponse]:
        """Changes from one seed, heartbeats included (OFFER_EVENT_TYPE_HEARTBEAT, so callers
        can see the stream is alive). On a broken stream, or one silent for watch_idle_s,
        resubscribes to the next seed (with include_existing, so nothing is missed; duplicates
        are possible). Raises Unavailable when every seed failed in a row."""
        failures = 0
        while failures < len(self._stubs):
            index = self._current
            request = seed_pb2.WatchOffersRequest(
                filter=offer_filter,
                include_existing=include_existing,
                heartbeat_interval_ms=int(self.heartbeat_s * 1000),
            )
            call = self._stubs[index].WatchOffers(request)
            try:
                while True:
                    try:
                        event = await asyncio.wait_for(call.read(), self.watch_idle_s)
                    except TimeoutError:
                        log.warning(
                            "seed_client.watch_silent",
                            extra={"seed": self._endpoints[index], "silent_s": self.watch_idle_s},
                        )
                        break
                    # grpc-stubs declares EOFType but not the EOF sentinel itself.
                    if event is grpc.aio.EOF:  # type: ignore[attr-defined]
                        return
                    failures = 0
                    yield event
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _FAILOVER_CODES:
                    raise error_from_rpc(exc) from exc
                log.info(
                    "seed_client.watch_failover",
                    extra={"seed": self._endpoints[index], "code": exc.code().name},
                )
            finally:
                call.cancel()
            failures += 1
            self._current = (index + 1) % len(self._stubs)
            include_existing = True
        raise Unavailable("no seed answered the watch")
