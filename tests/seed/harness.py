"""Real seed processes on loopback for tests and benchmarks, and signed-offer factories."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from substrateinterface import Keypair

from services.common import build_offer, new_keypair, now_ms, sign_offer
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2, seed_pb2_grpc

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T | None], *, timeout_s: float = 30.0, what: str = "") -> T:
    """Poll check until it returns something truthy; fail after timeout_s (a bound, not a
    speed claim: it only keeps a broken test from hanging)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or check}")
        time.sleep(0.05)


def make_offer(
    keypair: Keypair | None = None, *, sequence: int = 1, **fields: Any
) -> tuple[offer_pb2.SignedOffer, Keypair]:
    """A valid signed offer (fields override the defaults) and the machine key that signed it."""
    key = keypair or new_keypair()[0]
    defaults: dict[str, Any] = {
        "provider": ALICE,
        "endpoint": "127.0.0.1:7700",
        "gpu_model": "NVIDIA H100 80GB HBM3",
        "gpu_count": 8,
        "memory_mib": 81559,
        "compute_capability": "9.0",
        "price_per_gpu_per_block": 1_000,
        "region": "eu-west",
        "labels": {"interconnect": "nvlink"},
        "timestamp_ms": now_ms(),
    }
    defaults.update(fields)
    return sign_offer(build_offer(key, sequence=sequence, **defaults), key), key


class SeedProcess:
    """One `python -m services.seed` child process with its own port and data folder."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        peers: Sequence[str] = (),
        env: dict[str, str] | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.peers = list(peers)
        self.metrics_port = metrics_port
        self.env = {
            "GRIDLEASE_SEED_SYNC_INTERVAL_S": "0.2",
            "GRIDLEASE_SEED_PRUNE_INTERVAL_S": "0.5",
            "GRIDLEASE_SEED_GRACE_S": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "seed.log"

    def start(self, *, wait: bool = True) -> SeedProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "services.seed", "--listen", self.endpoint]
        args += ["--data-dir", str(self.data_dir)]
        for peer in self.peers:
            args += ["--peer", peer]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEASE_")}
        env.update(self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        def serving() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"seed exited: {self.log_path.read_text()[-3000:]}")
            try:
                reply = health_pb2_grpc.HealthStub(self.channel()).Check(
                    health_pb2.HealthCheckRequest(service="gridlease.v1.SeedService"), timeout=1
                )
            except grpc.RpcError:
                return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING

        wait_until(serving, timeout_s=timeout_s, what=f"seed {self.endpoint} to serve")

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.endpoint)
        return self._channel

    def stub(self) -> seed_pb2_grpc.SeedServiceStub:
        return seed_pb2_grpc.SeedServiceStub(self.channel())

    def get(self, machine_id: bytes) -> seed_pb2.OfferEntry | None:
        """The offer this seed holds for machine_id, or None."""
        try:
            return (
                self.stub()
                .GetOffer(seed_pb2.GetOfferRequest(machine_id=machine_id), timeout=5)
                .entry
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                return None
            raise

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
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=30)
        self.process = None
        return code


def start_mesh(base: Path, count: int, **kwargs: Any) -> list[SeedProcess]:
    """count seeds, each listing all the others as peers."""
    ports = [free_port() for _ in range(count)]
    seeds = [
        SeedProcess(
            base / f"seed{i}",
            port=port,
            peers=[f"127.0.0.1:{p}" for p in ports if p != port],
            **kwargs,
        )
        for i, port in enumerate(ports)
    ]
    for seed in seeds:
        seed.start(wait=False)
    for seed in seeds:
        seed.wait_ready()
    return seeds
