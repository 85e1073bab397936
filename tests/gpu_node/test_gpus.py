"""Which GPUs a machine offers, under which chain slot (issue 14, items 8-10): the SIMULATED
NVML injects the faults, the node's real SQLite store keeps the slot table."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common import ConfigError
from services.gpu_node.gpus import (
    GpuSet,
    UnusableReason,
    build_gpu_set,
    choose_model,
    log_changes,
    slots_of,
)
from services.gpu_node.hardware import SimSpec, read_inventory
from services.gpu_node.hardware.model import FailedGpu, Inventory
from services.gpu_node.store import NodeStore

from .utils import make_gpu, make_inventory

Simulate = Callable[[SimSpec], None]
H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
T4 = "Tesla T4"


@pytest.fixture
def store(tmp_path: Path) -> NodeStore:
    return NodeStore(tmp_path / "node.db")


def _read(
    simulate: Simulate, store: NodeStore, gpus: str, faults: str = "", model: str = H100
) -> GpuSet:
    simulate(SimSpec.parse(gpus, faults=faults))
    return build_gpu_set(read_inventory(), store, model)


def test_lost_gpu_3_of_8_leaves_seven_offered_and_marks_it(
    simulate: Simulate, store: NodeStore
) -> None:
    healthy = _read(simulate, store, "h100:8")
    assert (healthy.count, healthy.mask, healthy.unusable) == (8, 0xFF, ())

    lost = _read(simulate, store, "h100:8", "lost=3")
    assert lost.count == 7
    assert sorted(lost.slots) == [0, 1, 2, 4, 5, 6, 7]
    assert {s: g.uuid for s, g in lost.slots.items()} == {
        s: g.uuid for s, g in healthy.slots.items() if s != 3
    }
    [marked] = lost.unusable
    assert (marked.reason, marked.index, marked.slot) == (UnusableReason.LOST, 3, 3)
    assert marked.uuid == healthy.slots[3].uuid
    assert "GPU is lost" in marked.detail


def test_vanished_gpu_does_not_shift_the_slots_of_the_others(
    simulate: Simulate, store: NodeStore, tmp_path: Path
) -> None:
    before = _read(simulate, store, "h100:8")
    store.close()
    # Restarted (a new store connection on the same file) with board 3 gone from the bus: NVML
    # now calls boards 4..7 "3..6", and each keeps its slot.
    reopened = NodeStore(tmp_path / "node.db")
    after = _read(simulate, reopened, "h100:8", "absent=3")
    assert after.mask == 0xFF & ~(1 << 3)
    for slot in (4, 5, 6, 7):
        assert after.slots[slot].uuid == before.slots[slot].uuid
        assert after.slots[slot].index == slot - 1
    [gone] = after.unusable
    assert (gone.reason, gone.slot, gone.index) == (UnusableReason.ABSENT, 3, None)


def test_replacement_board_takes_the_vanished_slot(store: NodeStore) -> None:
    build_gpu_set(make_inventory(4), store, H100)
    swapped = Inventory(
        "550", "12.4", (make_gpu(0), make_gpu(1), make_gpu(2, "GPU-new"), make_gpu(3)), True
    )
    gpus = build_gpu_set(swapped, store, H100)
    assert {s: g.uuid for s, g in gpus.slots.items()} == {
        0: "GPU-0",
        1: "GPU-1",
        2: "GPU-new",
        3: "GPU-3",
    }
    assert gpus.unusable == ()
    assert store.gpu_slots()[2] == "GPU-new"


def test_lost_and_absent_counts_differ_each_reported_on_its_own(store: NodeStore) -> None:
    build_gpu_set(make_inventory(4), store, H100)
    # Two boards gone from the slot table, one unreadable board listed: which is which is
    # unknowable, so the lost board is reported by index and both slots as absent.
    reading = Inventory(
        "550", "12.4", (make_gpu(0), make_gpu(1)), True, failed=(FailedGpu(2, "GPU is lost"),)
    )
    gpus = build_gpu_set(reading, store, H100)
    assert gpus.mask == 0b11
    assert sorted((u.reason.value, u.index, u.slot) for u in gpus.unusable) == [
        ("absent", None, 2),
        ("absent", None, 3),
        ("lost", 2, None),
    ]


def test_mixed_models_offer_the_largest_group_and_say_so(
    simulate: Simulate, store: NodeStore, caplog: pytest.LogCaptureFixture
) -> None:
    simulate(SimSpec.parse("a100:2,t4:1"))
    inventory = read_inventory()
    with caplog.at_level(logging.WARNING):
        model = choose_model(inventory)
    assert model == A100
    assert any(r.getMessage() == "node.gpu_model_chosen" for r in caplog.records)
    gpus = build_gpu_set(inventory, store, model)
    assert (gpus.model, gpus.count, gpus.memory_mib) == (A100, 2, 81920)
    [other] = gpus.unusable
    assert (other.reason, other.index, other.name) == (UnusableReason.OTHER_MODEL, 2, T4)


def test_mixed_models_configured_group_is_offered(simulate: Simulate, store: NodeStore) -> None:
    simulate(SimSpec.parse("a100:2,t4:1"))
    inventory = read_inventory()
    model = choose_model(inventory, configured="tesla t4")
    gpus = build_gpu_set(inventory, store, model)
    assert (gpus.model, gpus.count, slots_of(gpus.mask)) == (T4, 1, [0])


def test_mixed_models_tie_goes_to_the_first_in_nvml_order(simulate: Simulate) -> None:
    simulate(SimSpec.parse("t4:1,a100:1"))
    assert choose_model(read_inventory()) == T4


def test_choose_model_refusals_are_clear(simulate: Simulate) -> None:
    simulate(SimSpec.parse("a100:2,t4:1"))
    inventory = read_inventory()
    with pytest.raises(ConfigError, match=r"matches no GPU here; found 2 x NVIDIA A100"):
        choose_model(inventory, configured="H100")
    with pytest.raises(ConfigError, match="registered with on chain"):
        choose_model(inventory, configured=T4, on_chain=A100)


def test_registered_model_is_kept_when_another_group_is_larger(
    simulate: Simulate, store: NodeStore
) -> None:
    # Registered as a T4 machine; two A100 appear (or the T4s were lost): still a T4 machine,
    # offering what it has of that model, never switching to selling A100s.
    simulate(SimSpec.parse("a100:2,t4:1"))
    inventory = read_inventory()
    assert choose_model(inventory, on_chain=T4) == T4


def test_mig_gpu_is_kept_out_of_whole_gpu_leases(simulate: Simulate, store: NodeStore) -> None:
    gpus = _read(simulate, store, "a100:4", "mig=1", model=A100)
    assert slots_of(gpus.mask) == [0, 2, 3]
    [mig] = gpus.unusable
    assert (mig.reason, mig.index, mig.slot) == (UnusableReason.MIG, 1, 1)
    # MIG off again: the board is back on its own slot.
    back = _read(simulate, store, "a100:4", model=A100)
    assert back.slots[1].uuid == mig.uuid


def test_slots_survive_store_reopen(store: NodeStore, tmp_path: Path) -> None:
    build_gpu_set(make_inventory(3), store, H100)
    store.close()
    reopened = NodeStore(tmp_path / "node.db")
    assert reopened.gpu_slots() == {0: "GPU-0", 1: "GPU-1", 2: "GPU-2"}


def test_log_changes_logs_each_board_once_when_it_goes_and_comes_back(
    store: NodeStore, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = build_gpu_set(make_inventory(4), store, H100)
    reading = Inventory("550", "12.4", (make_gpu(0), make_gpu(1), make_gpu(3)), True,
                        failed=(FailedGpu(2, "GPU is lost"),))  # fmt: skip
    lost = build_gpu_set(reading, store, H100)
    with caplog.at_level(logging.INFO):
        log_changes(healthy, lost)
        log_changes(lost, lost)  # still lost: no new line
        log_changes(lost, healthy)
    lines = [(r.getMessage(), getattr(r, "reason", None), getattr(r, "slot", None))
             for r in caplog.records]  # fmt: skip
    assert lines == [("node.gpu_unusable", "lost", 2), ("node.gpu_usable", None, 2)]


def test_boards_beyond_the_chains_slot_limit_are_not_offered(store: NodeStore) -> None:
    gpus = build_gpu_set(make_inventory(18), store, H100, max_slots=16)
    assert gpus.mask == 0xFFFF
    assert [(u.reason, u.index) for u in gpus.unusable] == [
        (UnusableReason.NO_SLOT, 16),
        (UnusableReason.NO_SLOT, 17),
    ]
