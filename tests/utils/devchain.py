"""Starts the real dev chain (Chopsticks running our runtime's wasm) for tests, on a free port,
with the dev stack's own process handling (services.devstack)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.common._chain import ChainClient
from services.devstack.processes import Process, StackState, wait_until
from services.devstack.stack import REPO, chain_answers
from tests.utils.ports import free_port

__all__ = ["DevChain", "start_dev_chain"]

DEV_CHAIN = REPO / "chain" / "dev-chain"


@dataclass
class DevChain:
    process: Process
    url: str

    @property
    def log(self) -> Path:
        return self.process.log

    def client(self) -> ChainClient:
        return ChainClient(self.url)

    def stop(self) -> None:
        self.process.stop(grace=20)


def start_dev_chain(
    log_dir: Path, ready_timeout: float = 1800.0, extra_args: tuple[str, ...] = ()
) -> DevChain:
    """Starts chain/dev-chain (with extra_args) and waits until its RPC answers. The first
    start on a machine builds the runtime, hence the long (but bounded) readiness wait."""
    port = free_port()
    process = StackState(log_dir).start(
        f"dev-chain-{port}", [str(DEV_CHAIN), "--port", str(port), *extra_args]
    )
    chain = DevChain(process, f"ws://127.0.0.1:{port}")
    try:
        wait_until("dev chain", lambda: chain_answers(chain.url), ready_timeout, process.alive)
    except (RuntimeError, TimeoutError) as e:
        chain.stop()
        tail = process.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{e}; see {process.log}:\n{tail}") from e
    return chain
