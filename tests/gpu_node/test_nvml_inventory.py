"""The NVML inventory through the real nvidia-ml-py bindings, backed by the SIMULATED library."""

from __future__ import annotations

import ctypes.util
import json
import re
from collections.abc import Callable

import pytest

from services.gpu_node.hardware import (
    SimSpec,
    SimulationError,
    SimVariant,
    enable_simulation,
    parse_inventory,
    read_inventory,
)
from services.gpu_node.hardware.simulation import build_sim_library
from services.gpu_node.hardware.source import open_inventory

from .utils import run_python

UUID_RE = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HAS_NVIDIA_DRIVER = ctypes.util.find_library("nvidia-ml") is not None

Simulate = Callable[[SimSpec], None]


def test_read_inventory_simulated_h100_reports_profile(simulate: Simulate) -> None:
    simulate(SimSpec.parse("h100:8"))
    inventory = read_inventory()
    assert inventory.simulated is True
    assert inventory.driver_version == "550.54.15"
    assert inventory.cuda_version == "12.4"
    assert len(inventory.gpus) == 8
    first = inventory.gpus[0]
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.memory_total_bytes == 85520809984
    assert first.compute_capability == "9.0"
    assert first.mig_enabled is False
    assert first.power_limit_w == 700.0
    assert first.power_w == 72.0
    assert first.utilization_pct == 0
    assert first.temperature_c == 30
    assert first.pci_bus_id == "00000000:18:00.0"
    assert [g.index for g in inventory.gpus] == list(range(8))
    assert all(UUID_RE.match(g.uuid) for g in inventory.gpus)
    assert len({g.uuid for g in inventory.gpus}) == 8
    assert len({g.pci_bus_id for g in inventory.gpus}) == 8


def test_read_inventory_mixed_profiles_in_order(simulate: Simulate) -> None:
    simulate(SimSpec.parse("a100:1,t4:2"))
    gpus = read_inventory().gpus
    assert [(g.name, g.compute_capability) for g in gpus] == [
        ("NVIDIA A100-SXM4-80GB", "8.0"),
        ("Tesla T4", "7.5"),
        ("Tesla T4", "7.5"),
    ]
    # T4 has no MIG: NVML answers NOT_SUPPORTED, which the inventory reports as None.
    assert gpus[0].mig_enabled is False
    assert gpus[1].mig_enabled is None


def test_read_inventory_uuids_deterministic_and_seeded(simulate: Simulate) -> None:
    simulate(SimSpec.parse("l40s:2"))
    first = [g.uuid for g in read_inventory().gpus]
    again = [g.uuid for g in read_inventory().gpus]
    simulate(SimSpec.parse("l40s:2", seed="machine-b"))
    other = [g.uuid for g in read_inventory().gpus]
    assert first == again
    assert not set(first) & set(other)


def test_read_inventory_not_supported_fields_are_none(simulate: Simulate) -> None:
    simulate(SimSpec.parse("rtx4090:1", unsupported=["power", "temperature", "utilization"]))
    gpu = read_inventory().gpus[0]
    assert (gpu.power_w, gpu.temperature_c, gpu.utilization_pct) == (None, None, None)
    assert gpu.name == "NVIDIA GeForce RTX 4090"
    assert gpu.power_limit_w == 450.0


def test_read_inventory_utilization_moves_live_readings(simulate: Simulate) -> None:
    simulate(SimSpec.parse("h100:1"))
    idle = read_inventory().gpus[0]
    simulate(SimSpec.parse("h100:1", utilization_pct=80))
    busy = read_inventory().gpus[0]
    assert busy.utilization_pct == 80
    assert busy.memory_used_bytes is not None and idle.memory_used_bytes is not None
    assert busy.memory_used_bytes > idle.memory_used_bytes
    assert busy.power_w is not None and idle.power_w is not None
    assert busy.power_w > idle.power_w


def test_enable_simulation_other_variant_in_same_process_refused(simulate: Simulate) -> None:
    simulate(SimSpec.parse("t4:1"))
    with pytest.raises(SimulationError, match="needs a new process"):
        enable_simulation(SimSpec.parse("t4:1"), SimVariant.NO_MIG_MODE)


@pytest.mark.parametrize(
    "text", ["h100", "h100:0", "h100:-1", "v100:2", "h100:2,", "h100:65", "h100:2;t4:1"]
)
def test_sim_spec_parse_rejects_bad_spec(text: str) -> None:
    with pytest.raises(SimulationError):
        SimSpec.parse(text)


def test_sim_spec_parse_rejects_unknown_unsupported_field() -> None:
    with pytest.raises(SimulationError, match="unknown field"):
        SimSpec.parse("h100:1", unsupported=["fan"])


@pytest.mark.skipif(
    HAS_NVIDIA_DRIVER,
    reason="this machine has an NVIDIA driver; the no-driver path needs a machine without one",
)
def test_inventory_cli_without_driver_stops_with_clear_message() -> None:
    proc = run_python(["-m", "services.gpu_node", "inventory"])
    assert proc.returncode == 2
    assert "No NVIDIA driver: libnvidia-ml.so.1 could not be loaded" in proc.stderr
    assert "--simulate-gpus" in proc.stderr
    assert proc.stdout == ""


