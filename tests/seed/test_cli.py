"""The `gridlease` CLI wiring for the seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.cli import build_parser
from services.seed.cli import run_from_args

ROOT = Path(__file__).resolve().parents[2]


def test_parse_seed_run_collects_peers() -> None:
    args = build_parser().parse_args(
        ["seed", "run", "--listen", "127.0.0.1:1", "--peer", "a:1", "--peer", "b:2"]
    )
    assert args.func is run_from_args
    assert args.peers == ["a:1", "b:2"]
    assert args.data_dir is None  # unset flags leave the environment in charge


def test_run_cli_help_lists_seed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "seed" in result.stdout
