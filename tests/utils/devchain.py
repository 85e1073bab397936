"""Starts the real dev chain (Chopsticks running our runtime's wasm) for tests, on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.common._chain import ChainClient, ChainUnavailable

ROOT = Path(__file__).resolve().parents[2]
DEV_CHAIN = ROOT / "chain" / "dev-chain"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DevChain:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def client(self) -> ChainClient:
        return ChainClient(self.url)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def start_dev_chain(log_dir: Path, ready_timeout: float = 1800.0) -> DevChain:
    """Starts chain/dev-chain and waits until its RPC answers. The first start on a machine
    builds the runtime, hence the long (but bounded) readiness wait."""
    port = free_port()
    log = log_dir / f"dev-chain-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(DEV_CHAIN), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    chain = DevChain(process, f"ws://127.0.0.1:{port}", log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dev chain exited ({process.returncode}); see {log}:\n"
                               + log.read_text(errors="replace")[-3000:])
        try:
            ChainClient(chain.url).close()
            return chain
        except ChainUnavailable:
            time.sleep(1)
    chain.stop()
    raise RuntimeError(f"dev chain not ready after {ready_timeout} s; see {log}")
