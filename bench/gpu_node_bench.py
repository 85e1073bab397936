"""GPU node benchmark: one command, figures on stdout.

    .venv/bin/python -m bench.gpu_node_bench [--leases 1000] [--idle-s 30]

1. Reconcile of --leases leases (goal: <= 1 s). The agent's own code (store read, plan,
   executor, the same NodeStore on disk) runs against a backend that records the runtime and
   chain calls instead of starting containers or sending transactions; the leases are a mix that
   needs every kind of action (create, start, delete orphan, stop and claim expired) plus
   converged ones. A second run on the converged state shows the steady-state cost.
   The chain caps one machine at 64 live leases, so a real node never sees 1,000; the figure
   bounds the decision and bookkeeping work, not chain or podman latency.
2. Idle CPU of a real agent process (goal: < 2 % of one core): dev chain, podman runtime,
   8 SIMULATED GPUs, default intervals, no leases; CPU time of the process and its waited-for
   children (podman ps) from /proc/<pid>/stat over --idle-s seconds after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from services.common import MachineResources, spec_hash
from services.common._chain import ChainLease
from services.gpu_node.desired import DesiredWorkloads
from services.gpu_node.gpus import build_gpu_set
from services.gpu_node.hardware.model import GpuDevice, Inventory
from services.gpu_node.reconcile.executor import Executor
from services.gpu_node.reconcile.plan import LeaseFacts, SpecFacts, View, plan
from services.gpu_node.runtime.base import (
    LeaseWorkload,
    WorkloadNotFound,
    WorkloadPhase,
    WorkloadStatus,
)
from services.gpu_node.store import NodeStore

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 bench"
SPEC = {"version": 1, "image": "localhost/gridlease-sshd:1", "ssh_public_key": SSH_KEY}
DIGEST = spec_hash(SPEC)
BLOCK = 10_000


class RecordingRuntime:
    """A WorkloadRuntime that records calls and keeps workloads in a dict (bench only)."""

    def __init__(self) -> None:
        self.workloads: dict[int, WorkloadStatus] = {}
        self.calls: list[tuple[str, int]] = []

    def apply(self, workload: LeaseWorkload) -> WorkloadStatus:
        workload.validate()
        self.calls.append(("apply", workload.lease_id))
        status = WorkloadStatus(workload.lease_id, WorkloadPhase.RUNNING, {2222: "0.0.0.0:1"},
                                workload.gpu_uuids)  # fmt: skip
        self.workloads[workload.lease_id] = status
        return status

    def delete(self, lease_id: int) -> None:
        self.calls.append(("delete", lease_id))
        self.workloads.pop(lease_id, None)

    def list(self) -> Sequence[WorkloadStatus]:
        return list(self.workloads.values())

    def status(self, lease_id: int) -> WorkloadStatus:
        if lease_id not in self.workloads:
            raise WorkloadNotFound(str(lease_id))
        return self.workloads[lease_id]


class RecordingChain:
    """executor.LeaseOps over an in-memory lease table (bench only)."""

    def __init__(self, leases: dict[int, LeaseFacts]) -> None:
        self.leases = dict(leases)
        self.calls: list[tuple[str, int]] = []

    def lease(self, lease_id: int) -> ChainLease | None:
        facts = self.leases.get(lease_id)
        if facts is None:
            return None
        return ChainLease(lease_id, b"\0" * 32, "5Bench", len(facts.gpu_indexes), 0, 1, 100,
                          facts.spec_hash, facts.state, facts.created_at, 0, facts.ends_at,
                          facts.accrue_from, 0)  # fmt: skip

    def start_lease(self, lease_id: int) -> None:
        self.calls.append(("start_lease", lease_id))

    def claim_payment(self, lease_id: int) -> int:
        self.calls.append(("claim_payment", lease_id))
        return 1

    def cancel_lease(self, lease_id: int) -> None:
        self.calls.append(("cancel_lease", lease_id))


def _inventory() -> Inventory:
    gpus = tuple(
        GpuDevice(i, f"GPU-bench-{i}", "NVIDIA H100", 80 << 30, f"0000:{i:02x}:00.0", "9.0",
                  False, 700.0, 0, 0, 30, 70.0)  # fmt: skip
        for i in range(8)
    )
    return Inventory("550", "12.4", gpus, simulated=True)


def _lease(lease_id: int, kind: int) -> LeaseFacts:
    running = kind in (1, 3)
    return LeaseFacts(
        lease_id=lease_id,
        state="Running" if running else "Pending",
        created_at=BLOCK - 10,
        ends_at=(BLOCK - 1 if kind == 3 else BLOCK + 500) if running else 0,
        accrue_from=BLOCK - 5 if running else 0,
        gpu_indexes=(lease_id % 8,),
        spec_hash=DIGEST,
    )


def bench_reconcile(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = NodeStore(Path(tmp) / "node.db")
        runtime = RecordingRuntime()
        leases: dict[int, LeaseFacts] = {}
        for lease_id in range(count):
            # 0: pending, no workload -> create; 1: running, converged; 2: pending with a
            # running workload -> start_lease; 3: expired -> delete + claim; 4: orphan workload.
            kind = lease_id % 5
            if kind != 4:
                leases[lease_id] = _lease(lease_id, kind)
                store.accept(lease_id, SPEC, DIGEST, "5Bench", BLOCK - 9)
            if kind in (1, 2, 3, 4):
                runtime.workloads[lease_id] = WorkloadStatus(lease_id, WorkloadPhase.RUNNING)
        chain = RecordingChain(leases)
        gpus = build_gpu_set(_inventory(), store, "NVIDIA H100")
        host = MachineResources(cpu_millicores=64_000, memory_mib=512 * 1024)
        # 1,000 leases of 2 ports each: a range wide enough that allocation never runs dry.
        desired = DesiredWorkloads(store, lambda: gpus, host, (20_000, 29_999), lambda port: True)
        executor = Executor(runtime, chain, store, desired)

        def run_once() -> tuple[float, int]:
            started = time.perf_counter()
            specs = {i: SpecFacts(s.digest, s.accepted_block) for i, s in store.active().items()}
            view = View(BLOCK, chain.leases, specs, {w.lease_id: w.phase for w in runtime.list()},
                        start_window=120)  # fmt: skip
            outcomes = executor.run(plan(view))
            return time.perf_counter() - started, len(outcomes)

        runs: list[tuple[float, int]] = []
        while not runs or runs[-1][1]:
            seen = len(chain.calls)
            runs.append(run_once())
            # What the chain shows after this run's calls.
            for name, lease_id in chain.calls[seen:]:
                if name == "start_lease":
                    chain.leases[lease_id] = _lease(lease_id, 1)
                elif name in ("claim_payment", "cancel_lease"):
                    chain.leases.pop(lease_id)
        counts: dict[str, int] = {}
        for name, _ in runtime.calls + chain.calls:
            counts[name] = counts.get(name, 0) + 1
        store.close()
    first = runs[0][0]
    for index, (seconds, actions) in enumerate(runs, 1):
        _print(f"reconcile, {count} leases, run {index}: {seconds:.3f} s, {actions} actions")
    _print(f"  calls over all runs: {counts}")
    _print(f"  goal <= 1 s: {'met' if first <= 1.0 else 'MISSED'}")


def _cpu_ticks(pid: int) -> int:
    # Fields 14-17 of /proc/<pid>/stat: utime, stime, cutime, cstime (children waited for).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15])


def bench_idle(seconds: float, warmup_s: float) -> None:
    from tests.seed.harness import free_port
    from tests.utils.devchain import start_dev_chain
    from tests.utils.gpu_node_process import NodeProcess

    with tempfile.TemporaryDirectory() as tmp:
        chain = start_dev_chain(Path(tmp))
        node = NodeProcess(
            Path(tmp) / "node",
            free_port(),
            free_port(),
            {
                "GRIDLEASE_NODE_CHAIN_URL": chain.url,
                "GRIDLEASE_NODE_PROVIDER_SECRET": "//Alice",
                "GRIDLEASE_NODE_SIMULATE_GPUS": "h100:8",
                "GRIDLEASE_NODE_PUBLISH_HOST": "127.0.0.1",
                "GRIDLEASE_LOG_LEVEL": "WARNING",
            },
        )
        try:
            node.start()
            time.sleep(warmup_s)
            hz = os.sysconf("SC_CLK_TCK")
            t0, c0 = time.monotonic(), _cpu_ticks(node.pid())
            time.sleep(seconds)
            t1, c1 = time.monotonic(), _cpu_ticks(node.pid())
            reconciles = node.metric("gridlease_node_reconcile_seconds_count")
        finally:
            node.stop()
            chain.stop()
    cpu_s = (c1 - c0) / hz
    share = cpu_s / (t1 - t0) * 100
    _print(f"idle agent, 8 simulated GPUs, {t1 - t0:.0f} s: {share:.2f} % of one core")
    _print(f"  {cpu_s:.2f} s CPU incl. podman children; {reconciles:.0f} reconciles in total")
    _print(f"  goal < 2 %: {'met' if share < 2.0 else 'MISSED'}")


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_node_bench")
    parser.add_argument("--leases", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--warmup-s", type=float, default=15.0)
    parser.add_argument("--skip-idle", action="store_true", help="only the reconcile figure")
    args = parser.parse_args(argv)
    bench_reconcile(args.leases)
    if not args.skip_idle:
        bench_idle(args.idle_s, args.warmup_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
