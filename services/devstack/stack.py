"""`gridlease dev up|down|status`: the dev chain, two seeds, a GPU node with simulated GPUs on
the Podman backend, and the customer API, on loopback, with logs in one folder."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from services.devstack.processes import (
    REPO,
    Process,
    StackState,
    chain_answers,
    port_open,
    wait_until,
)

__all__ = ["REPO", "SIGNERS", "BuildProgress", "ChainKind", "Ports", "Stack", "chain_answers"]

# The dev chains `Stack` can start.
ChainKind = Literal["chopsticks", "node"]

# Dev accounts that sign for the stack's services, one per service: two processes signing for
# one account race for its nonce (one extrinsic is refused), so no account is shared.
SIGNERS = {"api faucet": "//Alice", "node provider": "//Bob"}
# Built once per machine and cached: the first `up` builds the runtime's wasm (about 5 minutes
# on a cold 2-core machine; its progress is echoed, all of it is in logs/chain.log) and, at the
# same time, the SSH image (about a minute and a half).
CHAIN_READY_TIMEOUT_S = 3600.0
# Measured 2026-11-30 on this 2-core machine, fresh clone and empty caches, Debian packages
# already installed (add ~1.5 min for them): 357 s to the demo's settlement, warm 17 s.
COLD_START_ESTIMATE = "about 7 min on a 2-core machine; later starts take about 15 s"
SYSTEM_PACKAGES = ("gcc", "podman", "runc", "debootstrap", "openssh-client", "curl")


class BuildProgress:
    """Echoes a build's progress from its log while `dev up` waits: the chain scripts' own
    lines (`==>`, `<==`) as they come, and cargo's crates as one line per 20 compiled (about 250
    for the wasm). Call it each time the wait polls."""

    def __init__(self, log: Path, say: Callable[[str], None], offset: int = 0) -> None:
        """`offset`: where in `log` this run's output starts (logs are appended to)."""
        self._log = log
        self._say = say
        self._offset = offset
        self._compiled = 0

    def __call__(self) -> None:
        try:
            with self._log.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete, _, _ = data.rpartition(b"\n")  # a partial last line waits for its end
        if not complete:
            return
        self._offset += len(complete) + 1
        for raw in complete.split(b"\n"):
            line = raw.decode("utf-8", "replace").rstrip()
            words = line.split()
            if words[:1] == ["Compiling"] and len(words) > 1:
                self._compiled += 1
                if self._compiled % 20 == 0:
                    self._say(f"    compiled {self._compiled} crates, latest {words[1]}")
            elif line.startswith(("==>", "<==")):
                self._say(f"    {line.strip()}")


@dataclass(frozen=True)
class Ports:
    chain: int = 9944
    seeds: tuple[int, int] = (7601, 7602)
    seed_metrics: tuple[int, int] = (9601, 9602)
    node: int = 7700
    node_metrics: int = 9700
    api: int = 8080

    def all(self) -> list[int]:
        return [self.chain, *self.seeds, *self.seed_metrics, self.node, self.node_metrics, self.api]


