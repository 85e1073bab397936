"""The API's offer watch against real seed processes, one of them hung with SIGSTOP: the watch
fails over within 10 s, readiness notices a frozen watch, and an odd offer never stops it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from fastapi.testclient import TestClient

from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2, seed_pb2_grpc
from services.customer_api.main import create_app
from services.customer_api.offers.index import OfferIndex
from services.customer_api.offers.watcher import OfferWatcher
from services.seed.client import SeedClient
from tests.customer_api.conftest import api_settings
from tests.seed.harness import SeedProcess, free_port, make_offer, start_mesh, wait_until
from tests.utils.api_db import new_sqlite_database


def _announce(seed: SeedProcess) -> bytes:
    signed, _ = make_offer()
    with grpc.insecure_channel(seed.endpoint) as channel:
        stub = seed_pb2_grpc.SeedServiceStub(channel)
        stub.Announce(seed_pb2.AnnounceRequest(signed_offer=signed), timeout=5)
    return bytes(offer_pb2.Offer.FromString(signed.offer).machine_id)


async def _until(check: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


def test_watch_fails_over_from_hung_seed_within_10s(tmp_path: Path) -> None:
    a, b = start_mesh(tmp_path, 2)
    try:
        first = _announce(a)
        wait_until(lambda: b.get(first), what="offer replicated to B")

        async def scenario() -> tuple[float, str]:
            # The API's own defaults: heartbeats every 2 s, a stream silent for 6 s fails over.
            seeds = SeedClient([a.endpoint, b.endpoint])
            index = OfferIndex()
            watcher = OfferWatcher(seeds, index, retry_s=0.2)
            task = asyncio.create_task(watcher.run())
            try:
                await _until(
                    lambda: index.get(first) and watcher.status() == "ok", "watch on seed A"
                )
                a.pause()
                stopped = time.monotonic()
                fresh = await asyncio.to_thread(_announce, b)
                await _until(lambda: index.get(fresh), "offer announced to B in the index")
                return time.monotonic() - stopped, watcher.status()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await seeds.close()

        failed_over_s, status = asyncio.run(scenario())
    finally:
        a.kill()
        b.kill()
    assert failed_over_s < 10.0, failed_over_s
    assert status == "ok"


def test_readyz_notices_a_frozen_watch(tmp_path: Path) -> None:
    seed = SeedProcess(tmp_path / "seed").start()
    settings = api_settings(
        database_url=new_sqlite_database(tmp_path),
        chain_url=f"ws://127.0.0.1:{free_port()}",  # not needed here; its check fails apart
        seed_endpoints=[seed.endpoint],
        indexer_enabled=False,
        delivery_enabled=False,
    )

    def seeds_check(client: TestClient) -> str:
        return str(client.get("/readyz").json()["checks"]["seeds"])

    try:
        with TestClient(create_app(settings)) as client:
            wait_until(lambda: seeds_check(client) == "ok", what="seeds ok")
            seed.pause()  # up at the TCP level, answers nothing: no error ever reaches the API
            # First the watch goes silent, then the seed client gives up on the stream and the
            # watcher on the seed (no other seed to fail over to): not ready either way.
            silent = wait_until(
                lambda: (c := seeds_check(client)).startswith("unavailable") and c,
                what="readiness to notice the frozen watch",
            )
            seed.resume()
            wait_until(lambda: seeds_check(client) == "ok", what="seeds ok again")
    finally:
        seed.kill()
    # Either stage names the fault (no raw gRPC error text).
    assert silent == "unavailable: not watching any seed" or silent.startswith(
        "unavailable: watch silent for "
    )


def test_offer_with_numbers_beyond_int64_does_not_stop_the_watch() -> None:
    # A seed is trusted to check signatures, not to keep every number in the index's range: an
    # offer whose uint64 fields exceed int64 used to raise in the index and end the watch task.
    async def scenario() -> tuple[object, float]:
        seeds = SeedClient(["127.0.0.1:1"])  # never called here
        index = OfferIndex()
        watcher = OfferWatcher(seeds, index)
        event = seed_pb2.WatchOffersResponse(type=seed_pb2.OFFER_EVENT_TYPE_STORED)
        event.entry.offer.CopyFrom(offer_pb2.Offer.FromString(make_offer()[0].offer))
        event.entry.offer.gpu.memory_mib = 2**64 - 1
        event.entry.offer.price_per_gpu_per_block = "9" * 5000
        watcher.apply(event)
        await seeds.close()
        held = index.get(bytes(event.entry.offer.machine_id))
        return held, watcher.skipped._value.get()  # type: ignore[attr-defined]

    held, skipped = asyncio.run(scenario())
    assert held is not None and held[0].memory_mib == 2**64 - 1  # type: ignore[index]
    assert skipped == 0
