"""Anti-entropy between seeds: each round, pull from every peer what it has newer.

Per peer: send our digest root; if the peer's root matches we are in sync. Otherwise page
through its (machine_id, sequence) digest, collect machines where it holds a newer sequence or
we hold none, fetch those offers in batches and admit each one exactly as an announcement
(signature, timestamp, fields, sequence). Pull-only is enough: every seed pulls from its peers,
so an offer given to one seed reaches every seed connected to it within one round per hop.

No single record stops replication: an offer that is refused, or whose storing fails, is logged
(with its traceback when the fault is ours), counted by reason and skipped; a round that fails
is logged and counted, and the next round runs after the interval all the same.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc

from services.common import RejectedError, channel_options, get_logger, now_ms
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2, seed_pb2_grpc
from services.seed.validation import Limits, admit_offer

__all__ = ["PeerSync", "SyncResult", "sync_with_peer"]

log = get_logger(__name__)

_DIGEST_PAGE = 10_000
_FETCH_BATCH = 500

# Admits one already-decoded-and-verified offer into the store (the servicer's ingest path).
Ingest = Callable[[offer_pb2.Offer, offer_pb2.SignedOffer], Awaitable[None]]


@dataclass
class SyncResult:
    """What one round against one peer did."""

    in_sync: bool = False
    wanted: int = 0
    stored: int = 0
    # Offers not stored, by reason: a RejectedError's reason, or "error" for a fault of ours.
    skipped: Counter[str] = field(default_factory=Counter)


async def sync_with_peer(
    stub: seed_pb2_grpc.SeedServiceStub,
    *,
    local_root: bytes,
    local_sequence: Callable[[bytes], int],
    ingest: Ingest,
    limits: Limits,
    timeout_s: float,
) -> SyncResult:
    """One anti-entropy round against one peer."""
    result = SyncResult()
    wanted: list[bytes] = []
    token = ""
    while True:
        page = await stub.Digest(
            seed_pb2.DigestRequest(page_size=_DIGEST_PAGE, page_token=token, known_root=local_root),
            timeout=timeout_s,
        )
        if page.in_sync:
            result.in_sync = True
            return result
        wanted.extend(
            e.machine_id for e in page.entries if e.sequence > local_sequence(e.machine_id)
        )
        token = page.next_page_token
        if not token:
            break
    result.wanted = len(wanted)
    for start in range(0, len(wanted), _FETCH_BATCH):
        batch = wanted[start : start + _FETCH_BATCH]
        reply = await stub.FetchOffers(
            seed_pb2.FetchOffersRequest(machine_ids=batch), timeout=timeout_s
        )
        # Concurrently, so the batch shares the store's group commits.
        outcomes = await asyncio.gather(
            *(_admit(signed, ingest, limits) for signed in reply.signed_offers)
        )
        for outcome in outcomes:
            if outcome is None:
                result.stored += 1
            else:
                result.skipped[outcome] += 1
    return result


async def _admit(signed: offer_pb2.SignedOffer, ingest: Ingest, limits: Limits) -> str | None:
    """Admit and store one pulled offer; None when stored, else the reason it was skipped."""
    try:
        offer = admit_offer(signed, limits, now_ms())
        await ingest(offer, signed)
    except RejectedError as exc:
        # Expired in transit, a newer one arrived meanwhile, or a peer holds what we refuse.
        log.debug("sync.offer_skipped", extra={"reason": exc.reason})
        return exc.reason
    except Exception:  # noqa: BLE001 - one bad record must not end the round, nor the loop
        log.exception("sync.offer_failed", extra={"bytes": len(signed.offer)})
        return "error"
    return None


class PeerSync:
    """Runs sync_with_peer against every peer, every interval, until stopped."""

    def __init__(
        self,
        peers: Sequence[str],
        *,
        interval_s: float,
        max_message_bytes: int,
        round_fn: Callable[[seed_pb2_grpc.SeedServiceStub], Awaitable[SyncResult]],
        on_round: Callable[[str, str, SyncResult | None], None],
    ) -> None:
        self._peers = list(peers)
        self._interval_s = interval_s
        self._round_fn = round_fn
        self._on_round = on_round
        # A restarted peer should be retried within a round or two, not after gRPC's default
        # backoff of up to two minutes; a hung one is dropped by keepalive.
        options = channel_options(
            max_message_bytes * 16, max_reconnect_backoff_s=max(1.0, interval_s * 2)
        )
        self._channels = {p: grpc.aio.insecure_channel(p, options=options) for p in self._peers}
        self._task: asyncio.Task[None] | None = None
        self._down: set[str] = set()  # peers whose last round failed; logged on change only

    def start(self) -> None:
        if self._peers:
            self._task = asyncio.create_task(self._run(), name="seed-peer-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for channel in self._channels.values():
            await channel.close(None)

    async def run_round(self) -> None:
        """One round against every peer, concurrently; a dead peer only costs its timeout."""
        await asyncio.gather(*(self._one(peer) for peer in self._peers))

    async def _one(self, peer: str) -> None:
        try:
            result = await self._round_fn(seed_pb2_grpc.SeedServiceStub(self._channels[peer]))
        except grpc.aio.AioRpcError as exc:
            self._on_round(peer, "unreachable", None)
            if peer not in self._down:
                self._down.add(peer)
                log.warning("sync.peer_down", extra={"peer": peer, "code": exc.code().name})
            return
        except Exception:  # noqa: BLE001 - a fault in one round must not end the sync loop
            self._on_round(peer, "failed", None)
            log.exception("sync.round_failed", extra={"peer": peer})
            return
        if peer in self._down:
            self._down.discard(peer)
            log.info("sync.peer_up", extra={"peer": peer})
        self._on_round(peer, "in_sync" if result.in_sync else "pulled", result)
        if result.wanted:
            log.info(
                "sync.pulled",
                extra={
                    "peer": peer,
                    "wanted": result.wanted,
                    "stored": result.stored,
                    "skipped": dict(result.skipped),
                },
            )

    async def _run(self) -> None:
        while True:
            try:
                await self.run_round()
            except Exception:  # noqa: BLE001 - never let the loop end; the sleep is the back-off
                log.exception("sync.loop_failed")
            await asyncio.sleep(self._interval_s)
