"""Listing with filters and paging, single reads, and the watch stream, on a real seed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common import NotFound
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2
from services.seed.client import SeedClient

from .harness import SeedProcess, make_offer

CATALOGUE: list[dict[str, Any]] = [
    {"gpu_model": "H100", "gpu_count": 8, "memory_mib": 81559, "price_per_gpu_per_block": 900},
    {"gpu_model": "H100", "gpu_count": 2, "memory_mib": 81559, "price_per_gpu_per_block": 700},
    {"gpu_model": "A100", "gpu_count": 4, "memory_mib": 40960, "price_per_gpu_per_block": 400},
    {
        "gpu_model": "A100",
        "gpu_count": 8,
        "memory_mib": 81920,
        "price_per_gpu_per_block": 500,
        "region": "us-east",
        "labels": {"interconnect": "pcie"},
    },
    {"gpu_model": "L4", "gpu_count": 1, "memory_mib": 23034, "price_per_gpu_per_block": 10**30},
]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedProcess]:
    process = SeedProcess(tmp_path_factory.mktemp("queries")).start()
    for fields in CATALOGUE:
        signed, _ = make_offer(**fields)
        process.stub().Announce(seed_pb2.AnnounceRequest(signed_offer=signed), timeout=5)
    yield process
    process.kill()


def _models(seed: SeedProcess, **filter_fields: Any) -> list[tuple[str, int]]:
    request = seed_pb2.ListOffersRequest(filter=seed_pb2.OfferFilter(**filter_fields))
    reply = seed.stub().ListOffers(request, timeout=5)
    return sorted((e.offer.gpu.model, e.offer.gpu.count) for e in reply.entries)


@pytest.mark.parametrize(
    ("filter_fields", "expected"),
    [
        ({"gpu_model": "H100"}, [("H100", 2), ("H100", 8)]),
        ({"min_gpu_count": 8}, [("A100", 8), ("H100", 8)]),
        ({"min_memory_mib": 80000, "gpu_model": "A100"}, [("A100", 8)]),
        ({"max_price_per_gpu_per_block": "700"}, [("A100", 4), ("A100", 8), ("H100", 2)]),
        ({"region": "us-east"}, [("A100", 8)]),
        (
            {"labels": {"interconnect": "nvlink"}},
            [("A100", 4), ("H100", 2), ("H100", 8), ("L4", 1)],
        ),
        ({"gpu_model": "B200"}, []),
    ],
    ids=["model", "count", "memory", "price", "region", "labels", "none"],
)
def test_list_offers_filters(
    seed: SeedProcess, filter_fields: dict[str, Any], expected: list[tuple[str, int]]
) -> None:
    assert _models(seed, **filter_fields) == expected


def test_list_offers_pages_without_gaps(seed: SeedProcess) -> None:
    seen: list[bytes] = []
    token = ""
    pages = 0
    while True:
        reply = seed.stub().ListOffers(
            seed_pb2.ListOffersRequest(page_size=2, page_token=token), timeout=5
        )
        seen.extend(e.offer.machine_id for e in reply.entries)
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(CATALOGUE) == len(set(seen))
    assert seen == sorted(seen)


def test_list_offers_refuses_bad_page_token(seed: SeedProcess) -> None:
    with pytest.raises(grpc.RpcError) as info:
        seed.stub().ListOffers(seed_pb2.ListOffersRequest(page_token="zz"), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_get_offer_not_found(seed: SeedProcess) -> None:
    async def read() -> None:
        client = SeedClient([seed.endpoint])
        try:
            await client.get_offer(bytes(32))
        finally:
            await client.close()

    with pytest.raises(NotFound):
        asyncio.run(read())


def test_iter_offers_through_client(seed: SeedProcess) -> None:
    async def collect() -> list[seed_pb2.OfferEntry]:
        client = SeedClient([seed.endpoint])
        try:
            return [e async for e in client.iter_offers(page_size=2)]
        finally:
            await client.close()

    assert len(asyncio.run(collect())) == len(CATALOGUE)


def test_watch_offers_streams_existing_then_new(tmp_path: Path) -> None:
    # A seed of its own: this test adds an offer, the module's seed must keep its catalogue.
    seed = SeedProcess(tmp_path / "watch").start()
    for fields in CATALOGUE:
        seed.stub().Announce(seed_pb2.AnnounceRequest(signed_offer=make_offer(**fields)[0]))
    new, _ = make_offer(gpu_model="B200", gpu_count=8)
    new_id = offer_pb2.Offer.FromString(new.offer).machine_id

    async def watch() -> list[tuple[int, str]]:
        client = SeedClient([seed.endpoint])
        events: list[tuple[int, str]] = []
        try:
            stream = client.watch(seed_pb2.OfferFilter(min_gpu_count=8), include_existing=True)
            async for event in stream:
                if event.type == seed_pb2.OFFER_EVENT_TYPE_HEARTBEAT:
                    continue  # the stream is alive; nothing changed
                events.append((event.type, event.entry.offer.gpu.model))
                if len(events) == 2:  # the two existing 8-GPU offers: now announce one more
                    await client.announce(new)
                if event.entry.offer.machine_id == new_id:
                    break
            return events
        finally:
            await client.close()

    try:
        events = asyncio.run(asyncio.wait_for(watch(), timeout=30))
    finally:
        seed.kill()
    stored = seed_pb2.OFFER_EVENT_TYPE_STORED
    assert sorted(events[:2]) == [(stored, "A100"), (stored, "H100")]
    assert events[2:] == [(stored, "B200")]
