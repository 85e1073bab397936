"""Our Substrate node (chain/node) as local processes: one dev validator, or a network of the
`local` chain spec's three validators (Alice, Bob, Charlie) on loopback, each with its own
database, so one can be killed and restarted from what it stored.

`chain/run-node` is the program (it builds the node on first use); `build_node()` builds it once
so that the processes started here (with GRIDLEASE_NODE_NO_BUILD=1) start at once."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common._chain import ChainClient
from services.devstack.processes import (
    REPO,
    Process,
    StackState,
    chain_answers,
    free_ports,
    wait_until,
)

__all__ = ["LOCAL_VALIDATORS", "ChainNode", "LocalNetwork", "build_node"]

RUN_NODE = REPO / "chain" / "run-node"
BUILD_NODE = REPO / "chain" / "scripts" / "build-node.sh"

# The validators of the node's `local` chain spec (chain/runtime/src/genesis.rs), by the names
# of their well-known dev keys (`--alice` puts Alice's Aura and GRANDPA keys in the keystore).
LOCAL_VALIDATORS = ("alice", "bob", "charlie")

# A node answers RPC within seconds of starting (genesis is built from the wasm it carries).
NODE_READY_TIMEOUT_S = 120.0


def build_node(log: Path | None = None) -> None:
    """Builds the node (cached; seconds when nothing changed, over an hour cold on 2 cores).
    Raises CalledProcessError with the build's output in `log` (or on stderr) on failure."""
    if log is None:
        subprocess.run(["bash", str(BUILD_NODE)], check=True)
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        subprocess.run(["bash", str(BUILD_NODE)], check=True, stdout=out, stderr=subprocess.STDOUT)


@dataclass
class ChainNode:
    """One node process. `chain` is `dev` (Alice alone) or `local`; `validator` names the dev
    key it validates with (None: a full node that only follows). The node key is fixed when the
    object is made, so the node's peer id, which the others dial, survives restarts."""

    name: str
    chain: str
    validator: str | None
    base_path: Path
    rpc_port: int
    p2p_port: int
    state: StackState
    bootnodes: tuple[str, ...] = ()
    # Peers only with `bootnodes` and those added with `connect` (`--reserved-only`), so a test
    # can cut it off from the others (`restart_peered_with`) and join it again: a partition.
    reserved_only: bool = False
    node_key: str = field(default_factory=lambda: secrets.token_hex(32))
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.rpc_port}"

    @property
    def p2p_address(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.p2p_port}"

    def argv(self) -> list[str]:
        args = [
            str(RUN_NODE),
            "--chain", self.chain,
            "--name", self.name,
            "--base-path", str(self.base_path),
            "--listen-addr", self.p2p_address,
            "--rpc-port", str(self.rpc_port),
            "--rpc-cors", "all",
            "--node-key", self.node_key,
            # Every block's state and body kept: the API's indexer reads events of any block.
            "--state-pruning", "archive",
            "--blocks-pruning", "archive",
            # Loopback only: peers come from --bootnodes, nothing is announced or measured.
            "--no-mdns",
            "--no-telemetry",
            "--no-prometheus",
        ]  # fmt: skip
        if self.validator is not None:
            args.append(f"--{self.validator}")
        if self.reserved_only:
            args.append("--reserved-only")
        for boot in self.bootnodes:
            args += ["--reserved-nodes" if self.reserved_only else "--bootnodes", boot]
        return args

    def start(self, ready_timeout: float = NODE_READY_TIMEOUT_S) -> None:
        """Starts the node (from its database, if it has one) and waits for its RPC."""
        env = {**os.environ, "GRIDLEASE_NODE_NO_BUILD": "1"}
        self.process = self.state.start(f"chain-{self.name}", self.argv(), env=env)
        try:
            wait_until(f"node {self.name}", lambda: chain_answers(self.url), ready_timeout,
                       self.process.alive)  # fmt: skip
        except (RuntimeError, TimeoutError) as e:
            tail = self.process.log.read_text(errors="replace")[-3000:]
            self.stop()
            raise RuntimeError(f"{e}; see {self.process.log}:\n{tail}") from e

    def peer_id(self) -> str:
        return str(self._rpc("system_localPeerId", []))

    def peer_address(self) -> str:
        """What another node dials to reach this one (`/ip4/.../tcp/.../p2p/<peer id>`)."""
        return f"{self.p2p_address}/p2p/{self.peer_id()}"

    def peers(self) -> int:
        return int(self._rpc("system_health", [])["peers"])

    def connect(self, other: ChainNode) -> None:
        """Adds `other` as a reserved peer (RPC `system_addReservedPeer`; unsafe RPC methods are
        served on loopback)."""
        self._rpc("system_addReservedPeer", [other.peer_address()])

    def restart_peered_with(self, *peers: ChainNode) -> None:
        """Restarts a `reserved_only` node (from its database) peered with `peers` only: the
        others can no longer reach it. (Removing a reserved peer over RPC does not close the
        connection it already has, so a partition needs the restart.)"""
        assert self.reserved_only, "only a reserved-only node refuses the others"
        self.bootnodes = tuple(p.peer_address() for p in peers)
        self.stop()
        self.start()

    def _rpc(self, method: str, params: list[object]) -> Any:
        with ChainClient(self.url, connect=False) as client:
            return client.rpc(method, list(params))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Sends `sig` to the node (SIGKILL: no shutdown at all, as a crash)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            wait_until(f"node {self.name} to exit", lambda: not self.process_alive(), 30)

    def process_alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=20)


@dataclass
class LocalNetwork:
    """The `local` chain's validators on loopback, Alice first and the others dialling her."""

    nodes: list[ChainNode]

    @classmethod
    def start(cls, root: Path, validators: Sequence[str] = LOCAL_VALIDATORS) -> LocalNetwork:
        """Builds the node if needed and starts one validator per name, each with its database
        under root/<name>; waits for every RPC. Stops what it started if one fails."""
        build_node(root / "logs" / "build-node.log")
        state = StackState(root)
        ports = free_ports(2 * len(validators))
        nodes = [
            ChainNode(name=v, chain="local", validator=v, base_path=root / v,
                      rpc_port=ports[2 * i], p2p_port=ports[2 * i + 1], state=state)
            for i, v in enumerate(validators)
        ]  # fmt: skip
        network = cls(nodes)
        try:
            first = nodes[0]
            first.start()
            boot = f"{first.p2p_address}/p2p/{first.peer_id()}"
            for node in nodes[1:]:
                node.bootnodes = (boot,)
                node.start()
        except BaseException:
            network.stop()
            raise
        return network

    def node(self, name: str) -> ChainNode:
        return next(n for n in self.nodes if n.name == name)

    @property
    def url(self) -> str:
        """The first validator's RPC (what the services connect to)."""
        return self.nodes[0].url

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
