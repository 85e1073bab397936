"""GPU metrics under dcgm-exporter names, scraped and parsed as Prometheus would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.devstack.processes import wait_until
from services.gpu_node.gpus import build_gpu_set
from services.gpu_node.hardware import NvmlUnavailable, SimSpec, SimulationError, read_inventory
from services.gpu_node.hardware.model import Inventory
from services.gpu_node.hardware.xid import XidWatcher
from services.gpu_node.metrics import GpuCollector, leases_by_gpu
from services.gpu_node.runtime.base import WorkloadPhase, WorkloadStatus
from services.gpu_node.store import NodeStore

Sample = tuple[dict[str, str], float]


def scrape(collector: GpuCollector) -> dict[str, list[Sample]]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_collect_dcgm_metrics_from_simulated_gpus(simulate: Callable[[SimSpec], None]) -> None:
    simulate(SimSpec.parse("h100:2", utilization_pct=40))
    held = WorkloadStatus(
        lease_id=77,
        phase=WorkloadPhase.RUNNING,
        gpu_uuids=(read_inventory().gpus[1].uuid,),
    )
    collector = GpuCollector(read_inventory, lambda: leases_by_gpu([held]), hostname="node-a")
    samples = scrape(collector)

    util = samples["DCGM_FI_DEV_GPU_UTIL"]
    assert [value for _, value in util] == [40.0, 40.0]
    labels0 = util[0][0]
    assert labels0["gpu"] == "0"
    assert labels0["modelName"] == "NVIDIA H100 80GB HBM3"
    assert labels0["Hostname"] == "node-a"
    assert labels0["device"] == "nvidia0"
    assert labels0["UUID"].startswith("GPU-")
    assert labels0["pci_bus_id"] == "00000000:18:00.0"

    inventory = read_inventory()
    used = inventory.gpus[0].memory_used_bytes
    assert used is not None
    assert samples["DCGM_FI_DEV_FB_USED"][0][1] == used // 2**20
    total_mib = inventory.gpus[0].memory_total_bytes // 2**20
    fb = samples["DCGM_FI_DEV_FB_USED"][0][1] + samples["DCGM_FI_DEV_FB_FREE"][0][1]
    assert abs(fb - total_mib) <= 1
    assert samples["DCGM_FI_DEV_GPU_TEMP"][0][1] == 50.0
    assert samples["DCGM_FI_DEV_POWER_USAGE"][0][1] == inventory.gpus[0].power_w
    assert samples["gridlease_gpu_inventory_up"] == [({}, 1.0)]

    lease = {s[0]["gpu"]: (s[0]["lease_id"], s[1]) for s in samples["gridlease_gpu_lease"]}
    assert lease == {"0": ("", 0.0), "1": ("77", 1.0)}
    # Every reading names the lease holding its GPU, so one selector graphs a lease's GPUs.
    for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP",
                 "DCGM_FI_DEV_POWER_USAGE"):  # fmt: skip
        assert {s[0]["gpu"]: s[0]["lease_id"] for s in samples[name]} == {"0": "", "1": "77"}


def test_collect_leaves_out_unsupported_fields(simulate: Callable[[SimSpec], None]) -> None:
    simulate(SimSpec.parse("t4:1", unsupported=["power"]))
    samples = scrape(GpuCollector(read_inventory, dict, hostname="node-b"))
    assert "DCGM_FI_DEV_POWER_USAGE" not in samples
    assert len(samples["DCGM_FI_DEV_GPU_TEMP"]) == 1


def test_collect_reports_inventory_down_when_nvml_fails() -> None:
    def broken() -> Inventory:
        raise NvmlUnavailable("No NVIDIA driver")

    samples = scrape(GpuCollector(broken, dict, hostname="node-c"))
    assert samples == {"gridlease_gpu_inventory_up": [({}, 0.0)]}


def test_collect_lost_gpu_keeps_the_others_and_marks_it(
    simulate: Callable[[SimSpec], None], tmp_path: Path
) -> None:
    # 8 GPUs, GPU 3 answers GPU_IS_LOST: the 7 others keep every reading, and
    # gridlease_gpu_offered says which board is not offered and why.
    store = NodeStore(tmp_path / "node.db")
    simulate(SimSpec.parse("h100:8"))
    build_gpu_set(read_inventory(), store, "NVIDIA H100 80GB HBM3")
    simulate(SimSpec.parse("h100:8", faults="lost=3"))
    gpus = build_gpu_set(read_inventory(), store, "NVIDIA H100 80GB HBM3")
    samples = scrape(GpuCollector(read_inventory, dict, hostname="node-d", gpu_set=lambda: gpus))

    assert samples["gridlease_gpu_inventory_up"] == [({}, 1.0)]
    for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP"):
        assert sorted(int(labels["gpu"]) for labels, _ in samples[name]) == [0, 1, 2, 4, 5, 6, 7]
    offered = {(s[0]["gpu"], s[0]["slot"], s[0]["reason"]): s[1] for s in samples[
        "gridlease_gpu_offered"]}  # fmt: skip
    assert offered[("3", "3", "lost")] == 0.0
    assert sum(offered.values()) == 7.0
    assert all(value == 1.0 for (gpu, _, reason), value in offered.items() if gpu != "3")


def test_collect_xid_errors_from_nvml_events(simulate: Callable[[SimSpec], None]) -> None:
    # Board 1 reports XID 79 (fell off the bus) then 48 (double-bit ECC): the last one is
    # dcgm-exporter's DCGM_FI_DEV_XID_ERRORS, and each is counted by XID.
    simulate(SimSpec.parse("h100:2", faults="xid=1:79,1:48"))
    watcher = XidWatcher(wait_ms=20)
    watcher.start()
    try:
        assert watcher.watching()
        uuid1 = read_inventory().gpus[1].uuid
        wait_until("XIDs seen", lambda: sum(watcher.snapshot()[uuid1].counts.values()) == 2, 30)
        collector = GpuCollector(
            read_inventory, dict, hostname="node-x", xids=lambda: watcher.snapshot()
        )
        samples = scrape(collector)
    finally:
        watcher.stop()
    last = {labels["gpu"]: value for labels, value in samples["DCGM_FI_DEV_XID_ERRORS"]}
    assert last == {"0": 0.0, "1": 48.0}
    counts = {
        (labels["gpu"], labels["xid"]): value
        for labels, value in samples["gridlease_gpu_xid_errors_total"]
    }
    assert counts == {("1", "48"): 1.0, ("1", "79"): 1.0}
    assert samples["DCGM_FI_DEV_XID_ERRORS"][1][0]["Hostname"] == "node-x"


def test_collect_without_xid_watcher_exports_no_xid_metrics(
    simulate: Callable[[SimSpec], None],
) -> None:
    simulate(SimSpec.parse("t4:1"))
    samples = scrape(GpuCollector(read_inventory, dict, hostname="node-y"))
    assert "DCGM_FI_DEV_XID_ERRORS" not in samples
    assert "gridlease_gpu_xid_errors_total" not in samples


@pytest.mark.parametrize(
    ("faults", "message"),
    [("xid=2:79", "only 2 simulated GPUs"), ("xid=1:0", "bad simulated fault"),
     ("xid=1:79;xid=0:48", "given twice")],
)  # fmt: skip
def test_sim_spec_refuses_bad_xid_faults(faults: str, message: str) -> None:
    with pytest.raises(SimulationError, match=message):
        SimSpec.parse("h100:2", faults=faults)
