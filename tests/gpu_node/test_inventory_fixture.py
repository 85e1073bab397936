"""The inventory parser on a capture shaped like a real machine's (hand-written for now)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from services.gpu_node.hardware import SimSpec, capture, parse_inventory

from .utils import FIXTURES

H100_FIXTURE = FIXTURES / "h100x8_nvml_hand_written.json"


def _load() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(H100_FIXTURE.read_text())
    return raw


def test_parse_inventory_h100_fixture() -> None:
    inventory = parse_inventory(_load())
    assert inventory.simulated is False
    assert (inventory.driver_version, inventory.cuda_version) == ("550.90.07", "12.4")
    assert len(inventory.gpus) == 8
    gpu = inventory.gpus[3]
    assert gpu.index == 3
    assert gpu.uuid == "GPU-c71d05ab-6f28-4e3c-b94d-81a2e5f7c0d6"
    assert gpu.pci_bus_id == "00000000:5D:00.0"
    assert gpu.memory_total_bytes // 2**20 == 81559
    assert gpu.memory_used_bytes == 555745280
    assert gpu.compute_capability == "9.0"
    assert gpu.mig_enabled is False
    assert (gpu.power_w, gpu.power_limit_w) == (74.208, 700.0)
    assert (gpu.temperature_c, gpu.utilization_pct) == (33, 0)


def test_parse_inventory_not_supported_reads_as_none() -> None:
    raw = _load()
    device = raw["devices"][0]
    for key in ("nvmlDeviceGetPowerUsage", "nvmlDeviceGetMigMode", "nvmlDeviceGetTemperature"):
        device[key] = None
    gpu = parse_inventory(raw).gpus[0]
    assert (gpu.power_w, gpu.mig_enabled, gpu.temperature_c) == (None, None, None)


def test_capture_format_matches_fixture(simulate: Callable[[SimSpec], None]) -> None:
    # The fixture stands for a real capture: the live capture must have exactly its shape,
    # or a real capture dropped in later would not parse the same way.
    simulate(SimSpec.parse("h100:1"))
    live = capture()
    fixture = _load()
    assert set(live) == set(fixture) - {"_provenance"}
    assert set(live["devices"][0]) == set(fixture["devices"][0])
    for key, value in fixture["devices"][0].items():
        if isinstance(value, dict):
            assert set(live["devices"][0][key]) == set(value), key
