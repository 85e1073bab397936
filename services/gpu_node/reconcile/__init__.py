"""The reconcile loop: observe (chain, store, runtime), plan (pure), execute."""

from services.gpu_node.reconcile.executor import Executor, LeaseOps, Outcome
from services.gpu_node.reconcile.plan import Action, View, plan
from services.gpu_node.reconcile.reconciler import Reconciler

__all__ = ["Action", "Executor", "LeaseOps", "Outcome", "Reconciler", "View", "plan"]
