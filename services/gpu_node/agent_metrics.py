"""Prometheus metrics of the node agent itself (GPU readings are metrics.GpuCollector's)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common import IntCounter, chain_rpc_errors, rpc_latency

__all__ = ["AgentMetrics", "IntCounter"]

# Seconds; a reconcile with nothing to do is milliseconds, one that starts containers seconds.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.leases = Gauge(
            "gridlease_node_leases",
            "Leases of this machine on chain at the last reconcile, by state.",
            ["state"],
            registry=registry,
        )
        self.workloads = Gauge(
            "gridlease_node_workloads",
            "Workloads the runtime reported at the last reconcile, by phase.",
            ["phase"],
            registry=registry,
        )
        self.reconcile_seconds = Histogram(
            "gridlease_node_reconcile_seconds",
            "Time one reconcile run took, observation and actions included.",
            registry=registry,
            buckets=RECONCILE_BUCKETS,
        )
        self.reconcile_errors = Counter(
            "gridlease_node_reconcile_errors_total",
            "Reconcile runs or actions that failed, by what failed.",
            ["what"],
            registry=registry,
        )
        self.actions = Counter(
            "gridlease_node_actions_total",
            "Reconcile actions carried out, by kind and outcome (done, skipped, failed).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.heartbeats = Counter(
            "gridlease_node_heartbeats_total",
            "Heartbeats submitted to the chain, by outcome (sent, failed).",
            ["outcome"],
            registry=registry,
        )
        self.earnings = IntCounter(
            "gridlease_node_earnings_claimed_units",
            "Pay claimed for the provider (after the protocol fee), in the chain's smallest unit "
            "(an integer count of units).",
            registry,
        )
        self.heartbeat_age = Gauge(
            "gridlease_node_heartbeat_age_blocks",
            "Blocks since the machine's last heartbeat on chain, at the last check (pay stops "
            "accruing past gridlease_node_heartbeat_grace_blocks).",
            registry=registry,
        )
        self.heartbeat_grace = Gauge(
            "gridlease_node_heartbeat_grace_blocks",
            "The chain's HeartbeatGrace: blocks after a heartbeat during which the machine "
            "counts as up.",
            registry=registry,
        )
        self.gpus = Gauge(
            "gridlease_node_gpus",
            "GPUs of this machine by state: offered, or why not (lost, mig, other_model, "
            "absent, no_slot).",
            ["state"],
            registry=registry,
        )
        self.announcements = Counter(
            "gridlease_node_announcements_total",
            "Offer announcements to seeds, by outcome (sent, failed).",
            ["outcome"],
            registry=registry,
        )
        self.rpc_seconds = rpc_latency(registry, "node")
        self.chain_rpc_error = chain_rpc_errors(registry)
        self.submissions = Counter(
            "gridlease_node_submissions_total",
            "SubmitWorkload calls, by outcome (accepted, or the refusal's reason).",
            ["outcome"],
            registry=registry,
        )

    def add_earnings(self, paid: int) -> None:
        """Count `paid` smallest units claimed for the provider."""
        self.earnings.inc(paid)

    def set_counts(self, gauge: Gauge, counts: Mapping[str, int], known: tuple[str, ...]) -> None:
        # Every known label is written, zeros included, so a state that emptied reads 0.
        for key in {*known, *counts}:
            gauge.labels(key).set(counts.get(key, 0))
