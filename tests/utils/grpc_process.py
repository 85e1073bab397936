"""Shared base for tests' real gRPC service child processes (seed, GPU node).

Both harnesses need the same lifecycle: spawn `python -m services.X` with a clean
environment and a log file, wait on the standard gRPC health service, share one channel,
and stop or kill the child. Keeping it in one place keeps their behaviour identical.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout_s: float = 30.0,
    what: str = "",
    poll_s: float = 0.05,
) -> T:
    """Poll check until it returns something truthy; fail after timeout_s (a bound, not a
    speed claim: it only keeps a broken test from hanging)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or check}")
        time.sleep(poll_s)


class ServiceProcess:
    """One `python -m <module>` child serving gRPC on 127.0.0.1:port.

    Subclasses set the class attributes and implement _argv (and optionally _extra_env);
    the base owns spawning, readiness, the channel and shutdown.
    """

    name = "service"  # short label for the log file and error messages
    health_service = ""  # the name the health service reports SERVING for
    log_tail_chars = 3000  # how much of the log an early exit quotes
    poll_s = 0.05  # readiness polling interval
    stop_timeout_s = 30.0  # wait for exit after the signal, then SIGKILL

    def __init__(self, data_dir: Path, port: int, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = port
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def _argv(self) -> list[str]:
        """Arguments after `python`, e.g. ["-m", "services.seed", ...]."""
        raise NotImplementedError

    def _extra_env(self) -> dict[str, str]:
        """Variables applied after self.env (settings the harness itself controls)."""
        return {}

    def _spawn(self) -> None:
        """Start the child without waiting; GRIDLEASE_* from the outer shell never leak in."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEASE_")}
        env.update(self.env)
        env.update(self._extra_env())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self._argv()],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def _serving(self) -> bool:
        """True once health reports SERVING; raises with the log tail if the child died."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text()[-self.log_tail_chars :]
            raise AssertionError(f"{self.name} exited: {tail}")
        try:
            reply = health_pb2_grpc.HealthStub(self.channel()).Check(
                health_pb2.HealthCheckRequest(service=self.health_service), timeout=1
            )
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def _wait_serving(self, timeout_s: float) -> None:
        wait_until(
            self._serving,
            timeout_s=timeout_s,
            what=f"{self.name} {self.endpoint} to serve",
            poll_s=self.poll_s,
        )

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.endpoint)
        return self._channel

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def stop(self) -> int:
        """SIGTERM (graceful stop) and wait; returns the exit code."""
        return self._end(signal.SIGTERM)

    def kill(self) -> int:
        """SIGKILL: a crash, nothing flushed beyond what was committed."""
        return self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> int:
        self._close_channel()
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=self.stop_timeout_s)
        self.process = None
        return code
