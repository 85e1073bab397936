"""A real `python -m services.gpu_node run` child process for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_gen.gridlease.v1 import node_pb2_grpc

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SERVICE = "gridlease.v1.NodeService"


def wait_for(check: Callable[[], T | None], *, timeout_s: float = 120.0, what: str = "") -> T:
    """Poll until check returns something truthy. The timeout only bounds a broken test."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or check}")
        time.sleep(0.1)


class NodeProcess:
    def __init__(self, data_dir: Path, port: int, metrics_port: int, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = port
        self.metrics_port = metrics_port
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "node.log"

    def start(self) -> NodeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEASE_")}
        env.update(self.env)
        env.update(
            GRIDLEASE_NODE_LISTEN=self.endpoint,
            GRIDLEASE_NODE_DATA_DIR=str(self.data_dir),
            GRIDLEASE_NODE_METRICS_PORT=str(self.metrics_port),
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.gpu_node", "run"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(self._serving, timeout_s=300, what=f"node {self.endpoint} to serve")
        return self

    def _serving(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"node exited: {self.log_path.read_text()[-4000:]}")
        try:
            reply = health_pb2_grpc.HealthStub(self.channel()).Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=1
            )
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.endpoint)
        return self._channel

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

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _end(self, sig: signal.Signals) -> int:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def kill(self) -> int:
        """SIGKILL: a crash at whatever point the node was."""
        return self._end(signal.SIGKILL)

    def stop(self) -> int:
        return self._end(signal.SIGTERM)
