"""Async client for a list of seeds, failing over to the next seed when one is down.

    client = SeedClient(["10.0.0.1:7600", "10.0.0.2:7600"])
    await client.announce(signed_offer)
    async for entry in client.iter_offers(seed_pb2.OfferFilter(gpu_model="H100")): ...
    await client.close()

A seed that does not answer (UNAVAILABLE, DEADLINE_EXCEEDED) is skipped and the next one tried;
the client then sticks to the seed that answered. Any other failure is the seeds' verdict and is
raised as the matching GridleaseError (DuplicateSequence, BadSignature, NotFound, ...). When no
seed answers, Unavailable is raised. Page tokens are portable, so paging survives a failover.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import grpc

from services.common import Unavailable, error_from_rpc, get_logger
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2, seed_pb2_grpc

__all__ = ["SeedClient"]

log = get_logger(__name__)
T = TypeVar("T")
_FAILOVER_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class SeedClient:
    """Talks to whichever seed of the list answers."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout_s: float = 3.0,
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one seed endpoint is needed")
        self._endpoints = list(endpoints)
        self._timeout_s = timeout_s
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            # Retry a seed that was down soon after it returns, not after minutes of backoff.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 5000),
        ]
        self._channels = [grpc.aio.insecure_channel(e, options=options) for e in self._endpoints]
        self._stubs = [seed_pb2_grpc.SeedServiceStub(c) for c in self._channels]
        self._current = 0

    @property
    def current_endpoint(self) -> str:
        """The seed the next call goes to first."""
        return self._endpoints[self._current]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

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
        reply = await self._call(lambda stub: stub.GetOffer(request, timeout=self._timeout_s))
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
        """Changes from one seed; on a broken stream, resubscribes to the next seed (with
        include_existing, so nothing is missed; duplicates are possible)."""
        failures = 0
        while failures < len(self._stubs):
            stub = self._stubs[self._current]
            request = seed_pb2.WatchOffersRequest(
                filter=offer_filter, include_existing=include_existing
            )
            try:
                async for event in stub.WatchOffers(request):
                    failures = 0
                    yield event
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _FAILOVER_CODES:
                    raise error_from_rpc(exc) from exc
                failures += 1
                self._current = (self._current + 1) % len(self._stubs)
                include_existing = True
        raise Unavailable("no seed answered the watch")
