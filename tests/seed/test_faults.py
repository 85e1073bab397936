"""Seeds under bad input and bad peers, over real processes: numbers out of range, undecodable
requests, a record a peer holds but we refuse, floods from one source, and a seed that hangs
(SIGSTOP) under a client's watch and calls."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common import REASON_KEY, RateLimited
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2
from services.seed.client import SeedClient

from .harness import SeedProcess, free_port, make_offer, wait_until

Code = grpc.StatusCode
Spawn = Callable[..., list[SeedProcess]]


def _refusal(call: Callable[[], Any]) -> tuple[Code, str | None]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error: Any = info.value
    return error.code(), dict(error.trailing_metadata() or ()).get(REASON_KEY)


def _announce(seed: SeedProcess, signed: offer_pb2.SignedOffer) -> seed_pb2.AnnounceResponse:
    request = seed_pb2.AnnounceRequest(signed_offer=signed)
    reply: seed_pb2.AnnounceResponse = seed.stub().Announce(request, timeout=5)
    return reply


def _machine_ids(seed: SeedProcess) -> set[bytes]:
    page = seed.stub().Digest(seed_pb2.DigestRequest(), timeout=5)
    return {e.machine_id for e in page.entries}


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


@pytest.fixture
def seed(tmp_path: Path) -> Iterator[SeedProcess]:
    process = SeedProcess(tmp_path / "seed").start()
    yield process
    process.kill()


# -- item 18: numbers out of range -------------------------------------------------------------
def test_sequence_2_63_is_refused_and_replication_goes_on(spawn_mesh: Spawn) -> None:
    a, b = spawn_mesh(2)
    huge, _ = make_offer(sequence=2**63)
    huge_id = offer_pb2.Offer.FromString(huge.offer).machine_id
    assert _refusal(lambda: _announce(a, huge)) == (Code.INVALID_ARGUMENT, "malformed")
    assert a.get(huge_id) is None
    # Replication keeps going: every later offer reaches B, and both hold the same set.
    later = {_announce(a, make_offer(sequence=2**63 - 1)[0]).machine_id for _ in range(3)}
    wait_until(lambda: later <= _machine_ids(b), what="later offers on B")
    assert _machine_ids(a) == _machine_ids(b) == later


def test_peer_record_we_refuse_is_skipped_counted_and_sync_goes_on(tmp_path: Path) -> None:
    # Seed A holds a record no seed admits today (written by an older version: sequence 2^63
    # in the signed bytes). B pulls from A: it must skip that one, count it, and keep pulling.
    a = SeedProcess(tmp_path / "a").start()
    a.kill()
    bad, _ = make_offer(sequence=2**63)
    bad_id = offer_pb2.Offer.FromString(bad.offer).machine_id
    with sqlite3.connect(tmp_path / "a" / "offers.db") as db:
        db.execute(
            "INSERT INTO offers (machine_id, sequence, timestamp_ms, signed_offer) "
            "VALUES (?, 1, ?, ?)",
            (bad_id, int(time.time() * 1000), bad.SerializeToString(deterministic=True)),
        )
    a.start()
    metrics_port = free_port()
    b = SeedProcess(tmp_path / "b", peers=[a.endpoint], metrics_port=metrics_port).start()
    try:
        good = _announce(a, make_offer()[0]).machine_id
        wait_until(lambda: b.get(good), what="good offer on B")
        wait_until(
            lambda: (
                'gridlease_seed_sync_offers_skipped_total{reason="malformed"}'
                in _metrics(metrics_port)
            ),
            what="skipped offer counted",
        )
        assert b.get(bad_id) is None
        later = _announce(a, make_offer()[0]).machine_id  # the loop is still alive
        wait_until(lambda: b.get(later), what="later offer on B")
    finally:
        a.kill()
        b.kill()


@pytest.mark.parametrize("price", ["9" * 5000, "\u0661\u0662", "01", str(2**128)])
def test_filter_price_out_of_range_is_invalid_argument(seed: SeedProcess, price: str) -> None:
    request_filter = seed_pb2.OfferFilter(max_price_per_gpu_per_block=price)
    stub = seed.stub()
    listed = seed_pb2.ListOffersRequest(filter=request_filter)
    assert _refusal(lambda: stub.ListOffers(listed, timeout=5)) == (
        Code.INVALID_ARGUMENT,
        "malformed",
    )
    watched = seed_pb2.WatchOffersRequest(filter=request_filter)
    assert _refusal(lambda: list(stub.WatchOffers(watched, timeout=5))) == (
        Code.INVALID_ARGUMENT,
        "malformed",
    )


@pytest.mark.parametrize(
    "method", ["Announce", "GetOffer", "ListOffers", "WatchOffers", "Digest", "FetchOffers"]
)
def test_undecodable_request_is_invalid_argument(seed: SeedProcess, method: str) -> None:
    channel = seed.channel()
    make = channel.unary_stream if method == "WatchOffers" else channel.unary_unary
    call = make(
        f"/gridlease.v1.SeedService/{method}",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )

    def invoke() -> Any:
        reply = call(b"\xff" * 16, timeout=5)
        return list(reply) if method == "WatchOffers" else reply

    assert _refusal(invoke) == (Code.INVALID_ARGUMENT, "malformed")
    seed.wait_ready(timeout_s=5)


# -- item 19: what one source may push -----------------------------------------------------------
def test_one_source_is_bounded(tmp_path: Path) -> None:
    # Offers of fresh keys (each a new machine) from one address are refused after the
    # address's burst (the refill rate here is negligible, so the count is exact), with a
    # reason; what was taken is all held.
    metrics_port = free_port()
    env = {
        "GRIDLEASE_SEED_ANNOUNCE_RATE_PER_SOURCE": "0.001",
        "GRIDLEASE_SEED_ANNOUNCE_BURST_PER_SOURCE": "5",
    }
    seed = SeedProcess(tmp_path / "s", env=env, metrics_port=metrics_port).start()
    try:
        outcomes = []
        for _ in range(8):
            try:
                _announce(seed, make_offer()[0])
                outcomes.append("accepted")
            except grpc.RpcError as exc:
                error: Any = exc
                reason = dict(error.trailing_metadata() or ()).get(REASON_KEY)
                outcomes.append(f"{error.code().name}/{reason}")
        assert outcomes == ["accepted"] * 5 + ["RESOURCE_EXHAUSTED/rate_limited"] * 3
        assert len(_machine_ids(seed)) == 5
        counted = 'gridlease_seed_announcements_total{reason="rate_limited",result="rejected"} 3.0'
        assert counted in _metrics(metrics_port)
    finally:
        seed.kill()


def test_one_machine_is_bounded_and_forgers_cannot_spend_its_budget(tmp_path: Path) -> None:
    env = {
        "GRIDLEASE_SEED_ANNOUNCE_RATE_PER_MACHINE": "0.001",
        "GRIDLEASE_SEED_ANNOUNCE_BURST_PER_MACHINE": "2",
    }
    seed = SeedProcess(tmp_path / "s", env=env).start()
    try:
        first, key = make_offer(sequence=1)
        # Offers claiming the machine with a bad signature are refused before its budget.
        for sequence in (10, 11, 12):
            forged, _ = make_offer(key, sequence=sequence)
            forged.signature = bytes(64)
            assert _refusal(lambda f=forged: _announce(seed, f)) == (
                Code.INVALID_ARGUMENT,
                "bad_signature",
            )
        _announce(seed, first)
        _announce(seed, make_offer(key, sequence=2)[0])
        third = make_offer(key, sequence=3)[0]
        assert _refusal(lambda: _announce(seed, third)) == (
            Code.RESOURCE_EXHAUSTED,
            "rate_limited",
        )
        _announce(seed, make_offer()[0])  # another machine has its own budget

        async def through_client() -> None:
            client = SeedClient([seed.endpoint])
            try:
                await client.announce(third)
            finally:
                await client.close()

        with pytest.raises(RateLimited):  # the client names it, it does not fail over
            asyncio.run(through_client())
    finally:
        seed.kill()


# -- item 12: a seed that hangs ----------------------------------------------------------------
def test_watch_sends_heartbeats_on_a_quiet_stream(seed: SeedProcess) -> None:
    request = seed_pb2.WatchOffersRequest(include_existing=True, heartbeat_interval_ms=200)
    stream = seed.stub().WatchOffers(request, timeout=30)
    try:
        kinds = [next(stream).type for _ in range(3)]
    finally:
        stream.cancel()
    assert kinds == [seed_pb2.OFFER_EVENT_TYPE_HEARTBEAT] * 3


def test_hung_seed_client_fails_over_watch_and_calls(spawn_mesh: Spawn) -> None:
    a, b = spawn_mesh(2)
    existing = _announce(a, make_offer()[0]).machine_id
    wait_until(lambda: b.get(existing), what="offer replicated to B")

    async def scenario() -> tuple[float, str, int]:
        client = SeedClient([a.endpoint, b.endpoint], timeout_s=1.0, heartbeat_s=0.5)
        try:
            stream = client.watch(include_existing=True)
            async for event in stream:
                if event.entry.offer.machine_id == existing:
                    break
            a.pause()
            stopped = time.monotonic()
            fresh = _announce(b, make_offer()[0]).machine_id
            async for event in stream:
                if event.entry.offer.machine_id == fresh:
                    break
            failed_over_s = time.monotonic() - stopped
            await stream.aclose()
            # A unary call costs the hung seed at most its deadline, then sticks to B.
            page = await client.list_offers(page_size=10)
            return failed_over_s, client.current_endpoint, len(page.entries)
        finally:
            await client.close()

    try:
        failed_over_s, endpoint, listed = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    finally:
        a.kill()
    assert failed_over_s < 10.0  # the bound; it takes about 3 heartbeats (1.5 s) here
    assert endpoint == b.endpoint and listed == 2
