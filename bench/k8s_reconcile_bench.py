"""Kubernetes backend benchmark: API requests of the GPU node agent's reconcile, on a real cluster.

    .venv/bin/python -m bench.k8s_reconcile_bench [--leases 50] [--runs 5]

Starts the test cluster (services.devstack.cluster: etcd, kube-apiserver, scheduler, controller
manager, KWOK; built first if the cache is cold) with one fake node of 64 GPUs, installs the
agent's RBAC (deploy/helm/gridlease/files/gpu-node-rbac.yaml) and runs the agent's own reconcile
(tests/k8s/gpu_node_harness.LeaseNode: observe, plan, executor, KubernetesRuntime; the chain is an
in-memory ledger) as its service account over a request-counting ApiClient. Prints:

1. the requests (by HTTP method) and wall time of bringing --leases one-GPU leases up;
2. the requests of one converged reconcile (no writes expected; one LIST of namespaces and one
   per object kind, whatever the number of leases), over --runs runs, with their wall time;
3. the requests of one lease's status by name (what GetLeaseStatus costs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from kubernetes import client

from services.devstack.cluster import DevCluster, FakeGpuNode, ensure_binaries
from services.gpu_node.runtime.kubernetes.client import CountingApiClient
from tests.k8s.gpu_node_harness import (
    LeaseNode,
    install_rbac,
    new_machine_id,
    service_account_token,
    spec,
)
from tests.k8s.kube import create_namespace, wait_for

NODE = FakeGpuNode("bench-gpu-0", 64, "NVIDIA-H100-80GB-HBM3", 81559, cpu="256", memory="2Ti")


def _fmt(calls: Counter[str]) -> str:
    parts = ", ".join(f"{method} {n}" for method, n in sorted(calls.items()))
    writes = CountingApiClient.writes(calls)
    return f"{sum(calls.values())} requests ({parts or 'none'}), {writes} writes"


def run(root: Path, leases: int, runs: int) -> None:
    cluster = DevCluster(root / "cluster", gpu_nodes=(NODE,), say=lambda _: None)
    started = time.perf_counter()
    cluster.up()
    print(f"cluster up: {time.perf_counter() - started:.1f} s ({cluster.versions.k8s}, KWOK)")
    admin = cluster.api_client()
    try:
        namespace = create_namespace(client.CoreV1Api(admin), "bench-gpu-node-agent")
        install_rbac(admin, namespace, "bench-gpu-node")
        plain = cluster.token_client(service_account_token(admin, namespace, "bench-gpu-node"))
        api = CountingApiClient(plain.configuration)
        node = LeaseNode(api, new_machine_id(), NODE.name, root, gpus=64)
        for lease_id in range(leases):
            node.lease(lease_id, [lease_id], spec())

        before, t0 = api.snapshot(), time.perf_counter()
        rounds = 0

        def all_started() -> bool:
            nonlocal rounds
            rounds += 1
            node.reconcile()
            return len(node.ledger.started) == leases

        wait_for(f"{leases} leases started", all_started, timeout=600)
        up = api.snapshot() - before
        print(
            f"\n1. {leases} leases brought up in {rounds} reconcile runs, "
            f"{time.perf_counter() - t0:.1f} s: {_fmt(up)}"
        )

        times: list[float] = []
        per_run: list[Counter[str]] = []
        for _ in range(runs):
            before, t0 = api.snapshot(), time.perf_counter()
            outcomes = node.reconcile()
            times.append(time.perf_counter() - t0)
            per_run.append(api.snapshot() - before)
            if outcomes:
                print(f"   unexpected actions in a converged run: {outcomes}", file=sys.stderr)
        print(f"\n2. converged reconcile of {leases} leases, {runs} runs:")
        for i, calls in enumerate(per_run):
            print(f"   run {i + 1}: {_fmt(calls)}, {times[i] * 1000:.0f} ms")
        print(f"   median wall time: {statistics.median(times) * 1000:.0f} ms")

        before = api.snapshot()
        node.runtime.status(0)
        print(f"\n3. one lease's status by name (GetLeaseStatus): {_fmt(api.snapshot() - before)}")
        node.close()
        api.close()
        plain.close()
    finally:
        admin.close()
        cluster.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.k8s_reconcile_bench")
    parser.add_argument("--leases", type=int, default=50, help="one GPU each; at most 64")
    parser.add_argument("--runs", type=int, default=5, help="converged reconcile runs")
    args = parser.parse_args(argv)
    if not 1 <= args.leases <= NODE.gpus:
        parser.error(f"--leases must be 1..{NODE.gpus}")
    ensure_binaries(build=True)
    with tempfile.TemporaryDirectory(prefix="gridlease-k8s-bench-") as tmp:
        run(Path(tmp), args.leases, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
