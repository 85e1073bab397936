"""Pure reconcile decisions: what the node should do, given what the chain, its store and the
runtime show. No I/O here, so every case is tested directly (tests/gpu_node/test_plan.py).

Desired state comes from the chain at one (finalized) block: a lease of this machine whose spec
the node accepted should have a running workload until the lease ends. Actual state is what the
runtime lists by lease label. Each run compares the two and returns actions; running the plan
again on the same view returns the same actions, and once the executor has carried them out the
next plan is empty. The chain's own rules keep a repeated chain action harmless (a second
start_lease fails with LeaseAlreadyStarted), and the executor re-reads the chain before acting.

GPUs: the chain's GPU set of the machine (`gpus_present`) follows the slots the node can run
(UpdateGpus); the chain ends the leases of removed slots. A slot changes on chain only when two
NVML reads in a row agree on it (`gpu_target`): taking a slot off ends its leases for good, and
one failed read must not do that. Until the chain has caught up, a lease holding a slot the
node cannot run now gets no workload and no start. A slot a *running* lease holds stays on chain
until that lease ends: the heartbeat reports it unhealthy instead (health.py), so the lease stops
paying and, after the chain's UnhealthyGrace, its customer is refunded and compensated from the
bond; taking the slot off would end the lease GpusRemoved, refunded but not compensated, letting
the provider's own node skip the compensation. Pending leases on it end at once, fully refunded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from services.gpu_node.runtime.base import WorkloadPhase

__all__ = [
    "Action",
    "ApplyWorkload",
    "CancelLease",
    "ClaimPayment",
    "DeleteWorkload",
    "DeleteReason",
    "ForgetSpec",
    "LeaseFacts",
    "SpecFacts",
    "StartLease",
    "UpdateGpus",
    "View",
    "gpu_target",
    "plan",
]


@dataclass(frozen=True)
class LeaseFacts:
    """The fields of a chain lease the plan looks at."""

    lease_id: int
    state: str  # "Pending" or "Running"
    created_at: int
    ends_at: int
    accrue_from: int
    gpu_indexes: tuple[int, ...]
    spec_hash: bytes


@dataclass(frozen=True)
class SpecFacts:
    """An accepted spec: its hash and the block at which its lease was seen on chain."""

    digest: bytes
    accepted_block: int


@dataclass(frozen=True)
class View:
    """Everything one reconcile run decides from."""

    block: int  # the (finalized) block the leases were read at
    leases: Mapping[int, LeaseFacts]
    specs: Mapping[int, SpecFacts]
    workloads: Mapping[int, WorkloadPhase]
    start_window: int
    # Claim a running lease's pay when this many blocks accrued since its checkpoint; 0: at end.
    claim_every: int = 0
    # Slots the node can run now, at the read before, and the machine's gpus_present on chain
    # (bit masks); None when not known, and then the plan neither changes the chain's set nor
    # holds leases back.
    gpus_usable: int | None = None
    gpus_on_chain: int | None = None
    gpus_usable_before: int | None = None
    # Leases whose workload drifted from what was applied (an object missing or edited by
    # hand, WorkloadStatus.drift): applied again, which puts back only what differs.
    drifted: frozenset[int] = frozenset()


class DeleteReason(Enum):
    ORPHAN = "orphan"  # no such lease on chain (ended, or never ours)
    EXPIRED = "expired"  # the lease reached its end block
    START_WINDOW_PASSED = "start_window_passed"
    NO_SPEC = "no_spec"  # nothing accepted for the lease, so nothing may run


@dataclass(frozen=True)
class DeleteWorkload:
    lease_id: int
    reason: DeleteReason


@dataclass(frozen=True)
class ApplyWorkload:
    lease_id: int
    gpu_indexes: tuple[int, ...]
    restart: bool  # a workload existed but had stopped or failed


@dataclass(frozen=True)
class StartLease:
    lease_id: int


@dataclass(frozen=True)
class ClaimPayment:
    lease_id: int
    final: bool  # past the end block: the claim also settles the lease


@dataclass(frozen=True)
class CancelLease:
    """A pending lease whose start window passed: cancelling frees its GPUs (StartTimeout)."""

    lease_id: int


@dataclass(frozen=True)
class ForgetSpec:
    """The lease is gone from the chain: mark its spec ended."""

    lease_id: int


@dataclass(frozen=True)
class UpdateGpus:
    """The chain's GPU set differs from the slots the node can run: set it to these."""

    gpus_present: int


