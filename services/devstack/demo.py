"""`gridlease dev demo`: a customer leases 2 GPUs through the HTTP API, waits until the workload
runs, logs in over SSH with its own key and runs a command there, terminates, and reads from the
chain what it paid, what the provider received and what was refunded."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common import TOKEN_UNIT
from services.common._chain import ChainClient
from services.customer_cli.cli import wait_until_running
from services.customer_cli.client import ApiClient, ClientConfig

__all__ = ["DemoResult", "demo_customer", "demo_ssh_key", "lease_settlement", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    lease_id: int
    ssh_output: str
    customer_paid: int
    provider_received: int
    protocol_fee: int
    refunded: int


def demo_ssh_key(root: Path) -> tuple[Path, str]:
    key = root / "demo_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def demo_customer(api_url: str, root: Path) -> ClientConfig:
    """The demo customer's API key, created (and funded) once per stack."""
    saved = root / "demo-customer.json"
    if saved.exists():
        return ClientConfig(url=api_url, api_key=json.loads(saved.read_text())["api_key"])
    with ApiClient(ClientConfig(url=api_url)) as api:
        body = api.post("/auth/signup", json={"name": "demo"})
    config = ClientConfig(url=api_url, api_key=body["api_key"])
    with ApiClient(config) as api:
        api.post("/account/faucet", json={"amount": str(1_000 * TOKEN_UNIT)})
    address = body["customer"]["address"]
    saved.write_text(json.dumps({"api_key": body["api_key"], "address": address}))
    saved.chmod(0o600)
    return config


def _wait_for_offer(api: ApiClient, gpus: int, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = api.get("/offers", params={"min_gpus": gpus, "limit": 1})["data"]
        if found:
            return dict(found[0])
        if time.monotonic() > deadline:
            raise TimeoutError(f"no offer with {gpus} free GPUs after {timeout:.0f} s")
        time.sleep(1)


def lease_settlement(
    chain: ChainClient, lease_id: int, first_block: int, last_block: int
) -> dict[str, int]:
    """Sums the chain's own record of a lease's money, from its events in a block range."""
    totals = {"escrow": 0, "paid": 0, "fee": 0, "refunded": 0, "compensation": 0}
    for number in range(first_block, last_block + 1):
        block_hash = chain.block_hash(number)
        if block_hash is None:
            continue
        for e in chain.events(block_hash):
            a = e.attributes
            if e.module != "GpuRental" or a.get("lease_id") != lease_id:
                continue
            if e.name in ("LeaseCreated",):
                totals["escrow"] += int(a["escrow"])
            elif e.name == "LeaseExtended":
                totals["escrow"] += int(a["added_escrow"])
            elif e.name == "PaymentClaimed":
                totals["paid"] += int(a["paid"])
                totals["fee"] += int(a["fee"])
            elif e.name == "LeaseEnded":
                totals["refunded"] += int(a["refunded"])
            elif e.name == "DowntimeCompensated":
                totals["compensation"] += int(a["amount"])
    return totals


def run_demo(
    api_url: str,
    chain_url: str,
    root: Path,
    say: Callable[[str], None] = print,
    gpus: int = 2,
    blocks: int = 600,
) -> DemoResult:
    key, public_key = demo_ssh_key(root)
    config = demo_customer(api_url, root)
    with ApiClient(config) as api, ChainClient(chain_url) as chain:
        say("==> finding an offer with 2 free GPUs")
        offer = _wait_for_offer(api, gpus)
        say(
            f"    {offer['gpu_model']} on {offer['machine_id'][:18]}…, "
            f"{offer['price_per_gpu_block']} per GPU per block"
        )
        say(f"==> leasing {gpus} GPUs for {blocks} blocks")
        lease = api.post(
            "/leases",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={
                "machine_id": offer["machine_id"],
                "gpus": gpus,
                "duration_blocks": blocks,
                "image": "localhost/gridlease-sshd:1",
                "ssh_public_key": public_key,
            },
        )
        lease_id = int(lease["lease_id"])
        say(f"    lease {lease_id} on chain (block {lease['created_block']}); waiting for the node")
        lease = wait_until_running(api, lease_id)
        conn = lease["connection"]
        say(f"    running: ssh -i {key} -p {conn['ssh_port']} root@{conn['host']}")
        say("==> logging in over SSH")
        login = subprocess.run(
            [
                "ssh",
                "-i",
                str(key),
                "-p",
                str(conn["ssh_port"]),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
                f"root@{conn['host']}",
                "echo hello from $(hostname); echo GPUs: $NVIDIA_VISIBLE_DEVICES",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if login.returncode != 0:
            # ssh's own words (refused, reset, permission denied) say what went wrong.
            raise RuntimeError(
                f"SSH login to lease {lease_id} at {conn['host']}:{conn['ssh_port']} failed "
                f"(exit {login.returncode}): {login.stderr.strip()[-500:]}"
            )
        out = login.stdout.strip()
        for line in out.splitlines():
            say(f"    | {line}")
        say("==> terminating")
        api.post(f"/leases/{lease_id}/terminate")
        deadline = time.monotonic() + 60
        while api.get(f"/leases/{lease_id}")["state"] != "ended":
            if time.monotonic() > deadline:
                raise TimeoutError("the API did not record the lease's end within 60 s")
            time.sleep(0.5)
        ended = api.get(f"/leases/{lease_id}")
        money = lease_settlement(
            chain, lease_id, int(ended["created_block"]), int(ended["ended_block"])
        )
    paid = money["escrow"] - money["refunded"]
    say("==> settled on chain (smallest units; 1 token = 10^12)")
    say(f"    escrow held        {money['escrow']:>16,}")
    say(f"    customer paid      {paid:>16,}")
    say(f"    provider received  {money['paid']:>16,}")
    say(f"    protocol fee       {money['fee']:>16,}")
    say(f"    refunded           {money['refunded']:>16,}")
    say("    paid = received + fee: " + ("yes" if paid == money["paid"] + money["fee"] else "NO"))
    return DemoResult(lease_id, out, paid, money["paid"], money["fee"], money["refunded"])
