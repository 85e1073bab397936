"""Whether each GPU slot of this machine is healthy, and if not, why: what each heartbeat tells
the chain (bit i of `unhealthy_gpus` = slot i), so a lease pays only while its GPUs are healthy.

A slot is unhealthy, first reason found, when:

    lost       NVML enumerates the board but cannot read it (GPU_IS_LOST, ...), or NVML failed
               for the whole machine
    absent     the chain has the slot but its board is not seen at all (fewer GPUs than
               registered), or the node has no board for it
    mig        its board was put in MIG mode: a whole-GPU lease cannot run on it
    xid        a critical XID since the agent started (`xid_is_critical`)
    ecc        uncorrectable ECC errors in NVML's volatile counter (> 0)
    row_remap  NVML reports that row remapping failed (nvmlDeviceGetRemappedRows)

How a slot becomes healthy again, per reason:
- lost, absent, mig, ecc, row_remap follow NVML at each reading. The volatile ECC count and the
  remapping failure clear only when the GPU is reset or the driver reloaded, which is the repair.
- xid is sticky until the agent restarts: NVML announces an XID once and never its end, and the
  critical ones (79 fallen off the bus, 48/94/95 memory errors, 119/120 GSP, ...) need a GPU
  reset or a reboot, after which the operator restarts the agent. NVIDIA's device plugin does
  the same (it only ever marks a device unhealthy). Restarting the agent on a board that is still
  broken shows the fault again through NVML (lost, ECC) or the next XID.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from services.gpu_node.gpus import GpuSet, UnusableReason, mask_of, slots_of
from services.gpu_node.hardware.model import GpuDevice
from services.gpu_node.hardware.xid import GpuXids

__all__ = [
    "APPLICATION_XIDS",
    "GpuHealth",
    "HealthReason",
    "board_problem",
    "classify",
    "unhealthy_mask",
    "unreadable",
    "xid_is_critical",
]

# XIDs caused by the application, not the GPU: the GPU stays healthy. Exactly the list NVIDIA's
# k8s-device-plugin ignores (internal/rm/health.go, getDisabledHealthCheckXids, "Application
# errors: the GPU should still be healthy", at commit 1b826acc of github.com/NVIDIA/
# k8s-device-plugin): 13 graphics engine exception, 31 GPU memory page fault, 43 GPU stopped
# processing, 45 preemptive cleanup due to previous errors, 68 video processor exception,
# 109 context switch timeout. Every other XID, unknown ones included, makes the plugin mark the
# device unhealthy, and so does it here.
APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})


class HealthReason(Enum):
    LOST = "lost"
    ABSENT = "absent"
    MIG = "mig"
    XID = "xid"
    ECC = "ecc"
    ROW_REMAP = "row_remap"


# The GpuSet's reasons for a slot it does not offer, as health reasons. OTHER_MODEL and NO_SLOT
# never carry a slot, so they cannot describe one.
_FROM_UNUSABLE = {
    UnusableReason.LOST: HealthReason.LOST,
    UnusableReason.ABSENT: HealthReason.ABSENT,
    UnusableReason.MIG: HealthReason.MIG,
}


@dataclass(frozen=True)
class GpuHealth:
    """One chain slot: `reason` None when healthy. `index` is the board's NVML index (None when
    NVML does not list it), `uuid` and `name` "" when unknown, `detail` says what was seen
    (e.g. "XID 79", NVML's error)."""

    slot: int
    reason: HealthReason | None = None
    index: int | None = None
    uuid: str = ""
    name: str = ""
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.reason is None


def xid_is_critical(xid: int) -> bool:
    """Whether XID `xid` makes its GPU unhealthy: any but APPLICATION_XIDS."""
    return xid not in APPLICATION_XIDS


def board_problem(gpu: GpuDevice, xids: GpuXids | None) -> tuple[HealthReason, str] | None:
    """What is wrong with a readable board, from its NVML readings and the XIDs seen on it
    (None: not watched); None when nothing is."""
    critical = sorted(xid for xid in (xids.counts if xids else ()) if xid_is_critical(xid))
    if critical:
        return HealthReason.XID, "XID " + ", ".join(map(str, critical))
    if gpu.ecc_uncorrected:
        return HealthReason.ECC, f"{gpu.ecc_uncorrected} uncorrectable ECC errors (volatile)"
    if gpu.row_remap_failed:
        return HealthReason.ROW_REMAP, "row remapping failed"
    return None


def classify(
    gpus: GpuSet, xids: Mapping[str, GpuXids] | None, registered: int = 0
) -> tuple[GpuHealth, ...]:
    """Health of every slot the node knows (usable ones and those it does not offer) and of
    every slot in `registered` (the chain's gpus_present mask), ordered by slot. `xids` maps
    GPU UUID to the XIDs seen (None: XIDs not watched). O(slots)."""
    found: dict[int, GpuHealth] = {}
    for slot, gpu in gpus.slots.items():
        problem = board_problem(gpu, None if xids is None else xids.get(gpu.uuid))
        reason, detail = problem if problem else (None, "")
        found[slot] = GpuHealth(slot, reason, gpu.index, gpu.uuid, gpu.name, detail)
    for item in gpus.unusable:
        if item.slot is not None and item.reason in _FROM_UNUSABLE:
            reason = _FROM_UNUSABLE[item.reason]
            found[item.slot] = GpuHealth(
                item.slot, reason, item.index, item.uuid, item.name, item.detail
            )
    for slot in slots_of(registered):
        if slot not in found:
            found[slot] = GpuHealth(slot, HealthReason.ABSENT, detail="no board for this slot")
    return tuple(found[slot] for slot in sorted(found))


def unreadable(slots: int, error: str) -> tuple[GpuHealth, ...]:
    """Every slot of mask `slots` lost: NVML could not be read at all (`error`)."""
    return tuple(GpuHealth(slot, HealthReason.LOST, detail=error) for slot in slots_of(slots))


def unhealthy_mask(health: Iterable[GpuHealth]) -> int:
    """The unhealthy slots as the chain's bit mask (bit i = slot i)."""
    return mask_of(item.slot for item in health if not item.healthy)
