"""The API's Prometheus metrics, in its own registry (services.common.new_registry).

Requests, leases by state (counted in the database at scrape time, so every replica reports the
same), GPUs offered and leased (the offer index and the chain's view of each machine), the chain
heads and the indexer's lag behind the finalized one, payments the chain made (counted by the
replica that indexed their block), spec deliveries, rate limits and chain RPC errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from services.common import (
    LATENCY_BUCKETS,
    IntCounter,
    chain_rpc_errors,
    get_logger,
    new_registry,
)
from services.customer_api.models import LeaseRecord, LeaseState

__all__ = ["ApiMetrics", "LeaseStateCollector"]

log = get_logger(__name__)


class LeaseStateCollector(Collector):
    """gridlease_api_leases{state}: this API's leases by state, read from the database at each
    scrape (every state is exported, zeros included). A database that does not answer exports
    nothing at that scrape (and the failure is logged), never a scrape error."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with Session(self._engine) as session:
                rows = session.execute(
                    select(col(LeaseRecord.chain_state), func.count()).group_by(
                        col(LeaseRecord.chain_state)
                    )
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics.leases_unavailable", extra={"error": repr(exc)[:300]})
            return
        counts = {LeaseState(state): int(n) for state, n in rows}
        family = GaugeMetricFamily(
            "gridlease_api_leases",
            "Leases this API recorded, by state (submitting, pending, starting, running, ended).",
            labels=["state"],
        )
        for state in LeaseState:
            family.add_metric([state.value], counts.get(state, 0))
        yield family

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("gridlease_api_leases", "Leases by state.", labels=["state"])


@dataclass
class _Heads:
    """The chain heads and indexed block as last seen (None: not seen yet)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    finalized: int | None = None
    indexed: int | None = None


@dataclass
class ApiMetrics:
    registry: CollectorRegistry
    requests: Histogram
    leases_created: Counter
    deliveries: Counter
    offers: Gauge
    gpus: Gauge
    indexed_block: Gauge
    chain_head: Gauge
    indexer_lag: Gauge
    provider_pay: IntCounter
    protocol_fees: IntCounter
    rate_limited: Counter
    chain_rpc_error: Callable[[str], None]
    _heads: _Heads = field(default_factory=_Heads)

    @classmethod
    def create(cls) -> ApiMetrics:
        registry = new_registry()
        metrics = cls(
            registry=registry,
            requests=Histogram(
                "gridlease_api_request_seconds",
                "Time spent answering one HTTP request, by method, route template (`unmatched` "
                "for no route) and status code.",
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
            gpus=Gauge(
                "gridlease_api_gpus",
                "GPUs of the offers in the search index, by state: offered (all GPUs of the "
                "offers), leased (offered minus those the chain shows free, over machines the "
                "chain was asked about).",
                ["state"],
                registry=registry,
            ),
            indexed_block=Gauge(
                "gridlease_api_indexed_block",
                "Last chain block indexed (the block number).",
                registry=registry,
            ),
            chain_head=Gauge(
                "gridlease_api_chain_head_block",
                "The chain's head as the API last saw it (the block number), by head: best "
                "(newest) or finalized.",
                ["head"],
                registry=registry,
            ),
            indexer_lag=Gauge(
                "gridlease_api_indexer_lag_blocks",
                "Finalized blocks the indexer has not indexed yet.",
                registry=registry,
            ),
            provider_pay=IntCounter(
                "gridlease_api_provider_pay_units",
                "Pay the chain moved to providers (PaymentClaimed `paid`, every lease), in the "
                "chain's smallest unit; counted by the replica that indexed the block.",
                registry,
            ),
            protocol_fees=IntCounter(
                "gridlease_api_protocol_fee_units",
                "Protocol fees the chain took (PaymentClaimed `fee`, every lease), in the chain's "
                "smallest unit; counted by the replica that indexed the block.",
                registry,
            ),
            rate_limited=Counter(
                "gridlease_api_rate_limited",
                "Requests refused (429) by a rate limit, by limit (a Settings field name).",
                ["limit"],
                registry=registry,
            ),
            chain_rpc_error=chain_rpc_errors(registry),
        )
        metrics.indexer_lag.set_function(metrics._lag)
        return metrics

    def _lag(self) -> float:
        with self._heads.lock:
            finalized, indexed = self._heads.finalized, self._heads.indexed
        if finalized is None or indexed is None:
            return 0.0
        return float(max(finalized - indexed, 0))

    def saw_best(self, number: int) -> None:
        self.chain_head.labels("best").set(number)

    def saw_finalized(self, number: int) -> None:
        with self._heads.lock:
            self._heads.finalized = number
        self.chain_head.labels("finalized").set(number)

    def indexed(self, number: int) -> None:
        with self._heads.lock:
            self._heads.indexed = number
        self.indexed_block.set(number)

    def paid(self, provider: int, fee: int) -> None:
        self.provider_pay.inc(provider)
        self.protocol_fees.inc(fee)

    def set_gpus(self, offered: int, leased: int) -> None:
        self.gpus.labels("offered").set(offered)
        self.gpus.labels("leased").set(leased)
