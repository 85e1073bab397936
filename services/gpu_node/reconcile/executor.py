"""Carries out the plan's actions against the runtime and the chain, one at a time.

Chain actions re-read the lease at the best block first and act only if it still needs it, so a
plan made from a finalized view that lags an earlier run's own transaction does not repeat it.
Errors the chain answers when the work is already done (LeaseNotFound, LeaseAlreadyStarted,
NothingToClaim) count as done. Any other failure is logged and counted, and the next run, which
starts again from what the chain and runtime show, tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.common import get_logger
from services.common._chain import ChainLease, ChainMachine, ExtrinsicFailed
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.chain_ops import gpus_present
from services.gpu_node.desired import DesiredWorkloads
from services.gpu_node.reconcile.plan import (
    Action,
    ApplyWorkload,
    CancelLease,
    ClaimPayment,
    DeleteWorkload,
    ForgetSpec,
    StartLease,
    UpdateGpus,
)
from services.gpu_node.runtime.base import WorkloadRuntime
from services.gpu_node.store import NodeStore

__all__ = ["Executor", "LeaseOps", "Outcome"]

log = get_logger(__name__)

# The chain's answers that mean "someone (maybe an earlier run of ours) already did it".
_ALREADY_DONE = {
    StartLease: {"LeaseNotFound", "LeaseAlreadyStarted"},
    ClaimPayment: {"LeaseNotFound", "NothingToClaim", "LeaseNotRunning"},
    CancelLease: {"LeaseNotFound", "LeaseAlreadyStarted"},
}


class LeaseOps(Protocol):
    """The operator's lease calls on chain (services.gpu_node.chain_ops.OperatorChain)."""

    def lease(self, lease_id: int) -> ChainLease | None: ...

    def start_lease(self, lease_id: int) -> None: ...

    def claim_payment(self, lease_id: int) -> int:
        """Submits the claim; returns what the provider was paid."""
        ...

    def cancel_lease(self, lease_id: int) -> None: ...

    def machine(self) -> ChainMachine | None: ...

    def update_gpus(self, gpus_present: int) -> int:
        """Sets the machine's GPU slots; returns the new bond."""
        ...


@dataclass(frozen=True)
class Outcome:
    action: Action
    result: str  # "done", "skipped" (nothing left to do) or "failed"
    detail: str = ""


class Executor:
    def __init__(
        self,
        runtime: WorkloadRuntime,
        chain: LeaseOps,
        store: NodeStore,
        workloads: DesiredWorkloads,
        metrics: AgentMetrics | None = None,
        current_block: Callable[[], int] = lambda: 0,
    ) -> None:
        self._runtime = runtime
        self._chain = chain
        self._store = store
        self._workloads = workloads
        self._metrics = metrics
        self._current_block = current_block

    def run(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes = [self._one(action) for action in actions]
        if self._metrics is not None:
            for o in outcomes:
                self._metrics.actions.labels(type(o.action).__name__, o.result).inc()
                if o.result == "failed":
                    self._metrics.reconcile_errors.labels(type(o.action).__name__).inc()
        return outcomes

    def _one(self, action: Action) -> Outcome:
        try:
            result = self._dispatch(action)
        except ExtrinsicFailed as exc:
            if exc.name in _ALREADY_DONE.get(type(action), set()):
                return Outcome(action, "skipped", exc.name)
            return self._failed(action, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad action must not stop the others
            return self._failed(action, f"{type(exc).__name__}: {exc}")
        log.info("reconcile.action", extra={"action": repr(action), "result": result.result})
        return result

    def _failed(self, action: Action, detail: str) -> Outcome:
        log.warning("reconcile.action_failed", extra={"action": repr(action), "error": detail})
        return Outcome(action, "failed", detail)

    def _dispatch(self, action: Action) -> Outcome:
        if isinstance(action, DeleteWorkload):
            self._runtime.delete(action.lease_id)
            return Outcome(action, "done", action.reason.value)
        if isinstance(action, ApplyWorkload):
            return self._apply(action)
        if isinstance(action, ForgetSpec):
            self._store.mark_ended(action.lease_id, self._current_block())
            return Outcome(action, "done")
        if isinstance(action, UpdateGpus):
            return self._update_gpus(action)
        return self._chain_action(action)

    def _apply(self, action: ApplyWorkload) -> Outcome:
        stored = self._store.get(action.lease_id)
        if stored is None:
            return Outcome(action, "skipped", "no spec")
        workload = self._workloads.build(action.lease_id, stored.document, action.gpu_indexes)
        status = self._runtime.apply(workload)
        # Where the runtime published the ports (on Kubernetes the API server chose them at the
        # first apply): recorded, so a re-created workload asks for the same ones.
        published = {port: int(ep.rsplit(":", 1)[1]) for port, ep in status.endpoints.items()}
        self._store.record_host_ports(action.lease_id, published)
        return Outcome(action, "done", status.phase.value)

    def _update_gpus(self, action: UpdateGpus) -> Outcome:
        machine = self._chain.machine()
        if machine is None:
            return Outcome(action, "skipped", "machine not registered")
        if gpus_present(machine) == action.gpus_present:
            return Outcome(action, "skipped", "already set")
        log.warning(
            "node.gpu_set_changed",
            extra={"chain": hex(gpus_present(machine)), "usable": hex(action.gpus_present)},
        )
        bond = self._chain.update_gpus(action.gpus_present)
        return Outcome(action, "done", f"bond {bond}")

    def _chain_action(self, action: StartLease | ClaimPayment | CancelLease) -> Outcome:
        lease = self._chain.lease(action.lease_id)
        if lease is None:
            return Outcome(action, "skipped", "lease gone")
        if isinstance(action, StartLease):
            if lease.state != "Pending":
                return Outcome(action, "skipped", lease.state)
            self._chain.start_lease(action.lease_id)
            return Outcome(action, "done")
        if isinstance(action, CancelLease):
            if lease.state != "Pending":
                return Outcome(action, "skipped", lease.state)
            self._chain.cancel_lease(action.lease_id)
            return Outcome(action, "done")
        if lease.state != "Running":
            return Outcome(action, "skipped", lease.state)
        paid = self._chain.claim_payment(action.lease_id)
        if self._metrics is not None:
            self._metrics.add_earnings(paid)
        return Outcome(action, "done", str(paid))
