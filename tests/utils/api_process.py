"""A real customer API process (`python -m services.customer_api serve`) for fault tests:
killed with SIGKILL mid-request, restarted on the same database, or run twice side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.utils.grpc_process import ROOT, wait_until
from tests.utils.ports import free_port

__all__ = ["ApiProcess", "TEST_SECRET"]

TEST_SECRET = "test-server-secret-0123456789abcdef"


class ApiProcess:
    """One API process on a free port. `env` holds GRIDLEASE_API_* settings on top of the
    defaults for tests (dev mode, fast background loops)."""

    def __init__(
        self,
        log_dir: Path,
        *,
        database_url: str,
        chain_url: str,
        seed_endpoint: str,
        env: dict[str, str] | None = None,
        name: str = "api",
    ) -> None:
        self.log_dir = log_dir
        self.name = name
        self.port = free_port()
        self.env = {
            "GRIDLEASE_API_DEV_MODE": "true",
            "GRIDLEASE_API_SERVER_SECRET": TEST_SECRET,
            "GRIDLEASE_API_PORT": str(self.port),
            "GRIDLEASE_API_DATABASE_URL": database_url,
            "GRIDLEASE_API_CHAIN_URL": chain_url,
            "GRIDLEASE_API_SEED_ENDPOINTS": seed_endpoint,
            "GRIDLEASE_API_INDEXER_INTERVAL_S": "0.3",
            "GRIDLEASE_API_DELIVERY_RETRY_S": "0.5",
            "GRIDLEASE_API_NODE_TIMEOUT_S": "1",
            "GRIDLEASE_API_OFFERS_RETRY_S": "0.2",
            "GRIDLEASE_API_RATE_LIMITS_ENABLED": "false",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self, timeout_s: float = 60.0) -> ApiProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEASE_")}
        env.update(self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.customer_api", "serve"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.starts += 1
        wait_until(self._ready, timeout_s=timeout_s, what=f"{self.name} to answer")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, timeout_s: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL: nothing runs after it, only what was committed survives."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_dead(self) -> None:
        deadline = time.monotonic() + 10
        while self.process is not None and self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not exit")
            time.sleep(0.05)
