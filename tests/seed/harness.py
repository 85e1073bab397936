"""Real seed processes on loopback for tests and benchmarks, and signed-offer factories."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from substrateinterface import Keypair

from services.common import build_offer, new_keypair, now_ms, sign_offer
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2, seed_pb2_grpc
from tests.utils.grpc_process import ServiceProcess, wait_until
from tests.utils.ports import free_port

__all__ = ["ALICE", "SeedProcess", "free_port", "make_offer", "start_mesh", "wait_until"]

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


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


class SeedProcess(ServiceProcess):
    """One `python -m services.seed` child process with its own port and data folder."""

    name = "seed"
    health_service = "gridlease.v1.SeedService"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        peers: Sequence[str] = (),
        env: dict[str, str] | None = None,
        metrics_port: int | None = None,
    ) -> None:
        super().__init__(
            data_dir,
            port or free_port(),
            {
                "GRIDLEASE_SEED_SYNC_INTERVAL_S": "0.2",
                "GRIDLEASE_SEED_PRUNE_INTERVAL_S": "0.5",
                "GRIDLEASE_SEED_GRACE_S": "1",
                **(env or {}),
            },
        )
        self.peers = list(peers)
        self.metrics_port = metrics_port

    def _argv(self) -> list[str]:
        args = ["-m", "services.seed", "--listen", self.endpoint]
        args += ["--data-dir", str(self.data_dir)]
        for peer in self.peers:
            args += ["--peer", peer]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port)]
        return args

    def start(self, *, wait: bool = True) -> SeedProcess:
        self._spawn()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        self._wait_serving(timeout_s)

    def pause(self) -> None:
        """SIGSTOP: the process hangs with its sockets open (the kernel still accepts TCP), the
        fault that keepalive, deadlines and heartbeats exist for. kill() still ends it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

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
