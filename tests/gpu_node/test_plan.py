"""The reconcile plan, case by case, without I/O: every combination of chain lease state, accepted
spec and workload phase, plus idempotence (a converged view plans nothing)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from services.gpu_node.reconcile.plan import (
    ApplyWorkload,
    CancelLease,
    ClaimPayment,
    DeleteReason,
    DeleteWorkload,
    ForgetSpec,
    LeaseFacts,
    SpecFacts,
    StartLease,
    UpdateGpus,
    View,
    gpu_target,
    plan,
)
from services.gpu_node.runtime.base import WorkloadPhase

HASH = b"\x11" * 32
OTHER_HASH = b"\x22" * 32
WINDOW = 120
BLOCK = 1_000


def lease(lease_id: int = 7, **fields: object) -> LeaseFacts:
    base: dict[str, object] = {
        "lease_id": lease_id,
        "state": "Pending",
        "created_at": BLOCK - 10,
        "ends_at": 0,
        "accrue_from": 0,
        "gpu_indexes": (0, 1),
        "spec_hash": HASH,
    }
    base.update(fields)
    return LeaseFacts(**base)  # type: ignore[arg-type]


def running(lease_id: int = 7, **fields: object) -> LeaseFacts:
    base: dict[str, object] = {
        "state": "Running",
        "ends_at": BLOCK + 100,
        "accrue_from": BLOCK - 5,
    }
    base.update(fields)
    return lease(lease_id, **base)


def view(
    leases: list[LeaseFacts] = (),  # type: ignore[assignment]
    specs: dict[int, SpecFacts] | None = None,
    workloads: dict[int, WorkloadPhase] | None = None,
    *,
    block: int = BLOCK,
    claim_every: int = 0,
    gpus: tuple[int | None, int | None, int | None] = (None, None, None),
) -> View:
    """`gpus`: usable now, usable at the read before, gpus_present on chain (bit masks)."""
    return View(
        block=block,
        leases={item.lease_id: item for item in leases},
        specs=specs or {},
        workloads=workloads or {},
        start_window=WINDOW,
        claim_every=claim_every,
        gpus_usable=gpus[0],
        gpus_usable_before=gpus[1],
        gpus_on_chain=gpus[2],
    )


SPEC = SpecFacts(HASH, accepted_block=BLOCK - 9)


def test_plan_empty_view_does_nothing() -> None:
    assert plan(view()) == []


def test_plan_pending_lease_with_spec_creates_workload() -> None:
    assert plan(view([lease()], {7: SPEC})) == [ApplyWorkload(7, (0, 1), restart=False)]


def test_plan_pending_lease_without_spec_waits() -> None:
    assert plan(view([lease()])) == []


def test_plan_pending_lease_with_running_workload_starts_lease() -> None:
    assert plan(view([lease()], {7: SPEC}, {7: WorkloadPhase.RUNNING})) == [StartLease(7)]


def test_plan_pending_lease_with_creating_workload_waits() -> None:
    assert plan(view([lease()], {7: SPEC}, {7: WorkloadPhase.PENDING})) == []


@pytest.mark.parametrize("phase", [WorkloadPhase.FAILED, WorkloadPhase.STOPPED])
@pytest.mark.parametrize("state", ["Pending", "Running"])
def test_plan_dead_workload_is_restarted(phase: WorkloadPhase, state: str) -> None:
    facts = running() if state == "Running" else lease()
    assert plan(view([facts], {7: SPEC}, {7: phase})) == [ApplyWorkload(7, (0, 1), restart=True)]


def test_plan_running_lease_missing_workload_recreates() -> None:
    assert plan(view([running()], {7: SPEC})) == [ApplyWorkload(7, (0, 1), restart=False)]


def test_plan_running_lease_with_running_workload_is_converged() -> None:
    assert plan(view([running()], {7: SPEC}, {7: WorkloadPhase.RUNNING})) == []


@pytest.mark.parametrize("state", ["Pending", "Running"])
def test_plan_drifted_workload_is_applied_again(state: str) -> None:
    # An object of the workload missing or edited by hand (Kubernetes): applied again, and a
    # pending lease is started only once the workload is back in line.
    facts = running() if state == "Running" else lease()
    drifted = dataclasses.replace(
        view([facts], {7: SPEC}, {7: WorkloadPhase.RUNNING}), drifted=frozenset({7})
    )
    assert plan(drifted) == [ApplyWorkload(7, (0, 1), restart=False)]


def test_plan_drift_of_an_orphan_deletes_it() -> None:
    orphan = dataclasses.replace(view([], {}, {7: WorkloadPhase.RUNNING}), drifted=frozenset({7}))
    assert plan(orphan) == [DeleteWorkload(7, DeleteReason.ORPHAN)]


def test_plan_workload_without_lease_is_orphan_and_spec_forgotten() -> None:
    actions = plan(view([], {7: SPEC}, {7: WorkloadPhase.RUNNING}))
    assert actions == [DeleteWorkload(7, DeleteReason.ORPHAN), ForgetSpec(7)]


def test_plan_orphan_workload_without_spec_is_deleted() -> None:
    assert plan(view([], {}, {9: WorkloadPhase.FAILED})) == [DeleteWorkload(9, DeleteReason.ORPHAN)]


def test_plan_spec_accepted_after_view_block_is_kept() -> None:
    # The view lags the block at which the lease was seen: it is not gone, only not visible yet.
    late = SpecFacts(HASH, accepted_block=BLOCK + 1)
    assert plan(view([], {7: late})) == []


def test_plan_spec_accepted_at_view_block_and_lease_gone_is_forgotten() -> None:
    assert plan(view([], {7: SpecFacts(HASH, accepted_block=BLOCK)})) == [ForgetSpec(7)]


@pytest.mark.parametrize("phase", [None, *WorkloadPhase])
def test_plan_expired_lease_stops_workload_and_claims(phase: WorkloadPhase | None) -> None:
    workloads = {} if phase is None else {7: phase}
    actions = plan(view([running(ends_at=BLOCK)], {7: SPEC}, workloads))
    expected = [] if phase is None else [DeleteWorkload(7, DeleteReason.EXPIRED)]
    assert actions == [*expected, ClaimPayment(7, final=True)]


def test_plan_expired_lease_without_spec_still_claims() -> None:
    assert plan(view([running(ends_at=BLOCK - 1)])) == [ClaimPayment(7, final=True)]


def test_plan_lease_one_block_before_end_keeps_running() -> None:
    assert plan(view([running(ends_at=BLOCK + 1)], {7: SPEC}, {7: WorkloadPhase.RUNNING})) == []


def test_plan_pending_past_start_window_deletes_and_cancels() -> None:
    stale = lease(created_at=BLOCK - WINDOW - 1)
    actions = plan(view([stale], {7: SPEC}, {7: WorkloadPhase.RUNNING}))
    assert actions == [DeleteWorkload(7, DeleteReason.START_WINDOW_PASSED), CancelLease(7)]


def test_plan_pending_at_last_block_of_window_still_starts() -> None:
    edge = lease(created_at=BLOCK - WINDOW)
    assert plan(view([edge], {7: SPEC}, {7: WorkloadPhase.RUNNING})) == [StartLease(7)]


def test_plan_spec_hash_mismatch_runs_nothing() -> None:
    wrong = SpecFacts(OTHER_HASH, accepted_block=BLOCK - 9)
    assert plan(view([lease()], {7: wrong}, {7: WorkloadPhase.RUNNING})) == [
        DeleteWorkload(7, DeleteReason.NO_SPEC)
    ]
    assert plan(view([lease()], {7: wrong})) == []


def test_plan_workload_for_lease_without_spec_is_deleted() -> None:
    assert plan(view([running()], {}, {7: WorkloadPhase.RUNNING})) == [
        DeleteWorkload(7, DeleteReason.NO_SPEC)
    ]


def test_plan_periodic_claim_after_enough_blocks() -> None:
    facts = running(accrue_from=BLOCK - 50)
    converged = {7: WorkloadPhase.RUNNING}
    assert plan(view([facts], {7: SPEC}, converged, claim_every=50)) == [
        ClaimPayment(7, final=False)
    ]
    assert plan(view([facts], {7: SPEC}, converged, claim_every=51)) == []
    assert plan(view([facts], {7: SPEC}, converged, claim_every=0)) == []


def test_plan_orders_deletes_first_then_applies_then_chain_calls() -> None:
    actions = plan(
        view(
            [lease(1), running(2, ends_at=BLOCK), lease(3)],
            {1: SPEC, 3: SPEC},
            {1: WorkloadPhase.RUNNING, 2: WorkloadPhase.RUNNING, 4: WorkloadPhase.RUNNING},
        )
    )
    assert actions == [
        DeleteWorkload(2, DeleteReason.EXPIRED),
        DeleteWorkload(4, DeleteReason.ORPHAN),
        ApplyWorkload(3, (0, 1), restart=False),
        StartLease(1),
        ClaimPayment(2, final=True),
    ]


def _apply(v: View, actions: list[object]) -> View:
    """What the world looks like once the executor has carried out `actions` (a model)."""
    leases = dict(v.leases)
    specs = dict(v.specs)
    workloads = dict(v.workloads)
    for a in actions:
        if isinstance(a, DeleteWorkload):
            workloads.pop(a.lease_id, None)
        elif isinstance(a, ApplyWorkload):
            workloads[a.lease_id] = WorkloadPhase.RUNNING
        elif isinstance(a, StartLease):
            leases[a.lease_id] = dataclasses.replace(
                leases[a.lease_id], state="Running", ends_at=v.block + 50, accrue_from=v.block
            )
        elif isinstance(a, ClaimPayment | CancelLease):
            if isinstance(a, CancelLease) or a.final:
                leases.pop(a.lease_id)
            else:
                leases[a.lease_id] = dataclasses.replace(leases[a.lease_id], accrue_from=v.block)
        elif isinstance(a, ForgetSpec):
            specs.pop(a.lease_id)
    return dataclasses.replace(v, leases=leases, specs=specs, workloads=workloads)


LEASE_CHOICES = [
    None,
    lease(),
    lease(created_at=BLOCK - WINDOW - 1),
    running(),
    running(ends_at=BLOCK),
    running(accrue_from=BLOCK - 600),
]
SPEC_CHOICES = [None, SPEC, SpecFacts(OTHER_HASH, BLOCK - 9), SpecFacts(HASH, BLOCK + 5)]
PHASE_CHOICES = [None, *WorkloadPhase]


@pytest.mark.parametrize(
    ("chain_lease", "spec", "phase"),
    list(itertools.product(LEASE_CHOICES, SPEC_CHOICES, PHASE_CHOICES)),
)
def test_plan_converges_in_at_most_three_rounds(
    chain_lease: LeaseFacts | None, spec: SpecFacts | None, phase: WorkloadPhase | None
) -> None:
    """Every combination: replaying plans through a model of the executor reaches a view whose
    plan is empty, and a lease is never started twice nor a workload left without its lease."""
    v = view(
        [chain_lease] if chain_lease else [],
        {7: spec} if spec else {},
        {7: phase} if phase else {},
        claim_every=600,
    )
    starts = 0
    for _ in range(3):
        actions = plan(v)
        assert plan(v) == actions  # deterministic: the same view, the same plan
        if not actions:
            break
        starts += sum(isinstance(a, StartLease) for a in actions)
        v = _apply(v, actions)
    assert plan(v) == []
    assert starts <= 1
    if 7 not in v.leases:
        assert 7 not in v.workloads


# -- GPUs (issue 14, item 9) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usable", "before", "on_chain", "expected"),
    [
        (0x7F, 0x7F, 0xFF, [UpdateGpus(0x7F)]),  # restarted with 7 of 8: shrink
        (0x7F, None, 0xFF, [UpdateGpus(0x7F)]),  # first read after start counts as two
        (0xF7, 0xFF, 0xFF, []),  # GPU 3 unreadable once: not yet
        (0xF7, 0xF7, 0xFF, [UpdateGpus(0xF7)]),  # twice: off the chain
        (0xFF, 0xF7, 0xF7, []),  # readable once again: not yet
        (0xFF, 0xFF, 0xF7, [UpdateGpus(0xFF)]),  # twice: back (the chain tops up the bond)
        (0xFF, 0xFF, 0xFF, []),
        (0, 0, 0xFF, []),  # nothing usable: the chain refuses an empty set; wait
    ],
)
def test_plan_gpu_set_follows_two_agreeing_reads(
    usable: int, before: int | None, on_chain: int, expected: list[UpdateGpus]
) -> None:
    assert plan(view(gpus=(usable, before, on_chain))) == expected


def test_gpu_target_changes_only_slots_both_reads_agree_on() -> None:
    # Slot 0 usable twice, slot 1 once (chain has it), slot 2 once (chain lacks it), slot 3 never.
    assert gpu_target(0b0011, 0b0101, on_chain=0b1010) == 0b0011


def test_a_running_lease_keeps_its_lost_gpu_on_chain_until_it_ends() -> None:
    # Running lease 7 holds slots 0 and 1; slot 1 is lost. Taking it off the chain would end
    # the lease GpusRemoved without compensation; the heartbeat reports it unhealthy instead,
    # so the chain stops the lease's pay and lets its customer end it with compensation.
    sick = view([running()], {7: SPEC}, {7: WorkloadPhase.RUNNING}, gpus=(0b001, 0b001, 0b111))
    assert UpdateGpus(0b011) in plan(sick)  # slot 2 (free) goes, slot 1 (leased) stays
    assert plan(view([running()], {7: SPEC}, {7: WorkloadPhase.RUNNING},
                     gpus=(0b001, 0b001, 0b011))) == []  # fmt: skip
    # Once the lease has ended, the slot goes.
    assert plan(view([], {}, gpus=(0b001, 0b001, 0b011))) == [UpdateGpus(0b001)]


def test_plan_holds_back_lease_on_missing_gpu_until_chain_ends_it() -> None:
    # Lease 7 holds slots 0 and 1; slot 1 is gone. No workload, no start; the chain's set
    # shrinks first, which ends the lease there.
    assert plan(view([lease()], {7: SPEC}, gpus=(0b01, 0b01, 0b11))) == [UpdateGpus(0b01)]
    # A workload already running on it is left alone until then (no delete, no start).
    held = view([lease()], {7: SPEC}, {7: WorkloadPhase.RUNNING}, gpus=(0b01, 0b01, 0b11))
    assert plan(held) == [UpdateGpus(0b01)]
    # A lease on the remaining slot runs as usual.
    other = lease(8, gpu_indexes=(0,))
    assert plan(view([other], {8: SPEC}, gpus=(0b01, 0b01, 0b01))) == [
        ApplyWorkload(8, (0,), restart=False)
    ]
