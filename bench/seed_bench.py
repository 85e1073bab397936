"""Seed benchmark: one command, figures on stdout.

    .venv/bin/python -m bench.seed_bench [--announcements 5000] [--bulk 100000]

1. Ingest: signed announcements per second into one seed process, next to a bare gRPC unary
   echo (another process, same grpc.aio stack, same request size) in the same run. The client
   sends pre-built request bytes with the same concurrency to both, so the ratio isolates what
   the seed does per offer (decode, checks, sr25519 verify, index, durable group commit).
2. Propagation: time for an offer announced to one seed to be readable on all of 5 peered
   seeds, in seconds and in sync rounds (sync_interval_s = 1).
3. Memory: RSS of a seed process holding --bulk offers. The offers are real signed offers, but
   they are written with OfferStore.bulk_load (no RPCs) to build the set quickly; the seed then
   loads them from SQLite at start-up as it would after a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from substrateinterface import Keypair

from bench.seed_echo import ECHO_METHOD
from services.common import build_offer, new_keypair, sign_offer
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2
from services.seed.store import OfferRecord, OfferStore
from tests.seed.harness import ALICE, SeedProcess, free_port, start_mesh, wait_until

CONCURRENCY = 64


def _offer(key: Keypair, sequence: int) -> bytes:
    """A serialized AnnounceRequest for key's machine at sequence."""
    offer = build_offer(
        key,
        provider=ALICE,
        endpoint="10.0.0.1:7700",
        gpu_model="NVIDIA H100 80GB HBM3",
        gpu_count=8,
        memory_mib=81559,
        compute_capability="9.0",
        price_per_gpu_per_block=1_000,
        region="eu-west",
        sequence=sequence,
        labels={"interconnect": "nvlink"},
    )
    return seed_pb2.AnnounceRequest(signed_offer=sign_offer(offer, key)).SerializeToString()


def _signed(count: int) -> list[bytes]:
    """count first announcements, one per new machine."""
    return [_offer(new_keypair()[0], 1) for _ in range(count)]


async def _drive(endpoint: str, method: str, payloads: list[bytes]) -> tuple[float, int]:
    """Send payloads in order with CONCURRENCY calls in flight; returns (calls/s, failures)."""
    async with grpc.aio.insecure_channel(endpoint) as channel:
        call = channel.unary_unary(method)  # no serializers: bytes in, bytes out
        queue = list(reversed(payloads))
        failures = 0

        async def worker() -> None:
            nonlocal failures
            while queue:
                try:
                    await call(queue.pop(), timeout=30)
                except grpc.aio.AioRpcError:
                    failures += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return len(payloads) / (time.perf_counter() - start), failures


@dataclass
class Ingest:
    echo: float
    first: float
    refresh: float
    failures: int


