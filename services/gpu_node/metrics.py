"""Prometheus metrics of the node's GPUs, under dcgm-exporter's names and labels.

Dashboards and alerts written for NVIDIA's dcgm-exporter work unchanged on a Gridlease node. The
readings (`DCGM_FI_DEV_*`) carry one label more, `lease_id`: the lease holding the GPU, empty
while it is free (as dcgm-exporter adds `pod`/`namespace` for the Kubernetes workload using a
GPU), so a lease's GPUs graph with one selector; `gridlease_gpu_lease` says the same as 1/0.
The collector reads NVML at scrape time, so the numbers are as fresh as the scrape and nothing
runs between scrapes. A GPU NVML cannot
read (GPU_IS_LOST, ...) has no readings; the others keep theirs.

XIDs come from NVML's event API (hardware.xid.XidWatcher): `DCGM_FI_DEV_XID_ERRORS` is the
last XID of each GPU (0 for none), as dcgm-exporter reports it, and
`gridlease_gpu_xid_errors_total{xid}` counts them, so alerts need not guess from a sticky value.
Without a watcher (or a driver without XID events) neither is exported.

`gridlease_gpu_offered` says per board (or remembered slot) whether the machine offers it: 1
for the usable slots, 0 with `reason` (lost, mig, other_model, absent, no_slot) for the rest,
from the GPU set of the node's last reconcile.

`gridlease_gpu_healthy` says per chain slot what the node's last heartbeat check found (and
sent to the chain, where a lease holding an unhealthy slot stops paying): 1, or 0 with `reason`
(health.HealthReason: lost, absent, mig, xid, ecc, row_remap), with `lease_id` while a lease
holds the GPU. The NVML facts behind two of the reasons keep dcgm-exporter's names:
`DCGM_FI_DEV_ECC_DBE_VOL_TOTAL` (uncorrectable ECC errors, volatile count) and
`DCGM_FI_DEV_ROW_REMAP_FAILURE`; a board that cannot tell (no ECC, no row remapping) has none.
`DCGM_FI_DEV_ECC_DBE_VOL_TOTAL` is a counter in dcgm-exporter but is typed gauge here:
prometheus_client would expose a counter as `..._TOTAL_total`, and the name is what dashboards
and alerts match.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.gpu_node.gpus import GpuSet
from services.gpu_node.hardware.errors import NvmlError
from services.gpu_node.hardware.model import GpuDevice, Inventory
from services.gpu_node.hardware.xid import GpuXids
from services.gpu_node.health import GpuHealth
from services.gpu_node.runtime.base import WorkloadStatus

__all__ = ["DCGM_LABELS", "READING_LABELS", "GpuCollector", "leases_by_gpu"]

log = logging.getLogger(__name__)

# dcgm-exporter's label names, spelling included (`UUID`, `modelName`, `Hostname`).
DCGM_LABELS = ("gpu", "UUID", "device", "modelName", "pci_bus_id", "Hostname")
# The readings' labels: dcgm-exporter's, then the lease holding the GPU ("" when free).
READING_LABELS = (*DCGM_LABELS, "lease_id")
MIB = 1024 * 1024


class GpuCollector(Collector):
    """Collects GPU readings from `read_inventory` and lease holders from `gpu_leases`.

    `gpu_leases` maps GPU UUID to the id of the lease holding it (the runtime's view);
    `gpu_set` returns the node's current GpuSet (None before the first one); `xids` the XIDs
    per GPU UUID seen so far (None: XIDs are not watched); `health` the health per slot of the
    last heartbeat check (None before it).
    """

    def __init__(
        self,
        read_inventory: Callable[[], Inventory],
        gpu_leases: Callable[[], Mapping[str, int]],
        hostname: str | None = None,
        gpu_set: Callable[[], GpuSet | None] = lambda: None,
        xids: Callable[[], Mapping[str, GpuXids] | None] = lambda: None,
        health: Callable[[], Sequence[GpuHealth] | None] = lambda: None,
    ) -> None:
        self._read_inventory = read_inventory
        self._gpu_leases = gpu_leases
        self._hostname = hostname or socket.gethostname()
        self._gpu_set = gpu_set
        self._xids = xids
        self._health = health

    def _labels(self, gpu: GpuDevice) -> list[str]:
        return [
            str(gpu.index),
            gpu.uuid,
            f"nvidia{gpu.index}",
            gpu.name,
            gpu.pci_bus_id,
            self._hostname,
        ]

    def _offered(self) -> Metric | None:
        gpu_set = self._gpu_set()
        if gpu_set is None:
            return None
        family = GaugeMetricFamily(
            "gridlease_gpu_offered",
            "1 if the machine offers this GPU (its chain slot in `slot`), else 0 with `reason`.",
            labels=["gpu", "UUID", "slot", "modelName", "reason", "Hostname"],
        )
        for slot, gpu in gpu_set.slots.items():
            labels = [str(gpu.index), gpu.uuid, str(slot), gpu.name, "", self._hostname]
            family.add_metric(labels, 1)
        for item in gpu_set.unusable:
            family.add_metric(
                [
                    "" if item.index is None else str(item.index),
                    item.uuid,
                    "" if item.slot is None else str(item.slot),
                    item.name,
                    item.reason.value,
                    self._hostname,
                ],
                0,
            )
        return family

    def _healthy(self, holders: Mapping[str, int]) -> Metric | None:
        health = self._health()
        if health is None:
            return None
        family = GaugeMetricFamily(
            "gridlease_gpu_healthy",
            "1 if the GPU in chain slot `slot` is healthy at the last heartbeat check, else 0 "
            "with `reason`; `lease_id` while a lease holds it.",
            labels=["gpu", "UUID", "slot", "modelName", "Hostname", "lease_id", "reason"],
        )
        for item in health:
            holder = holders.get(item.uuid) if item.uuid else None
            family.add_metric(
                [
                    "" if item.index is None else str(item.index),
                    item.uuid,
                    str(item.slot),
                    item.name,
                    self._hostname,
                    "" if holder is None else str(holder),
                    "" if item.reason is None else item.reason.value,
                ],
                1 if item.healthy else 0,
            )
        return family

    def collect(self) -> Iterator[Metric]:
        offered = self._offered()
        if offered is not None:
            yield offered
        holders = self._gpu_leases()
        healthy = self._healthy(holders)
        if healthy is not None:
            yield healthy
        up = GaugeMetricFamily(
            "gridlease_gpu_inventory_up", "1 if NVML answered at this scrape, else 0."
        )
        try:
            inventory = self._read_inventory()
        except NvmlError as exc:
            # A failed read is itself a reading: report it and let alerts fire, not a scrape error.
            log.warning("GPU metrics: NVML read failed: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        families = {
            "util": GaugeMetricFamily(
                "DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", labels=READING_LABELS
            ),
            "fb_used": GaugeMetricFamily(
                "DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", labels=READING_LABELS
            ),
            "fb_free": GaugeMetricFamily(
                "DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", labels=READING_LABELS
            ),
            "temp": GaugeMetricFamily(
                "DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", labels=READING_LABELS
            ),
            "power": GaugeMetricFamily(
                "DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", labels=READING_LABELS
            ),
            "ecc": GaugeMetricFamily(
                "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
                "Total number of double-bit (uncorrectable) volatile ECC errors.",
                labels=READING_LABELS,
            ),
            "remap": GaugeMetricFamily(
                "DCGM_FI_DEV_ROW_REMAP_FAILURE",
                "Whether remapping of rows has failed (1: failed).",
                labels=READING_LABELS,
            ),
        }
        lease = GaugeMetricFamily(
            "gridlease_gpu_lease",
            "1 with lease_id set while a lease holds the GPU; 0 with lease_id empty when free.",
            labels=[*DCGM_LABELS, "lease_id"],
        )
        xids = self._xids()
        last_xid = GaugeMetricFamily(
            "DCGM_FI_DEV_XID_ERRORS",
            "Value of the last XID error encountered (0: none since the agent started).",
            labels=READING_LABELS,
        )
        xid_count = CounterMetricFamily(
            "gridlease_gpu_xid_errors",
            "XID errors since the agent started, by XID.",
            labels=["gpu", "UUID", "modelName", "Hostname", "xid"],
        )
        for gpu in inventory.gpus:
            holder = holders.get(gpu.uuid)
            held_by = "" if holder is None else str(holder)
            labels = [*self._labels(gpu), held_by]
            # A field NVML does not support on this GPU is left out, as dcgm-exporter does.
            if gpu.utilization_pct is not None:
                families["util"].add_metric(labels, gpu.utilization_pct)
            if gpu.memory_used_bytes is not None:
                families["fb_used"].add_metric(labels, gpu.memory_used_bytes // MIB)
                free = gpu.memory_total_bytes - gpu.memory_used_bytes
                families["fb_free"].add_metric(labels, free // MIB)
            if gpu.temperature_c is not None:
                families["temp"].add_metric(labels, gpu.temperature_c)
            if gpu.power_w is not None:
                families["power"].add_metric(labels, gpu.power_w)
            if gpu.ecc_uncorrected is not None:
                families["ecc"].add_metric(labels, gpu.ecc_uncorrected)
            if gpu.row_remap_failed is not None:
                families["remap"].add_metric(labels, int(gpu.row_remap_failed))
            lease.add_metric(labels, 0 if holder is None else 1)
            seen = None if xids is None else xids.get(gpu.uuid)
            if seen is not None:
                last_xid.add_metric(labels, seen.last)
                for xid, count in sorted(seen.counts.items()):
                    xid_count.add_metric(
                        [str(gpu.index), gpu.uuid, gpu.name, self._hostname, str(xid)], count
                    )
        yield from families.values()
        yield lease
        if xids is not None:
            yield last_xid
            yield xid_count


def leases_by_gpu(workloads: Iterable[WorkloadStatus]) -> dict[str, int]:
    """GPU UUID -> lease id, from what the runtime reports running (input for gpu_leases)."""
    return {uuid: w.lease_id for w in workloads for uuid in w.gpu_uuids}
