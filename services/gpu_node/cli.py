"""`gridlease-node run | init | inventory` (also `python -m services.gpu_node`).

    gridlease-node init --chain-url ws://chain:9944 --seed seed1:7600 \\
        --provider-secret-file /etc/gridlease/provider.secret --public-host 203.0.113.7
    GRIDLEASE_CONFIG_FILE=gridlease-node.toml gridlease-node run

Settings come from flags, then GRIDLEASE_NODE_* variables, then [node] in the config file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.common import CONFIG_FILE_ENV, GridleaseError
from services.gpu_node.hardware.errors import NvmlError
from services.gpu_node.hardware.nvml import capture
from services.gpu_node.hardware.simulation import SimSpec
from services.gpu_node.hardware.source import open_inventory
from services.gpu_node.init_files import systemd_unit, toml_table, write_new
from services.gpu_node.settings import NodeSettings

__all__ = ["build_parser", "main", "register"]

# Flags shared by `run` and `init`, mapped to NodeSettings fields.
_SETTING_FLAGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--chain-url", "chain_url", {}),
    ("--seed", "seeds", {"action": "append", "metavar": "HOST:PORT"}),
    ("--listen", "listen", {"metavar": "HOST:PORT"}),
    ("--public-host", "public_host", {}),
    ("--public-port", "public_port", {"type": int}),
    ("--publish-host", "publish_host", {}),
    ("--data-dir", "data_dir", {"type": Path}),
    ("--machine-key-file", "machine_key_file", {"type": Path}),
    ("--provider-secret-file", "provider_secret_file", {"type": Path}),
    ("--price-per-gpu-block", "price_per_gpu_block", {"type": int}),
    ("--region", "region", {}),
    ("--runtime", "runtime", {"choices": ["podman", "kubernetes"]}),
    ("--simulate-gpus", "simulate_gpus", {"metavar": "PROFILE:COUNT[,...]"}),
    ("--simulate-gpu-faults", "simulate_gpu_faults", {"metavar": "KIND=POS[,...][;...]"}),
    ("--gpu-model", "gpu_model", {"metavar": "NVML_NAME"}),
    ("--lease-port-range", "lease_port_range", {"metavar": "FIRST-LAST"}),
    ("--metrics-port", "metrics_port", {"type": int}),
    ("--reconcile-interval-s", "reconcile_interval_s", {"type": float}),
    ("--heartbeat-every-blocks", "heartbeat_every_blocks", {"type": int}),
    ("--log-level", "log_level", {}),
)


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    for flag, dest, extra in _SETTING_FLAGS:
        parser.add_argument(flag, dest=dest, default=None, **extra)
    parser.add_argument(
        "--label", action="append", default=None, metavar="KEY=VALUE", help="offer label"
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    values = {dest: getattr(args, dest) for _, dest, _ in _SETTING_FLAGS}
    if args.label:
        values["labels"] = dict(item.split("=", 1) for item in args.label)
    return {k: v for k, v in values.items() if v is not None}


def _settings(args: argparse.Namespace) -> NodeSettings:
    if getattr(args, "config", None):
        os.environ[CONFIG_FILE_ENV] = str(args.config)
    return NodeSettings(**_overrides(args))


def cmd_run(args: argparse.Namespace) -> int:
    from services.gpu_node.agent import serve

    try:
        settings = _settings(args)
        settings.check_provider()
        asyncio.run(serve(settings))
    except (GridleaseError, NvmlError, ValidationError) as exc:
        sys.stderr.write(f"gridlease-node: {exc}\n")
        return 2
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    try:
        settings = NodeSettings(**_overrides(args))
    except ValidationError as exc:
        sys.stderr.write(f"gridlease-node: {exc}\n")
        return 2
    chosen = settings.model_dump(include=set(_overrides(args)) | {"chain_url", "data_dir"})
    comments = {name: field.description or "" for name, field in NodeSettings.model_fields.items()}
    config_path = args.config.resolve()
    settings.data_dir.resolve().mkdir(parents=True, exist_ok=True)
    exec_start = shutil.which("gridlease-node") or f"{sys.executable} -m services.gpu_node"
    try:
        write_new(config_path, toml_table("node", chosen, comments), force=args.force)
        write_new(
            args.unit,
            systemd_unit(f"{exec_start} run", config_path, settings.data_dir.resolve().parent),
            force=args.force,
        )
    except FileExistsError as exc:
        sys.stderr.write(f"gridlease-node: {exc.filename} exists (use --force to replace it)\n")
        return 2
    sys.stdout.write(
        f"wrote {config_path} and {args.unit}\n"
        f"run: {CONFIG_FILE_ENV}={config_path} {exec_start} run\n"
        f"or:  cp {args.unit} /etc/systemd/system/ && systemctl enable --now "
        f"{args.unit.name}\n"
    )
    return 0


def cmd_inventory(args: argparse.Namespace) -> int:
    try:
        simulate = (
            SimSpec.parse(args.simulate_gpus, faults=args.simulate_gpu_faults or "")
            if args.simulate_gpus
            else None
        )
        read = open_inventory(simulate)
        out: object = capture() if args.raw else dataclasses.asdict(read())
    except NvmlError as exc:
        sys.stderr.write(f"gpu-node: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


def _add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = commands.add_parser("run", help="run the node agent")
    run.add_argument("--config", type=Path, help=f"TOML config file (sets {CONFIG_FILE_ENV})")
    _add_setting_flags(run)
    run.set_defaults(func=cmd_run)

    init = commands.add_parser("init", help="write a config file and a systemd unit")
    init.add_argument("--config", type=Path, default=Path("gridlease-node.toml"))
    init.add_argument("--unit", type=Path, default=Path("gridlease-node.service"))
    init.add_argument("--force", action="store_true", help="replace existing files")
    _add_setting_flags(init)
    init.set_defaults(func=cmd_init)

    inv = commands.add_parser("inventory", help="print the GPU inventory as JSON")
    inv.add_argument(
        "--simulate-gpus",
        metavar="PROFILE:COUNT[,...]",
        help="use SIMULATED GPUs (e.g. h100:8) instead of the NVIDIA driver",
    )
    inv.add_argument(
        "--simulate-gpu-faults",
        metavar="KIND=POS[,...][;...]",
        help="faults of the SIMULATED GPUs by board position: absent, lost, mig, ecc, remap "
        "(e.g. lost=3), and XIDs as xid=POS:XID",
    )
    inv.add_argument("--raw", action="store_true", help="print the raw NVML capture")
    inv.set_defaults(func=cmd_inventory)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gridlease node ...` in the umbrella command line (services/cli.py COMMAND_GROUPS)."""
    node = commands.add_parser("node", help="GPU node agent")
    _add_commands(node.add_subparsers(dest="node_command", required=True))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridlease-node", description="Gridlease GPU node.")
    _add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
