"""Prometheus helpers: one registry per process (never the global one, so tests can run
several services in one interpreter), and a /metrics HTTP server on a chosen port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "CHAIN_RPC_ERROR_KINDS",
    "LATENCY_BUCKETS",
    "IntCounter",
    "MetricsServer",
    "chain_rpc_errors",
    "new_registry",
    "rpc_latency",
    "start_metrics_server",
]

# Seconds; RPCs on loopback take about a millisecond, remote ones tens of milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def new_registry() -> CollectorRegistry:
    """A fresh registry for this process's metrics."""
    return CollectorRegistry(auto_describe=True)


def rpc_latency(registry: CollectorRegistry, service: str) -> Histogram:
    """Histogram gridlease_<service>_rpc_seconds{method} for handler latency."""
    return Histogram(
        f"gridlease_{service}_rpc_seconds",
        "Time spent handling one RPC, by method.",
        ["method"],
        registry=registry,
        buckets=LATENCY_BUCKETS,
    )


# What a chain RPC failure was: no answer (connection refused or lost, timeout), or an answer
# that was an error or could not be read.
CHAIN_RPC_ERROR_KINDS = ("unavailable", "error", "unreadable")


def chain_rpc_errors(registry: CollectorRegistry) -> Callable[[str], None]:
    """Counter gridlease_chain_rpc_errors_total{kind} (kinds: CHAIN_RPC_ERROR_KINDS, each
    exported from the start at 0); returns the function a ChainClient calls (`on_error`)."""
    counter = Counter(
        "gridlease_chain_rpc_errors",
        "Chain RPC calls that failed, by kind: unavailable (no answer: connection refused, lost "
        "or timed out), error (the node answered with an error), unreadable (an answer that "
        "could not be decoded).",
        ["kind"],
        registry=registry,
    )
    for kind in CHAIN_RPC_ERROR_KINDS:
        counter.labels(kind)
    return lambda kind: counter.labels(kind).inc()


class IntCounter(Collector):
    """A counter of money in the chain's smallest unit, kept as a Python int.

    prometheus_client's Counter adds floats, which drop units above 2**53 (9,007 tokens of
    10**12 units) and then every later increment rounds. Here the sum is exact; only the
    exposition turns it into a number, as every Prometheus sample is a float64. `value` is the
    exact figure for code and tests. `name` is given without `_total` (added on exposition).
    """

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self._lock = threading.Lock()
        self._value = 0
        registry.register(self)

    @property
    def value(self) -> int:
        return self._value

    def inc(self, amount: int) -> None:
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise ValueError(f"a money counter adds non-negative ints, not {amount!r}")
        with self._lock:
            self._value += amount

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._value)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation)


@dataclass(frozen=True)
class MetricsServer:
    """A running /metrics server; port is the bound one (useful when asked for 0)."""

    server: WSGIServer
    thread: Thread
    port: int

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_metrics_server(
    registry: CollectorRegistry, port: int, host: str = "127.0.0.1"
) -> MetricsServer:
    """Serve registry on http://host:port/metrics from a daemon thread."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server=server, thread=thread, port=server.server_port)
