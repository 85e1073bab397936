"""`gridlease seed ...` commands; also used by `gridlease-seed` / `python -m services.seed`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

__all__ = ["add_run_arguments", "register", "run_from_args"]


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for running a seed; each overrides the matching GRIDLEASE_SEED_* setting."""
    parser.add_argument("--listen", help="host:port to serve on (default 127.0.0.1:7600)")
    parser.add_argument(
        "--peer", dest="peers", action="append", help="another seed host:port; repeatable"
    )
    parser.add_argument("--data-dir", type=Path, help="folder for offers.db")
    parser.add_argument("--metrics-port", type=int, help="serve /metrics on this port")
    parser.add_argument("--offer-ttl-s", type=float, help="drop offers older than this")
    parser.add_argument("--sync-interval-s", type=float, help="anti-entropy period")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ...")


def run_from_args(args: argparse.Namespace) -> int:
    """Build SeedSettings (flags over environment over files) and serve until signalled."""
    # Imported here so `gridlease --help` stays fast and other command groups do not pay for it.
    from services.seed.server import serve
    from services.seed.settings import SeedSettings

    keys = (
        "listen",
        "peers",
        "data_dir",
        "metrics_port",
        "offer_ttl_s",
        "sync_interval_s",
        "log_level",
    )
    overrides: dict[str, Any] = {
        k: getattr(args, k) for k in keys if getattr(args, k, None) is not None
    }
    asyncio.run(serve(SeedSettings(**overrides)))
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `seed` command group to the top-level CLI."""
    seed = commands.add_parser("seed", help="run a seed (offer discovery) node")
    seed_commands = seed.add_subparsers(dest="seed_command", required=True)
    run = seed_commands.add_parser("run", help="serve until SIGINT/SIGTERM")
    add_run_arguments(run)
    run.set_defaults(func=run_from_args)
