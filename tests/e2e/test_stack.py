"""The whole stack across real processes: a chain (Chopsticks + our wasm, or three validators of
our own node), two seeds, a GPU node (simulated H100s via the NVML stand-in, real Podman
containers) and the customer API; every test runs on both chains, the services unchanged.

One lease runs end to end with an SSH login; the chain's own events show that what the customer
paid equals what the provider received plus the fee. Then the failure paths: the node is killed
-9 during a lease and restarted (the lease keeps running, started once), the API is restarted
(lease states intact), and the provider stops heartbeating (the customer reports; refund and
compensation arrive)."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common import TOKEN_UNIT
from services.common._chain import ChainClient
from services.customer_cli.cli import wait_until_running
from services.customer_cli.client import ApiClient
from services.devstack.chain_node import LocalNetwork
from services.devstack.demo import demo_customer, demo_ssh_key, lease_settlement, run_demo
from services.devstack.processes import wait_until
from services.devstack.stack import Ports, Stack
from tests.utils.ports import free_ports

UNIT = TOKEN_UNIT


@pytest.fixture(scope="module", params=["chopsticks", "three-validators"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[Stack, LocalNetwork | None]]:
    """The same services on either chain: the Chopsticks dev chain (a block per transaction,
    every block final at once), or a network of three of our node's validators (a block per
    1 s slot, GRANDPA finality a few blocks behind; the services use Alice's RPC)."""
    p = free_ports(8)
    ports = Ports(chain=p[0], seeds=(p[1], p[2]), seed_metrics=(p[3], p[4]), node=p[5],
                  node_metrics=p[6], api=p[7])
    network = None
    if request.param == "three-validators":
        network = LocalNetwork.start(tmp_path_factory.mktemp("network"))
    s = Stack(root=tmp_path_factory.mktemp("stack"), ports=ports, say=lambda _m: None,
              external_chain_url=network.url if network else None)
    try:
        s.up()
        yield s, network
    finally:
        s.down()
        if network is not None:
            network.stop()


@pytest.fixture(scope="module")
def stack(deployment: tuple[Stack, LocalNetwork | None]) -> Stack:
    return deployment[0]


@pytest.fixture(scope="module")
def chain(stack: Stack) -> Iterator[ChainClient]:
    with ChainClient(stack.chain_url) as client:
        yield client


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[ApiClient]:
    demo_ssh_key(stack.root)
    with ApiClient(demo_customer(stack.api_url, stack.root)) as client:
        yield client


def _lease(api: ApiClient, stack: Stack, gpus: int = 1, blocks: int = 400) -> int:
    offer = api.get("/offers", params={"min_gpus": gpus, "limit": 1})["data"][0]
    key = (stack.root / "demo_ed25519.pub").read_text().strip()
    lease = api.post("/leases", json={
        "machine_id": offer["machine_id"], "gpus": gpus, "duration_blocks": blocks,
        "image": "localhost/gridlease-sshd:1", "ssh_public_key": key,
    })
    return int(lease["lease_id"])


def _events(chain: ChainClient, name: str, lease_id: int, first: int, last: int) -> int:
    count = 0
    for n in range(first, last + 1):
        h = chain.block_hash(n)
        for e in chain.events(h) if h else []:
            mine = e.attributes.get("lease_id") == lease_id
            if e.module == "GpuRental" and e.name == name and mine:
                count += 1
    return count


def _restart(stack: Stack, name: str, sig: int) -> None:
    """Kills one process of the stack with `sig` and starts it again the way `up` did."""
    proc = stack.state.load()[name]
    os.killpg(proc.pid, sig)
    wait_until(f"{name} to die", lambda: not proc.alive(), 30)
    processes = stack.state.load()
    starter = {"node": stack._start_node, "api": stack._start_api}[name]
    starter(processes)
    stack.state.save(processes, stack.state.info())


def _terminate_and_check_money(api: ApiClient, chain: ChainClient, lease_id: int) -> None:
    """Terminates the lease; the chain's events show it started and ended once, and the escrow,
    pay, fee and refund add up, exactly as the API recorded them."""
    api.post(f"/leases/{lease_id}/terminate")
    wait_until("lease end recorded", lambda: api.get(f"/leases/{lease_id}")["state"] == "ended",
               120)  # fmt: skip
    ended = api.get(f"/leases/{lease_id}")
    first, last = int(ended["created_block"]), int(ended["ended_block"])
    assert _events(chain, "LeaseStarted", lease_id, first, last) == 1
    assert _events(chain, "LeaseEnded", lease_id, first, last) == 1
    money = lease_settlement(chain, lease_id, first, last)
    assert money["escrow"] == money["paid"] + money["fee"] + money["refunded"]
    assert int(ended["spent"]) == money["paid"] + money["fee"]
    assert int(ended["refunded"]) == money["refunded"]


def test_demo_lease_is_served_and_money_adds_up(stack: Stack, chain: ChainClient) -> None:
    result = run_demo(stack.api_url, stack.chain_url, stack.root, say=lambda _m: None,
                      blocks=100)
    assert "hello from" in result.ssh_output and "GPUs: GPU-" in result.ssh_output
    assert result.customer_paid > 0 and result.refunded > 0
    assert result.customer_paid == result.provider_received + result.protocol_fee


