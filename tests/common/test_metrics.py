"""Metrics helpers: per-process registry served over HTTP."""

from __future__ import annotations

import urllib.request

from prometheus_client import Counter

from services.common import new_registry, start_metrics_server


def test_serve_metrics_exposes_registry() -> None:
    registry = new_registry()
    Counter("gridlease_test_events", "Test events.", registry=registry).inc(2)
    server = start_metrics_server(registry, 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            body = r.read().decode()
    finally:
        server.stop()
    assert "gridlease_test_events_total 2.0" in body
