"""`python -m services.seed` / `gridlease-seed`: run one seed node (same flags as
`gridlease seed run`)."""

from __future__ import annotations

import argparse

from services.seed.cli import add_run_arguments, run_from_args

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridlease-seed", description="Run a Gridlease seed.")
    add_run_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
