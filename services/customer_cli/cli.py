"""`gridlease signup|faucet|account|offers|lease`: the customer's commands, over the HTTP API only.

Amounts are shown in tokens with the token's name (from GET /v1/chain/info), prices per GPU-hour
(the chain's block time) beside per GPU-block, all with exact decimal arithmetic (never float:
amounts are u128). Every read command takes --json and then prints the API's JSON unchanged.
Every error is one line saying what to do, and exit status 1; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from services.common import TOKEN_DECIMALS
from services.customer_cli.client import (
    ApiClient,
    ApiError,
    ApiUnreachable,
    ClientConfig,
    ConfigError,
    config_path,
)

__all__ = [
    "ChainInfo",
    "CliError",
    "LEASE_STEPS",
    "gpus_table",
    "lease_steps",
    "parse_tokens",
    "per_gpu_hour",
    "register",
    "tokens",
    "wait_until_running",
]

_MAX_DIGITS = 60  # more than any u128 amount has
_MS_PER_HOUR = 3_600_000
DEFAULT_SSH_KEY = "~/.ssh/id_ed25519.pub"
DEFAULT_IMAGE = "localhost/gridlease-sshd:1"


class CliError(Exception):
    """A refusal of the CLI itself, worded as what to do."""


@dataclass(frozen=True)
class ChainInfo:
    """What GET /v1/chain/info says: the token and the block time."""

    symbol: str = "GLT"
    decimals: int = TOKEN_DECIMALS
    block_time_ms: int = 1000

    @property
    def blocks_per_hour(self) -> Fraction:
        """Exact, whatever the block time (7 s blocks: 3600000/7000 = 514 2/7, not a decimal)."""
        return Fraction(_MS_PER_HOUR, self.block_time_ms)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> ChainInfo:
        return cls(
            symbol=str(body["token_symbol"]),
            decimals=int(body["token_decimals"]),
            block_time_ms=int(body["block_time_ms"]),
        )

    @classmethod
    def read(cls, api: ApiClient) -> ChainInfo:
        return cls.from_api(api.get("/chain/info"))


def _plain(value: Decimal) -> str:
    """An exact decimal with thousands separators and no trailing zeros."""
    text = f"{value:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def tokens(amount: str | int, decimals: int = TOKEN_DECIMALS) -> str:
    """An amount in the chain's smallest unit (API decimal string or int) as tokens, exactly,
    with thousands separators: "1500000000000" -> "1.5", 10**16 -> "10,000". Never via float
    (a float has 53 bits; amounts are u128)."""
    return _plain(Decimal(f"{int(amount)}E-{decimals}"))  # exact: parsing never rounds


def shown(value: Fraction, places: int) -> str:
    """An exact rational for a person: its exact decimal when it has one within `places`
    decimals, else rounded half-even to `places` with a leading "~" (only what is shown is
    rounded; every computation stays exact)."""
    scaled = value * 10**places
    if scaled.denominator == 1:
        return _plain(Decimal(f"{scaled.numerator}E-{places}"))  # exact: parsing never rounds
    return "~" + _plain(Decimal(f"{round(scaled)}E-{places}"))


def per_gpu_hour(price_per_gpu_block: str | int, info: ChainInfo) -> str:
    """A price per GPU per block (smallest units) as tokens per GPU-hour:
    1_000_000 units/block at 1 s blocks -> "0.0036"; at 7 s blocks -> "~0.000514285714"."""
    per_hour = int(price_per_gpu_block) * info.blocks_per_hour / 10**info.decimals
    return shown(per_hour, info.decimals)


def money(amount: str | int, info: ChainInfo) -> str:
    return f"{tokens(amount, info.decimals)} {info.symbol}"


def price_text(price_per_gpu_block: str | int, info: ChainInfo) -> str:
    return f"{per_gpu_hour(price_per_gpu_block, info)} {info.symbol}/GPU-h"


def block_price_text(price_per_gpu_block: str | int, info: ChainInfo) -> str:
    return f"{tokens(price_per_gpu_block, info.decimals)} {info.symbol}/GPU-block"


def parse_tokens(text: str, decimals: int = TOKEN_DECIMALS) -> int:
    """Tokens typed by a person ("100", "0.5") as the smallest unit, exactly; ValueError for
    anything else (negative, zero, not a number, finer than the smallest unit)."""
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation as exc:
        raise ValueError(f"not a number of tokens: {text!r}") from exc
    if not value.is_finite() or len(value.as_tuple().digits) > _MAX_DIGITS:
        raise ValueError(f"not a number of tokens: {text!r}")
    with localcontext() as exact:  # enough digits that moving the point never rounds
        exact.prec = _MAX_DIGITS + decimals
        units = value.scaleb(decimals)
    if units <= 0 or units != units.to_integral_value():
        raise ValueError(f"tokens must be positive with at most {decimals} decimals: {text!r}")
    return int(units)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not value.is_finite() or value <= 0 or len(value.as_tuple().digits) > _MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _token_amount(text: str) -> int:
    try:
        return parse_tokens(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def max_block_price(tokens_per_gpu_hour: Decimal, info: ChainInfo) -> int:
    """The highest whole price per GPU-block (smallest units) not above a ceiling typed in
    tokens per GPU-hour: floor(ceiling * 10^decimals / blocks_per_hour), exactly."""
    scale: int = 10**info.decimals
    return math.floor(Fraction(tokens_per_gpu_hour) * scale / info.blocks_per_hour)


def hours_to_blocks(hours: Decimal, info: ChainInfo) -> int:
    """Blocks that cover at least `hours` (rounded up to a whole block)."""
    return math.ceil(Fraction(hours) * info.blocks_per_hour)


# -- output helpers -------------------------------------------------------------------------------
def _out() -> Console:
    # A terminal's own width; piped (grep, a log) a wide fixed one, so that rows do not wrap
    # into several lines at Rich's 80-column default.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _print_json(body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2) + "\n")


def _client() -> ApiClient:
    return ApiClient(ClientConfig.load())


def _short(machine_id: str) -> str:
    return machine_id[:12] + "…" if len(machine_id) > 14 else machine_id


# -- signup / account -----------------------------------------------------------------------------
def cmd_signup(args: argparse.Namespace) -> int:
    config = ClientConfig.load()
    if args.url:
        config.url = args.url
    with ApiClient(ClientConfig(url=config.url)) as api:
        body = api.post("/auth/signup", json={"name": args.name})
    config.api_key = body["api_key"]
    path = config.save()
    out = _out()
    out.print(
        f"signed up as {body['customer']['name']}; chain account {body['customer']['address']}"
    )
    out.print(f"API key saved in {path} (shown once: {config.api_key})")
    out.print("next: gridlease faucet 100   (dev chain)   then: gridlease offers")
    return 0


def cmd_faucet(args: argparse.Namespace) -> int:
    with _client() as api:
        body = api.post("/account/faucet", json={"amount": str(args.tokens)})
        info = ChainInfo.read(api)
    if args.json:
        _print_json(body)
        return 0
    _out().print(f"funded {body['address']} with {money(body['amount'], info)}")
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    with _client() as api:
        acc = api.get("/account")
        info = None if args.json else ChainInfo.read(api)
    if info is None:
        _print_json(acc)
        return 0
    out = _out()
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("account", acc["address"])
    summary.add_row("free", money(acc["free"], info))
    summary.add_row("in escrow", money(acc["held_in_escrow"], info))
    summary.add_row("spent", money(acc["total_spent"], info))
    out.print(summary)
    if acc["leases"]:
        table = Table(title=f"spending per lease ({info.symbol})", title_justify="left")
        for name in ("lease", "state", "escrow", "spent", "refunded", "compensation"):
            table.add_column(name, justify="right" if name != "state" else "left")
        for x in acc["leases"]:
            table.add_row(
                str(x["lease_id"]),
                x["state"],
                *(tokens(x[k], info.decimals) for k in ("escrow", "spent", "refunded")),
                tokens(x["compensation"], info.decimals),
            )
        out.print(table)
    return 0


# -- offers ---------------------------------------------------------------------------------------
def cmd_offers(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit, "offset": args.offset, "sort": args.sort}
    for key in ("gpu_model", "min_gpus", "min_memory_mib", "region"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if args.label:
        params["label"] = args.label
    with _client() as api:
        # The chain's block time is needed to show prices per hour or to convert a ceiling;
        # --json alone prints the API's answer untouched.
        info = ChainInfo.read(api) if args.max_price is not None or not args.json else None
        if args.max_price is not None and info is not None:
            params["max_price_per_gpu_block"] = max_block_price(args.max_price, info)
        body = api.get("/offers", params=params)
    if args.json or info is None:
        _print_json(body)
        return 0
    out = _out()
    if body["data"]:
        out.print(_offers_table(body["data"], info, full_ids=args.ids))
        out.print(
            f"{body['count']} offers; prices at {info.block_time_ms} ms per block. "
            "Lease one: gridlease lease create --machine ID --gpus N --hours H"
            + ("" if args.ids else "  (full ids: --ids)")
        )
        return 0
    out.print("no offer matches.")
    why = body.get("no_match")
    if why:
        out.print(f"of {why['total_offers']} offers:")
        for ex in why["excluded_by"]:
            out.print(f"  {ex['filter']} excluded {ex['excluded']}")
        if why["nearest"]:
            out.print("nearest offers (and the filters they fail):")
            nearest = [
                dict(n["offer"], fails=", ".join(n["failed_filters"])) for n in why["nearest"]
            ]
            out.print(_offers_table(nearest, info, full_ids=args.ids))
    return 0


def _offers_table(offers: list[dict[str, Any]], info: ChainInfo, *, full_ids: bool) -> Table:
    table = Table()
    table.add_column("machine", no_wrap=True)
    table.add_column("gpu")
    table.add_column("free", justify="right")
    table.add_column("mem MiB", justify="right")
    table.add_column(f"{info.symbol}/GPU-h", justify="right")
    table.add_column(f"{info.symbol}/GPU-block", justify="right")
    table.add_column("region")
    fails = any("fails" in o for o in offers)
    if fails:
        table.add_column("fails")
    for o in offers:
        row = [
            o["machine_id"] if full_ids else _short(o["machine_id"]),
            o["gpu_model"],
            f"{o['free_gpus']}/{o['gpu_count']}",
            str(o["memory_mib"]),
            per_gpu_hour(o["price_per_gpu_block"], info),
            tokens(o["price_per_gpu_block"], info.decimals),
            o["region"],
        ]
        if fails:
            row.append(o.get("fails", ""))
        table.add_row(*row)
    return table


# -- leases ---------------------------------------------------------------------------------------
def _ssh_command(lease: dict[str, Any], key: str | None = None) -> str | None:
    conn = lease.get("connection") or {}
    if not conn.get("ssh_port"):
        return None
    identity = ""
    if key and key.endswith(".pub"):
        identity = f"-i {key[: -len('.pub')]} "
    return f"ssh {identity}-p {conn['ssh_port']} root@{conn['host']}"


def _lease_view(lease: dict[str, Any], info: ChainInfo) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    state = lease["state"] + (f" ({lease['end_reason']})" if lease.get("end_reason") else "")
    grid.add_row("lease", f"{lease['lease_id']}  {state}")
    grid.add_row("machine", lease["machine_id"])
    hours = Fraction(lease["duration_blocks"]) / info.blocks_per_hour
    grid.add_row("gpus", str(lease["gpus"]))
    grid.add_row("duration", f"{lease['duration_blocks']} blocks ({shown(hours, 2)} h)")
    grid.add_row(
        "price",
        f"{price_text(lease['price_per_gpu_block'], info)}"
        f" ({block_price_text(lease['price_per_gpu_block'], info)})",
    )
    grid.add_row(
        "money",
        f"escrow {money(lease['escrow'], info)}, spent {money(lease['spent'], info)}, "
        f"refunded {money(lease['refunded'], info)}",
    )
    if lease.get("unhealthy_since_block") is not None:
        # The node told the chain a GPU of this lease is unhealthy: pay stopped at that block.
        grid.add_row(
            "health",
            f"GPUs unhealthy since block {lease['unhealthy_since_block']}: not paid from then; "
            f"see `gridlease lease gpus {lease['lease_id']}`, end it with "
            f"`gridlease lease report {lease['lease_id']}` once the chain's grace has passed",
        )
    ssh = _ssh_command(lease)
    if ssh:
        grid.add_row("ssh", ssh)
        conn = lease["connection"]
        for p in conn.get("ports", []):
            grid.add_row("port", f"{p['container_port']} -> {conn['host']}:{p['host_port']}")
    return grid


LEASE_STEPS = ("on chain", "delivered", "starting", "running", "SSH ready")


def lease_steps(lease: dict[str, Any]) -> tuple[int, str]:
    """How many of LEASE_STEPS a lease (as the API returns it) has done, and a detail for the
    next one (the delivery error, the node's status)."""
    state = lease["state"]
    delivery = lease["delivery"]
    conn = lease.get("connection") or {}
    if state == "running" and conn.get("ssh_port"):
        return 5, ""
    if state == "running":
        return 4, str(conn.get("message") or conn.get("status") or "")
    done = 1 if state in ("pending", "starting", "running") else 0
    if delivery["state"] == "delivered":
        done = 2
    if state == "starting":
        done = 3
    detail = ""
    if delivery["state"] != "delivered" and delivery.get("attempts"):
        detail = f"delivery attempt {delivery['attempts']}" + (
            f": {delivery['error']}" if delivery.get("error") else ""
        )
    elif state == "starting":
        detail = str(conn.get("message") or "")
    return done, detail


def _steps_view(lease: dict[str, Any], elapsed: float) -> Group:
    done, detail = lease_steps(lease)
    rows: list[Any] = []
    for i, name in enumerate(LEASE_STEPS):
        if i < done:
            rows.append(Text(f"  ✓ {name}", style="green"))
        elif i == done:
            label = f"{name} ({elapsed:.0f} s)" + (f": {detail}" if detail else "")
            rows.append(Spinner("dots", text=Text(label), style="cyan"))
        else:
            rows.append(Text(f"  · {name}", style="dim"))
    return Group(Text(f"lease {lease['lease_id']}", style="bold"), *rows)


def wait_until_running(
    api: ApiClient, lease_id: int, timeout: float = 300.0, out: IO[str] = sys.stderr
) -> dict[str, Any]:
    """Polls the lease until it runs with connection details, showing its steps (on chain,
    delivered, starting, running, SSH ready) as a live view on `out`."""
    started = time.monotonic()
    console = Console(file=out)
    lease: dict[str, Any] = api.get(f"/leases/{lease_id}")
    with Live(
        _steps_view(lease, 0), console=console, transient=False, refresh_per_second=8
    ) as live:
        while True:
            elapsed = time.monotonic() - started
            live.update(_steps_view(lease, elapsed))
            state = lease["state"]
            if state == "running" and (lease.get("connection") or {}).get("ssh_port"):
                return lease
            if state == "ended":
                raise ApiError(409, f"lease ended before running: {lease.get('end_reason')}")
            if elapsed > timeout:
                raise ApiError(
                    504,
                    f"lease not running after {timeout:.0f} s (state {state}); it keeps its "
                    f"escrow: watch it with gridlease lease show {lease_id}",
                )
            time.sleep(1)
            lease = api.get(f"/leases/{lease_id}")


def _read_ssh_key(path_text: str) -> str:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise CliError(
            f"no SSH key found at {path}: pass --ssh-key PATH or create one with "
            "ssh-keygen -t ed25519"
        )
    key = path.read_text(errors="replace").strip()
    if not key.startswith(("ssh-", "ecdsa-", "sk-")):
        raise CliError(f"{path} is not an SSH public key: pass the .pub file to --ssh-key")
    return key


def _env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for kv in pairs:
        name, sep, value = kv.partition("=")
        if not sep or not name:
            raise CliError(f"--env takes NAME=value, not {kv!r}")
        env[name] = value
    return env


def cmd_lease_create(args: argparse.Namespace) -> int:
    key = _read_ssh_key(args.ssh_key)
    body: dict[str, Any] = {
        "machine_id": args.machine,
        "gpus": args.gpus,
        "image": args.image,
        "ssh_public_key": key,
        "ports": args.port or [],
        "env": _env(args.env or []),
    }
    if args.command:
        body["command"] = args.command
    if args.cpu_millicores is not None:
        body["cpu_millicores"] = args.cpu_millicores
    if args.memory_mib is not None:
        body["memory_mib"] = args.memory_mib
    # Always a key: when the answer is lost (timeout, 503 while the chain is slow) a retry with
    # the same key returns the same lease instead of creating and paying for a second one.
    idempotency_key = args.idempotency_key or str(uuid.uuid4())
    headers = {"Idempotency-Key": idempotency_key}
    err = Console(stderr=True)
    with _client() as api:
        info = ChainInfo.read(api)
        body["duration_blocks"] = (
            args.blocks if args.blocks is not None else hours_to_blocks(args.hours, info)
        )
        if args.max_price is not None:
            body["max_price_per_gpu_block"] = str(max_block_price(args.max_price, info))
        try:
            lease = api.post("/leases", json=body, headers=headers)
        except ApiError as exc:
            if exc.status and exc.status < 500:
                raise  # refused: nothing was created
            raise CliError(
                f"{explain(exc)}; the lease may have been created: run the same command with "
                f"--idempotency-key {idempotency_key} to get it (it never creates or pays twice)"
            ) from exc
        if not args.json:
            err.print(
                f"lease {lease['lease_id']} created on chain; escrow {money(lease['escrow'], info)}"
            )
        if not args.no_wait:
            lease = wait_until_running(api, lease["lease_id"], timeout=args.timeout)
    if args.json:
        _print_json(lease)
        return 0
    out = _out()
    out.print(_lease_view(lease, info))
    ssh = _ssh_command(lease, str(Path(args.ssh_key).expanduser()))
    if ssh:
        out.print(f"\nconnect: [bold]{ssh}[/bold]", highlight=False)
    else:
        out.print(f"\nwatch it: gridlease lease show {lease['lease_id']}")
    return 0


def cmd_lease_list(args: argparse.Namespace) -> int:
    with _client() as api:
        body = api.get("/leases")
        info = None if args.json else ChainInfo.read(api)
    if info is None:
        _print_json(body)
        return 0
    if not body["data"]:
        _out().print("no leases yet: find an offer with gridlease offers")
        return 0
    table = Table()
    for name, justify in (
        ("lease", "right"),
        ("state", "left"),
        ("reason", "left"),
        ("gpus", "right"),
        ("machine", "left"),
        (f"{info.symbol}/GPU-h", "right"),
        (f"spent {info.symbol}", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for x in body["data"]:
        table.add_row(
            str(x["lease_id"]),
            x["state"],
            x.get("end_reason") or "",
            str(x["gpus"]),
            _short(x["machine_id"]),
            per_gpu_hour(x["price_per_gpu_block"], info),
            tokens(x["spent"], info.decimals),
        )
    _out().print(table)
    return 0


def _show(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> int:
    with _client() as api:
        lease = api.request(method, path, **kwargs)
        info = None if args.json else ChainInfo.read(api)
    if info is None:
        _print_json(lease)
        return 0
    _out().print(_lease_view(lease, info))
    return 0


def cmd_lease_show(args: argparse.Namespace) -> int:
    return _show(args, "GET", f"/leases/{args.lease_id}")


def cmd_lease_extend(args: argparse.Namespace) -> int:
    if args.blocks is None:
        with _client() as api:
            args.blocks = hours_to_blocks(args.hours, ChainInfo.read(api))
    return _show(
        args, "POST", f"/leases/{args.lease_id}/extend", json={"extra_blocks": args.blocks}
    )


def cmd_lease_terminate(args: argparse.Namespace) -> int:
    return _show(args, "POST", f"/leases/{args.lease_id}/terminate")


def cmd_lease_report(args: argparse.Namespace) -> int:
    return _show(args, "POST", f"/leases/{args.lease_id}/report")


_SPARKS = "▁▂▃▄▅▆▇█"
_GIB = 1024**3


def _spark(values: list[int | None], width: int = 16) -> str:
    """The last `width` utilisation percentages as bar characters (a space where unknown)."""
    return "".join(
        " " if v is None else _SPARKS[min(len(_SPARKS) - 1, v * len(_SPARKS) // 101)]
        for v in values[-width:]
    )


def _reading(value: Any, unit: str, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def gpus_table(body: dict[str, Any]) -> Table:
    """GET /leases/{id}/gpus as a table: one row per GPU, the latest reading, XIDs, health and
    the utilisation history as a sparkline. The model is in the title (a machine offers one)."""
    interval_s = body["sample_interval_ms"] / 1000
    models = sorted({gpu["model"] for gpu in body["gpus"] if gpu["model"]})
    table = Table(
        title=f"lease {body['lease_id']}: {len(body['gpus'])} x {', '.join(models) or 'GPU'}, "
        f"sampled every {interval_s:g} s",
        title_justify="left",
    )
    for name, justify in (
        ("slot", "right"), ("uuid", "left"), ("util", "right"), ("memory GiB", "right"),
        ("temp", "right"), ("power", "right"), ("XIDs", "right"), ("health", "left"),
        ("util history", "left"),
    ):  # fmt: skip
        # Whole UUIDs (they match nvidia-smi inside the workload); the health text wraps.
        table.add_column(name, justify=justify, no_wrap=name != "health")  # type: ignore[arg-type]
    for gpu in body["gpus"]:
        now = gpu.get("current") or {}
        used, total = now.get("memory_used_bytes"), gpu["memory_total_bytes"]
        memory = "-" if used is None else f"{used / _GIB:.1f} / {total / _GIB:.1f}"
        xids = "?" if gpu["xid_count"] is None else str(gpu["xid_count"])
        if gpu["last_xid"]:
            xids += f" (last {gpu['last_xid']})"
        health = (
            Text("healthy", style="green")
            if gpu["healthy"]
            else Text(f"UNHEALTHY: {gpu['health_reason']}", style="bold red")
        )
        table.add_row(
            str(gpu["slot"]),
            gpu["uuid"],
            _reading(now.get("utilization_pct"), " %"),
            memory,
            _reading(now.get("temperature_c"), " C"),
            _reading(now.get("power_w"), " W", 1),
            xids,
            health,
            _spark([s.get("utilization_pct") for s in gpu["history"]]),
        )
    return table


def _watch_view(body: dict[str, Any] | None, problem: str) -> Group:
    parts: list[Any] = [] if body is None else [gpus_table(body)]
    if problem:
        parts.append(Text(problem, style="yellow"))
    parts.append(Text("Ctrl-C to stop", style="dim"))
    return Group(*parts)


def cmd_lease_gpus(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise CliError("--interval takes a number of seconds above 0")
    path = f"/leases/{args.lease_id}/gpus"
    with _client() as api:
        if not args.watch:
            body = api.get(path)
            if args.json:
                _print_json(body)
            else:
                _out().print(gpus_table(body))
            return 0
        try:
            if args.json:  # one JSON document per line and reading, for scripts
                while True:
                    sys.stdout.write(json.dumps(api.get(path)) + "\n")
                    sys.stdout.flush()
                    time.sleep(args.interval)
            body = None
            with Live(_watch_view(None, "reading..."), console=_out(), auto_refresh=False) as live:
                while True:
                    problem = ""
                    try:
                        body = api.get(path)
                    except ApiError as exc:
                        # The node or the API briefly out of reach: keep the last table and
                        # say so; anything else (the lease ended, not yours) ends the watch.
                        if exc.status not in (0, 502, 503):
                            raise
                        problem = f"{explain(exc)}; retrying"
                    live.update(_watch_view(body, problem), refresh=True)
                    time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0  # Ctrl-C is how a watch ends


def cmd_chain_info(args: argparse.Namespace) -> int:
    with _client() as api:
        body = api.get("/chain/info")
    if args.json:
        _print_json(body)
        return 0
    info = ChainInfo.from_api(body)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("token", f"{info.symbol} ({info.decimals} decimals)")
    per_hour = shown(info.blocks_per_hour, 6)
    grid.add_row("block time", f"{info.block_time_ms} ms ({per_hour} blocks/h)")
    grid.add_row("existential deposit", money(body["existential_deposit"], info))
    _out().print(grid)
    return 0


# -- errors ---------------------------------------------------------------------------------------
def explain(exc: BaseException) -> str:
    """One line for a person: what went wrong and what to do."""
    if isinstance(exc, ApiUnreachable):
        local = urllib.parse.urlsplit(exc.url).hostname in {"127.0.0.1", "localhost", "::1"}
        hint = "is `./gridlease dev up` running? " if local else ""
        return f"cannot reach the API at {exc.url} ({exc.reason}): {hint}(or set GRIDLEASE_API_URL)"
    if isinstance(exc, ApiError):
        if exc.status == 401:
            what = "not signed in" if exc.detail == "Not authenticated" else exc.detail
            return (
                f"{what}: run gridlease signup --name NAME or set GRIDLEASE_API_KEY "
                f"(the key is kept in {config_path()})"
            )
        if exc.status == 402:
            return f"{exc.detail}: add funds (dev chain: gridlease faucet 100)"
        return f"error ({exc.status}): {exc.detail}" if exc.status else f"error: {exc.detail}"
    if isinstance(exc, CliError | ConfigError):
        return f"error: {exc}"
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"error: {exc.strerror or exc}{where}"
    return f"error: {exc}"


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except (ApiError, CliError, ConfigError, OSError) as e:
            sys.stderr.write(explain(e) + "\n")  # one unwrapped line, for people and grep
            return 1
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            return 130

    return run


# -- parser ---------------------------------------------------------------------------------------
class _Help(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' line breaks and says each option's default where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="print the API's JSON (for scripts) instead of a table"
    )


def _parser(commands: Any, name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=kwargs.pop("description", help_text),
        formatter_class=_Help, **kwargs,
    )  # fmt: skip
    return p


def _duration(p: argparse.ArgumentParser, what: str) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--hours", type=_decimal, help=f"{what} in hours (rounded up to whole blocks)"
    )
    group.add_argument("--blocks", type=int, help=f"{what} in blocks (see gridlease chain-info)")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    signup = _parser(
        commands, "signup", "create a customer account and save its API key",
        description="Create a customer account (with a custodial chain account) and save its "
        f"API key in {config_path()} (or GRIDLEASE_CLIENT_CONFIG).",
    )  # fmt: skip
    signup.add_argument("--name", required=True, help="a name for the account")
    signup.add_argument(
        "--url",
        help="API base URL (default: GRIDLEASE_API_URL, the saved config, or "
        "http://127.0.0.1:8080)",
    )
    signup.set_defaults(func=_guard(cmd_signup))

    faucet = _parser(commands, "faucet", "fund your account with test tokens (dev chain only)")
    faucet.add_argument("tokens", type=_token_amount, help="how many tokens, e.g. 100 or 0.5")
    _json_flag(faucet)
    faucet.set_defaults(func=_guard(cmd_faucet))

    account = _parser(
        commands, "account", "balance, escrow and spending per lease", aliases=["balance"]
    )
    _json_flag(account)
    account.set_defaults(func=_guard(cmd_account))

    chain = _parser(commands, "chain-info", "the token, block time and existential deposit")
    _json_flag(chain)
    chain.set_defaults(func=_guard(cmd_chain_info))

    offers = _parser(
        commands, "offers", "search GPU offers (no account needed)",
        description="Search GPU offers, cheapest first. Prices are in tokens per GPU-hour "
        "(from the chain's block time) and per GPU-block. Works without an account.",
    )  # fmt: skip
    offers.add_argument("--gpu-model", help="part of the GPU model name, any case (e.g. h100)")
    offers.add_argument("--min-gpus", type=int, help="at least this many free GPUs")
    offers.add_argument("--min-memory-mib", type=int, help="at least this much GPU memory (MiB)")
    offers.add_argument(
        "--max-price", type=_decimal, metavar="TOKENS",
        help="most you accept, in tokens per GPU-hour (e.g. 0.01)",
    )  # fmt: skip
    offers.add_argument("--region", help="only this region (exact name)")
    offers.add_argument("--label", action="append", help="key=value the offer carries; repeatable")
    offers.add_argument(
        "--sort", default="price_asc", choices=("price_asc", "price_desc"), help="order by price"
    )
    offers.add_argument("--limit", type=int, default=20, help="offers per page (1-100)")
    offers.add_argument("--offset", type=int, default=0, help="skip this many (paging)")
    offers.add_argument("--ids", action="store_true", help="show full machine ids")
    _json_flag(offers)
    offers.set_defaults(func=_guard(cmd_offers))

    lease = _parser(
        commands, "lease", "create, list, show, extend and terminate leases; watch their GPUs",
        description="Leases: GPUs on one machine for a time, paid from escrow per block. "
        "gridlease lease ACTION --help shows each action's options.",
    )  # fmt: skip
    sub = lease.add_subparsers(dest="lease_command", required=True, metavar="ACTION")
    create = _parser(sub, "create", "lease GPUs and wait until the workload runs")
    create.add_argument(
        "--machine", required=True, help="machine id (0x...; gridlease offers --ids)"
    )
    create.add_argument("--gpus", type=int, required=True, help="how many GPUs")
    _duration(create, "how long")
    create.add_argument("--image", default=DEFAULT_IMAGE, help="container image to run")
    create.add_argument(
        "--ssh-key", default=DEFAULT_SSH_KEY, help="SSH public key allowed to log in as root"
    )
    create.add_argument(
        "--port", type=int, action="append", help="container port to expose; repeatable"
    )
    create.add_argument("--env", action="append", help="NAME=value for the workload; repeatable")
    create.add_argument(
        "--max-price", type=_decimal, metavar="TOKENS",
        help="most you accept, in tokens per GPU-hour (refused if the price rose above it)",
    )  # fmt: skip
    create.add_argument("--cpu-millicores", type=int, help="CPU limit (default: the lease's share)")
    create.add_argument("--memory-mib", type=int, help="memory limit (default: the lease's share)")
    create.add_argument(
        "--idempotency-key", help="retrying with the same key never creates or pays twice"
    )
    create.add_argument(
        "--no-wait", action="store_true", help="return once on chain, without waiting to run"
    )
    create.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the workload to run"
    )
    _json_flag(create)
    create.add_argument(
        "command", nargs="*", help="command to run (after --; default: the image's)"
    )
    create.set_defaults(func=_guard(cmd_lease_create))

    listing = _parser(sub, "list", "your leases and what each spent")
    _json_flag(listing)
    listing.set_defaults(func=_guard(cmd_lease_list))
    for name, func, text in (
        ("show", cmd_lease_show, "one lease: state, money and SSH command"),
        ("terminate", cmd_lease_terminate, "end a lease now; unused escrow is refunded"),
        ("report", cmd_lease_report, "end a lease its machine failed (down, or GPUs unhealthy "
         "past the chain's grace): unused escrow refunded plus compensation from the bond"),
    ):
        p = _parser(sub, name, text)
        p.add_argument("lease_id", type=int, help="the lease's number (gridlease lease list)")
        _json_flag(p)
        p.set_defaults(func=_guard(func))
    gpus = _parser(
        sub, "gpus", "the lease's GPUs: utilisation, memory, temperature, power, XIDs, health",
        description="The lease's GPUs as its node reports them: the latest reading, XID count, "
        "health and the utilisation history. --watch keeps the table live until Ctrl-C.",
    )  # fmt: skip
    gpus.add_argument("lease_id", type=int, help="the lease's number (gridlease lease list)")
    gpus.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    gpus.add_argument(
        "--interval", type=float, default=2.0, help="seconds between refreshes with --watch"
    )
    _json_flag(gpus)
    gpus.set_defaults(func=_guard(cmd_lease_gpus))
    extend = _parser(sub, "extend", "add time to a lease (holds more escrow)")
    extend.add_argument("lease_id", type=int, help="the lease's number (gridlease lease list)")
    _duration(extend, "time to add")
    _json_flag(extend)
    extend.set_defaults(func=_guard(cmd_lease_extend))
