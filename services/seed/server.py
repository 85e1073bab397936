"""The seed process: a thin gRPC servicer over store/validation/replication, plus lifecycle
(health, metrics, peer sync, expiry, graceful stop)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import grpc

from services.common import (
    GridleaseError,
    MalformedMessage,
    MetricsServer,
    NotFound,
    RateLimited,
    abort_with,
    add_health,
    configure_logging,
    get_logger,
    new_server,
    now_ms,
    set_serving,
    start_metrics_server,
)
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2, seed_pb2_grpc
from services.seed.metrics import SeedMetrics
from services.seed.ratelimit import TokenBuckets, peer_host
from services.seed.replication import PeerSync, SyncResult, sync_with_peer
from services.seed.settings import SeedSettings
from services.seed.store import OfferFilterSpec, OfferRecord, OfferStore
from services.seed.validation import Limits, admit_offer, parse_price, reject_unknown_fields
from services.seed.watch import HEARTBEAT, WatcherOverflow, watch

__all__ = ["SERVICE_NAME", "SeedNode", "SeedServicer", "serve"]

log = get_logger(__name__)
SERVICE_NAME = seed_pb2.DESCRIPTOR.services_by_name["SeedService"].full_name
_MAX_PAGE = 1000
_MAX_DIGEST_PAGE = 10_000
_MAX_FETCH = 1000
_EVENT_TYPES = {
    "stored": seed_pb2.OFFER_EVENT_TYPE_STORED,
    "expired": seed_pb2.OFFER_EVENT_TYPE_EXPIRED,
}
# Heartbeat intervals a watcher may ask for: often enough to notice a hung seed within seconds,
# not so often that idle streams cost anything.
_MIN_HEARTBEAT_MS = 200
_MAX_HEARTBEAT_MS = 60_000


def _entry(rec: OfferRecord) -> seed_pb2.OfferEntry:
    signed = rec.signed()
    return seed_pb2.OfferEntry(offer=offer_pb2.Offer.FromString(signed.offer), signed_offer=signed)


def _machine_id(raw: bytes) -> bytes:
    if len(raw) != 32:
        raise MalformedMessage("machine_id must be 32 bytes")
    return raw


def _page_token(token: str) -> bytes:
    """Page tokens are the hex machine_id to continue after, so any seed can serve the next page."""
    if not token:
        return b""
    try:
        after = bytes.fromhex(token)
    except ValueError as exc:
        raise MalformedMessage("bad page_token") from exc
    return _machine_id(after)


def _filter_spec(f: seed_pb2.OfferFilter) -> OfferFilterSpec:
    price = f.max_price_per_gpu_per_block
    return OfferFilterSpec(
        gpu_model=f.gpu_model,
        min_gpu_count=f.min_gpu_count,
        min_memory_mib=f.min_memory_mib,
        max_price=parse_price(price, "max_price_per_gpu_per_block") if price else None,
        region=f.region,
        labels=dict(f.labels),
    )


def _heartbeat_s(interval_ms: int) -> float | None:
    if not interval_ms:
        return None
    return min(max(interval_ms, _MIN_HEARTBEAT_MS), _MAX_HEARTBEAT_MS) / 1000


class SeedServicer(seed_pb2_grpc.SeedServiceServicer):  # type: ignore[misc]  # generated base is untyped
    """Translates RPCs to store/validation calls and GridleaseErrors to gRPC statuses.

    Announcements are rate limited per peer address (checked first, before any work) and per
    machine (after the signature is verified, so nobody can spend another machine's budget).
    """

    def __init__(
        self,
        store: OfferStore,
        limits: Limits,
        metrics: SeedMetrics,
        *,
        per_source: TokenBuckets | None = None,
        per_machine: TokenBuckets | None = None,
    ) -> None:
        self._store = store
        self._limits = limits
        self._metrics = metrics
        unlimited = TokenBuckets(0, 1)
        self._per_source = unlimited if per_source is None else per_source
        self._per_machine = unlimited if per_machine is None else per_machine

    def _live(self, rec: OfferRecord | None, now: int) -> bool:
        # Expiry also runs periodically; checking here makes reads exact between sweeps.
        return rec is not None and rec.timestamp_ms + self._limits.ttl_ms > now

    async def ingest(self, offer: offer_pb2.Offer, signed: offer_pb2.SignedOffer) -> None:
        """Store an admitted offer (announced or replicated); raises on an old sequence."""
        await self._store.put(OfferRecord.from_offer(offer, signed))

    async def Announce(
        self,
        request: seed_pb2.AnnounceRequest,
        context: grpc.aio.ServicerContext[seed_pb2.AnnounceRequest, seed_pb2.AnnounceResponse],
    ) -> seed_pb2.AnnounceResponse:
        with self._metrics.rpc_seconds.labels("Announce").time():
            try:
                offer = await self._announce(request, peer_host(context.peer()))
            except GridleaseError as exc:
                self._metrics.announcements.labels("rejected", exc.reason).inc()
                await abort_with(context, exc)
            except Exception:
                # Not a verdict on the input: a fault of ours. The server's guard logs the
                # traceback and answers INTERNAL.
                self._metrics.announcements.labels("failed", "internal").inc()
                raise
            self._metrics.announcements.labels("accepted", "").inc()
            return seed_pb2.AnnounceResponse(machine_id=offer.machine_id, sequence=offer.sequence)

    async def _announce(self, request: seed_pb2.AnnounceRequest, source: str) -> offer_pb2.Offer:
        _take(self._per_source, source, f"announcements from {source}")
        reject_unknown_fields(request)
        if not request.HasField("signed_offer"):
            raise MalformedMessage("signed_offer is required")
        offer = admit_offer(request.signed_offer, self._limits, now_ms())
        _take(self._per_machine, offer.machine_id, f"announcements of 0x{offer.machine_id.hex()}")
        await self.ingest(offer, request.signed_offer)
        return offer

    async def GetOffer(
        self,
        request: seed_pb2.GetOfferRequest,
        context: grpc.aio.ServicerContext[seed_pb2.GetOfferRequest, seed_pb2.GetOfferResponse],
    ) -> seed_pb2.GetOfferResponse:
        with self._metrics.rpc_seconds.labels("GetOffer").time():
            try:
                reject_unknown_fields(request)
                rec = self._store.get(_machine_id(request.machine_id))
                if rec is None or not self._live(rec, now_ms()):
                    raise NotFound("no live offer for this machine")
            except GridleaseError as exc:
                await abort_with(context, exc)
            assert rec is not None  # abort_with raised otherwise
            return seed_pb2.GetOfferResponse(entry=_entry(rec))

    async def ListOffers(
        self,
        request: seed_pb2.ListOffersRequest,
        context: grpc.aio.ServicerContext[seed_pb2.ListOffersRequest, seed_pb2.ListOffersResponse],
    ) -> seed_pb2.ListOffersResponse:
        with self._metrics.rpc_seconds.labels("ListOffers").time():
            try:
                reject_unknown_fields(request)
                spec = _filter_spec(request.filter)
                after = _page_token(request.page_token)
            except GridleaseError as exc:
                await abort_with(context, exc)
            limit = min(request.page_size or 100, _MAX_PAGE)
            now = now_ms()
            found, next_after = self._store.query(
                lambda rec: self._live(rec, now) and spec.matches(rec), after=after, limit=limit
            )
            return seed_pb2.ListOffersResponse(
                entries=[_entry(rec) for rec in found], next_page_token=next_after.hex()
            )

    async def WatchOffers(
        self,
        request: seed_pb2.WatchOffersRequest,
        context: grpc.aio.ServicerContext[
            seed_pb2.WatchOffersRequest, seed_pb2.WatchOffersResponse
        ],
    ) -> AsyncIterator[seed_pb2.WatchOffersResponse]:
        try:
            reject_unknown_fields(request)
            spec = _filter_spec(request.filter)
        except GridleaseError as exc:
            await abort_with(context, exc)
        heartbeat = seed_pb2.WatchOffersResponse(type=seed_pb2.OFFER_EVENT_TYPE_HEARTBEAT)
        try:
            async for kind, rec in watch(
                self._store,
                spec,
                include_existing=request.include_existing,
                heartbeat_s=_heartbeat_s(request.heartbeat_interval_ms),
            ):
                if kind == HEARTBEAT or rec is None:
                    yield heartbeat
                else:
                    yield seed_pb2.WatchOffersResponse(type=_EVENT_TYPES[kind], entry=_entry(rec))
        except WatcherOverflow as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))

    async def Digest(
        self,
        request: seed_pb2.DigestRequest,
        context: grpc.aio.ServicerContext[seed_pb2.DigestRequest, seed_pb2.DigestResponse],
    ) -> seed_pb2.DigestResponse:
        with self._metrics.rpc_seconds.labels("Digest").time():
            try:
                reject_unknown_fields(request)
                after = _page_token(request.page_token)
            except GridleaseError as exc:
                await abort_with(context, exc)
            root = self._store.root()
            if request.known_root == root:
                return seed_pb2.DigestResponse(root=root, in_sync=True)
            limit = min(request.page_size or _MAX_DIGEST_PAGE, _MAX_DIGEST_PAGE)
            entries: list[seed_pb2.DigestEntry] = []
            next_token = ""
            for rec in self._store.scan(after):
                if len(entries) == limit:
                    next_token = entries[-1].machine_id.hex()
                    break
                entries.append(
                    seed_pb2.DigestEntry(machine_id=rec.machine_id, sequence=rec.sequence)
                )
            return seed_pb2.DigestResponse(entries=entries, next_page_token=next_token, root=root)

    async def FetchOffers(
        self,
        request: seed_pb2.FetchOffersRequest,
        context: grpc.aio.ServicerContext[
            seed_pb2.FetchOffersRequest, seed_pb2.FetchOffersResponse
        ],
    ) -> seed_pb2.FetchOffersResponse:
        with self._metrics.rpc_seconds.labels("FetchOffers").time():
            try:
                reject_unknown_fields(request)
                if len(request.machine_ids) > _MAX_FETCH:
                    raise MalformedMessage(f"at most {_MAX_FETCH} machine_ids per call")
            except GridleaseError as exc:
                await abort_with(context, exc)
            now = now_ms()
            found = [self._store.get(mid) for mid in request.machine_ids]
            return seed_pb2.FetchOffersResponse(
                signed_offers=[rec.signed() for rec in found if rec and self._live(rec, now)]
            )


class SeedNode:
    """One seed: store, gRPC server (SeedService + health), peer sync, expiry and /metrics."""

    def __init__(self, settings: SeedSettings, metrics: SeedMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or SeedMetrics()
        self.limits = Limits(
            max_offer_bytes=settings.max_offer_bytes,
            ttl_ms=int(settings.offer_ttl_s * 1000),
            max_skew_ms=int(settings.max_clock_skew_s * 1000),
        )
        self.store = OfferStore(settings.db_path)
        self.servicer = SeedServicer(
            self.store,
            self.limits,
            self.metrics,
            per_source=TokenBuckets(
                settings.announce_rate_per_source, settings.announce_burst_per_source
            ),
            per_machine=TokenBuckets(
                settings.announce_rate_per_machine, settings.announce_burst_per_machine
            ),
        )
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._sync: PeerSync | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._metrics_server: MetricsServer | None = None

    async def start(self) -> int:
        """Open the store, start serving, start background loops; returns the bound port."""
        s = self.settings
        await self.store.open()
        self.metrics.track_offers(lambda: len(self.store))
        server = new_server(s.max_message_bytes)
        seed_pb2_grpc.add_SeedServiceServicer_to_server(self.servicer, server)
        self._health = add_health(server)
        self.port = server.add_insecure_port(s.listen)
        await server.start()
        self._server = server
        await set_serving(self._health, SERVICE_NAME, up=True)
        self._sync = PeerSync(
            s.peers,
            interval_s=s.sync_interval_s,
            max_message_bytes=s.max_message_bytes,
            round_fn=self._sync_round,
            on_round=self._on_round,
        )
        self._sync.start()
        self._pruner = asyncio.create_task(self._prune_loop(), name="seed-pruner")
        if s.metrics_port is not None:
            self._metrics_server = start_metrics_server(
                self.metrics.registry, s.metrics_port, s.metrics_host
            )
        log.info(
            "seed.started",
            extra={
                "listen": s.listen,
                "port": self.port,
                "peers": s.peers,
                "offers": len(self.store),
                "metrics_port": self._metrics_server.port if self._metrics_server else None,
            },
        )
        return self.port

    async def stop(self) -> None:
        """Graceful stop: NOT_SERVING, let RPCs finish within grace, then flush and close."""
        if self._server is None:
            return
        await set_serving(self._health, SERVICE_NAME, up=False)
        if self._sync is not None:
            await self._sync.stop()
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.gather(self._pruner, return_exceptions=True)
        await self._server.stop(self.settings.grace_s)
        self._server = None
        await self.store.close()
        if self._metrics_server is not None:
            self._metrics_server.stop()
        log.info("seed.stopped", extra={"port": self.port})

    async def _sync_round(self, stub: seed_pb2_grpc.SeedServiceStub) -> SyncResult:
        def local_sequence(machine_id: bytes) -> int:
            rec = self.store.get(machine_id)
            return rec.sequence if rec else 0

        return await sync_with_peer(
            stub,
            local_root=self.store.root(),
            local_sequence=local_sequence,
            ingest=self.servicer.ingest,
            limits=self.limits,
            timeout_s=max(self.settings.sync_interval_s * 5, 5.0),
        )

    def _on_round(self, peer: str, outcome: str, result: SyncResult | None) -> None:
        self.metrics.sync_rounds.labels(peer, outcome).inc()
        if result is None:
            return
        if result.stored:
            self.metrics.replicated.inc(result.stored)
        for reason, count in result.skipped.items():
            self.metrics.sync_skipped.labels(reason).inc(count)

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.prune_interval_s)
            try:
                gone = await self.store.expire(now_ms() - self.limits.ttl_ms)
            except Exception:  # noqa: BLE001 - retried next interval (the back-off)
                log.exception("store.expire_failed")
                continue
            if gone:
                log.info("store.expired", extra={"count": len(gone)})


def _take(buckets: TokenBuckets, key: str | bytes, what: str) -> None:
    wait_s = buckets.take(key)
    if wait_s:
        raise RateLimited(
            f"{what} over {buckets.rate_per_s:g}/s (burst {buckets.burst:g}); "
            f"retry in {wait_s:.2f} s",
            retry_after_s=wait_s,
        )


async def serve(settings: SeedSettings) -> None:
    """Run a seed until SIGINT/SIGTERM, then stop gracefully."""
    configure_logging("seed", settings.log_level)
    node = SeedNode(settings)
    await node.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await node.stop()
