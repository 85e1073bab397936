"""Which GPUs this machine offers, under which chain slot, and why the others are not offered.

The chain knows a machine's GPUs as slots: bit i of `gpus_present` is slot i, and a lease holds
a set of slots (`gpu_mask`). The node ties each slot to one board by UUID (NodeStore's slot
table), so a board that vanishes leaves a hole instead of shifting the others.

A machine offers one model group: leases are priced per GPU, and `a100:2,t4:1` sold as three
of one kind would sell a T4 as an A100. The group is the configured model, else the model the
chain has registered for the machine, else the largest group (the first in NVML order on a tie);
the choice is logged. Of that group, a board is offered (usable) only if NVML reads it and it is
not in MIG mode (a MIG board is split into instances; a whole-GPU lease cannot have it).

    gpu_set = build_gpu_set(inventory, store, choose_model(inventory, configured, on_chain))
    gpu_set.mask        # slots to offer, the machine's gpus_present on chain once reconciled
    gpu_set.unusable    # every board (or remembered slot) not offered, with its reason
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from services.common import ConfigError, get_logger
from services.gpu_node.hardware.model import GpuDevice, Inventory
from services.gpu_node.store import MAX_GPU_SLOTS, NodeStore

__all__ = [
    "GpuSet",
    "Unusable",
    "UnusableReason",
    "build_gpu_set",
    "choose_model",
    "log_changes",
    "mask_of",
    "slots_of",
]

log = get_logger(__name__)
MIB = 1024 * 1024


class UnusableReason(Enum):
    LOST = "lost"  # NVML enumerates the board but cannot read it (GPU_IS_LOST, ...)
    MIG = "mig"  # MIG mode: only MIG instances, no whole GPU
    OTHER_MODEL = "other_model"  # not of the model group this machine offers
    ABSENT = "absent"  # a slot's board is no longer seen at all
    NO_SLOT = "no_slot"  # more boards of the model than the chain's MaxGpusPerMachine


@dataclass(frozen=True)
class Unusable:
    """A board or slot not offered. `index` is the NVML index (None when NVML does not list
    it), `slot` the chain slot (None when it has none), `uuid` and `name` "" when unknown."""

    reason: UnusableReason
    index: int | None = None
    slot: int | None = None
    uuid: str = ""
    name: str = ""
    detail: str = ""


@dataclass(frozen=True)
class GpuSet:
    """The GPUs one machine offers: `slots` maps chain slot -> board, usable boards only."""

    model: str
    memory_mib: int
    compute_capability: str | None
    slots: Mapping[int, GpuDevice]
    unusable: tuple[Unusable, ...] = ()
    simulated: bool = False
    groups: Mapping[str, int] = field(default_factory=dict)

    @property
    def mask(self) -> int:
        """Usable slots as the chain's `gpus_present` bit mask."""
        return mask_of(self.slots)

    @property
    def count(self) -> int:
        return len(self.slots)

    def uuids(self, slots: Iterable[int]) -> tuple[str, ...]:
        """The UUIDs of `slots`, in the same order; KeyError names slots not usable here."""
        wanted = tuple(slots)
        missing = [slot for slot in wanted if slot not in self.slots]
        if missing:
            raise KeyError(f"GPU slots {missing} are not usable on this machine")
        return tuple(self.slots[slot].uuid for slot in wanted)


def mask_of(slots: Iterable[int]) -> int:
    mask = 0
    for slot in slots:
        mask |= 1 << slot
    return mask