def bench_ingest(base: Path, count: int, machines: int) -> Ingest:
    """Bare echo calls, first announcements of `count` new machines, and `count` refreshes
    (next sequence) from `machines` known machines, round by round."""
    keys = [new_keypair()[0] for _ in range(machines)]
    warmup = [_offer(key, 1) for key in keys]
    first = _signed(count)
    rounds = -(-count // machines)
    refresh = [_offer(key, 2 + r) for r in range(rounds) for key in keys][:count]
    echo_port = free_port()
    echo = subprocess.Popen([sys.executable, "-m", "bench.seed_echo", str(echo_port)])
    seed = SeedProcess(base / "ingest", env=NO_RATE_LIMITS).start()
    announce = "/gridlease.v1.SeedService/Announce"
    try:
        wait_until(lambda: _echo_up(echo_port), what="echo server")
        echo_at = f"127.0.0.1:{echo_port}"
        asyncio.run(_drive(echo_at, ECHO_METHOD, warmup[:200]))
        _, failures = asyncio.run(_drive(seed.endpoint, announce, warmup))
        # Interleave the three kinds in slices so that background load on the machine hits
        # them alike; each rate is its total calls over its total time.
        totals: dict[str, list[float]] = {"echo": [0, 0.0], "first": [0, 0.0], "refresh": [0, 0.0]}
        slices = 4
        for i in range(slices):
            for kind, at, method, payloads in (
                ("echo", echo_at, ECHO_METHOD, first),
                ("first", seed.endpoint, announce, first),
                ("refresh", seed.endpoint, announce, refresh),
            ):
                # Contiguous slices keep each machine's sequences in increasing order.
                size = -(-len(payloads) // slices)
                part = payloads[i * size : (i + 1) * size]
                rate, failed = asyncio.run(_drive(at, method, part))
                totals[kind][0] += len(part)
                totals[kind][1] += len(part) / rate
                failures += failed if kind != "echo" else 0
    finally:
        echo.kill()
        echo.wait()
        seed.kill()
    rates = {kind: count / seconds for kind, (count, seconds) in totals.items()}
    return Ingest(rates["echo"], rates["first"], rates["refresh"], failures)


def _echo_up(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            channel.unary_unary(ECHO_METHOD)(b"x", timeout=1)
        except grpc.RpcError:
            return False
    return True


# The benchmark pushes thousands of announcements from one address: measure the seed, not its
# per-source and per-machine budgets.
NO_RATE_LIMITS = {
    "GRIDLEASE_SEED_ANNOUNCE_RATE_PER_SOURCE": "0",
    "GRIDLEASE_SEED_ANNOUNCE_RATE_PER_MACHINE": "0",
}


def bench_propagation(base: Path, trials: int) -> list[float]:
    interval = 1.0
    seeds = start_mesh(base / "mesh", 5, env={"GRIDLEASE_SEED_SYNC_INTERVAL_S": str(interval)})
    times = []
    try:
        for _ in range(trials):
            request = seed_pb2.AnnounceRequest.FromString(_signed(1)[0])
            start = time.perf_counter()
            mid = seeds[0].stub().Announce(request, timeout=5).machine_id
            for seed in seeds[1:]:
                while seed.get(mid) is None:
                    time.sleep(0.005)
            times.append(time.perf_counter() - start)
    finally:
        for seed in seeds:
            seed.kill()
    return [t / interval for t in times]


def bench_memory(base: Path, count: int) -> tuple[float, float, int]:
    data = base / "bulk"
    empty = SeedProcess(base / "empty").start()
    empty_rss = _rss_mib(empty)
    empty.kill()

    async def load() -> None:
        store = OfferStore(data / "offers.db")
        await store.open()
        records = []
        for raw in _signed(count):
            signed = seed_pb2.AnnounceRequest.FromString(raw).signed_offer
            records.append(OfferRecord.from_offer(_decode(signed.offer), signed))
        await store.bulk_load(records)
        await store.close()

    asyncio.run(load())
    seed = SeedProcess(data).start(wait=False)
    try:
        seed.wait_ready(timeout_s=600)
        held = _digest_count(seed)
        rss = _rss_mib(seed)
    finally:
        seed.kill()
    return empty_rss, rss, held


def _decode(body: bytes) -> offer_pb2.Offer:
    return offer_pb2.Offer.FromString(body)


def _digest_count(seed: SeedProcess) -> int:
    total, token = 0, ""
    while True:
        page = seed.stub().Digest(seed_pb2.DigestRequest(page_token=token), timeout=30)
        total += len(page.entries)
        token = page.next_page_token
        if not token:
            return total


def _rss_mib(seed: SeedProcess) -> float:
    assert seed.process is not None
    for line in Path(f"/proc/{seed.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gridlease seed benchmark")
    parser.add_argument("--announcements", type=int, default=5000)
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args(argv)
    out = sys.stdout
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ing = bench_ingest(base, args.announcements, args.machines)
        out.write(f"echo:    {ing.echo:,.0f} bare unary echo calls/s ({CONCURRENCY} in flight)\n")
        out.write(
            f"ingest:  {ing.refresh:,.0f} announcements/s refreshing {args.machines} known "
            f"machines, ratio {ing.refresh / ing.echo:.2f} (goal >= 0.5)\n"
        )
        out.write(
            f"ingest:  {ing.first:,.0f} announcements/s from new machines, "
            f"ratio {ing.first / ing.echo:.2f}\n"
        )
        out.write(f"failed announcements: {ing.failures}\n")
        rounds = bench_propagation(base, args.trials)
        out.write(
            f"propagation to all of 5 seeds: median {statistics.median(rounds):.2f} "
            f"max {max(rounds):.2f} sync rounds over {len(rounds)} trials "
            "(goal <= 2; 1 round = 1 s)\n"
        )
        empty_rss, rss, held = bench_memory(base, args.bulk)
        out.write(
            f"memory: seed holding {held:,} offers: RSS {rss:.0f} MiB "
            f"(empty seed {empty_rss:.0f} MiB; "
            f"{(rss - empty_rss) * 1024 / max(held, 1):.2f} KiB/offer)\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
