"""`gridlease`: one command line for every service.

Each command group lives in its own module with a `register(commands)` function that adds its
subparser and sets `func` (called with the parsed args, returning an exit code). To add a group,
write that module and list it in COMMAND_GROUPS.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

__all__ = ["COMMAND_GROUPS", "build_parser", "main"]

COMMAND_GROUPS: tuple[str, ...] = (
    "services.seed.cli",
    "services.gpu_node.cli",
    "services.customer_cli.cli",
    "services.devstack.cli",
    "services.devstack.doctor",
)


def build_parser(groups: Sequence[str] = COMMAND_GROUPS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridlease", description="Gridlease command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in groups:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
