"""`gridlease lease gpus ID [--json] [--watch]` against a scripted API client: the table shows
what the API returned, --watch keeps going through a node outage and ends cleanly on Ctrl-C,
and a lease that is not yours ends it with the API's one-line error."""

from __future__ import annotations

import json
from typing import Any

import pytest

import services.customer_cli.cli as cli
from services.cli import main
from services.customer_cli.client import ApiError

GIB = 1024**3


def _gpu(slot: int, util: int | None, **overrides: Any) -> dict[str, Any]:
    sample = {
        "timestamp_ms": 1_800_000_000_000,
        "utilization_pct": util,
        "memory_used_bytes": 20 * GIB,
        "temperature_c": 61,
        "power_w": 412.5,
    }
    gpu: dict[str, Any] = {
        "slot": slot,
        "uuid": f"GPU-{slot:08x}-1111-2222-3333-444444444444",
        "model": "NVIDIA H100 80GB HBM3",
        "memory_total_bytes": 80 * GIB,
        "current": sample,
        "xid_count": 0,
        "last_xid": 0,
        "healthy": True,
        "health_reason": "",
        "history": [{**sample, "utilization_pct": u} for u in (0, 50, 100)],
    }
    gpu.update(overrides)
    return gpu


BODY = {
    "lease_id": 7,
    "sample_interval_ms": 5000,
    "history_limit": 120,
    "gpus": [
        _gpu(1, 50),
        _gpu(
            3,
            None,
            xid_count=2,
            last_xid=79,
            healthy=False,
            health_reason="xid: XID 79, 94, 95 (uncontained ECC error, containment failed)",
        ),  # fmt: skip
    ],
}


class _Api:
    """Answers GET /leases/7/gpus from a script: a body, an exception to raise, or Ctrl-C."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.paths: list[str] = []

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def get(self, path: str) -> Any:
        self.paths.append(path)
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Any:
    def use(script: list[Any]) -> _Api:
        fake = _Api(script)
        monkeypatch.setattr(cli, "_client", lambda: fake)
        monkeypatch.setattr(cli.time, "sleep", lambda _s: None)
        return fake

    return use


def test_the_table_shows_each_gpu_reading_and_health(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = api([BODY])
    assert main(["lease", "gpus", "7"]) == 0
    out = capsys.readouterr().out
    assert fake.paths == ["/leases/7/gpus"]
    assert "lease 7: 2 x NVIDIA H100 80GB HBM3, sampled every 5 s" in out
    # Whole UUIDs, one row each (the piped width is 160 columns).
    one, three = (line for line in out.splitlines() if "-1111-2222-3333-444444444444" in line)
    assert "GPU-00000001-1111-2222-3333-444444444444" in one
    for text in ("50 %", "20.0 / 80.0", "61 C", "412.5 W", "healthy", "▁▄█"):
        assert text in one
    # Unknown utilisation is a dash, not 0; the XIDs and why the GPU is unhealthy are named.
    assert "GPU-00000003-1111-2222-3333-444444444444" in three
    assert "2 (last 79)" in three and "UNHEALTHY: xid: XID 79" in three
    assert " - " in three.replace("│", " ")


def test_json_prints_the_api_body(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    api([BODY])
    assert main(["lease", "gpus", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == BODY


def test_watch_rides_out_a_node_outage_and_ends_on_ctrl_c(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = api([BODY, ApiError(503, "Node unreachable"), KeyboardInterrupt()])
    assert main(["lease", "gpus", "7", "--watch", "--interval", "0.5"]) == 0
    assert len(fake.paths) == 3  # polled on after the outage, until Ctrl-C
    captured = capsys.readouterr()
    # Off a terminal, Live prints its last frame: the last table, with the outage under it.
    assert "GPU-00000003" in captured.out and "Node unreachable; retrying" in captured.out
    assert "interrupted" not in captured.err and "Traceback" not in captured.err


def test_watch_as_json_prints_one_document_per_reading(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api([BODY, BODY, KeyboardInterrupt()])
    assert main(["lease", "gpus", "7", "--watch", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [BODY, BODY]


def test_watch_ends_with_the_error_when_the_lease_is_not_readable(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api([BODY, ApiError(409, "Lease not running")])
    assert main(["lease", "gpus", "7", "--watch"]) == 1
    assert capsys.readouterr().err.strip() == "error (409): Lease not running"


def test_interval_must_be_positive(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    api([])
    assert main(["lease", "gpus", "7", "--watch", "--interval", "0"]) == 1
    assert "--interval" in capsys.readouterr().err