Action = (
    DeleteWorkload
    | UpdateGpus
    | ApplyWorkload
    | StartLease
    | ClaimPayment
    | CancelLease
    | ForgetSpec
)

# Order within one run: free resources first, then tell the chain which GPUs exist (it ends the
# leases of missing ones), then create, then chain calls, then bookkeeping.
_ORDER = {
    DeleteWorkload: 0,
    UpdateGpus: 1,
    ApplyWorkload: 2,
    StartLease: 3,
    ClaimPayment: 4,
    CancelLease: 5,
}
_DEAD = frozenset({WorkloadPhase.FAILED, WorkloadPhase.STOPPED})


def _plan_lease(view: View, lease_id: int) -> list[Action]:
    lease = view.leases.get(lease_id)
    spec = view.specs.get(lease_id)
    phase = view.workloads.get(lease_id)
    actions: list[Action] = []

    def delete(reason: DeleteReason) -> None:
        if phase is not None:
            actions.append(DeleteWorkload(lease_id, reason))

    if lease is None:
        delete(DeleteReason.ORPHAN)
        # Only forget once the view is at least as new as the block where the lease was seen,
        # so a view that lags the acceptance does not end a lease that just began.
        if spec is not None and view.block >= spec.accepted_block:
            actions.append(ForgetSpec(lease_id))
        return actions

    if lease.state == "Running" and view.block >= lease.ends_at:
        delete(DeleteReason.EXPIRED)
        actions.append(ClaimPayment(lease_id, final=True))
        return actions

    if lease.state == "Pending" and view.block > lease.created_at + view.start_window:
        delete(DeleteReason.START_WINDOW_PASSED)
        actions.append(CancelLease(lease_id))
        return actions

    if spec is None or spec.digest != lease.spec_hash:
        delete(DeleteReason.NO_SPEC)
        return actions

    if view.gpus_usable is not None and any(
        not view.gpus_usable >> slot & 1 for slot in lease.gpu_indexes
    ):
        # Nothing can run it here. UpdateGpus takes the slot off the chain, which ends the
        # lease (GpusRemoved); a workload still running on the lease's other GPUs stays until
        # then, so the customer loses nothing before the chain settles.
        return actions

    if phase is None or phase in _DEAD:
        actions.append(ApplyWorkload(lease_id, lease.gpu_indexes, restart=phase is not None))
    elif lease_id in view.drifted:
        actions.append(ApplyWorkload(lease_id, lease.gpu_indexes, restart=False))
    elif phase is WorkloadPhase.RUNNING and lease.state == "Pending":
        actions.append(StartLease(lease_id))

    if (
        lease.state == "Running"
        and view.claim_every > 0
        and view.block - lease.accrue_from >= view.claim_every
    ):
        actions.append(ClaimPayment(lease_id, final=False))
    return actions


def _rank(action: Action) -> tuple[int, int]:
    lease_id = -1 if isinstance(action, UpdateGpus) else action.lease_id
    return (_ORDER.get(type(action), len(_ORDER)), lease_id)


def _running_slots(leases: Iterable[LeaseFacts]) -> int:
    """The slots running leases hold, as a mask: they stay on chain until the lease ends."""
    mask = 0
    for lease in leases:
        if lease.state == "Running":
            for slot in lease.gpu_indexes:
                mask |= 1 << slot
    return mask


def gpu_target(usable: int, usable_before: int | None, on_chain: int) -> int:
    """The GPU set the chain should have: slots usable in both of the last two reads, plus
    slots the reads disagree on where the chain already has them (no change on one read)."""
    before = usable if usable_before is None else usable_before
    return (usable & before) | (on_chain & (usable | before))


def plan(view: View) -> list[Action]:
    """The actions that bring the runtime and the chain in line with the leases of `view`."""
    ids = set(view.leases) | set(view.specs) | set(view.workloads)
    actions = [a for lease_id in ids for a in _plan_lease(view, lease_id)]
    if view.gpus_usable is not None and view.gpus_on_chain is not None:
        target = gpu_target(view.gpus_usable, view.gpus_usable_before, view.gpus_on_chain)
        target |= view.gpus_on_chain & _running_slots(view.leases.values())
        # Never empty: the chain refuses an empty set (InvalidGpuSet), and a machine with no
        # usable GPU has nothing to offer anyway; its leases wait for the GPUs or their end.
        if target and target != view.gpus_on_chain:
            actions.append(UpdateGpus(target))
    return sorted(actions, key=_rank)
