"""The customer CLI against a real API process (tests/utils/api_process.py) and a real seed:
help for every command, --json that parses, errors that say what to do, prices per GPU-hour,
and `gridlease doctor`'s report. The chain is left unreachable here: every command below works
from the API's database and the seeds alone, or is refused with the chain's own 503."""

from __future__ import annotations

import argparse
import http.server
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.cli import build_parser, main
from services.customer_cli.cli import (
    LEASE_STEPS,
    ChainInfo,
    hours_to_blocks,
    lease_steps,
    max_block_price,
    per_gpu_hour,
    price_text,
)
from services.customer_cli.client import ApiClient, ApiUnreachable, ClientConfig
from tests.seed.harness import SeedProcess
from tests.utils.api_db import new_sqlite_database
from tests.utils.api_process import ApiProcess
from tests.utils.ports import free_port

ONE_SECOND_BLOCKS = ChainInfo(symbol="GLT", decimals=12, block_time_ms=1000)


# -- money ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("per_block", "block_ms", "shown"),
    [
        (1_000_000, 1000, "0.0036"),  # the dev stack's price
        (1, 1000, "0.0000000036"),
        (1_000_000, 6000, "0.0006"),
        (277_777_777, 1000, "0.9999999972"),  # a float would print 0.9999999972000001
        (2**128 - 1, 1000, "1,225,016,520,915,378,468,468,148,586,754.365561238"),
        # 3_600_000 / 7000 blocks an hour is not a decimal: shown rounded, and marked so.
        (1_000_000, 7000, "~0.000514285714"),
    ],
)
def test_prices_per_gpu_hour_are_exact(per_block: int, block_ms: int, shown: str) -> None:
    info = ChainInfo(block_time_ms=block_ms)
    assert per_gpu_hour(per_block, info) == shown
    assert price_text(str(per_block), info).endswith(" GLT/GPU-h")


def test_a_price_ceiling_per_hour_becomes_the_highest_block_price_not_above_it() -> None:
    info = ONE_SECOND_BLOCKS
    assert max_block_price(Decimal("0.0036"), info) == 1_000_000
    assert max_block_price(Decimal("0.0035999999999"), info) == 999_999
    six = ChainInfo(block_time_ms=6000)
    assert max_block_price(Decimal("0.0006"), six) == 1_000_000
    # 7 s blocks: 1_000_000 per block is 0.000514285714285714... per hour. The ceiling a person
    # types is floored to a whole block price: just above the shown value finds 1_000_000.
    seven = ChainInfo(block_time_ms=7000)
    assert max_block_price(Decimal("0.000514285715"), seven) == 1_000_000
    assert max_block_price(Decimal("0.000514285714"), seven) == 999_999
    assert hours_to_blocks(Decimal("1"), seven) == 515  # 514 2/7 rounded up


def test_hours_become_whole_blocks_rounded_up() -> None:
    assert hours_to_blocks(Decimal("1"), ONE_SECOND_BLOCKS) == 3600
    assert hours_to_blocks(Decimal("0.0001"), ONE_SECOND_BLOCKS) == 1  # 0.36 blocks


def test_lease_steps_follow_the_api_fields() -> None:
    def lease(state: str, delivery: str, conn: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "lease_id": 1,
            "state": state,
            "delivery": {"state": delivery, "attempts": 1, "error": None},
            "connection": conn,
        }

    assert lease_steps(lease("pending", "pending"))[0] == LEASE_STEPS.index("on chain") + 1
    assert lease_steps(lease("pending", "delivered"))[0] == LEASE_STEPS.index("delivered") + 1
    assert lease_steps(lease("starting", "delivered"))[0] == LEASE_STEPS.index("starting") + 1
    running = lease("running", "delivered", {"status": "pulling", "message": "pulling image"})
    assert lease_steps(running) == (LEASE_STEPS.index("running") + 1, "pulling image")
    ready = lease("running", "delivered", {"status": "running", "host": "h", "ssh_port": 22})
    assert lease_steps(ready)[0] == len(LEASE_STEPS)


