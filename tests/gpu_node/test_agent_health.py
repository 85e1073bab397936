"""Pay only for healthy GPUs (issue 10), through the whole node stack: the dev chain with our
runtime, a real seed, Podman containers, and a node agent on 8 SIMULATED H100s whose faults are
injected while it runs (the stand-in's fault file, GRIDLEASE_SIM_FAULT_FILE).

Four running leases A, B, C, D on one machine. A critical XID (79) on one of A's GPUs stops A's
accrual within one heartbeat; an application XID (13) on B's changes nothing; an uncorrectable
ECC error on C's stops C; D's GPU is lost (NVML's GPU-is-lost): D stops, and the node keeps the
slot on chain while D runs, so that D is not ended GpusRemoved without compensation. After
UnhealthyGrace, A's customer ends A and anyone ends D: the unpaid part is refunded and the bond
compensates; then the lost slot leaves the chain. B was paid past the block A stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common._chain import ChainClient, ChainLease, ExtrinsicFailed
from services.devstack.demo import lease_settlement
from services.gpu_node.hardware.simulation import FAULT_FILE_ENV, SimSpec, write_fault_file
from tests.seed.harness import SeedProcess, free_port
from tests.utils.devchain import DevChain
from tests.utils.gpu_node_chain import count_events, create_lease, dev_key, submission
from tests.utils.gpu_node_process import NodeProcess, wait_for

from .test_agent_gpus import SPEC, _env, _lease_end_reason, _machine_id, _remove_containers

GPUS = "h100:8"
EVERY_BLOCKS = 10  # the node's heartbeat_every_blocks (its default, set here explicitly)


@pytest.fixture(scope="module")
def fault_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults") / "faults"


@pytest.fixture(scope="module")
def node(
    dev_chain: DevChain,
    seed: SeedProcess,
    fault_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NodeProcess]:
    env = {
        **_env(dev_chain, seed, GPUS, ""),
        FAULT_FILE_ENV: str(fault_file),
        "GRIDLEASE_NODE_HEARTBEAT_EVERY_BLOCKS": str(EVERY_BLOCKS),
    }
    process = NodeProcess(tmp_path_factory.mktemp("node"), free_port(), free_port(), env).start()
    yield process
    process.stop()
    _remove_containers(_machine_id(process))


def _running_lease(chain: ChainClient, node: NodeProcess, machine_id: bytes) -> ChainLease:
    bob = dev_key("Bob")
    lease_id, _ = create_lease(chain, bob, machine_id, SPEC, gpus=2)
    assert node.stub().SubmitWorkload(submission(lease_id, SPEC, bob), timeout=30).accepted

    def running() -> ChainLease | None:
        lease = chain.lease(lease_id)
        return lease if lease is not None and lease.state == "Running" else None

    return wait_for(running, what=f"lease {lease_id} to run")


def _first_slot(lease: ChainLease) -> int:
    # No board is absent, so slot i is board position i (slots were handed out in NVML order).
    return lease.gpu_indexes[0]


def test_unhealthy_gpus_stop_their_leases_pay_and_the_others_keep_paying(
    node: NodeProcess, chain: ChainClient, fault_file: Path
) -> None:
    machine_id = _machine_id(node)
    spec = SimSpec.parse(GPUS)
    a, b, c, d = (_running_lease(chain, node, machine_id) for _ in range(4))
    a0, b0, c0, d0 = _first_slot(a), _first_slot(b), _first_slot(c), _first_slot(d)
    assert len({a0, b0, c0, d0}) == 4

    # A critical XID on A's GPU and an application XID on B's.
    injected_block = chain.block_number()
    injected_s = time.monotonic()
    write_fault_file(fault_file, spec, f"xid={a0}:79,{b0}:13")

    def unhealthy(lease_id: int) -> ChainLease | None:
        lease = chain.lease(lease_id)
        return lease if lease is not None and lease.unhealthy_since else None

    a_now = wait_for(lambda: unhealthy(a.lease_id), what="lease A to turn unhealthy")
    stopped_at = a_now.unhealthy_since
    print(
        f"\ncritical XID to accrual stopping: {stopped_at - injected_block} blocks, "
        f"{time.monotonic() - injected_s:.1f} s (heartbeat check every 1 s)"
    )
    assert stopped_at - injected_block <= EVERY_BLOCKS  # within one heartbeat interval

    # Application XID: once the node has seen it, a later heartbeat still reports only A's GPU.
    wait_for(
        lambda: node.metric("gridlease_gpu_xid_errors_total") >= 2, what="the node to see XID 13"
    )
    machine = chain.machine(machine_id)
    assert machine is not None
    chain.dev_new_blocks(EVERY_BLOCKS)  # a heartbeat falls due after the XID was seen
    seen_at = machine.last_heartbeat

    def heartbeat_after() -> bool:
        found = chain.machine(machine_id)
        return found is not None and found.last_heartbeat > seen_at

    wait_for(heartbeat_after, what="a heartbeat after XID 13")
    machine = chain.machine(machine_id)
    assert machine is not None and machine.unhealthy_gpus == 1 << a0
    b_now = chain.lease(b.lease_id)
    assert b_now is not None and b_now.unhealthy_since == 0
    healthy = {s["slot"]: (s["reason"], v) for s, v in node.samples("gridlease_gpu_healthy")}
    assert healthy[str(a0)] == ("xid", 0.0)
    assert healthy[str(b0)] == ("", 1.0)

    # An uncorrectable ECC error on C's GPU (the XIDs stay in the file, in front).
    write_fault_file(fault_file, spec, f"xid={a0}:79,{b0}:13;ecc={c0}")
    wait_for(lambda: unhealthy(c.lease_id), what="lease C to turn unhealthy")
    machine = chain.machine(machine_id)
    assert machine is not None and machine.unhealthy_gpus == (1 << a0) | (1 << c0)

    # D's GPU is lost. D stops; the slot stays on chain through two agreeing NVML reads and
    # the plans after them, because a running lease holds it.
    write_fault_file(fault_file, spec, f"xid={a0}:79,{b0}:13;ecc={c0};lost={d0}")
    d_now = wait_for(lambda: unhealthy(d.lease_id), what="lease D to turn unhealthy")
    runs = node.metric("gridlease_node_reconcile_seconds_count")
    wait_for(
        lambda: node.metric("gridlease_node_reconcile_seconds_count") >= runs + 3,
        what="three reconcile runs after the loss",
    )
    machine = chain.machine(machine_id)
    assert machine is not None and machine.gpus_present >> d0 & 1
    assert chain.lease(d.lease_id) is not None
    healthy = {s["slot"]: (s["reason"], v) for s, v in node.samples("gridlease_gpu_healthy")}
    assert healthy[str(d0)] == ("lost", 0.0)

    # A's customer may end it only after the grace; then refund and compensation.
    bob = dev_key("Bob")
    with pytest.raises(ExtrinsicFailed) as refused:
        chain.gpu_rental(bob, "report_downtime", lease_id=a.lease_id)
    assert refused.value.name == "UnhealthyGraceOpen"
    grace = int(chain.constant("UnhealthyGrace"))
    chain.dev_new_blocks(max(stopped_at + grace + 1 - chain.block_number(), 0))
    ended = chain.gpu_rental(bob, "report_downtime", lease_id=a.lease_id)
    assert chain.lease(a.lease_id) is None
    assert _lease_end_reason(chain, a.lease_id, a.created_at) == "Failed"
    money = lease_settlement(chain, a.lease_id, a.created_at, ended.block_number)
    assert money["escrow"] == money["paid"] + money["fee"] + money["refunded"]
    # Paid exactly the healthy blocks, from the start to the block the XID was reported.
    served = stopped_at - a.started_at
    assert money["paid"] + money["fee"] == a.price_per_gpu_block * a.gpus * served
    assert money["refunded"] > 0 and money["compensation"] > 0

    # Anyone ends D (its grace has passed too): refunded and compensated, not GpusRemoved.
    chain.dev_new_blocks(max(d_now.unhealthy_since + grace + 1 - chain.block_number(), 0))
    d_end = chain.gpu_rental(dev_key("Dave"), "report_downtime", lease_id=d.lease_id)
    assert _lease_end_reason(chain, d.lease_id, d.created_at) == "Failed"
    d_money = lease_settlement(chain, d.lease_id, d.created_at, d_end.block_number)
    assert d_money["refunded"] > 0 and d_money["compensation"] > 0

    # With no lease on it any more, the lost slot leaves the chain.
    def slot_removed() -> bool:
        found = chain.machine(machine_id)
        return found is not None and not found.gpus_present >> d0 & 1

    wait_for(slot_removed, what="update_gpus taking the lost slot off the chain")

    # B kept paying past the block A stopped: end it and count.
    b_end = chain.gpu_rental(bob, "terminate_lease", lease_id=b.lease_id)
    b_money = lease_settlement(chain, b.lease_id, b.created_at, b_end.block_number)
    assert b_money["compensation"] == 0
    assert count_events(chain, "LeaseHealthChanged", b.lease_id, b.created_at) == 0
    b_paid_blocks = (b_money["paid"] + b_money["fee"]) // (b.price_per_gpu_block * b.gpus)
    assert b.started_at + b_paid_blocks > stopped_at
