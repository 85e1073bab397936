"""A real `python -m services.gpu_node run` child process for tests and benchmarks."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from services.common.grpc_gen.gridlease.v1 import node_pb2_grpc
from tests.utils.grpc_process import ServiceProcess, wait_until

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], *, timeout_s: float = 120.0, what: str = "") -> T:
    """Poll until check returns something truthy. The timeout only bounds a broken test."""
    return wait_until(check, timeout_s=timeout_s, what=what, poll_s=0.1)


class NodeProcess(ServiceProcess):
    """The node agent, configured (like in production) through GRIDLEASE_NODE_* variables."""

    name = "node"
    health_service = "gridlease.v1.NodeService"
    log_tail_chars = 4000
    poll_s = 0.1
    stop_timeout_s = 60.0

    def __init__(self, data_dir: Path, port: int, metrics_port: int, env: dict[str, str]) -> None:
        super().__init__(data_dir, port, env)
        self.metrics_port = metrics_port

    def _argv(self) -> list[str]:
        return ["-m", "services.gpu_node", "run"]

    def _extra_env(self) -> dict[str, str]:
        return {
            "GRIDLEASE_NODE_LISTEN": self.endpoint,
            "GRIDLEASE_NODE_DATA_DIR": str(self.data_dir),
            "GRIDLEASE_NODE_METRICS_PORT": str(self.metrics_port),
        }

    def start(self) -> NodeProcess:
        """Spawn and wait for SERVING (a generous bound: a slow first start must not flake)."""
        self._spawn()
        self._wait_serving(timeout_s=300)
        return self

    def stub(self) -> node_pb2_grpc.NodeServiceStub:
        return node_pb2_grpc.NodeServiceStub(self.channel())

    def metric(self, name: str) -> float:
        """Sum of every sample named exactly `name` on /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        total = 0.0
        for line in text.splitlines():
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
        return total

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Every sample named exactly `name` on /metrics, with its labels."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        return [
            (dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        ]

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid
