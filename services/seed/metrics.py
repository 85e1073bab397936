"""The seed's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common import new_registry, rpc_latency

__all__ = ["SeedMetrics"]


class SeedMetrics:
    """Offers held, announcements by result and reason, sync rounds and skipped offers, RPC
    latency."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        self.offers_held = Gauge(
            "gridlease_seed_offers_held", "Offers currently held.", registry=self.registry
        )
        self.announcements = Counter(
            "gridlease_seed_announcements",
            "Announcements by result (accepted/rejected) and rejection reason.",
            ["result", "reason"],
            registry=self.registry,
        )
        self.sync_rounds = Counter(
            "gridlease_seed_sync_rounds",
            "Anti-entropy rounds by peer and outcome (in_sync, pulled, unreachable, failed).",
            ["peer", "result"],
            registry=self.registry,
        )
        self.replicated = Counter(
            "gridlease_seed_offers_replicated",
            "Offers pulled from peers and stored.",
            registry=self.registry,
        )
        self.sync_skipped = Counter(
            "gridlease_seed_sync_offers_skipped",
            "Offers pulled from peers and not stored, by reason (a rejection reason such as "
            "stale_sequence, or 'error' for a fault of ours, logged with its traceback).",
            ["reason"],
            registry=self.registry,
        )
        self.rpc_seconds: Histogram = rpc_latency(self.registry, "seed")

    def track_offers(self, count: Callable[[], int]) -> None:
        """Read the gauge from the store at scrape time, so it can never drift."""
        self.offers_held.set_function(lambda: float(count()))
