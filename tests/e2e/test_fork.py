"""A real fork: the three validators split into {Alice, Bob} and {Charlie}, the services on the
small side (they read Dave, a full node peered only with Charlie), then the two sides join again.

While split, each side builds its own chain: Alice and Bob in two of every three Aura slots,
Charlie in the third (a validator with no peer at all would not author, so Dave keeps him
company). GRANDPA needs all three votes (n = 3, f = 0), so nothing is finalized on either side.
The same lease id goes to two leases: on the large side Eve's (straight to the chain), on the
small side the demo customer's, through the API, whose workload starts on that side's best block
and whose `start_lease` lands there. Joined again, the large side's chain is longer and wins:

- the small side's lease is never confirmed, shown running or paid by the API, and its id is
  Eve's; the customer's request either lands again under a new id (its extrinsic returned to
  the pool) and runs, or is settled away; it never holds Eve's lease;
- the GPU node removes the workload it started for the abandoned lease, and the `start_lease` it
  sent there never lands on the winning chain (it was valid only on the chain it was decided
  on), so Eve's lease is never started or paid for a workload that is not hers."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from substrateinterface import Keypair

from services.common import SS58_FORMAT
from services.common._chain import PALLET, ChainClient, ChainError
from services.customer_cli.cli import wait_until_running
from services.customer_cli.client import ApiClient, ApiError
from services.devstack.chain_node import ChainNode, build_node
from services.devstack.demo import demo_customer, demo_ssh_key
from services.devstack.processes import StackState, wait_until
from services.devstack.stack import Ports, Stack
from services.gpu_node import labels
from tests.utils.ports import free_ports


@dataclass
class Split:
    alice: ChainNode
    bob: ChainNode
    charlie: ChainNode
    dave: ChainNode
    stack: Stack


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    root = tmp_path_factory.mktemp("fork")
    build_node(root / "logs" / "build-node.log")
    state = StackState(root / "network")
    p = free_ports(16)

    def node(i: int, name: str, validator: str | None, **kw: object) -> ChainNode:
        return ChainNode(name=name, chain="local", validator=validator, base_path=root / name,
                         rpc_port=p[2 * i], p2p_port=p[2 * i + 1], state=state,
                         **kw)  # type: ignore[arg-type]  # fmt: skip

    alice = node(0, "alice", "alice")
    nodes = [alice]
    stack = None
    try:
        alice.start()
        boot = (alice.peer_address(),)
        bob = node(1, "bob", "bob", bootnodes=boot)
        charlie = node(2, "charlie", "charlie", bootnodes=boot, reserved_only=True)
        nodes += [bob, charlie]
        bob.start()
        charlie.start()
        dave = node(3, "dave", None, bootnodes=(charlie.peer_address(),), reserved_only=True)
        nodes.append(dave)
        dave.start()
        charlie.connect(dave)
        ports = Ports(chain=p[8], seeds=(p[9], p[10]), seed_metrics=(p[11], p[12]), node=p[13],
                      node_metrics=p[14], api=p[15])  # fmt: skip
        stack = Stack(root=root / "stack", ports=ports, say=lambda _m: None, chain="node",
                      external_chain_url=dave.url)  # fmt: skip
        stack.up()
        yield Split(alice, bob, charlie, dave, stack)
    finally:
        if stack is not None:
            stack.down()
        for n in reversed(nodes):
            n.stop()


def _workloads(machine_id: str, lease_id: int) -> list[dict[str, object]]:
    """This machine's containers for lease_id (other tests' stacks leave theirs: a stopped GPU
    node keeps its workloads, and lease ids start from 0 on every chain)."""
    out = subprocess.run(
        ["podman", "ps", "--format", "json",
         "--filter", f"label={labels.LEASE_ID}={lease_id}",
         "--filter", f"label={labels.NODE}={machine_id.removeprefix('0x')}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return list(json.loads(out or "[]"))


def _events(chain: ChainClient, name: str, lease_id: int, first: int, last: int) -> int:
    count = 0
    for n in range(first, last + 1):
        block_hash = chain.block_hash(n)
        for e in chain.events(block_hash) if block_hash else []:
            if e.module == PALLET and e.name == name and e.attributes.get("lease_id") == lease_id:
                count += 1
    return count


def _extrinsic_of(chain: ChainClient, event: str, lease_id: int, first: int) -> str:
    """The bytes (hex) of the extrinsic that emitted `event` for `lease_id` at or after `first`,
    on `chain`'s best chain."""
    for n in range(first, chain.block_number() + 1):
        block_hash = chain.block_hash(n)
        if block_hash is None:
            continue
        for e in chain.events(block_hash):
            mine = e.module == PALLET and e.attributes.get("lease_id") == lease_id
            if mine and e.name == event and e.extrinsic_index is not None:
                block = chain.rpc("chain_getBlock", [block_hash])
                return str(block["block"]["extrinsics"][e.extrinsic_index])
    raise AssertionError(f"no {event} for lease {lease_id} since block {first}")