def test_node_killed_mid_lease_keeps_lease_running_and_started_once(
    stack: Stack, chain: ChainClient, api: ApiClient
) -> None:
    lease_id = _lease(api, stack)
    lease = wait_until_running(api, lease_id, out=io.StringIO())
    _restart(stack, "node", signal.SIGKILL)
    chain.dev_new_blocks(3)
    time.sleep(3)  # a few reconcile rounds of the restarted node
    on_chain = chain.lease(lease_id)
    assert on_chain is not None and on_chain.state == "Running"
    again = wait_until_running(api, lease_id, out=io.StringIO())
    assert again["connection"]["ssh_port"] == lease["connection"]["ssh_port"]
    _terminate_and_check_money(api, chain, lease_id)


@pytest.mark.on_validators
def test_validator_killed_mid_lease_loses_and_doubles_no_money(
    deployment: tuple[Stack, LocalNetwork | None], chain: ChainClient, api: ApiClient
) -> None:
    """On the three-validator network: Bob is killed -9 while a lease runs. Blocks go on in Alice's
    and Charlie's slots, finality stalls (GRANDPA needs all 3 of 3 votes); the API's view does
    not move past finality. Bob restarts from his database, finality resumes, and the lease's
    money in the API matches the chain's events exactly once."""
    stack, network = deployment
    assert network is not None  # on_validators: collected on the three-validator network only
    lease_id = _lease(api, stack)
    wait_until_running(api, lease_id, out=io.StringIO())
    bob = network.node("bob")
    bob.kill()
    stalled_at = chain.block_number(chain.finalized_head())
    chain.wait_for_blocks(4)
    assert chain.block_number(chain.finalized_head()) <= stalled_at + 1
    bob.start()
    wait_until("finality resumes",
               lambda: chain.block_number(chain.finalized_head()) > stalled_at + 3, 120)
    _terminate_and_check_money(api, chain, lease_id)


def test_api_restart_keeps_lease_states(stack: Stack, api: ApiClient) -> None:
    before = {x["lease_id"]: (x["state"], x["spent"], x["refunded"])
              for x in api.get("/leases")["data"]}
    assert before
    _restart(stack, "api", signal.SIGTERM)
    with ApiClient(api.config) as fresh:
        after = {x["lease_id"]: (x["state"], x["spent"], x["refunded"])
                 for x in fresh.get("/leases")["data"]}
    assert after == before


def test_customer_cli_lists_offers_and_explains_errors(
    stack: Stack, api: ApiClient, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.cli import main

    monkeypatch.setenv("GRIDLEASE_API_URL", stack.api_url)
    monkeypatch.setenv("GRIDLEASE_API_KEY", str(api.config.api_key))
    assert main(["offers", "--min-gpus", "1"]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA H100 80GB HBM3" in out and "GLT/GPU-h" in out
    assert main(["offers", "--gpu-model", "A100"]) == 0
    out = capsys.readouterr().out
    assert "no offer matches" in out and "excluded" in out
    assert main(["lease", "show", "999999"]) == 1
    assert "error (404)" in capsys.readouterr().err
    assert main(["account"]) == 0
    assert "free" in capsys.readouterr().out
    monkeypatch.setenv("GRIDLEASE_API_KEY", "glk_not-a-key")
    assert main(["account"]) == 1
    assert "Invalid API key: run gridlease signup" in capsys.readouterr().err


# Last: the penalty takes the machine offline (its bond falls below the minimum).
def test_provider_goes_dark_customer_reports_and_is_compensated(
    stack: Stack, chain: ChainClient, api: ApiClient
) -> None:
    lease_id = _lease(api, stack, gpus=2)
    wait_until_running(api, lease_id, out=io.StringIO())
    account_before = api.get("/account")
    node = stack.state.load()["node"]
    os.killpg(node.pid, signal.SIGSTOP)  # the provider goes dark: no heartbeats, no claims
    try:
        grace = int(chain.constant("HeartbeatGrace"))
        chain.dev_new_blocks(grace + 2)
        report = api.post(f"/leases/{lease_id}/report")
        assert report["state"] == "ended" or report["lease_id"] == lease_id
        wait_until("failure recorded",
                   lambda: api.get(f"/leases/{lease_id}").get("end_reason") == "Failed", 60)
    finally:
        os.killpg(node.pid, signal.SIGCONT)
    ended = api.get(f"/leases/{lease_id}")
    money = lease_settlement(chain, lease_id, int(ended["created_block"]),
                             int(ended["ended_block"]))
    assert money["compensation"] > 0 and money["refunded"] > 0
    assert money["escrow"] == money["paid"] + money["fee"] + money["refunded"]
    account_after = api.get("/account")
    gained = int(account_after["free"]) - int(account_before["free"])
    # Refund and compensation arrive; the report's transaction fee is the only cost.
    assert gained > money["refunded"] + money["compensation"] - UNIT // 100
    assert Path(stack.state.logs).exists()
