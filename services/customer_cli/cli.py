"""`gridlease signup|offers|lease|account`: the customer's commands, talking to the HTTP API only.

Every API error is printed as `error (STATUS): detail` and exits 1; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

from services.common import TOKEN_DECIMALS
from services.customer_cli.client import ApiClient, ApiError, ClientConfig

__all__ = ["parse_tokens", "register", "tokens", "wait_until_running"]


_MAX_DIGITS = 60  # more than any u128 amount has


def tokens(amount: str | int) -> str:
    """An amount in the chain's smallest unit (API decimal string or int) as tokens, exactly,
    with thousands separators: "1500000000000" -> "1.5", 10**16 -> "10,000". Never via float
    (a float has 53 bits; amounts are u128)."""
    value = Decimal(f"{int(amount)}E-{TOKEN_DECIMALS}")  # exact: parsing never rounds
    text = f"{value:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_tokens(text: str) -> int:
    """Tokens typed by a person ("100", "0.5") as the smallest unit, exactly; ValueError for
    anything else (negative, zero, not a number, finer than the smallest unit)."""
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation as exc:
        raise ValueError(f"not a number of tokens: {text!r}") from exc
    if not value.is_finite() or len(value.as_tuple().digits) > _MAX_DIGITS:
        raise ValueError(f"not a number of tokens: {text!r}")
    with localcontext() as exact:  # enough digits that moving the point never rounds
        exact.prec = _MAX_DIGITS + TOKEN_DECIMALS
        units = value.scaleb(TOKEN_DECIMALS)
    if units <= 0 or units != units.to_integral_value():
        raise ValueError(
            f"tokens must be positive with at most {TOKEN_DECIMALS} decimals: {text!r}"
        )
    return int(units)


def _token_amount(text: str) -> int:
    try:
        return parse_tokens(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False))

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _client() -> ApiClient:
    return ApiClient(ClientConfig.load())


# -- signup / account ----------------------------------------------------------------
def cmd_signup(args: argparse.Namespace) -> int:
    config = ClientConfig.load()
    if args.url:
        config.url = args.url
    with ApiClient(ClientConfig(url=config.url)) as api:
        body = api.post("/auth/signup", json={"name": args.name})
    config.api_key = body["api_key"]
    path = config.save()
    print(f"signed up as {body['customer']['name']}; chain account {body['customer']['address']}")
    print(f"API key saved in {path} (shown once: {config.api_key})")
    return 0


def cmd_faucet(args: argparse.Namespace) -> int:
    with _client() as api:
        body = api.post("/account/faucet", json={"amount": str(args.tokens)})
    print(f"funded {body['address']} with {tokens(body['amount'])} tokens")
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    with _client() as api:
        acc = api.get("/account")
    print(f"account   {acc['address']}")
    print(f"free      {tokens(acc['free'])}")
    print(f"escrow    {tokens(acc['held_in_escrow'])}")
    print(f"spent     {tokens(acc['total_spent'])}")
    if acc["leases"]:
        rows = [
            [
                str(x["lease_id"]),
                x["state"],
                tokens(x["escrow"]),
                tokens(x["spent"]),
                tokens(x["refunded"]),
                tokens(x["compensation"]),
            ]
            for x in acc["leases"]
        ]
        print()
        print(_table(rows, ["lease", "state", "escrow", "spent", "refunded", "compensation"]))
    return 0


# -- offers ----------------------------------------------------------------
def cmd_offers(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit, "offset": args.offset, "sort": args.sort}
    filters = ("gpu_model", "min_gpus", "min_memory_mib", "max_price_per_gpu_block", "region")
    for key in filters:
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if args.label:
        params["label"] = args.label
    with _client() as api:
        body = api.get("/offers", params=params)
    if body["data"]:
        rows = [
            [
                o["machine_id"][:18] + "…",
                o["gpu_model"],
                f"{o['free_gpus']}/{o['gpu_count']}",
                str(o["memory_mib"]),
                o["price_per_gpu_block"],
                o["region"],
            ]
            for o in body["data"]
        ]
        print(_table(rows, ["machine", "gpu", "free", "mem MiB", "price/gpu/block", "region"]))
        print(f"\n{body['count']} offers; full ids: gridlease offers --ids")
        if args.ids:
            for o in body["data"]:
                print(o["machine_id"])
        return 0
    print("no offer matches.")
    why = body.get("no_match")
    if why:
        print(f"of {why['total_offers']} offers:")
        for ex in why["excluded_by"]:
            print(f"  {ex['filter']} excluded {ex['excluded']}")
        for near in why["nearest"]:
            o = near["offer"]
            print(
                f"  nearest: {o['machine_id'][:18]}… {o['gpu_model']} {o['free_gpus']} free, "
                f"price {o['price_per_gpu_block']} (fails: {', '.join(near['failed_filters'])})"
            )
    return 0


# -- leases ----------------------------------------------------------------
def _print_lease(lease: dict[str, Any]) -> None:
    print(
        f"lease {lease['lease_id']}  {lease['state']}"
        + (f" ({lease['end_reason']})" if lease.get("end_reason") else "")
    )
    print(f"  machine  {lease['machine_id']}")
    print(
        f"  gpus     {lease['gpus']}   blocks {lease['duration_blocks']}   "
        f"price/gpu/block {lease['price_per_gpu_block']}"
    )
    print(
        f"  escrow   {tokens(lease['escrow'])}  spent {tokens(lease['spent'])}  "
        f"refunded {tokens(lease['refunded'])}"
    )
    conn = lease.get("connection")
    if conn and conn.get("ssh_port"):
        print(f"  ssh      ssh -p {conn['ssh_port']} root@{conn['host']}")
        for p in conn.get("ports", []):
            print(f"  port     {p['container_port']} -> {conn['host']}:{p['host_port']}")


def wait_until_running(
    api: ApiClient, lease_id: int, timeout: float = 300.0, out: Any = sys.stderr
) -> dict[str, Any]:
    """Polls the lease until it runs with connection details, showing progress on one line."""
    started = time.monotonic()
    last = ""
    while True:
        lease: dict[str, Any] = api.get(f"/leases/{lease_id}")
        conn = lease.get("connection") or {}
        state = lease["state"]
        if state == "running" and conn.get("ssh_port"):
            print(f"\r{'':60}\r", end="", file=out)
            return lease
        if state == "ended":
            raise ApiError(409, f"lease ended before running: {lease.get('end_reason')}")
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise ApiError(504, f"lease not running after {timeout:.0f} s (state {state})")
        step = f"{state}, delivery {lease['delivery']['state']}"
        if step != last:
            last = step
        print(f"\r  waiting: {step} ({elapsed:.0f} s)   ", end="", file=out, flush=True)
        time.sleep(1)


def cmd_lease_create(args: argparse.Namespace) -> int:
    key = Path(args.ssh_key).expanduser().read_text().strip()
    env = dict(kv.split("=", 1) for kv in args.env or [])
    body: dict[str, Any] = {
        "machine_id": args.machine,
        "gpus": args.gpus,
        "duration_blocks": args.blocks,
        "image": args.image,
        "ssh_public_key": key,
        "ports": args.port or [],
        "env": env,
    }
    if args.command:
        body["command"] = args.command
    if args.max_price is not None:
        body["max_price_per_gpu_block"] = str(args.max_price)
    if args.cpu_millicores is not None:
        body["cpu_millicores"] = args.cpu_millicores
    if args.memory_mib is not None:
        body["memory_mib"] = args.memory_mib
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    with _client() as api:
        lease = api.post("/leases", json=body, headers=headers)
        print(f"lease {lease['lease_id']} created on chain; escrow {tokens(lease['escrow'])}")
        if not args.no_wait:
            lease = wait_until_running(api, lease["lease_id"], timeout=args.timeout)
    _print_lease(lease)
    return 0


def cmd_lease_list(args: argparse.Namespace) -> int:
    with _client() as api:
        body = api.get("/leases")
    rows = [
        [
            str(x["lease_id"]),
            x["state"],
            x.get("end_reason") or "",
            str(x["gpus"]),
            x["machine_id"][:18] + "…",
            tokens(x["spent"]),
        ]
        for x in body["data"]
    ]
    print(_table(rows, ["lease", "state", "reason", "gpus", "machine", "spent"]))
    return 0


def cmd_lease_show(args: argparse.Namespace) -> int:
    with _client() as api:
        _print_lease(api.get(f"/leases/{args.lease_id}"))
    return 0


def cmd_lease_extend(args: argparse.Namespace) -> int:
    with _client() as api:
        _print_lease(
            api.post(f"/leases/{args.lease_id}/extend", json={"extra_blocks": args.blocks})
        )
    return 0


def cmd_lease_terminate(args: argparse.Namespace) -> int:
    with _client() as api:
        _print_lease(api.post(f"/leases/{args.lease_id}/terminate"))
    return 0


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except ApiError as e:
            print(
                f"error ({e.status}): {e.detail}" if e.status else f"error: {e.detail}",
                file=sys.stderr,
            )
            return 1
        except OSError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1

    return run


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    signup = commands.add_parser("signup", help="create a customer account and save its API key")
    signup.add_argument("--name", required=True)
    signup.add_argument("--url", help="API base URL (default from config or environment)")
    signup.set_defaults(func=_guard(cmd_signup))

    faucet = commands.add_parser("faucet", help="fund your account (dev chain only)")
    faucet.add_argument("tokens", type=_token_amount, help="e.g. 100 or 0.5")
    faucet.set_defaults(func=_guard(cmd_faucet))

    account = commands.add_parser("account", help="balance, escrow and spending per lease")
    account.set_defaults(func=_guard(cmd_account))

    offers = commands.add_parser("offers", help="search GPU offers")
    offers.add_argument("--gpu-model")
    offers.add_argument("--min-gpus", type=int)
    offers.add_argument("--min-memory-mib", type=int)
    offers.add_argument("--max-price", dest="max_price_per_gpu_block", type=int)
    offers.add_argument("--region")
    offers.add_argument("--label", action="append", help="key=value; repeatable")
    offers.add_argument("--sort", default="price_asc")
    offers.add_argument("--limit", type=int, default=20)
    offers.add_argument("--offset", type=int, default=0)
    offers.add_argument("--ids", action="store_true", help="also print full machine ids")
    offers.set_defaults(func=_guard(cmd_offers))

    lease = commands.add_parser("lease", help="create, list, show, extend, terminate leases")
    sub = lease.add_subparsers(dest="lease_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="lease GPUs and wait until the workload runs")
    create.add_argument("--machine", required=True, help="machine id (0x...)")
    create.add_argument("--gpus", type=int, required=True)
    create.add_argument("--blocks", type=int, required=True, help="duration in blocks")
    create.add_argument("--image", default="localhost/gridlease-sshd:1")
    create.add_argument("--ssh-key", default="~/.ssh/id_ed25519.pub")
    create.add_argument("--port", type=int, action="append", help="container port to expose")
    create.add_argument("--env", action="append", help="NAME=value; repeatable")
    create.add_argument(
        "--max-price", type=int, help="most you accept per GPU per block, in the smallest unit"
    )
    create.add_argument("--cpu-millicores", type=int, help="CPU limit (within the lease's share)")
    create.add_argument("--memory-mib", type=int, help="memory limit (within the lease's share)")
    create.add_argument("--idempotency-key", help="retrying with the same key never pays twice")
    create.add_argument("--no-wait", action="store_true")
    create.add_argument("--timeout", type=float, default=300.0)
    create.add_argument("command", nargs="*", help="command to run (after --)")
    create.set_defaults(func=_guard(cmd_lease_create))
    sub.add_parser("list").set_defaults(func=_guard(cmd_lease_list))
    for name, func in (("show", cmd_lease_show), ("terminate", cmd_lease_terminate)):
        p = sub.add_parser(name)
        p.add_argument("lease_id", type=int)
        p.set_defaults(func=_guard(func))
    extend = sub.add_parser("extend")
    extend.add_argument("lease_id", type=int)
    extend.add_argument("--blocks", type=int, required=True)
    extend.set_defaults(func=_guard(cmd_lease_extend))
