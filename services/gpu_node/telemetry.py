"""What a renter sees of the GPUs of a lease: readings sampled every few seconds, a short
bounded history per GPU, XID counts and health.

    sampler = TelemetrySampler(read_inventory, xids=watcher_snapshot, history_limit=120)
    sampler.sample_once()                  # every `telemetry_interval_s`, in a worker thread
    sampler.lease_gpus({0: "GPU-a", 3: "GPU-b"})   # slot -> UUID of the lease's slots

History is kept per GPU UUID (a slot's board can change; a reading belongs to a board), at most
`history_limit` samples each. A board that has not been read for `history_limit` rounds is
forgotten, so boards that left the machine do not pile up.

Health is the node's own verdict (health.py), so the renter sees what the chain is told: per
slot, the last heartbeat check's `GpuHealth` (`reported`); for a slot it does not cover yet (the
first seconds after a start), `basic_health` of the latest sample: health.py's `board_problem`
(critical XIDs, ECC, row remapping), and "lost" for a board the latest sample could not read.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from services.common import now_ms
from services.gpu_node.hardware.model import GpuDevice, Inventory
from services.gpu_node.hardware.xid import GpuXids
from services.gpu_node.health import GpuHealth, HealthReason, board_problem

__all__ = ["LeaseGpuView", "Sample", "TelemetrySampler", "basic_health", "describe"]


@dataclass(frozen=True)
class Sample:
    """One reading of one GPU; None where NVML does not support the value on the board."""

    timestamp_ms: int
    utilization_pct: int | None
    memory_used_bytes: int | None
    temperature_c: int | None
    power_w: float | None

    @classmethod
    def of(cls, gpu: GpuDevice, timestamp_ms: int) -> Sample:
        return cls(
            timestamp_ms, gpu.utilization_pct, gpu.memory_used_bytes, gpu.temperature_c, gpu.power_w
        )


@dataclass(frozen=True)
class LeaseGpuView:
    """One GPU of a lease (see GetLeaseGpusResponse in node.proto). `model` is "" and
    `memory_total_bytes` 0 for a board not read at the latest sample; `current` is the latest
    sample (None then); `xid_count` None when XIDs are not watched."""

    slot: int
    uuid: str
    model: str
    memory_total_bytes: int
    current: Sample | None
    xid_count: int | None
    last_xid: int
    healthy: bool
    health_reason: str
    history: tuple[Sample, ...]


def describe(health: GpuHealth) -> str:
    """A slot's health for people: "" when healthy, else the reason and what was seen, e.g.
    "xid: XID 79"."""
    if health.reason is None:
        return ""
    return health.reason.value + (f": {health.detail}" if health.detail else "")


def basic_health(slot: int, gpu: GpuDevice | None, xids: GpuXids | None) -> GpuHealth:
    """Health of `slot` from its board's latest sample (None: not read then) and its XIDs."""
    if gpu is None:
        return GpuHealth(slot, HealthReason.LOST, detail="not read at the latest sample")
    problem = board_problem(gpu, xids)
    if problem is None:
        return GpuHealth(slot, None, gpu.index, gpu.uuid, gpu.name)
    return GpuHealth(slot, problem[0], gpu.index, gpu.uuid, gpu.name, problem[1])


@dataclass
class _History:
    samples: deque[Sample]
    last_round: int


class TelemetrySampler:
    """Samples `read_inventory` (`sample_once`) and answers per lease (`lease_gpus`). Thread
    safe: sampling runs in one worker thread, RPC handlers read from others.

    `xids` returns the XIDs per GPU UUID so far (None: not watched); `reported` the node's
    last health verdict per slot (health.py, None: none yet); `clock` gives ms since the
    epoch."""

    def __init__(
        self,
        read_inventory: Callable[[], Inventory],
        *,
        history_limit: int = 120,
        interval_s: float = 5.0,
        xids: Callable[[], Mapping[str, GpuXids] | None] = lambda: None,
        reported: Callable[[], Iterable[GpuHealth] | None] = lambda: None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        self.history_limit = history_limit
        self.interval_s = interval_s
        self._read_inventory = read_inventory
        self._xids = xids
        self._reported = reported
        self._clock = clock
        self._lock = threading.Lock()
        self._round = 0
        self._histories: dict[str, _History] = {}
        # The boards read at the latest sample, by UUID: empty after a failed read, so nothing
        # is reported as current (or healthy) that NVML did not just answer for.
        self._latest: dict[str, GpuDevice] = {}

    def sample_once(self, inventory: Inventory | None = None) -> None:
        """Read NVML (or take `inventory`) and append one sample per readable board. A failed
        read (NvmlError, ...) clears the current readings and is raised."""
        try:
            read = inventory if inventory is not None else self._read_inventory()
        except Exception:
            with self._lock:
                self._latest = {}
            raise
        timestamp = self._clock()
        with self._lock:
            self._round += 1
            self._latest = {gpu.uuid: gpu for gpu in read.gpus}
            for gpu in read.gpus:
                history = self._histories.get(gpu.uuid)
                if history is None:
                    history = _History(deque(maxlen=self.history_limit), self._round)
                    self._histories[gpu.uuid] = history
                history.samples.append(Sample.of(gpu, timestamp))
                history.last_round = self._round
            for uuid in [
                uuid
                for uuid, history in self._histories.items()
                if self._round - history.last_round >= self.history_limit
            ]:
                del self._histories[uuid]

    def lease_gpus(self, slots: Mapping[int, str]) -> list[LeaseGpuView]:
        """The GPUs of a lease, in slot order; `slots` maps each of its chain slots to the UUID
        of the board in it (the node's slot table)."""
        watched = self._xids()
        reported = {item.slot: item for item in self._reported() or ()}
        views: list[LeaseGpuView] = []
        for slot, uuid in sorted(slots.items()):
            with self._lock:
                device = self._latest.get(uuid)
                history = self._histories.get(uuid)
                samples = tuple(history.samples) if history is not None else ()
            xids = None if watched is None else watched.get(uuid, GpuXids())
            health = reported[slot] if slot in reported else basic_health(slot, device, xids)
            views.append(
                LeaseGpuView(
                    slot=slot,
                    uuid=uuid,
                    model=device.name if device is not None else "",
                    memory_total_bytes=device.memory_total_bytes if device is not None else 0,
                    current=samples[-1] if device is not None and samples else None,
                    xid_count=None if xids is None else sum(xids.counts.values()),
                    last_xid=0 if xids is None else xids.last,
                    healthy=health.healthy,
                    health_reason=describe(health),
                    history=samples,
                )
            )
        return views