def test_inventory_cli_simulated_prints_inventory() -> None:
    proc = run_python(["-m", "services.gpu_node", "inventory", "--simulate-gpus", "h100:8"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["simulated"] is True
    assert [g["name"] for g in out["gpus"]] == ["NVIDIA H100 80GB HBM3"] * 8


def test_inventory_cli_raw_capture_parses_back() -> None:
    proc = run_python(["-m", "services.gpu_node", "inventory", "--simulate-gpus", "t4:2", "--raw"])
    assert proc.returncode == 0, proc.stderr
    inventory = parse_inventory(json.loads(proc.stdout))
    assert [g.name for g in inventory.gpus] == ["Tesla T4", "Tesla T4"]


def test_read_inventory_function_missing_names_function() -> None:
    code = (
        "from services.gpu_node.hardware import *\n"
        "enable_simulation(SimSpec.parse('a100:1'), SimVariant.NO_MIG_MODE)\n"
        "try:\n"
        "    read_inventory()\n"
        "except NvmlFunctionMissing as exc:\n"
        "    print(exc.function, '|', exc)\n"
    )
    proc = run_python(["-c", code])
    assert proc.returncode == 0, proc.stderr
    function, message = proc.stdout.split("|")
    assert function.strip() == "nvmlDeviceGetMigMode"
    assert "driver is older than this agent supports" in message


def test_inventory_cli_refuses_simulated_library_not_asked_for() -> None:
    library = build_sim_library()
    proc = run_python(
        ["-m", "services.gpu_node", "inventory"],
        env={"LD_LIBRARY_PATH": str(library.parent), "GRIDLEASE_SIM_GPUS": "h100:1"},
    )
    assert proc.returncode == 2
    assert "SIMULATED stand-in" in proc.stderr


def test_open_inventory_simulated_returns_reader(simulate: Simulate) -> None:
    simulate(SimSpec.parse("h100:2"))
    read = open_inventory(SimSpec.parse("h100:2"))
    assert len(read().gpus) == 2


# -- hardware faults the stand-in injects (issue 14, items 8-10) --------------------------------


def test_read_inventory_lost_gpu_3_of_8_keeps_the_other_seven(simulate: Simulate) -> None:
    simulate(SimSpec.parse("h100:8"))
    healthy = {g.index: g.uuid for g in read_inventory().gpus}
    simulate(SimSpec.parse("h100:8", faults="lost=3"))
    inventory = read_inventory()
    assert [g.index for g in inventory.gpus] == [0, 1, 2, 4, 5, 6, 7]
    assert {g.index: g.uuid for g in inventory.gpus} == {
        i: u for i, u in healthy.items() if i != 3
    }
    [failed] = inventory.failed
    assert failed.index == 3
    assert "GPU is lost" in failed.error


def test_read_inventory_absent_gpu_shifts_indexes_not_uuids(simulate: Simulate) -> None:
    simulate(SimSpec.parse("h100:8"))
    before = [(g.uuid, g.pci_bus_id) for g in read_inventory().gpus]
    simulate(SimSpec.parse("h100:8", faults="absent=3"))
    after = read_inventory()
    # NVML numbers boards by bus order: boards 4..7 are now indexes 3..6, same UUID and bus.
    assert [g.index for g in after.gpus] == list(range(7))
    assert [(g.uuid, g.pci_bus_id) for g in after.gpus] == before[:3] + before[4:]
    assert after.failed == ()


def test_read_inventory_reports_mig_mode_per_board(simulate: Simulate) -> None:
    simulate(SimSpec.parse("a100:2,t4:1", faults="mig=1"))
    gpus = read_inventory().gpus
    assert [(g.name, g.mig_enabled) for g in gpus] == [
        ("NVIDIA A100-SXM4-80GB", False),
        ("NVIDIA A100-SXM4-80GB", True),
        ("Tesla T4", None),  # no MIG on a T4: NOT_SUPPORTED
    ]


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ("lost=8", "only 8 simulated GPUs"),
        ("mig=7", "has no MIG mode"),  # position 7 is the T4
        ("broken=1", "bad simulated fault"),
        ("lost=1;lost=2", "given twice"),
        ("lost=", "bad simulated fault"),
    ],
)
def test_sim_spec_parse_rejects_bad_fault(faults: str, message: str) -> None:
    with pytest.raises(SimulationError, match=message):
        SimSpec.parse("h100:7,t4:1", faults=faults)


def test_stand_in_refuses_mig_on_board_without_mig() -> None:
    # The C library checks its own configuration too (a test may set the variables directly).
    code = (
        "from services.gpu_node.hardware import *\n"
        "enable_simulation(SimSpec.parse('t4:1'))\n"
        "import os; os.environ['GRIDLEASE_SIM_MIG'] = '0'\n"
        "try:\n"
        "    read_inventory()\n"
        "except NvmlError as exc:\n"
        "    print('refused:', exc)\n"
    )
    proc = run_python(["-c", code])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused: nvmlInit failed")


def test_inventory_cli_simulated_faults_prints_failed_gpu() -> None:
    proc = run_python(
        [
            "-m", "services.gpu_node", "inventory",
            "--simulate-gpus", "h100:8", "--simulate-gpu-faults", "lost=3",
        ]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["gpus"]) == 7
    assert [f["index"] for f in out["failed"]] == [3]
