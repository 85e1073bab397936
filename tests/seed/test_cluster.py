"""Three real seed processes on loopback: replication, failover, catch-up, persistence."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from services.common.grpc_gen.gridlease.v1 import seed_pb2
from services.seed.client import SeedClient

from .harness import SeedProcess, make_offer, wait_until

Spawn = Callable[..., list[SeedProcess]]


def test_replicate_offer_reaches_every_seed(spawn_mesh: Spawn) -> None:
    seeds = spawn_mesh(3)
    signed, _ = make_offer()
    reply = seeds[0].stub().Announce(seed_pb2.AnnounceRequest(signed_offer=signed), timeout=5)
    for seed in seeds[1:]:
        entry = wait_until(lambda s=seed: s.get(reply.machine_id), what=f"offer on {seed.endpoint}")
        # The exact signed bytes travel, so anyone can verify them at any seed.
        assert entry.signed_offer == signed
        assert entry.offer.sequence == 1


def test_failover_client_when_seed_dies(spawn_mesh: Spawn) -> None:
    seeds = spawn_mesh(3)
    first, key = make_offer()
    newer, _ = make_offer(key, sequence=2)

    async def scenario() -> tuple[int, str, int]:
        client = SeedClient([s.endpoint for s in seeds], timeout_s=2)
        try:
            await client.announce(first)
            seeds[0].kill()
            reply = await client.announce(newer)  # seeds[0] is gone: goes to the next one
            entry = await client.get_offer(reply.machine_id)
            return reply.sequence, client.current_endpoint, entry.offer.sequence
        finally:
            await client.close()

    sequence, endpoint, read_back = asyncio.run(scenario())
    assert sequence == 2
    assert read_back == 2
    assert endpoint != seeds[0].endpoint


def test_restart_seed_catches_up(spawn_mesh: Spawn) -> None:
    seeds = spawn_mesh(3)
    before, key = make_offer()
    machine_id = seeds[0].stub().Announce(seed_pb2.AnnounceRequest(signed_offer=before)).machine_id
    wait_until(lambda: seeds[2].get(machine_id), what="first offer on seed 2")
    seeds[2].kill()
    while_down, _ = make_offer(key, sequence=2)
    other, _ = make_offer()
    seeds[1].stub().Announce(seed_pb2.AnnounceRequest(signed_offer=while_down))
    other_id = seeds[1].stub().Announce(seed_pb2.AnnounceRequest(signed_offer=other)).machine_id
    seeds[2].start()
    wait_until(
        lambda: (e := seeds[2].get(machine_id)) is not None and e.offer.sequence == 2,
        what="restarted seed to pull the newer offer",
    )
    wait_until(lambda: seeds[2].get(other_id), what="restarted seed to pull the new machine")


def test_persist_offers_across_restart(tmp_path: Path) -> None:
    seed = SeedProcess(tmp_path / "alone").start()  # no peers: only its own disk can help
    try:
        signed, _ = make_offer()
        reply = seed.stub().Announce(seed_pb2.AnnounceRequest(signed_offer=signed), timeout=5)
        assert seed.kill() != 0  # a crash, not a graceful stop
        seed.start()
        entry = seed.get(reply.machine_id)
        assert entry is not None and entry.signed_offer == signed
    finally:
        seed.kill()


def test_expire_offer_not_refreshed(tmp_path: Path) -> None:
    seed = SeedProcess(tmp_path / "ttl", env={"GRIDLEASE_SEED_OFFER_TTL_S": "1"}).start()
    try:
        signed, _ = make_offer()
        reply = seed.stub().Announce(seed_pb2.AnnounceRequest(signed_offer=signed), timeout=5)
        wait_until(lambda: seed.get(reply.machine_id) is None, what="offer to expire")
        listed = seed.stub().ListOffers(seed_pb2.ListOffersRequest(), timeout=5)
        assert list(listed.entries) == []
    finally:
        seed.kill()
