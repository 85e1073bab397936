"""Customer API benchmark, one command:

    .venv/bin/python bench/api_bench.py [--offers 100000] [--searches 2000] [--leases 40]

Prints offer-search latency (p50/p99) over N offers, in the index alone and through HTTP
(FastAPI + TestClient transport), and lease creations per second with the real dev chain in the
loop (Chopsticks, one block per transaction), sequential and from 4 customers at once.

Where the search runs: in the API process, over an in-memory column index (numpy) that the seeds'
WatchOffers stream keeps current; the chain's price and free GPUs of the machines shown are
cached for chain_state_ttl_s. Here the offers are put into the index directly (announcing 100,000
signed offers through a seed measures the seed, not the search) and their chain state is warm.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from services.common import public_key_from_ss58  # noqa: E402
from services.common.grpc_gen.gridlease.v1 import offer_pb2  # noqa: E402
from services.customer_api.main import create_app  # noqa: E402
from services.customer_api.offers.index import (  # noqa: E402
    ChainView,
    OfferIndex,
    OfferQuery,
)
from tests.customer_api.conftest import api_settings  # noqa: E402
from tests.seed.harness import SeedProcess, free_port, wait_until  # noqa: E402
from tests.utils.api_accounts import funded_customer  # noqa: E402
from tests.utils.api_leases import lease_body  # noqa: E402
from tests.utils.api_machines import register_machine  # noqa: E402
from tests.utils.devchain import start_dev_chain  # noqa: E402

MODELS = ["NVIDIA H100 80GB HBM3", "NVIDIA A100 80GB PCIe", "NVIDIA L40S", "NVIDIA RTX 4090"]
REGIONS = ["eu-west", "us-east", "ap-south"]
QUERIES = [
    {},
    {"gpu_model": "h100"},
    {"gpu_model": "a100", "min_gpus": 4, "max_price_per_gpu_block": 2_000_000},
    {"min_memory_mib": 40000, "region": "us-east", "sort": "price_desc"},
    {"label": "interconnect=nvlink", "min_gpus": 8},
    {"gpu_model": "h100", "offset": 500, "limit": 50},
    {"max_price_per_gpu_block": 1},  # no match: explains filters and shows the nearest
]


def fill(index: OfferIndex, count: int) -> None:
    rng = random.Random(7)
    now = time.monotonic() + 3600  # chain state stays fresh for the whole run
    for i in range(count):
        gpus = rng.choice([1, 2, 4, 8])
        offer = offer_pb2.Offer(
            machine_id=i.to_bytes(32, "big"),
            provider="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
            endpoint=f"10.0.{i // 250}.{i % 250}:7700",
            gpu=offer_pb2.GpuInventory(
                model=rng.choice(MODELS), count=gpus, memory_mib=rng.choice([24576, 49152, 81920])
            ),
            price_per_gpu_per_block=str(rng.randrange(100_000, 5_000_000)),
            region=rng.choice(REGIONS),
            labels={"interconnect": rng.choice(["nvlink", "pcie"])},
            sequence=1,
        )
        index.upsert(offer)
        price = int(offer.price_per_gpu_per_block)
        # Registered to the offer's provider and operated by its (here empty) signing key.
        owner, operator = public_key_from_ss58(offer.provider), bytes(offer.operator_public_key)
        view = ChainView(True, True, price, rng.randint(0, gpus), now, owner, operator)
        index.set_chain(offer.machine_id, view)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms   (n={len(ordered)})"


def query_of(params: dict[str, object]) -> OfferQuery:
    label = params.get("label")
    return OfferQuery(
        gpu_model=params.get("gpu_model"),  # type: ignore[arg-type]
        min_gpus=params.get("min_gpus"),  # type: ignore[arg-type]
        min_memory_mib=params.get("min_memory_mib"),  # type: ignore[arg-type]
        max_price=params.get("max_price_per_gpu_block"),  # type: ignore[arg-type]
        region=params.get("region"),  # type: ignore[arg-type]
        labels=dict([str(label).split("=", 1)]) if label else {},
        descending=params.get("sort") == "price_desc",
        offset=int(params.get("offset", 0)),  # type: ignore[arg-type]
        limit=int(params.get("limit", 20)),  # type: ignore[arg-type]
    )


def bench_index(count: int, searches: int) -> None:
    index = OfferIndex()
    started = time.perf_counter()
    fill(index, count)
    print(f"index fill: {count} offers in {time.perf_counter() - started:.1f} s")
    samples = []
    for i in range(searches):
        query = query_of(QUERIES[i % len(QUERIES)])
        t0 = time.perf_counter()
        index.search(query)
        samples.append(time.perf_counter() - t0)
    print(f"search, index only     {percentiles(samples)}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--searches", type=int, default=2000)
    parser.add_argument("--leases", type=int, default=40)
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("GRIDLEASE_")]:
        del os.environ[key]

    bench_index(args.offers, args.searches)
    work = Path(tempfile.mkdtemp(prefix="api-bench-"))
    print("starting dev chain and a seed ...", flush=True)
    chain = start_dev_chain(work)
    seed = SeedProcess(work / "seed").start()
    try:
        settings = api_settings(
            database_url=f"sqlite:///{work / 'api.db'}",
            chain_url=chain.url,
            seed_endpoints=[seed.endpoint],
            chain_state_ttl_s=3600.0,
            delivery_enabled=False,
        )
        with TestClient(create_app(settings)) as client, chain.client() as chain_client:
            runtime = client.app.state.runtime  # type: ignore[attr-defined]
            customers = [funded_customer(client) for _ in range(4)]
            fill(runtime.index, args.offers)
            samples = []
            for i in range(args.searches):
                t0 = time.perf_counter()
                reply = client.get(
                    "/v1/offers", params=QUERIES[i % len(QUERIES)], headers=customers[0].headers
                )
                samples.append(time.perf_counter() - t0)
                assert reply.status_code == 200, reply.text
            print(f"search, HTTP /v1/offers {percentiles(samples)}")

            machines = []
            for _ in range(args.leases // 16 + 1):  # 16 GPUs per machine at most
                machine = register_machine(
                    chain_client, endpoint=f"127.0.0.1:{free_port()}", gpus=16
                )
                machine.announce(seed.endpoint)
                wait_until(lambda m=machine: runtime.index.get(m.machine_id))
                machines.append(machine)

            def create(customer_index: int, number: int) -> float:
                t0 = time.perf_counter()
                reply = client.post(
                    "/v1/leases",
                    json=lease_body(machines[number // 16].hex_id, duration_blocks=1000),
                    headers=customers[customer_index].headers,
                )
                assert reply.status_code == 201, reply.text
                return time.perf_counter() - t0

            half = args.leases // 2
            t0 = time.perf_counter()
            latencies = [create(0, n) for n in range(half)]
            elapsed = time.perf_counter() - t0
            print(
                f"lease create, sequential: {half / elapsed:6.1f} leases/s   "
                f"{percentiles(latencies)}"
            )
            t0 = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                latencies = list(pool.map(lambda n: create(n % 4, n), range(half, 2 * half)))
            elapsed = time.perf_counter() - t0
            print(
                f"lease create, 4 customers: {half / elapsed:5.1f} leases/s   "
                f"{percentiles(latencies)}"
            )
    finally:
        seed.kill()
        chain.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
