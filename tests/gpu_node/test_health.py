"""GPU health (health.py): classification of each slot, the heartbeat that carries it (with
fakes for the chain), the metrics, and faults injected into a running SIMULATED NVML."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.common._chain import ChainMachine
from services.devstack.processes import wait_until
from services.gpu_node.gpus import build_gpu_set
from services.gpu_node.hardware import SimSpec, SimulationError, read_inventory
from services.gpu_node.hardware.model import FailedGpu, Inventory
from services.gpu_node.hardware.simulation import FAULT_FILE_ENV, write_fault_file
from services.gpu_node.hardware.xid import GpuXids, XidWatcher
from services.gpu_node.health import (
    GpuHealth,
    HealthReason,
    classify,
    unhealthy_mask,
    unreadable,
    xid_is_critical,
)
from services.gpu_node.heartbeat import Heartbeater
from services.gpu_node.metrics import GpuCollector
from services.gpu_node.store import NodeStore

from .test_metrics import scrape
from .utils import make_gpu, make_gpu_set, make_inventory

H100 = "NVIDIA H100 80GB HBM3"
Simulate = Callable[[SimSpec], None]


@pytest.fixture
def store(tmp_path: Path) -> NodeStore:
    return NodeStore(tmp_path / "node.db")


def _reasons(health: tuple[GpuHealth, ...]) -> dict[int, str | None]:
    return {item.slot: None if item.reason is None else item.reason.value for item in health}


# -- classification --------------------------------------------------------------------------


@pytest.mark.parametrize("xid", [13, 31, 43, 45, 68, 109])
def test_application_xid_leaves_the_gpu_healthy(store: NodeStore, xid: int) -> None:
    health = classify(make_gpu_set(store, 2), {"GPU-1": GpuXids(xid, Counter({xid: 3}))})
    assert xid_is_critical(xid) is False
    assert [item.healthy for item in health] == [True, True]


@pytest.mark.parametrize("xid", [48, 63, 64, 74, 79, 92, 94, 95, 119, 120, 999])  # 999: unknown
def test_critical_or_unknown_xid_makes_the_gpu_unhealthy(store: NodeStore, xid: int) -> None:
    health = classify(make_gpu_set(store, 2), {"GPU-1": GpuXids(xid, Counter({13: 1, xid: 1}))})
    assert _reasons(health) == {0: None, 1: "xid"}
    assert health[1].detail == f"XID {xid}"
    assert (health[1].uuid, health[1].index) == ("GPU-1", 1)
    assert unhealthy_mask(health) == 0b10


def test_uncorrectable_ecc_and_failed_row_remapping_make_the_gpu_unhealthy(
    store: NodeStore,
) -> None:
    gpus = [
        make_gpu(0),
        dataclasses.replace(make_gpu(1), ecc_uncorrected=2),
        dataclasses.replace(make_gpu(2), row_remap_failed=True),
        # Zero errors, or a board that cannot tell (None), is healthy.
        dataclasses.replace(make_gpu(3), ecc_uncorrected=0, row_remap_failed=False),
        dataclasses.replace(make_gpu(4), ecc_uncorrected=None, row_remap_failed=None),
    ]
    inventory = Inventory("550", "12.4", tuple(gpus), simulated=True)
    health = classify(build_gpu_set(inventory, store, H100), {})
    assert _reasons(health) == {0: None, 1: "ecc", 2: "row_remap", 3: None, 4: None}
    assert health[1].detail == "2 uncorrectable ECC errors (volatile)"
    assert unhealthy_mask(health) == 0b00110


def test_lost_board_and_a_registered_slot_without_a_board(store: NodeStore) -> None:
    make_gpu_set(store, 4)  # slots 0..3 = GPU-0..GPU-3
    # Board 1 answers GPU_IS_LOST (NVML index 1): gpus.py ties it to slot 1.
    inventory = make_inventory(4, failed=(FailedGpu(1, "GPU is lost"),))
    inventory = dataclasses.replace(inventory, gpus=(make_gpu(0), make_gpu(2), make_gpu(3)))
    gpus = build_gpu_set(inventory, store, H100)
    # The chain also has slot 5, which this node has no board for at all.
    health = classify(gpus, None, registered=0b101111)
    assert _reasons(health) == {0: None, 1: "lost", 2: None, 3: None, 5: "absent"}
    assert (health[1].detail, health[1].uuid) == ("GPU is lost", "GPU-1")
    assert unhealthy_mask(health) == 0b100010


def test_board_gone_from_the_bus_leaves_its_slot_absent(store: NodeStore) -> None:
    make_gpu_set(store, 4)
    gpus = build_gpu_set(make_inventory(3), store, H100)  # GPU-3 is not enumerated any more
    health = classify(gpus, None, registered=0b1111)
    assert _reasons(health) == {0: None, 1: None, 2: None, 3: "absent"}
    assert health[3].uuid == "GPU-3"


def test_mig_mode_on_a_slot_makes_it_unhealthy(store: NodeStore) -> None:
    make_gpu_set(store, 2)
    inventory = dataclasses.replace(make_inventory(2), gpus=(make_gpu(0), make_gpu(1, mig=True)))
    assert _reasons(classify(build_gpu_set(inventory, store, H100), None)) == {0: None, 1: "mig"}


def test_nvml_failing_for_the_whole_machine_makes_every_slot_lost() -> None:
    health = unreadable(0b1011, "nvmlInit failed: Unknown Error")
    assert _reasons(health) == {0: "lost", 1: "lost", 3: "lost"}
    assert unhealthy_mask(health) == 0b1011


# -- heartbeat --------------------------------------------------------------------------------


class FakeOps:
    """OperatorChain's surface that Heartbeater uses: the machine on chain, the block number,
    heartbeats (recorded, and applied to the machine as the chain would)."""

    def __init__(self, machine: ChainMachine, block: int) -> None:
        self.state = machine
        self.block = block
        self.sent: list[int] = []
        self.operator = SimpleNamespace(ss58_address="5Operator")
        self.chain = SimpleNamespace(
            block_number=lambda: self.block, free_balance=lambda _address: 10**18
        )

    def machine(self) -> ChainMachine:
        return self.state

    def heartbeat(self, unhealthy_gpus: int = 0) -> int:
        self.sent.append(unhealthy_gpus)
        self.state = dataclasses.replace(
            self.state, last_heartbeat=self.block, unhealthy_gpus=unhealthy_gpus
        )
        return self.block


def _machine(**fields: Any) -> ChainMachine:
    values: dict[str, Any] = {
        "machine_id": b"\1" * 32, "owner": "5Owner", "operator": "5Operator",
        "gpu_model": H100, "gpu_count": 4, "memory_mib": 81920, "price_per_gpu_block": 1,
        "bond": 0, "online": True, "used_gpus": 0, "last_heartbeat": 100,
        "gpus_present": 0b1111, "unhealthy_gpus": 0,
    }  # fmt: skip
    values.update(fields)
    return ChainMachine(**values)


def _heartbeater(ops: FakeOps, unhealthy: dict[int, HealthReason]) -> Heartbeater:
    def health(registered: int) -> list[GpuHealth]:
        slots = [i for i in range(registered.bit_length()) if registered >> i & 1]
        return [GpuHealth(slot, unhealthy.get(slot)) for slot in slots + [6]]

    return Heartbeater(ops, every_blocks=10, health=health)  # type: ignore[arg-type]


def test_heartbeat_is_not_sent_before_due_while_health_is_unchanged() -> None:
    ops = FakeOps(_machine(last_heartbeat=100), block=105)
    assert _heartbeater(ops, {}).tick() is False
    assert ops.sent == []


def test_health_change_is_sent_at_once_not_when_the_heartbeat_falls_due() -> None:
    ops = FakeOps(_machine(last_heartbeat=100), block=101)
    unhealthy = {2: HealthReason.XID}
    heartbeater = _heartbeater(ops, unhealthy)
    assert heartbeater.tick() is True
    assert ops.sent == [0b0100]
    assert heartbeater.last_health is not None
    assert _reasons(heartbeater.last_health)[2] == "xid"
    # The chain has it now: nothing more until due, then the same mask again.
    ops.block = 105
    assert heartbeater.tick() is False
    ops.block = 111
    assert heartbeater.tick() is True
    assert ops.sent == [0b0100, 0b0100]
    # Healthy again (e.g. an ECC error cleared by a GPU reset): reported at once too.
    unhealthy.clear()
    ops.block = 112
    assert heartbeater.tick() is True
    assert ops.sent == [0b0100, 0b0100, 0]


def test_unhealthy_slots_the_chain_does_not_have_are_not_reported() -> None:
    # Slot 6 is a board the node found but has not added on chain yet: the chain's mask is the
    # limit, so it is left out (and, being the only one, changes nothing).
    ops = FakeOps(_machine(last_heartbeat=100), block=101)
    assert _heartbeater(ops, {6: HealthReason.ECC}).tick() is False
    assert ops.sent == []


# -- metrics ----------------------------------------------------------------------------------


def test_health_gauge_and_dcgm_ecc_and_row_remap_series(simulate: Simulate) -> None:
    simulate(SimSpec.parse("h100:3", faults="ecc=1;remap=2"))
    inventory = read_inventory()
    uuids = [gpu.uuid for gpu in inventory.gpus]
    health = [
        GpuHealth(0, None, 0, uuids[0], H100),
        GpuHealth(1, HealthReason.ECC, 1, uuids[1], H100, "1 uncorrectable ECC errors"),
        GpuHealth(2, HealthReason.ROW_REMAP, 2, uuids[2], H100, "row remapping failed"),
        GpuHealth(3, HealthReason.ABSENT, None, "GPU-gone", H100),
    ]
    collector = GpuCollector(
        read_inventory, lambda: {uuids[1]: 7}, hostname="node-h", health=lambda: health
    )
    samples = scrape(collector)
    healthy = {
        labels["slot"]: (labels["gpu"], labels["reason"], labels["lease_id"], value)
        for labels, value in samples["gridlease_gpu_healthy"]
    }
    assert healthy == {
        "0": ("0", "", "", 1.0),
        "1": ("1", "ecc", "7", 0.0),
        "2": ("2", "row_remap", "", 0.0),
        "3": ("", "absent", "", 0.0),
    }
    assert samples["gridlease_gpu_healthy"][0][0]["Hostname"] == "node-h"
    ecc = {labels["gpu"]: value for labels, value in samples["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"]}
    assert ecc == {"0": 0.0, "1": 1.0, "2": 0.0}
    remap = {labels["gpu"]: value for labels, value in samples["DCGM_FI_DEV_ROW_REMAP_FAILURE"]}
    assert remap == {"0": 0.0, "1": 0.0, "2": 1.0}


def test_boards_without_ecc_or_row_remapping_export_neither(simulate: Simulate) -> None:
    # A T4 has ECC but no row remapping; a GeForce board has ECC off (NOT_SUPPORTED).
    simulate(SimSpec.parse("t4:1,rtx4090:1"))
    gpus = read_inventory().gpus
    assert [(g.ecc_uncorrected, g.row_remap_failed) for g in gpus] == [(0, None), (None, None)]
    samples = scrape(GpuCollector(read_inventory, dict, hostname="node-t"))
    assert [labels["gpu"] for labels, _ in samples["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"]] == ["0"]
    assert "DCGM_FI_DEV_ROW_REMAP_FAILURE" not in samples
    assert "gridlease_gpu_healthy" not in samples  # no heartbeat check yet


# -- faults injected into a running process (the real stand-in) -------------------------------


def test_faults_injected_at_run_time_reach_inventory_xids_and_health(
    simulate: Simulate,
    store: NodeStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    fault_file = tmp_path / "faults"
    monkeypatch.setenv(FAULT_FILE_ENV, str(fault_file))
    spec = SimSpec.parse("h100:5")
    simulate(spec)
    # The watcher holds an NVML session for its life, as in the agent: the stand-in's
    # variables are never read again, only the fault file.
    watcher = XidWatcher(wait_ms=20)
    watcher.start()
    try:
        assert watcher.watching()
        before = read_inventory()
        assert before.failed == ()
        uuids = [gpu.uuid for gpu in before.gpus]
        assert classify(build_gpu_set(before, store, H100), watcher.snapshot()) == tuple(
            GpuHealth(i, None, i, uuid, H100) for i, uuid in enumerate(uuids)
        )

        write_fault_file(fault_file, spec, "lost=1;ecc=2;remap=3;xid=0:79,4:13")
        wait_until("XIDs seen", lambda: len(watcher.snapshot()[uuids[4]].counts) == 1, 30)
        during = read_inventory()
        assert [(f.index, "GPU is lost" in f.error) for f in during.failed] == [(1, True)]
        by_uuid = {gpu.uuid: gpu for gpu in during.gpus}
        assert by_uuid[uuids[2]].ecc_uncorrected == 1
        assert by_uuid[uuids[3]].row_remap_failed is True
        health = classify(build_gpu_set(during, store, H100), watcher.snapshot())
        assert _reasons(health) == {0: "xid", 1: "lost", 2: "ecc", 3: "row_remap", 4: None}

        # The board comes back and the ECC and remapping faults clear (a GPU reset); the XIDs
        # stay in the file, in front, so none is delivered twice. XID 79 keeps slot 0 unhealthy.
        write_fault_file(fault_file, spec, "xid=0:79,4:13")
        after = read_inventory()
        assert after.failed == ()
        health = classify(build_gpu_set(after, store, H100), watcher.snapshot())
        assert _reasons(health) == {0: "xid", 1: None, 2: None, 3: None, 4: None}
        assert watcher.snapshot()[uuids[0]].counts == Counter({79: 1})

        # A malformed file is ignored by the stand-in: nothing changes, stderr says why.
        capfd.readouterr()
        fault_file.write_text("lost=1;bogus\n")
        assert read_inventory().failed == ()
        assert "malformed fault file" in capfd.readouterr().err
    finally:
        watcher.stop()


def test_xid_of_a_board_that_fell_off_the_bus_still_counts(
    simulate: Simulate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # XID 79 comes with the board lost: nvmlDeviceGetUUID on it fails, so the watcher must
    # know the board from its handle.
    fault_file = tmp_path / "faults"
    monkeypatch.setenv(FAULT_FILE_ENV, str(fault_file))
    spec = SimSpec.parse("h100:2")
    simulate(spec)
    watcher = XidWatcher(wait_ms=20)
    watcher.start()
    try:
        uuid1 = read_inventory().gpus[1].uuid
        write_fault_file(fault_file, spec, "lost=1;xid=1:79")
        wait_until("XID 79 seen", lambda: watcher.snapshot()[uuid1].counts == {79: 1}, 30)
    finally:
        watcher.stop()


@pytest.mark.parametrize(
    ("faults", "message"),
    [("absent=1", "absent cannot change at run time"), ("lost=5", "only 5 simulated GPUs"),
     ("remap=0", "rtx4090 has no row remapping"),
     ("xid=" + ",".join(["1:79"] * 65), "at most 64 simulated XIDs")],
)  # fmt: skip
def test_fault_file_refuses_what_cannot_be_injected(
    tmp_path: Path, faults: str, message: str
) -> None:
    spec = SimSpec.parse("rtx4090:1,h100:4")
    with pytest.raises(SimulationError, match=message):
        write_fault_file(tmp_path / "faults", spec, faults)
    assert not (tmp_path / "faults").exists()