# -- help -----------------------------------------------------------------------------------------
def _walk(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if name in helps:  # aliases are listed under their main name
                    yield [*path, name], helps[name]
                    yield from _walk(sub, [*path, name])
        elif not isinstance(action, argparse._HelpAction):
            yield [*path, "/".join(action.option_strings) or action.dest], action.help


CUSTOMER_COMMANDS = ("signup", "faucet", "account", "chain-info", "offers", "lease", "doctor")


def test_every_customer_subcommand_and_option_has_help() -> None:
    missing = [
        " ".join(where)
        for where, text in _walk(build_parser(), [])
        if where[0] in CUSTOMER_COMMANDS and not text
    ]
    assert missing == []


def test_lease_help_lists_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["lease", "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    for action in ("create", "list", "show", "gpus", "extend", "terminate", "report"):
        assert f"    {action}" in shown
    with pytest.raises(SystemExit):
        main(["lease", "create", "--help"])
    assert "(default: ~/.ssh/id_ed25519.pub)" in " ".join(capsys.readouterr().out.split())


# -- against a real API ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    seed = SeedProcess(tmp_path_factory.mktemp("cli-seed")).start()
    process = ApiProcess(
        tmp_path_factory.mktemp("cli-api"),
        database_url=new_sqlite_database(tmp_path_factory.mktemp("cli-db")),
        chain_url=f"ws://127.0.0.1:{free_port()}",  # nothing listens: the chain is down
        seed_endpoint=seed.endpoint,
    ).start()
    yield process
    process.stop()
    seed.kill()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api: ApiProcess) -> Path:
    for name in ("GRIDLEASE_API_KEY", "GRIDLEASE_API_URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "client.json"
    monkeypatch.setenv("GRIDLEASE_CLIENT_CONFIG", str(config))
    monkeypatch.setenv("GRIDLEASE_API_URL", api.url)
    return config


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_without_an_account_commands_say_how_to_sign_in(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "lease", "list")
    assert code == 1
    assert "not signed in: run gridlease signup --name NAME or set GRIDLEASE_API_KEY" in err
    assert "Traceback" not in err


def test_offers_need_no_account_and_json_parses(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "offers", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["data"] == [] and body["count"] == 0


def test_signed_up_reads_print_the_api_json(
    cli_env: Path, capsys: pytest.CaptureFixture[str], api: ApiProcess
) -> None:
    code, out, err = _run(capsys, "signup", "--name", "cli-test")
    assert code == 0, err
    assert json.loads(cli_env.read_text())["api_key"].startswith("glk_")
    code, out, err = _run(capsys, "lease", "list", "--json")
    assert code == 0, err
    assert json.loads(out) == {"data": [], "count": 0}
    with ApiClient(ClientConfig.load()) as client:
        assert json.loads(out) == client.get("/leases")
    code, _, err = _run(capsys, "lease", "show", "12345", "--json")
    assert code == 1 and "error (404)" in err


def test_the_chain_being_down_is_said_plainly(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "chain-info")
    assert code == 1
    assert "error (503): Chain unavailable" in err


def test_an_unreachable_api_says_to_start_the_stack(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("GRIDLEASE_API_URL", url)
    code, _, err = _run(capsys, "offers")
    assert code == 1
    assert f"cannot reach the API at {url}" in err
    assert "is `./gridlease dev up` running?" in err
    assert "Errno" not in err and "Traceback" not in err
    with pytest.raises(ApiUnreachable), ApiClient(ClientConfig(url=url)) as client:
        client.get("/offers")


def test_a_missing_ssh_key_says_how_to_make_one(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope" / "id_ed25519.pub"
    code, _, err = _run(
        capsys, "lease", "create", "--machine", "0x" + "ab" * 32, "--gpus", "1",
        "--hours", "1", "--ssh-key", str(missing),
    )  # fmt: skip
    assert code == 1
    assert f"no SSH key found at {missing}: pass --ssh-key PATH or create one with " in err
    assert "ssh-keygen -t ed25519" in err
    assert "Errno" not in err


def test_a_broken_config_file_is_named(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GRIDLEASE_API_URL")
    cli_env.write_text("{not json")
    code, _, err = _run(capsys, "lease", "list")
    assert code == 1 and f"cannot read the client config {cli_env}" in err


# -- doctor ---------------------------------------------------------------------------------------
def test_doctor_reports_tools_caches_and_what_a_cold_start_builds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRIDLEASE_CACHE", str(tmp_path / "cache"))  # an empty cache: all cold
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CARGO_TARGET_DIR", raising=False)
    code, out, _ = _run(capsys, "doctor", "--json")
    assert code == 0
    report = json.loads(out)
    assert {t["name"] for t in report["tools"]} >= {"podman", "ssh", "gcc", "go", "cargo", "node"}
    for tool in report["tools"]:
        assert set(tool) == {"name", "path", "version", "needed_for"}
    names = {c["name"]: c for c in report["caches"]}
    assert {"runtime wasm", "dev chain spec", "Chopsticks", "SSH workload image",
            "NVML stand-in", "test-cluster binaries", "Helm"} <= set(names)  # fmt: skip
    assert all(c["state"] in ("matches checkout", "stale", "missing") for c in names.values())
    assert names["runtime wasm"]["state"] == "missing"
    assert "runtime wasm" in report["cold_start_builds"]
    assert "Helm" not in report["cold_start_builds"]  # dev up does not need it
    code, out, _ = _run(capsys, "doctor")
    assert code == 0 and "a cold `gridlease dev up` would still build" in out


def test_a_lost_lease_answer_says_how_to_retry_without_paying_twice(
    cli_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # The API answers 503 when a chain submission's outcome is unknown (the lease may exist).
    # An HTTP server standing in for that one answer (the real API's 503 path is tested in
    # tests/customer_api/test_chain_faults.py) records what the CLI sent.
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._reply(200, {"token_symbol": "GLT", "token_decimals": 12, "block_time_ms": 1000,
                              "blocks_per_hour": "3600", "existential_deposit": "1"})  # fmt: skip

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(dict(self.headers.items()))
            self._reply(503, {"detail": "Chain submission outcome unknown"})

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = tmp_path / "id_ed25519.pub"
    key.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIV3aV4iM5u0X/1EXh0hJXWNemmR1TSTSKtVbjniscWj x\n"
    )
    monkeypatch.setenv("GRIDLEASE_API_URL", f"http://127.0.0.1:{server.server_port}")
    try:
        code, _, err = _run(
            capsys, "lease", "create", "--machine", "0x" + "ab" * 32, "--gpus", "1",
            "--hours", "1", "--ssh-key", str(key), "--no-wait",
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    sent = seen[0]["Idempotency-Key"]
    assert len(sent) == 36  # a fresh uuid4 although none was given
    assert f"--idempotency-key {sent}" in err and "never creates or pays twice" in err


def test_lease_report_asks_the_api_to_end_a_failed_lease(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stand-in API that refuses as the real one does before the grace has passed (the real
    # path, through the chain, is tested in tests/e2e and tests/gpu_node/test_agent_health.py).
    posted: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            posted.append(self.path)
            data = json.dumps({"detail": "Unhealthy grace open", "code": "UnhealthyGraceOpen"})
            self.send_response(409)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GRIDLEASE_API_URL", f"http://127.0.0.1:{server.server_port}")
    try:
        code, _, err = _run(capsys, "lease", "report", "7")
    finally:
        server.shutdown()
        server.server_close()
    assert posted == ["/v1/leases/7/report"]
    assert code == 1 and "Unhealthy grace open" in err
