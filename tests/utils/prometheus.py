"""A real Prometheus (Debian's `prometheus` package) for tests: started on a free loopback port
with a scrape configuration of our own, queried through its HTTP API, stopped at the end."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.devstack.processes import wait_until
from tests.utils.ports import free_port

__all__ = ["Prometheus", "start_prometheus"]


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, params: dict[str, Any] | list[tuple[str, str]]) -> dict[str, Any]:
        """One API call; the whole JSON answer (status, data or errorType/error)."""
        answer: dict[str, Any] = httpx.get(f"{self.url}{path}", params=params, timeout=30).json()
        return answer

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[str, Any]:
        return self.get(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}s"},
        )

    def label_values(self, label: str, match: str) -> dict[str, Any]:
        return self.get(f"/api/v1/label/{label}/values", [("match[]", match)])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def start_prometheus(
    root: Path, jobs: dict[str, list[str]], *, scrape_interval_s: int = 1,
    rule_files: tuple[Path, ...] = (),
) -> Prometheus:  # fmt: skip
    """Prometheus scraping `jobs` (job name -> host:port targets, path /metrics) every
    `scrape_interval_s`, with `rule_files` loaded; ready when this returns."""
    binary = shutil.which("prometheus")
    assert binary is not None, "Debian's prometheus package is missing (scripts/system-deps.sh)"
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {
            "scrape_interval": f"{scrape_interval_s}s",
            "evaluation_interval": f"{scrape_interval_s}s",
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in jobs.items()
        ],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = root / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={root / 'prometheus.yml'}",
             f"--storage.tsdb.path={root / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log)

    def ready() -> bool:
        try:
            return httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until("prometheus", ready, 60, lambda: process.poll() is None)
    except BaseException:
        prometheus.stop()
        raise
    return prometheus