def _finalized(chain: ChainClient) -> int:
    return chain.block_number(chain.finalized_head())


def test_a_lease_made_on_the_losing_side_is_never_confirmed_shown_running_or_paid(
    split: Split,
) -> None:
    stack = split.stack
    demo_ssh_key(stack.root)
    with (
        ChainClient(split.alice.url) as main,
        ChainClient(split.dave.url) as small,
        ApiClient(demo_customer(stack.api_url, stack.root)) as api,
    ):
        wait_until("blocks finalized", lambda: _finalized(main) >= 3, 120)
        offer = api.get("/offers", params={"min_gpus": 1, "limit": 1})["data"][0]
        machine_hex = offer["machine_id"]
        machine = main.machine(bytes.fromhex(machine_hex[2:]))
        assert machine is not None

        split.charlie.restart_peered_with(split.dave)
        wait_until(
            "Charlie cut off from Alice and Bob",
            lambda: split.alice.peers() == 1 and split.charlie.peers() == 1,
            60,
        )
        fork_point = _finalized(main)

        # The large side: Eve's lease takes the next id.
        eve = Keypair.create_from_uri("//Eve", ss58_format=SS58_FORMAT)
        taken = main.next_lease_id()
        eves = main.gpu_rental(
            eve, "create_lease", machine_id=offer["machine_id"], gpus=1, duration=200,
            max_price_per_gpu_block=machine.price_per_gpu_block, spec_hash="0x" + "ee" * 32,
        )  # fmt: skip
        assert int(eves.one(PALLET, "LeaseCreated")["lease_id"]) == taken

        # The small side: the same id, the customer's, through the API.
        key = (stack.root / "demo_ed25519.pub").read_text().strip()
        lease = api.post("/leases", json={
            "machine_id": offer["machine_id"], "gpus": 1, "duration_blocks": 200,
            "image": "localhost/gridlease-sshd:1", "ssh_public_key": key,
        })  # fmt: skip
        assert int(lease["lease_id"]) == taken and lease["state"] in ("pending", "starting")
        wait_until(
            "the workload started on the small side's best block",
            lambda: any(w.get("State") == "running" for w in _workloads(machine_hex, taken)),
            90,
        )
        wait_until(
            "start_lease in the small side's chain",
            lambda: getattr(small.lease(taken), "state", None) == "Running",
            60,
        )
        # The node's start_lease can never land on the large side, where lease `taken` is Eve's:
        # its era began at the small side's best block, so the large side refuses its bytes
        # (sent there by anyone, e.g. a pool resubmitting what a reorganisation retracted).
        stale_start = _extrinsic_of(small, "LeaseStarted", taken, fork_point)
        with pytest.raises(ChainError):
            main.rpc("author_submitExtrinsic", [stale_start])
        assert _finalized(small) <= fork_point + 1  # nothing final there
        shown = api.get(f"/leases/{taken}")
        assert shown["state"] in ("pending", "starting") and shown["created_final"] is False

        split.charlie.connect(split.alice)
        wait_until("finality passes the split", lambda: _finalized(main) > fork_point + 8, 240)
        joined = _finalized(main)
        wait_until(
            "the small side follows the winning chain",
            lambda: small.block_hash(joined) == main.block_hash(joined),
            120,
        )

        # Eve's lease is Eve's, and it was never started: the node's start_lease for the
        # abandoned lease of the same id did not land here.
        eve_lease = main.lease(taken)
        assert eve_lease is None or eve_lease.customer == eve.ss58_address
        assert _events(main, "LeaseStarted", taken, fork_point, joined) == 0
        assert _events(main, "PaymentClaimed", taken, fork_point, joined) == 0
        wait_until("the abandoned lease's workload removed",
                   lambda: not _workloads(machine_hex, taken), 90)  # fmt: skip

        def settled() -> bool:
            mine = api.get("/leases")["data"]
            return all(int(x["lease_id"]) != taken for x in mine)

        wait_until("the API took back the abandoned lease", settled, 120)
        with pytest.raises(ApiError) as missing:
            api.get(f"/leases/{taken}")
        assert missing.value.status == 404
        # The request's extrinsic may have landed again on the winning chain (another id):
        # then it is the customer's lease like any other, and runs.
        for again in api.get("/leases")["data"]:
            lease_id = int(again["lease_id"])
            running = wait_until_running(api, lease_id, out=io.StringIO())
            assert running["state"] == "running" and running["created_final"] is True
            on_chain = main.lease(lease_id)
            assert on_chain is not None and on_chain.spec_hash != bytes.fromhex("ee" * 32)
            api.post(f"/leases/{lease_id}/terminate")
