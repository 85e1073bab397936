"""Lease request to workload running on the dev stack: p50/p99 over N leases, in blocks and in
seconds (goal: p50 <= 2 blocks). Uses a running `gridlease dev up` stack, or starts one.

    .venv/bin/python -m bench.stack_bench [--leases 50]

Blocks are `started_block - created_block` as the chain recorded them (create_lease's block to
start_lease's block); seconds run from sending the HTTP request to the API reporting the lease
running with connection details. Leases run one at a time on 1 GPU and are terminated at once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

from services.customer_cli.cli import wait_until_running
from services.customer_cli.client import ApiClient
from services.devstack.demo import demo_customer, demo_ssh_key
from services.devstack.processes import wait_until
from services.devstack.stack import Stack


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leases", type=int, default=50)
    args = parser.parse_args()
    stack = Stack(say=lambda _m: None)
    started_here = not stack.running()
    if started_here:
        print("starting the dev stack ...")
        stack.up()
    _, public_key = demo_ssh_key(stack.root)
    blocks: list[float] = []
    seconds: list[float] = []
    try:
        with ApiClient(demo_customer(stack.api_url, stack.root)) as api, \
                open(os.devnull, "w") as quiet:
            offer = api.get("/offers", params={"min_gpus": 1, "limit": 1})["data"][0]
            for i in range(args.leases):
                t0 = time.monotonic()
                lease = api.post(
                    "/leases", headers={"Idempotency-Key": str(uuid.uuid4())},
                    json={"machine_id": offer["machine_id"], "gpus": 1, "duration_blocks": 200,
                          "image": "localhost/gridlease-sshd:1", "ssh_public_key": public_key},
                )
                running = wait_until_running(api, int(lease["lease_id"]), out=quiet)
                seconds.append(time.monotonic() - t0)
                blocks.append(float(running["started_block"] - running["created_block"]))
                lease_id = int(lease["lease_id"])
                api.post(f"/leases/{lease_id}/terminate")
                ended = lambda lid=lease_id: api.get(f"/leases/{lid}")["state"] == "ended"  # noqa: E731
                wait_until("end", ended, 60)
                print(f"  lease {i + 1}/{args.leases}: {blocks[-1]:.0f} blocks, "
                      f"{seconds[-1]:.2f} s", flush=True)
    finally:
        if started_here:
            stack.down()
    print(f"\nlease request -> workload running, {len(blocks)} leases")
    print(f"  blocks : p50 {statistics.median(blocks):.0f}  p99 {pct(blocks, 0.99):.0f}  "
          f"(goal p50 <= 2)")
    print(f"  seconds: p50 {statistics.median(seconds):.2f}  p99 {pct(seconds, 0.99):.2f}")


if __name__ == "__main__":
    main()
