"""`python -m services.gpu_node inventory`: print what NVML reports about this machine's GPUs.

`--raw` prints the capture in the fixture format (tests/gpu_node/fixtures/), which is how a
capture from a real GPU machine replaces the hand-written fixture.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from services.gpu_node.hardware.errors import NvmlError
from services.gpu_node.hardware.nvml import capture
from services.gpu_node.hardware.simulation import SimSpec
from services.gpu_node.hardware.source import open_inventory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.gpu_node")
    sub = parser.add_subparsers(dest="command", required=True)
    inv = sub.add_parser("inventory", help="print the GPU inventory as JSON")
    inv.add_argument(
        "--simulate-gpus",
        metavar="PROFILE:COUNT[,...]",
        help="use SIMULATED GPUs (e.g. h100:8) instead of the NVIDIA driver",
    )
    inv.add_argument("--raw", action="store_true", help="print the raw NVML capture")
    args = parser.parse_args(argv)

    try:
        simulate = SimSpec.parse(args.simulate_gpus) if args.simulate_gpus else None
        read = open_inventory(simulate)
        if args.raw:
            out: object = capture()
        else:
            out = dataclasses.asdict(read())
    except NvmlError as exc:
        sys.stderr.write(f"gpu-node: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
