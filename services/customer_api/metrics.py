"""The API's Prometheus metrics, in its own registry (services.common.new_registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common import LATENCY_BUCKETS, new_registry

__all__ = ["ApiMetrics"]


@dataclass
class ApiMetrics:
    registry: CollectorRegistry
    requests: Histogram
    leases_created: Counter
    deliveries: Counter
    offers: Gauge
    indexed_block: Gauge
    rate_limited: Counter

    @classmethod
    def create(cls) -> ApiMetrics:
        registry = new_registry()
        return cls(
            registry=registry,
            requests=Histogram(
                "gridlease_api_request_seconds",
                "Time spent answering one HTTP request, by route and status.",
                ["method", "route", "status"],
                registry=registry,
                buckets=LATENCY_BUCKETS,
            ),
            leases_created=Counter(
                "gridlease_api_leases_created",
                "Leases the chain accepted for requests to this process (replays not counted).",
                registry=registry,
            ),
            deliveries=Counter(
                "gridlease_api_spec_deliveries",
                "Attempts to hand a spec to a node, by outcome.",
                ["outcome"],
                registry=registry,
            ),
            offers=Gauge("gridlease_api_offers", "Offers in the search index.", registry=registry),
            indexed_block=Gauge(
                "gridlease_api_indexed_block", "Last chain block indexed.", registry=registry
            ),
            rate_limited=Counter(
                "gridlease_api_rate_limited",
                "Requests refused (429) by a rate limit, by limit (a Settings field name).",
                ["limit"],
                registry=registry,
            ),
        )
