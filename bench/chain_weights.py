"""The pallet's weights, measured by the Substrate benchmarking CLI, next to
Balances::transfer_keep_alive measured the same way; then claim/heartbeat time with 10 vs 10,000
running leases.

    .venv/bin/python -m bench.chain_weights [--steps N] [--repeat N]

Runs chain/scripts/bench-weights (which also rewrites pallets/gpu-rental/src/weights.rs) and
reads the CLI's JSON: for each call, the median extrinsic time at its components' lowest and
highest values, the storage reads/writes and proof size there, and its time as a multiple of
transfer_keep_alive's. Times are the wasm's, on this machine (2 cores, shared)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
BENCH_WEIGHTS = REPO / "chain" / "scripts" / "bench-weights"
SCALE = "gridlease-bench-scale"


def _points(batch: dict[str, Any]) -> dict[tuple[int, ...], list[dict[str, Any]]]:
    """The batch's samples grouped by their component values."""
    grouped: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    for result in batch["time_results"]:
        key = tuple(int(value) for _name, value in result["components"])
        grouped.setdefault(key, []).append(result)
    return grouped


def _row(batch: dict[str, Any], at: tuple[int, ...]) -> tuple[float, int, int, int]:
    samples = _points(batch)[at]
    db = next(r for r in batch["db_results"] if tuple(int(v) for _n, v in r["components"]) == at)
    time_us = statistics.median(int(s["extrinsic_time"]) for s in samples) / 1_000
    return time_us, int(db["reads"]), int(db["writes"]), int(db["proof_size"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    out = subprocess.run(
        ["bash", str(BENCH_WEIGHTS), "--steps", str(args.steps), "--repeat", str(args.repeat)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    results = Path(out)
    gpu = json.loads((results / "pallet_gpu_rental.json").read_text())
    balances = json.loads((results / "pallet_balances.json").read_text())
    transfer = next(b for b in balances if b["benchmark"] == "transfer_keep_alive")
    reference = _row(transfer, min(_points(transfer)))[0]

    table = Table(title=f"weights: wasm, median of {args.repeat} per point ({args.steps} steps)")
    for column in ("call", "components", "time us", "reads", "writes", "proof B", "x transfer"):
        table.add_column(column, justify="left" if column == "call" else "right")
    table.add_row("Balances::transfer_keep_alive", "-", f"{reference:.1f}", *map(str, _row(
        transfer, min(_points(transfer)))[1:]), "1.00")  # fmt: skip
    for batch in gpu:
        points = sorted(_points(batch))
        for at in ([points[0], points[-1]] if len(points) > 1 else points):
            time_us, reads, writes, proof = _row(batch, at)
            names = [name for name, _v in batch["time_results"][0]["components"]]
            where = ", ".join(f"{n}={v}" for n, v in zip(names, at, strict=True)) or "-"
            table.add_row(batch["benchmark"], where, f"{time_us:.1f}", str(reads), str(writes),
                          str(proof), f"{time_us / reference:.2f}")  # fmt: skip
    console = Console(width=120)
    console.print(table)
    target = Path(subprocess.run(
        ["bash", "-c", f"source {REPO}/chain/scripts/env.sh && echo $CARGO_TARGET_DIR"],
        check=True, capture_output=True, text=True).stdout.strip())  # fmt: skip
    console.print(subprocess.run([str(target / "debug" / SCALE)], check=True,
                                 capture_output=True, text=True).stdout)  # fmt: skip


if __name__ == "__main__":
    main()
