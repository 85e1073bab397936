"""Lease telemetry on the node: the sampler's bounded history and health, and GetLeaseGpus's
checks (signed by the lease's customer, fresh, answered once) through the real servicer, with
real sr25519 keys, a real NodeStore slot table, SIMULATED NVML readings and a fixed clock."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import grpc
import pytest
from substrateinterface import Keypair

from services.common import RateLimited, lease_gpus_request_payload, new_registry
from services.common._chain import ChainLease
from services.common.grpc_gen.gridlease.v1 import node_pb2
from services.gpu_node.admission import REQUEST_MAX_SKEW_MS, ReplayGuard
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.hardware import read_inventory
from services.gpu_node.hardware.model import Inventory
from services.gpu_node.hardware.simulation import SimSpec
from services.gpu_node.hardware.xid import GpuXids
from services.gpu_node.health import GpuHealth, HealthReason
from services.gpu_node.runtime.base import WorkloadRuntime
from services.gpu_node.service import NodeServicer
from services.gpu_node.store import NodeStore
from services.gpu_node.telemetry import Sample, TelemetrySampler, basic_health
from tests.utils.gpu_node_chain import dev_key
from tests.utils.lease_table import LeaseTable

from .utils import make_gpu

MACHINE = b"\x07" * 32
NOW = 1_800_000_000_000
BOB, CHARLIE = dev_key("Bob"), dev_key("Charlie")
NONCE = b"\x01" * 16
LEASE = ChainLease(
    lease_id=9, machine_id=MACHINE, customer=BOB.ss58_address, gpus=2, gpu_mask=0b1010,
    price_per_gpu_block=1, duration=100, spec_hash=b"\x00" * 32, state="Running",
    created_at=50, started_at=52, ends_at=152, accrue_from=52, escrow=100,
)  # fmt: skip
Simulate = Callable[[SimSpec], None]


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


class _Context:
    """What abort_with uses of a grpc.aio.ServicerContext."""

    def __init__(self) -> None:
        self.trailers: dict[str, str] = {}

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailers = dict(metadata)

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise _Aborted(code, self.trailers.get("gridlease-reason", ""))


def request(
    signer: Keypair = BOB,
    *,
    lease_id: int = 9,
    timestamp_ms: int = NOW,
    nonce: bytes = NONCE,
    customer: str | None = None,
) -> node_pb2.GetLeaseGpusRequest:
    signature = signer.sign(lease_gpus_request_payload(lease_id, timestamp_ms, nonce))
    return node_pb2.GetLeaseGpusRequest(
        lease_id=lease_id,
        customer=customer or signer.ss58_address,
        timestamp_ms=timestamp_ms,
        nonce=nonce,
        signature=bytes(signature),
    )


def inventory(*gpus: Any) -> Inventory:
    return Inventory("550.54.15", "12.4", tuple(gpus), simulated=True)


FOUR = inventory(*(make_gpu(i, f"GPU-{i}") for i in range(4)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[NodeStore]:
    node_store = NodeStore(tmp_path / "node.db")
    node_store.assign_gpu_slots([f"GPU-{i}" for i in range(4)])
    yield node_store
    node_store.close()


def servicer(
    store: NodeStore,
    sampler: TelemetrySampler | None,
    leases: dict[int, ChainLease] | None = None,
) -> NodeServicer:
    runtime: WorkloadRuntime = object()  # type: ignore[assignment]  # GetLeaseGpus never uses it
    return NodeServicer(
        chain=LeaseTable({9: LEASE} if leases is None else leases),  # type: ignore[arg-type]
        machine_id=MACHINE,
        start_window=120,
        store=store,
        runtime=runtime,
        public_host="127.0.0.1",
        metrics=AgentMetrics(new_registry()),
        telemetry=sampler,
        clock_ms=lambda: NOW,
    )


def call(node: NodeServicer, req: node_pb2.GetLeaseGpusRequest) -> node_pb2.GetLeaseGpusResponse:
    context: Any = _Context()
    reply: node_pb2.GetLeaseGpusResponse = asyncio.run(node.GetLeaseGpus(req, context))
    return reply


def refusal(node: NodeServicer, req: node_pb2.GetLeaseGpusRequest) -> tuple[str, str]:
    with pytest.raises(_Aborted) as err:
        call(node, req)
    return err.value.code.name, err.value.reason


def sampled(inv: Inventory = FOUR, rounds: int = 1, **kwargs: Any) -> TelemetrySampler:
    clock = iter(range(NOW, NOW + 10**6, 5000))
    sampler = TelemetrySampler(lambda: inv, clock=lambda: next(clock), **kwargs)
    for _ in range(rounds):
        sampler.sample_once()
    return sampler


# -- the sampler ----------------------------------------------------------------------------------
def test_history_is_bounded_per_gpu_and_oldest_first() -> None:
    sampler = sampled(rounds=5, history_limit=3)
    (gpu,) = sampler.lease_gpus({2: "GPU-2"})
    assert [s.timestamp_ms for s in gpu.history] == [NOW + 10_000, NOW + 15_000, NOW + 20_000]
    assert gpu.current == gpu.history[-1]


def test_a_board_gone_for_a_whole_history_is_forgotten() -> None:
    boards = [FOUR]
    sampler = TelemetrySampler(lambda: boards[0], history_limit=3, clock=lambda: NOW)
    sampler.sample_once()
    boards[0] = inventory(make_gpu(0, "GPU-0"))
    sampler.sample_once()
    (gone,) = sampler.lease_gpus({1: "GPU-1"})
    # Not read at the latest sample: no current reading, unhealthy, its history still shown.
    assert (gone.current, gone.healthy, len(gone.history)) == (None, False, 1)
    assert gone.health_reason == "lost: not read at the latest sample"
    sampler.sample_once()
    sampler.sample_once()
    (gone,) = sampler.lease_gpus({1: "GPU-1"})
    assert gone.history == ()


def test_a_failed_read_leaves_no_current_reading() -> None:
    reads: list[Inventory | Exception] = [FOUR, RuntimeError("NVML gone")]

    def read() -> Inventory:
        item = reads.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    sampler = TelemetrySampler(read, clock=lambda: NOW)
    sampler.sample_once()
    with pytest.raises(RuntimeError):
        sampler.sample_once()
    (gpu,) = sampler.lease_gpus({0: "GPU-0"})
    assert gpu.current is None and not gpu.healthy


@pytest.mark.parametrize(
    ("counts", "last", "reason"),
    [
        ({}, 0, None),
        ({13: 2, 43: 1}, 43, None),  # application XIDs say nothing about the board
        ({79: 1}, 79, "XID 79"),  # fell off the bus
        ({48: 1, 13: 3}, 13, "XID 48"),  # double-bit ECC, earlier
        ({999: 1}, 999, "XID 999"),  # unknown XIDs count as critical
    ],
)
def test_xids_outside_the_application_ones_make_a_gpu_unhealthy(
    counts: dict[int, int], last: int, reason: str | None
) -> None:
    health = basic_health(2, make_gpu(2, "GPU-2"), GpuXids(last, Counter(counts)))
    assert (health.slot, health.healthy) == (2, reason is None)
    assert health.detail == (reason or "")


def test_xid_counts_per_gpu_and_the_reported_health_comes_first() -> None:
    xids = {"GPU-1": GpuXids(79, Counter({79: 1, 13: 2}))}
    sampler = sampled(xids=lambda: xids)
    one, three = sampler.lease_gpus({1: "GPU-1", 3: "GPU-3"})
    assert (one.xid_count, one.last_xid, one.healthy) == (3, 79, False)
    assert one.health_reason == "xid: XID 79"
    assert (three.xid_count, three.last_xid, three.healthy, three.health_reason) == (0, 0, True, "")
    unwatched = sampled().lease_gpus({1: "GPU-1"})[0]
    assert unwatched.xid_count is None  # unknown, not a false 0
    # The heartbeat's verdict (what the chain was told) wins for the slots it covers.
    verdict = [GpuHealth(3, HealthReason.ECC, 3, "GPU-3", detail="2 uncorrectable ECC errors")]
    one, three = sampled(reported=lambda: verdict).lease_gpus({1: "GPU-1", 3: "GPU-3"})
    assert (one.healthy, three.healthy) == (True, False)
    assert three.health_reason == "ecc: 2 uncorrectable ECC errors"


def test_samples_are_what_simulated_nvml_reports(simulate: Simulate) -> None:
    simulate(SimSpec.parse("h100:4", utilization_pct=40))
    sampler = TelemetrySampler(read_inventory, clock=lambda: NOW)
    sampler.sample_once()
    nvml = read_inventory()
    for gpu in nvml.gpus:
        (view,) = sampler.lease_gpus({gpu.index: gpu.uuid})
        assert view.current == Sample(
            NOW, gpu.utilization_pct, gpu.memory_used_bytes, gpu.temperature_c, gpu.power_w
        )
        assert (view.model, view.memory_total_bytes) == (gpu.name, gpu.memory_total_bytes)
        # The stand-in's rule: 30 C plus the board's position plus half the utilisation.
        assert (gpu.utilization_pct, gpu.temperature_c) == (40, 30 + gpu.index + 20)


# -- GetLeaseGpus ---------------------------------------------------------------------------------
def test_the_customer_reads_the_gpus_of_its_lease_only(tmp_path: Path, simulate: Simulate) -> None:
    simulate(SimSpec.parse("h100:4", utilization_pct=60))
    nvml = read_inventory()
    sim_store = NodeStore(tmp_path / "sim.db")
    # Slot i is the board at NVML index i, as the agent assigns them on a fresh machine.
    sim_store.assign_gpu_slots([g.uuid for g in nvml.gpus])
    table = sim_store.gpu_slots()
    sampler = TelemetrySampler(read_inventory, clock=lambda: NOW, interval_s=2.5)
    sampler.sample_once()
    reply = call(servicer(sim_store, sampler), request())
    assert reply.lease_id == 9
    assert (reply.sample_interval_ms, reply.history_limit) == (2500, 120)
    assert [g.slot for g in reply.gpus] == [1, 3]  # gpu_mask 0b1010
    for gpu in reply.gpus:
        board = next(b for b in nvml.gpus if b.uuid == gpu.uuid)
        assert gpu.uuid == table[gpu.slot]
        assert (gpu.model, gpu.memory_total_bytes) == (board.name, board.memory_total_bytes)
        assert gpu.current.timestamp_ms == NOW
        assert gpu.current.utilization_pct == board.utilization_pct == 60
        assert gpu.current.memory_used_bytes == board.memory_used_bytes
        assert gpu.current.temperature_c == board.temperature_c
        assert gpu.current.power_w == board.power_w
        assert gpu.healthy and gpu.health_reason == "" and not gpu.HasField("xid_count")
        assert [s.timestamp_ms for s in gpu.history] == [NOW]
    sim_store.close()


def test_a_lost_board_of_the_lease_shows_unhealthy(store: NodeStore) -> None:
    sampler = sampled(inventory(*(make_gpu(i, f"GPU-{i}") for i in (0, 1, 2))))
    reply = call(servicer(store, sampler), request())
    one, three = reply.gpus
    assert one.healthy and one.HasField("current")
    assert (three.uuid, three.healthy) == ("GPU-3", False)
    assert three.health_reason == "lost: not read at the latest sample"
    assert not three.HasField("current") and three.model == ""


def test_unsupported_readings_are_absent_not_zero(store: NodeStore) -> None:
    bare = dataclasses.replace(make_gpu(1, "GPU-1"), utilization_pct=None, temperature_c=None)
    reply = call(servicer(store, sampled(inventory(bare, make_gpu(3, "GPU-3")))), request())
    current = reply.gpus[0].current
    assert not current.HasField("utilization_pct") and not current.HasField("temperature_c")
    assert current.HasField("memory_used_bytes") and current.HasField("power_w")


def test_refusals(store: NodeStore) -> None:
    node = servicer(store, sampled())
    other_machine = dataclasses.replace(LEASE, lease_id=10, machine_id=b"\x08" * 32)
    node_with_other = servicer(store, sampled(), {9: LEASE, 10: other_machine})
    cases = {
        "unknown lease": (request(lease_id=11), ("NOT_FOUND", "lease_not_found")),
        "another customer's lease": (
            request(CHARLIE),
            ("PERMISSION_DENIED", "not_lease_customer"),
        ),
        "signed by someone else": (
            request(CHARLIE, customer=BOB.ss58_address),
            ("PERMISSION_DENIED", "bad_signature"),
        ),
        "signed for another lease": (
            node_pb2.GetLeaseGpusRequest(
                **{**_fields(request(lease_id=10, nonce=b"\x02" * 16)), "lease_id": 9}
            ),
            ("PERMISSION_DENIED", "bad_signature"),
        ),
        "too old": (
            request(timestamp_ms=NOW - 60_001, nonce=b"\x03" * 16),
            ("FAILED_PRECONDITION", "request_expired"),
        ),
        "from the future": (
            request(timestamp_ms=NOW + 60_001, nonce=b"\x04" * 16),
            ("FAILED_PRECONDITION", "timestamp_in_future"),
        ),
        "not an address": (
            request(customer="nobody"),
            ("INVALID_ARGUMENT", "bad_customer"),
        ),
        "short nonce": (
            node_pb2.GetLeaseGpusRequest(**{**_fields(request()), "nonce": b"\x01"}),
            ("INVALID_ARGUMENT", "bad_nonce_length"),
        ),
        "short signature": (
            node_pb2.GetLeaseGpusRequest(**{**_fields(request()), "signature": b"\x01" * 8}),
            ("INVALID_ARGUMENT", "bad_signature_length"),
        ),
    }
    got = {name: refusal(node, req) for name, (req, _) in cases.items()}
    assert got == {name: want for name, (_, want) in cases.items()}
    assert refusal(node_with_other, request(lease_id=10)) == ("NOT_FOUND", "lease_not_found")
    # Nothing refused above used up the nonce: the real request is still answered.
    assert len(call(node, request()).gpus) == 2


def _fields(req: node_pb2.GetLeaseGpusRequest) -> dict[str, Any]:
    return {f.name: getattr(req, f.name) for f in req.DESCRIPTOR.fields}


def test_a_replayed_request_is_refused_and_a_fresh_one_answered(store: NodeStore) -> None:
    node = servicer(store, sampled())
    captured = request()
    assert len(call(node, captured).gpus) == 2
    assert refusal(node, captured) == ("PERMISSION_DENIED", "request_replayed")
    assert len(call(node, request(nonce=b"\x09" * 16)).gpus) == 2
    # The edges of the window are still fresh.
    assert call(node, request(timestamp_ms=NOW - 60_000, nonce=b"\x0a" * 16)).lease_id == 9
    assert call(node, request(timestamp_ms=NOW + 60_000, nonce=b"\x0b" * 16)).lease_id == 9


def test_without_telemetry_the_call_is_unavailable(store: NodeStore) -> None:
    assert refusal(servicer(store, None), request()) == ("UNAVAILABLE", "telemetry_off")


def test_the_replay_guard_is_bounded_and_forgets_nonces_past_the_window() -> None:
    guard = ReplayGuard(max_entries=2)
    key = bytes(BOB.public_key)
    guard.remember(key, b"\x01" * 16, NOW, NOW)
    guard.remember(key, b"\x02" * 16, NOW, NOW)
    with pytest.raises(RateLimited):  # full of nonces still fresh: refuse, forget none early
        guard.remember(key, b"\x03" * 16, NOW, NOW)
    later = NOW + REQUEST_MAX_SKEW_MS + 1  # both first nonces are now too old to be replayed
    guard.remember(key, b"\x03" * 16, later, later)
    guard.remember(key, b"\x01" * 16, later, later)
