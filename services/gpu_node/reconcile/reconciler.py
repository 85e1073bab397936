"""One reconcile run end to end, with its metrics; the agent calls it on a timer and on demand."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from services.common import get_logger
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.reconcile.executor import Executor, Outcome
from services.gpu_node.reconcile.observe import Observation
from services.gpu_node.reconcile.plan import plan
from services.gpu_node.runtime.base import WorkloadPhase, WorkloadStatus

__all__ = ["Reconciler"]

log = get_logger(__name__)
_PHASES = tuple(p.value for p in WorkloadPhase)


class Reconciler:
    """observe -> plan -> execute. Runs are serialised: a timer tick and a submission that both
    ask for a run never interleave their actions."""

    def __init__(
        self,
        observe: Callable[[], Observation],
        executor: Executor,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._observe = observe
        self._executor = executor
        self._metrics = metrics
        self._lock = threading.Lock()
        # What the runtime showed at the last run; GPU metrics and GetLeaseStatus read it.
        self.last_workloads: Sequence[WorkloadStatus] = ()

    def run_once(self) -> list[Outcome]:
        with self._lock:
            started = time.perf_counter()
            try:
                observation = self._observe()
            except Exception as exc:
                if self._metrics is not None:
                    self._metrics.reconcile_errors.labels("observe").inc()
                log.warning("reconcile.observe_failed", extra={"error": str(exc)})
                raise
            self.last_workloads = observation.workloads
            outcomes = self._executor.run(plan(observation.view))
            if self._metrics is not None:
                self._metrics.reconcile_seconds.observe(time.perf_counter() - started)
                states = Counter(lease.state for lease in observation.view.leases.values())
                self._metrics.set_counts(self._metrics.leases, states, ("Pending", "Running"))
                phases = Counter(w.phase.value for w in observation.workloads)
                self._metrics.set_counts(self._metrics.workloads, phases, _PHASES)
            return outcomes
