"""Reads what the plan decides from: the machine and its leases (at the best block, and those
still live at the finalized one), the accepted specs, the workloads the runtime lists by label,
and the GPU slots usable now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.common._chain import ChainClient, ChainLease
from services.gpu_node.chain_ops import gpus_present
from services.gpu_node.reconcile.plan import LeaseFacts, SpecFacts, View
from services.gpu_node.runtime.base import WorkloadRuntime, WorkloadStatus
from services.gpu_node.store import NodeStore

__all__ = ["Observation", "lease_facts", "observe"]


@dataclass(frozen=True)
class Observation:
    view: View
    workloads: Sequence[WorkloadStatus]


def lease_facts(lease: ChainLease) -> LeaseFacts:
    return LeaseFacts(
        lease_id=lease.lease_id,
        state=lease.state,
        created_at=lease.created_at,
        ends_at=lease.ends_at,
        accrue_from=lease.accrue_from,
        gpu_indexes=tuple(lease.gpu_indexes),
        spec_hash=lease.spec_hash,
    )


def _live_leases(chain: ChainClient, machine_id: bytes, head: str) -> dict[int, LeaseFacts]:
    """The machine's live leases at block `head`, read at that one block so they agree."""
    leases: dict[int, LeaseFacts] = {}
    for lease_id in chain.machine_leases(machine_id, head):
        lease = chain.lease(lease_id, head)
        if lease is not None and lease.machine_id == machine_id:
            leases[lease_id] = lease_facts(lease)
    return leases


def observe(
    chain: ChainClient,
    machine_id: bytes,
    store: NodeStore,
    runtime: WorkloadRuntime,
    *,
    start_window: int,
    claim_every: int,
    gpus_usable: int | None = None,
    gpus_usable_before: int | None = None,
) -> Observation:
    """`gpus_usable`: bit mask of the GPU slots the node can run now, `gpus_usable_before` at
    the read before (None: GPUs not reconciled)."""
    # A workload starts as soon as its lease is in the best block (about one block after the
    # request, not the finality lag; if that block is abandoned, the lease is in neither read
    # below and the next round removes the workload again), but it is stopped only when its end
    # is final: a lease live at the finalized block and not at the best one keeps its finalized
    # facts. Money is the chain's own (claims and refunds are computed there) and the API
    # records it from finalized blocks only. Chopsticks: best and finalized are the same block.
    best = chain.best_head()
    final = chain.finalized_head()
    block = chain.block_number(best)
    machine = chain.machine(machine_id, best) if gpus_usable is not None else None
    leases = _live_leases(chain, machine_id, final)
    if best != final:
        leases.update(_live_leases(chain, machine_id, best))
    specs = {
        lease_id: SpecFacts(s.digest, s.accepted_block) for lease_id, s in store.active().items()
    }
    workloads = list(runtime.list())
    view = View(
        block=block,
        leases=leases,
        specs=specs,
        workloads={w.lease_id: w.phase for w in workloads},
        start_window=start_window,
        claim_every=claim_every,
        gpus_usable=gpus_usable,
        gpus_on_chain=None if machine is None else gpus_present(machine),
        gpus_usable_before=gpus_usable_before,
        drifted=frozenset(w.lease_id for w in workloads if w.drift),
    )
    return Observation(view, workloads)
