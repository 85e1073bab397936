"""The executor's rules for chain actions: re-read first, and treat "already done" as done.
The runtime and chain are in-test recorders injected through the executor's interfaces."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from services.common import new_registry, spec_hash
from services.common._chain import ChainLease, ChainMachine, ExtrinsicFailed
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.reconcile.executor import Executor
from services.gpu_node.reconcile.plan import (
    ApplyWorkload,
    CancelLease,
    ClaimPayment,
    DeleteReason,
    DeleteWorkload,
    ForgetSpec,
    StartLease,
    UpdateGpus,
)
from services.gpu_node.runtime.base import LeaseWorkload, WorkloadPhase, WorkloadStatus
from services.gpu_node.store import NodeStore

from .utils import SAMPLE_SSH_KEY, make_desired, make_gpu_set

SPEC = {"version": 1, "image": "localhost/gridlease-sshd:1", "ssh_public_key": SAMPLE_SSH_KEY}


class Runtime:
    def __init__(self) -> None:
        self.applied: list[LeaseWorkload] = []
        self.deleted: list[int] = []

    def apply(self, workload: LeaseWorkload) -> WorkloadStatus:
        self.applied.append(workload)
        return WorkloadStatus(workload.lease_id, WorkloadPhase.RUNNING)

    def delete(self, lease_id: int) -> None:
        self.deleted.append(lease_id)

    def list(self) -> Sequence[WorkloadStatus]:
        return []

    def status(self, lease_id: int) -> WorkloadStatus:
        raise AssertionError("not used")


class Chain:
    def __init__(
        self, state: str | None, error: str | None = None, gpus_present: int = 0b1111
    ) -> None:
        self.state = state
        self.error = error
        self.calls: list[str] = []
        self.gpus_present = gpus_present

    def lease(self, lease_id: int) -> ChainLease | None:
        if self.state is None:
            return None
        return ChainLease(lease_id, b"\0" * 32, "5C", 1, 1, 1, 10, b"\0" * 32, self.state,
                          1, 0, 0, 0, 0)  # fmt: skip

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.error:
            raise ExtrinsicFailed(self.error)

    def start_lease(self, lease_id: int) -> None:
        self._call("start_lease")

    def claim_payment(self, lease_id: int) -> int:
        self._call("claim_payment")
        return 950

    def cancel_lease(self, lease_id: int) -> None:
        self._call("cancel_lease")

    def machine(self) -> ChainMachine | None:
        return ChainMachine(b"\0" * 32, "5Owner", "5Op", "H100", self.gpus_present.bit_count(),
                            81559, 1, 0, True, 0, 0, self.gpus_present)  # fmt: skip

    def update_gpus(self, gpus_present: int) -> int:
        self._call(f"update_gpus {gpus_present:#x}")
        self.gpus_present = gpus_present
        return 7


@pytest.fixture
def store(tmp_path: Path) -> NodeStore:
    return NodeStore(tmp_path / "node.db")


def _executor(chain: Chain, store: NodeStore, runtime: Runtime | None = None) -> Executor:
    desired = make_desired(store, make_gpu_set(store))
    return Executor(runtime or Runtime(), chain, store, desired, current_block=lambda: 77)


@pytest.mark.parametrize(
    ("action", "state", "calls"),
    [
        (StartLease(1), "Pending", ["start_lease"]),
        (StartLease(1), "Running", []),
        (StartLease(1), None, []),
        (ClaimPayment(1, final=True), "Running", ["claim_payment"]),
        (ClaimPayment(1, final=True), "Pending", []),
        (ClaimPayment(1, final=False), None, []),
        (CancelLease(1), "Pending", ["cancel_lease"]),
        (CancelLease(1), "Running", []),
    ],
)
def test_execute_chain_action_only_when_chain_still_needs_it(
    action: StartLease | ClaimPayment | CancelLease,
    state: str | None,
    calls: list[str],
    store: NodeStore,
) -> None:
    chain = Chain(state)
    [outcome] = _executor(chain, store).run([action])
    assert chain.calls == calls
    assert outcome.result == ("done" if calls else "skipped")


@pytest.mark.parametrize(
    ("action", "error", "result"),
    [
        (StartLease(1), "LeaseAlreadyStarted", "skipped"),
        (StartLease(1), "StartWindowPassed", "failed"),
        (ClaimPayment(1, final=False), "NothingToClaim", "skipped"),
        (ClaimPayment(1, final=True), "LeaseNotFound", "skipped"),
        (ClaimPayment(1, final=True), "NotMachineOperator", "failed"),
    ],
)
def test_execute_chain_error_already_done_is_not_a_failure(
    action: StartLease | ClaimPayment, error: str, result: str, store: NodeStore
) -> None:
    state = "Pending" if isinstance(action, StartLease) else "Running"
    [outcome] = _executor(Chain(state, error), store).run([action])
    assert (outcome.result, outcome.detail.split(":")[0]) == (result, error)


def test_execute_apply_uses_stored_spec_on_chain_gpus(store: NodeStore) -> None:
    store.accept(5, SPEC, spec_hash(SPEC), "5C", 1)
    runtime = Runtime()
    outcomes = _executor(Chain("Pending"), store, runtime).run(
        [ApplyWorkload(5, (1, 3), restart=False), ApplyWorkload(6, (0,), restart=False)]
    )
    assert [o.result for o in outcomes] == ["done", "skipped"]  # 6 has no spec
    assert [(w.lease_id, w.gpu_uuids) for w in runtime.applied] == [(5, ("GPU-1", "GPU-3"))]


def test_execute_failures_do_not_stop_later_actions_and_are_counted(store: NodeStore) -> None:
    store.accept(5, SPEC, spec_hash(SPEC), "5C", 1)
    registry = new_registry()
    metrics = AgentMetrics(registry)
    runtime = Runtime()
    desired = make_desired(store, make_gpu_set(store))
    executor = Executor(runtime, Chain("Running"), store, desired, metrics, lambda: 77)
    outcomes = executor.run(
        [
            ApplyWorkload(5, (9,), restart=False),  # GPU 9 is not on this machine
            DeleteWorkload(8, DeleteReason.ORPHAN),
            ClaimPayment(5, final=True),
            ForgetSpec(5),
        ]
    )
    assert [o.result for o in outcomes] == ["failed", "done", "done", "done"]
    assert runtime.deleted == [8]
    stored = store.get(5)
    assert stored is not None and stored.ended_block == 77
    text = generate_latest(registry).decode()
    assert "gridlease_node_earnings_claimed_units_total 950.0" in text
    assert 'gridlease_node_reconcile_errors_total{what="ApplyWorkload"} 1.0' in text


@pytest.mark.parametrize(
    ("on_chain", "calls", "result"),
    [(0xFF, ["update_gpus 0xf7"], "done"), (0xF7, [], "skipped")],
)
def test_execute_update_gpus_only_when_chain_differs(
    on_chain: int, calls: list[str], result: str, store: NodeStore
) -> None:
    chain = Chain("Running", gpus_present=on_chain)
    [outcome] = _executor(chain, store).run([UpdateGpus(0xF7)])
    assert (chain.calls, outcome.result) == (calls, result)


def test_execute_apply_places_lease_on_its_slots_share_and_ports(store: NodeStore) -> None:
    # A 1-GPU lease of a 4-GPU machine (8 CPUs, 32 GiB) asking 1 TiB and 2,000 CPUs gets 2 CPUs
    # and 8 GiB; a spec asking less than its share gets what it asks.
    greedy = {**SPEC, "cpu_millicores": 1_000_000, "memory_mib": 1024 * 1024, "ports": [8080]}
    modest = {**SPEC, "cpu_millicores": 500, "memory_mib": 256}
    store.accept(5, greedy, spec_hash(greedy), "5C", 1)
    store.accept(6, modest, spec_hash(modest), "5C", 1)
    runtime = Runtime()
    executor = _executor(Chain("Pending"), store, runtime)
    executor.run([ApplyWorkload(5, (2,), restart=False), ApplyWorkload(6, (0, 1), restart=False)])
    greedy_w, modest_w = runtime.applied
    assert (greedy_w.gpu_indices, greedy_w.gpu_uuids) == ((2,), ("GPU-2",))
    assert (greedy_w.cpu_millicores, greedy_w.memory_mib) == (2000, 8192)
    assert (modest_w.cpu_millicores, modest_w.memory_mib) == (500, 256)
    # Ports come from the store's allocation and are the same when the workload is re-created.
    assert set(greedy_w.host_ports) == {2222, 8080}
    executor.run([ApplyWorkload(5, (2,), restart=True)])
    assert runtime.applied[-1].host_ports == greedy_w.host_ports
    assert set(greedy_w.host_ports.values()).isdisjoint(modest_w.host_ports.values())


def test_execute_apply_records_ports_the_runtime_chose(store: NodeStore) -> None:
    # Kubernetes: no port range, the API server allocates node ports at the first apply; the
    # executor records them and the re-created workload asks for those.
    class Allocating(Runtime):
        def apply(self, workload: LeaseWorkload) -> WorkloadStatus:
            self.applied.append(workload)
            ports = {2222: "10.0.0.1:31022", 8080: "10.0.0.1:31080"}
            return WorkloadStatus(workload.lease_id, WorkloadPhase.PENDING, endpoints=ports)

    spec = {**SPEC, "ports": [8080]}
    store.accept(5, spec, spec_hash(spec), "5C", 1)
    runtime = Allocating()
    desired = dataclasses.replace(make_desired(store, make_gpu_set(store)), port_range=None)
    executor = Executor(runtime, Chain("Pending"), store, desired)
    executor.run([ApplyWorkload(5, (0,), restart=False)])
    assert runtime.applied[0].host_ports == {}
    assert store.recorded_host_ports(5) == {2222: 31022, 8080: 31080}
    executor.run([ApplyWorkload(5, (0,), restart=True)])
    assert runtime.applied[1].host_ports == {2222: 31022, 8080: 31080}


def test_execute_apply_refuses_slot_not_usable_here(store: NodeStore) -> None:
    store.accept(5, SPEC, spec_hash(SPEC), "5C", 1)
    runtime = Runtime()
    [outcome] = _executor(Chain("Pending"), store, runtime).run(
        [ApplyWorkload(5, (3, 7), restart=False)]
    )
    assert outcome.result == "failed"
    assert "holds GPU slots [3, 7], usable here: [0, 1, 2, 3]" in outcome.detail
    assert runtime.applied == []


def test_execute_earnings_counted_exactly_in_smallest_units(store: NodeStore) -> None:
    registry = new_registry()
    metrics = AgentMetrics(registry)
    big = 2**53 + 1  # a float cannot hold it: 9,007 tokens of 10**12 units and one unit

    class BigChain(Chain):
        def claim_payment(self, lease_id: int) -> int:
            return big

    desired = make_desired(store, make_gpu_set(store))
    executor = Executor(Runtime(), BigChain("Running"), store, desired, metrics)
    executor.run([ClaimPayment(1, final=False), ClaimPayment(2, final=False)])
    assert metrics.earnings.value == 2 * big
    assert isinstance(metrics.earnings.value, int)
