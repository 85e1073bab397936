"""Lease request to workload running: p50/p99 over N leases, in blocks and in seconds, and lease
creations per second through the API.

    .venv/bin/python -m bench.stack_bench [--leases 30] [--chain chopsticks|node|three-validators]

`chopsticks` (default) uses a running `gridlease dev up` stack, or starts one; `node` starts the
stack on our node's one-validator dev chain, `three-validators` on a LocalNetwork of three
validators at the runtime's block time (1 s), both in a temporary folder.

Blocks are `started_block - created_block` as the chain recorded them (create_lease's block to
start_lease's block); seconds run from sending the HTTP request to the API reporting the lease
running with connection details. Leases run one at a time on 1 GPU and are terminated at once.
Then `--burst` leases are created back to back by one customer, and `--burst` more at once by
as many customers (not started: each is cancelled after), to measure creations per second: the
API answers each once its block is in the chain, and one customer's requests are signed in turn
(one account nonce) while different customers' share blocks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from services.common import TOKEN_UNIT
from services.customer_cli.cli import wait_until_running
from services.customer_cli.client import ApiClient, ClientConfig
from services.devstack.chain_node import LocalNetwork
from services.devstack.demo import demo_customer, demo_ssh_key
from services.devstack.processes import free_ports, wait_until
from services.devstack.stack import Ports, Stack


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def stack_on(chain: str) -> Iterator[Stack]:
    if chain == "chopsticks":
        stack = Stack(say=lambda _m: None)
        started_here = not stack.running()
        if started_here:
            print("starting the dev stack ...")
            stack.up()
        try:
            yield stack
        finally:
            if started_here:
                stack.down()
        return
    with tempfile.TemporaryDirectory(prefix="gridlease-bench-") as tmp:
        root = Path(tmp)
        p = free_ports(8)
        ports = Ports(chain=p[0], seeds=(p[1], p[2]), seed_metrics=(p[3], p[4]), node=p[5],
                      node_metrics=p[6], api=p[7])  # fmt: skip
        network = LocalNetwork.start(root / "network") if chain == "three-validators" else None
        stack = Stack(root=root / "stack", ports=ports, say=lambda _m: None, chain="node",
                      external_chain_url=network.url if network else None)  # fmt: skip
        print(f"starting the stack on {chain} ...")
        try:
            stack.up()
            yield stack
        finally:
            stack.down()
            if network is not None:
                network.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leases", type=int, default=30)
    # At most the machine's free GPUs (8 simulated), one each.
    parser.add_argument("--burst", type=int, default=6)
    parser.add_argument("--chain", choices=["chopsticks", "node", "three-validators"],
                        default="chopsticks")  # fmt: skip
    args = parser.parse_args()
    blocks: list[float] = []
    seconds: list[float] = []
    with stack_on(args.chain) as stack:
        _, public_key = demo_ssh_key(stack.root)
        with ApiClient(demo_customer(stack.api_url, stack.root)) as api, \
                open(os.devnull, "w") as quiet:  # fmt: skip
            offer = api.get("/offers", params={"min_gpus": 1, "limit": 1})["data"][0]
            body = {"machine_id": offer["machine_id"], "gpus": 1, "duration_blocks": 200,
                    "image": "localhost/gridlease-sshd:1",
                    "ssh_public_key": public_key}  # fmt: skip
            for i in range(args.leases):
                t0 = time.monotonic()
                lease = api.post("/leases", headers={"Idempotency-Key": str(uuid.uuid4())},
                                 json=body)  # fmt: skip
                running = wait_until_running(api, int(lease["lease_id"]), out=quiet)
                seconds.append(time.monotonic() - t0)
                blocks.append(float(running["started_block"] - running["created_block"]))
                lease_id = int(lease["lease_id"])
                api.post(f"/leases/{lease_id}/terminate")
                ended = lambda lid=lease_id: api.get(f"/leases/{lid}")["state"] == "ended"  # noqa: E731
                wait_until("end", ended, 60)
                print(f"  lease {i + 1}/{args.leases}: {blocks[-1]:.0f} blocks, "
                      f"{seconds[-1]:.2f} s", flush=True)  # fmt: skip
            created: list[int] = []
            t0 = time.monotonic()
            for _ in range(args.burst):
                lease = api.post("/leases", headers={"Idempotency-Key": str(uuid.uuid4())},
                                 json=body)  # fmt: skip
                created.append(int(lease["lease_id"]))
            burst_s = time.monotonic() - t0
            _release(api, created)
            customers = [_customer(stack.api_url) for _ in range(args.burst)]

            def create(config: ClientConfig) -> tuple[ClientConfig, int]:
                with ApiClient(config) as own:
                    return config, int(own.post("/leases", json=body)["lease_id"])

            t0 = time.monotonic()
            with ThreadPoolExecutor(args.burst) as pool:
                made = list(pool.map(create, customers))
            parallel_s = time.monotonic() - t0
            for config, lease_id in made:
                with ApiClient(config) as own:
                    _release(own, [lease_id])
    print(f"\nchain: {args.chain}; lease request -> workload running, {len(blocks)} leases")
    print(f"  blocks : p50 {statistics.median(blocks):.0f}  p99 {pct(blocks, 0.99):.0f}  "
          f"(goal p50 <= 2)")
    print(f"  seconds: p50 {statistics.median(seconds):.2f}  p99 {pct(seconds, 0.99):.2f}")
    print(f"lease creations through the API, one customer one after another: {args.burst} in "
          f"{burst_s:.1f} s = {args.burst / burst_s:.2f} per second")
    print(f"lease creations through the API, {args.burst} customers at once: {args.burst} in "
          f"{parallel_s:.1f} s = {args.burst / parallel_s:.2f} per second")


def _customer(api_url: str) -> ClientConfig:
    """A new customer with funds from the faucet (dev mode)."""
    with ApiClient(ClientConfig(url=api_url)) as anonymous:
        key = anonymous.post("/auth/signup", json={"name": "bench"})["api_key"]
    config = ClientConfig(url=api_url, api_key=key)
    with ApiClient(config) as api:
        api.post("/account/faucet", json={"amount": str(100 * TOKEN_UNIT)})
    return config


def _release(api: ApiClient, lease_ids: list[int]) -> None:
    for lease_id in lease_ids:
        with contextlib.suppress(Exception):  # started meanwhile: terminate instead
            api.post(f"/leases/{lease_id}/cancel")
        with contextlib.suppress(Exception):
            api.post(f"/leases/{lease_id}/terminate")


if __name__ == "__main__":
    main()