def slots_of(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def choose_model(
    inventory: Inventory, configured: str | None = None, on_chain: str | None = None
) -> str:
    """The model group this machine offers (see the module docstring for the order).

    Raises ConfigError when a configured model matches no board, when it differs from the
    model registered on chain (a registered machine cannot change model), or when no board
    could be read at all.
    """
    groups = Counter(gpu.name for gpu in inventory.gpus)
    if configured:
        matches = [name for name in groups if name.lower() == configured.strip().lower()]
        if not matches:
            raise ConfigError(
                f"gpu_model {configured!r} matches no GPU here; found "
                f"{_describe(groups) or 'none readable'}"
            )
        chosen = matches[0]
        if on_chain is not None and on_chain != chosen:
            raise ConfigError(
                f"gpu_model {chosen!r} differs from the model {on_chain!r} this machine is "
                "registered with on chain; a machine keeps its model (register another "
                "machine key for the other GPUs)"
            )
        return chosen
    if on_chain is not None:
        # Keep the registered model even when another group is now larger (a lost board must
        # not flip the machine to selling a different GPU).
        return on_chain
    if not groups:
        raise ConfigError(
            "no GPU could be read through NVML"
            + (
                f" ({len(inventory.failed)} failed: {inventory.failed[0].error})"
                if inventory.failed
                else ""
            )
        )
    # most_common keeps first-seen order among equal counts: NVML order breaks ties.
    chosen, count = groups.most_common(1)[0]
    if len(groups) > 1:
        log.warning(
            "node.gpu_model_chosen",
            extra={
                "model": chosen,
                "count": count,
                "found": _describe(groups),
                "detail": "one machine offers one model; set gpu_model to choose another, "
                "the rest are not offered",
            },
        )
    return chosen


def _describe(groups: Mapping[str, int]) -> str:
    return ", ".join(f"{count} x {name}" for name, count in groups.items())


def build_gpu_set(
    inventory: Inventory, store: NodeStore, model: str, max_slots: int = MAX_GPU_SLOTS
) -> GpuSet:
    """Slot the boards of `model` (NodeStore.assign_gpu_slots, slots below `max_slots`) and
    sort every board into usable or unusable-with-reason. Pure apart from the slot table it
    extends."""
    of_model = [gpu for gpu in inventory.gpus if gpu.name == model]
    table = store.assign_gpu_slots((gpu.uuid for gpu in of_model), max_slots)
    slot_of = {uuid: slot for slot, uuid in table.items()}
    slots: dict[int, GpuDevice] = {}
    unusable: list[Unusable] = []
    for gpu in inventory.gpus:
        slot = slot_of.get(gpu.uuid)
        if gpu.name != model:
            unusable.append(
                Unusable(UnusableReason.OTHER_MODEL, gpu.index, None, gpu.uuid, gpu.name)
            )
        elif slot is None:
            unusable.append(Unusable(UnusableReason.NO_SLOT, gpu.index, None, gpu.uuid, gpu.name))
        elif gpu.mig_enabled:
            unusable.append(Unusable(UnusableReason.MIG, gpu.index, slot, gpu.uuid, gpu.name))
        else:
            slots[slot] = gpu
    seen = {gpu.uuid for gpu in inventory.gpus}
    missing = [(slot, uuid) for slot, uuid in sorted(table.items()) if uuid not in seen]
    failed = sorted(inventory.failed, key=lambda f: f.index)
    if len(failed) == len(missing):
        # An unreadable board has no UUID to tell which slot it is. With as many unreadable
        # boards as slots gone, pair them in order (slots were handed out in NVML order), so
        # one lost board is one entry with its index, slot and UUID.
        for lost, (slot, uuid) in zip(failed, missing, strict=True):
            unusable.append(
                Unusable(UnusableReason.LOST, lost.index, slot, uuid, model, lost.error)
            )
    else:
        for lost in failed:
            unusable.append(Unusable(UnusableReason.LOST, lost.index, detail=lost.error))
        for slot, uuid in missing:
            unusable.append(Unusable(UnusableReason.ABSENT, None, slot, uuid, model))
    first = of_model[0] if of_model else None
    return GpuSet(
        model=model,
        memory_mib=first.memory_total_bytes // MIB if first else 0,
        compute_capability=first.compute_capability if first else None,
        slots=dict(sorted(slots.items())),
        unusable=tuple(unusable),
        simulated=inventory.simulated,
        groups=dict(Counter(gpu.name for gpu in inventory.gpus)),
    )


def log_changes(before: GpuSet | None, after: GpuSet) -> None:
    """Log each board that became unusable or usable again since `before` (all, at start)."""
    old = set(before.unusable) if before else set()
    for item in after.unusable:
        if item not in old:
            log.warning(
                "node.gpu_unusable",
                extra={
                    "reason": item.reason.value,
                    "index": item.index,
                    "slot": item.slot,
                    "uuid": item.uuid,
                    "model": item.name,
                    "error": item.detail,
                },
            )
    if before is not None:
        for slot in sorted(set(after.slots) - set(before.slots)):
            log.info("node.gpu_usable", extra={"slot": slot, "uuid": after.slots[slot].uuid})
