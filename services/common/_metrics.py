"""Prometheus helpers: one registry per process (never the global one, so tests can run
several services in one interpreter), and a /metrics HTTP server on a chosen port."""

from __future__ import annotations

from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Histogram, start_http_server

__all__ = [
    "LATENCY_BUCKETS",
    "MetricsServer",
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
