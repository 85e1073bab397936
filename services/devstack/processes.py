"""Background processes of the dev stack: started detached (own session, logs to one folder),
recorded in a state file so `dev down` (another process) can stop them, and waited on until
they answer."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "REPO",
    "Process",
    "StackState",
    "chain_answers",
    "free_port",
    "free_ports",
    "port_open",
    "wait_until",
]

# The checkout these modules run from (the scripts and sources the stack builds and runs).
REPO = Path(__file__).resolve().parents[2]

# Processes this Python process started, so it can reap them (a killed child stays a zombie,
# and looks alive, until its parent waits for it).
_children: dict[int, subprocess.Popen[bytes]] = {}


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback TCP ports nobody listens on right now (the OS picks them; all are
    held open while choosing, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def chain_answers(url: str) -> bool:
    """Whether the chain's RPC at `url` (Chopsticks or our node) accepts a substrate-interface
    connection: it answers and its runtime metadata can be read."""
    # Imported here: substrate-interface is heavy, and `doctor` imports this module too.
    from services.common._chain import ChainClient, ChainUnavailable

    try:
        ChainClient(url).close()
    except ChainUnavailable:
        return False
    return True


def free_port() -> int:
    """One free loopback TCP port (see `free_ports`)."""
    return free_ports(1)[0]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(
    what: str, ready: Callable[[], bool], timeout: float, alive: Callable[[], bool] | None = None
) -> None:
    """Polls `ready` until it holds; fails early if `alive` says the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited before it was ready")
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


@dataclass
class Process:
    name: str
    pid: int
    log: Path

    def alive(self) -> bool:
        child = _children.get(self.pid)
        if child is not None:
            return child.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # Started by another process (e.g. `dev up`) that has exited: once it dies, it stays a
        # zombie until whoever inherited it reaps it (seconds, here). A zombie is not alive.
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return True
        return stat.rpartition(")")[2].split()[:1] != ["Z"]

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the process group, then SIGKILL after `grace` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.alive():
                time.sleep(0.2)
            if not self.alive():
                _children.pop(self.pid, None)
                return


class StackState:
    """The dev stack's folder: `logs/` and `state.json` naming each running process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.file = root / "state.json"

    def load(self) -> dict[str, Process]:
        if not self.file.exists():
            return {}
        raw = json.loads(self.file.read_text())
        return {n: Process(n, int(p["pid"]), Path(p["log"])) for n, p in raw["processes"].items()}

    def save(self, processes: Mapping[str, Process], info: Mapping[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        body = {
            "processes": {n: {"pid": p.pid, "log": str(p.log)} for n, p in processes.items()},
            "info": dict(info),
        }
        self.file.write_text(json.dumps(body, indent=2))

    def info(self) -> dict[str, str]:
        if not self.file.exists():
            return {}
        return dict(json.loads(self.file.read_text()).get("info", {}))

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> Process:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # its own group: `down` stops it and its children
            )
        _children[proc.pid] = proc
        return Process(name, proc.pid, log)

    def clear(self) -> None:
        self.file.unlink(missing_ok=True)