class Stack:
    def __init__(
        self,
        root: Path = REPO / ".gridlease" / "dev",
        ports: Ports | None = None,
        simulate_gpus: str = "h100:8",
        say: Callable[[str], None] = print,
        chain: ChainKind = "chopsticks",
        external_chain_url: str | None = None,
    ) -> None:
        """`chain`: the dev chain to start, Chopsticks (a block per transaction and every
        second, every block final at once) or our node (`gridlease-node --dev`: a block per
        1 s slot, GRANDPA finality). `external_chain_url`: start no chain, use this one (e.g. a
        LocalNetwork of three validators); the services are the same either way."""
        self.root = root
        self.ports = ports or Ports()
        self.simulate_gpus = simulate_gpus
        self.state = StackState(root)
        self.say = say
        self.chain = chain
        self.external_chain_url = external_chain_url

    # -- addresses -------------------------------------------------------------------------------
    @property
    def chain_url(self) -> str:
        return self.external_chain_url or f"ws://127.0.0.1:{self.ports.chain}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def seed_endpoints(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports.seeds]

    def running(self) -> dict[str, Process]:
        return {n: p for n, p in self.state.load().items() if p.alive()}

    # -- up ----------------------------------------------------------------------------------------
    def up(self) -> dict[str, str]:
        if self.running():
            raise RuntimeError("the dev stack is already up (gridlease dev down stops it)")
        busy = [p for p in self.ports.all() if port_open(p)]
        if busy:
            raise RuntimeError(f"ports already in use: {busy}")
        self._fresh_state()
        self._say_what_a_first_start_builds()
        started = time.monotonic()
        self._step("system packages", self._system_packages)
        self._step("Swagger UI and ReDoc for /docs (cached)", self._web_assets)
        processes: dict[str, Process] = {}
        # The SSH image (debootstrap: mostly downloads and disk) is made while the chain's wasm
        # (compiler-bound) builds: on a cold machine the two overlap instead of adding up.
        images = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sshd-image")
        image = images.submit(self._ensure_image)
        try:
            self._step("dev chain (builds on first use)", lambda: self._start_chain(processes))
            self._step("seed nodes", lambda: self._start_seeds(processes))
            self._step("SSH workload image (made while the chain built)", image.result)
            self._step("GPU node (8 simulated H100, Podman)", lambda: self._start_node(processes))
            self._step("customer API", lambda: self._start_api(processes))
        except BaseException:
            self.state.save(processes, {})
            self.down()
            raise
        finally:
            images.shutdown(wait=True)
        info = {
            "chain": self.chain_url,
            "seeds": ",".join(self.seed_endpoints),
            "node": f"127.0.0.1:{self.ports.node} (metrics :{self.ports.node_metrics})",
            "api": self.api_url,
            "docs": f"{self.api_url}/docs",
            "logs": str(self.state.logs),
        }
        self.state.save(processes, info)
        self.say(f"dev stack up in {time.monotonic() - started:.0f} s")
        for name, where in info.items():
            self.say(f"  {name:<6} {where}")
        return info

    def _fresh_state(self) -> None:
        """The dev chain starts from genesis every time, so whatever the services stored about
        the previous chain (API database, node and seed data, the demo customer) goes too."""
        self.root.mkdir(parents=True, exist_ok=True)
        for path in self.root.iterdir():
            if path.name in ("logs", "demo_ed25519", "demo_ed25519.pub"):
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def _say_what_a_first_start_builds(self) -> None:
        from services.devstack.doctor import cold_start_caches

        todo = [c for c in cold_start_caches() if c.state != "matches checkout"]
        if todo:
            self.say("first start here: will build " + "; ".join(
                f"{c.name} ({c.build_time})" for c in todo
            ))  # fmt: skip
            self.say(f"  a cold start takes {COLD_START_ESTIMATE}")

    def _step(self, what: str, action: Callable[[], object]) -> None:
        t0 = time.monotonic()
        self.say(f"==> {what}")
        action()
        self.say(f"    {what}: {time.monotonic() - t0:.0f} s")

    def _system_packages(self) -> None:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "system-deps.sh"), *SYSTEM_PACKAGES], check=True
        )

    def _web_assets(self) -> None:
        subprocess.run(["bash", str(REPO / "scripts" / "web-assets.sh")], check=True)

    def _start_chain(self, processes: dict[str, Process]) -> None:
        if self.external_chain_url is not None:
            self.say(f"    using the chain at {self.external_chain_url}")
            return
        if self.chain == "node":
            self._start_chain_node(processes)
            return
        log = self.state.logs / "chain.log"
        offset = log.stat().st_size if log.exists() else 0
        proc = self.state.start(
            "chain",
            [
                str(REPO / "chain" / "dev-chain"),
                "--port",
                str(self.ports.chain),
                "--block-time",
                "1",
            ],
        )
        processes["chain"] = proc
        self.say(f"    building/starting; everything it prints is in {proc.log}")
        progress = BuildProgress(proc.log, self.say, offset)

        def ready() -> bool:
            progress()
            return chain_answers(self.chain_url)

        wait_until("dev chain", ready, CHAIN_READY_TIMEOUT_S, proc.alive)

    def _start_chain_node(self, processes: dict[str, Process]) -> None:
        from services.devstack.chain_node import ChainNode, build_node

        log = self.state.logs / "build-node.log"
        self.say(f"    building the node (cached; over an hour cold), output in {log}")
        build_node(log)
        node = ChainNode(name="dev", chain="dev", validator="alice", base_path=self.root / "chain",
                         rpc_port=self.ports.chain, p2p_port=0, state=self.state)  # fmt: skip
        node.start()
        assert node.process is not None
        processes[node.process.name] = node.process

    def _start_seeds(self, processes: dict[str, Process]) -> None:
        for i, (port, metrics) in enumerate(
            zip(self.ports.seeds, self.ports.seed_metrics, strict=True)
        ):
            peers = [e for e in self.seed_endpoints if not e.endswith(f":{port}")]
            argv = [
                sys.executable,
                "-m",
                "services.seed",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(self.root / f"seed-{i + 1}"),
                "--metrics-port",
                str(metrics),
            ]
            for peer in peers:
                argv += ["--peer", peer]
            proc = self.state.start(f"seed-{i + 1}", argv)
            processes[proc.name] = proc
            wait_until(proc.name, functools.partial(port_open, port), 60, proc.alive)

    def _ensure_image(self) -> None:
        from services.gpu_node.runtime.images import ensure_sshd_image
        from services.gpu_node.runtime.podman_cli import PodmanCli

        ensure_sshd_image(PodmanCli())

    def node_env(self) -> dict[str, str]:
        return {
            "GRIDLEASE_NODE_CHAIN_URL": self.chain_url,
            "GRIDLEASE_NODE_SEEDS": ",".join(self.seed_endpoints),
            # A dev account of its own (not the faucet's); a real provider keeps its key in a
            # file.
            "GRIDLEASE_NODE_PROVIDER_SECRET": SIGNERS["node provider"],
            "GRIDLEASE_NODE_DATA_DIR": str(self.root / "node"),
            "GRIDLEASE_NODE_LISTEN": f"127.0.0.1:{self.ports.node}",
            "GRIDLEASE_NODE_PUBLIC_HOST": "127.0.0.1",
            "GRIDLEASE_NODE_PUBLISH_HOST": "127.0.0.1",
            "GRIDLEASE_NODE_RUNTIME": "podman",
            "GRIDLEASE_NODE_SIMULATE_GPUS": self.simulate_gpus,
            "GRIDLEASE_NODE_METRICS_PORT": str(self.ports.node_metrics),
            "GRIDLEASE_NODE_REGION": "local",
            "GRIDLEASE_NODE_RECONCILE_INTERVAL_S": "2",
        }

    def _start_node(self, processes: dict[str, Process]) -> None:
        proc = self.state.start(
            "node", [sys.executable, "-m", "services.gpu_node", "run"], self.node_env()
        )
        processes["node"] = proc
        wait_until("GPU node", lambda: port_open(self.ports.node), 300, proc.alive)

    def api_env(self) -> dict[str, str]:
        return {
            "GRIDLEASE_API_DEV_MODE": "true",
            "GRIDLEASE_API_PORT": str(self.ports.api),
            "GRIDLEASE_API_DATABASE_URL": f"sqlite:///{self.root / 'api.db'}",
            "GRIDLEASE_API_CHAIN_URL": self.chain_url,
            "GRIDLEASE_API_SEED_ENDPOINTS": ",".join(self.seed_endpoints),
            "GRIDLEASE_API_FAUCET_SECRET": SIGNERS["api faucet"],
        }

    def _start_api(self, processes: dict[str, Process]) -> None:
        proc = self.state.start(
            "api", [sys.executable, "-m", "services.customer_api", "serve"], self.api_env()
        )
        processes["api"] = proc

        def ready() -> bool:
            try:
                return httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("customer API", ready, 120, proc.alive)

    # -- down / status -----------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stops every process of the stack (API first, chain last). Workload containers of the
        node stay until their leases end; `--purge` in the CLI removes them too."""
        processes = self.state.load()
        order = ["api", "node", "seed-2", "seed-1"]

        def position(name: str) -> int:
            # The chain (chain, or chain-<node name> for our node) last.
            if name.startswith("chain"):
                return len(order)
            return order.index(name) if name in order else -1

        stopped = []
        for name in sorted(processes, key=position):
            processes[name].stop()
            stopped.append(name)
        self.state.clear()
        return stopped

    def status(self) -> dict[str, bool]:
        return {n: p.alive() for n, p in self.state.load().items()}
