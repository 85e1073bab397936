"""Workload spec parsing and the node's SQLite store (restart keeps specs and sequences)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.common import MalformedMessage, spec_hash
from services.gpu_node.hardware.model import GpuDevice, Inventory
from services.gpu_node.runtime.base import WorkloadInvalid
from services.gpu_node.spec import parse_spec, to_workload
from services.gpu_node.store import NodeStore, PortsExhausted

from .utils import SAMPLE_SSH_KEY

SPEC = {"version": 1, "image": "localhost/gridlease-sshd:1", "ssh_public_key": SAMPLE_SSH_KEY}
FULL = {**SPEC, "command": ["sleep", "infinity"], "env": {"A": "b"}, "ports": [8080],
        "cpu_millicores": 500, "memory_mib": 256}  # fmt: skip


def _gpu(index: int) -> GpuDevice:
    return GpuDevice(index, f"GPU-{index}", "NVIDIA H100", 80 << 30, f"0000:{index:02x}:00.0",
                     "9.0", False, 700.0, 0, 0, 30, 70.0)  # fmt: skip


def test_parse_spec_accepts_every_field() -> None:
    parsed = parse_spec(json.dumps(FULL).encode())
    assert parsed.spec.ports == (8080,) and parsed.spec.command == ("sleep", "infinity")
    assert parsed.digest == spec_hash(FULL)


def test_parse_spec_hash_is_canonical_whatever_the_key_order() -> None:
    reordered = json.dumps(dict(reversed(list(SPEC.items())))).encode()
    parsed = parse_spec(reordered)
    assert parsed.digest == spec_hash(SPEC)
    assert parsed.spec.image == SPEC["image"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff", "spec_not_json"),
        (b"[1]", "spec_not_object"),
        (json.dumps({**SPEC, "privileged": True}).encode(), "spec_invalid"),
        (json.dumps({**SPEC, "version": 2}).encode(), "spec_invalid"),
        (json.dumps({**SPEC, "ports": [2222]}).encode(), "spec_invalid"),
        (json.dumps({**SPEC, "ssh_public_key": "not a key"}).encode(), "spec_invalid"),
        (json.dumps({**SPEC, "memory_mib": 1.5}).encode(), "spec_invalid"),
        (json.dumps({**SPEC, "memory_mib": "512"}).encode(), "spec_invalid"),
        (json.dumps({**SPEC, "ports": [True]}).encode(), "spec_invalid"),
        (b" " * (64 * 1024 + 1), "spec_too_large"),
        # JSON Schema's integer, but no canonical form to hash: the API never sends it.
        (json.dumps({**SPEC, "memory_mib": 512.0}).encode(), "spec_invalid"),
    ],
)
def test_parse_spec_refuses_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage) as err:
        parse_spec(raw)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"image": "Docker.io/Library/Ubuntu:22.04"}, "must be lowercase"),
        ({"image": "localhost/gridlease-sshd:1\n"}, "whitespace or control"),
        ({"env": {"GRIDLEASE_LEASE_ID": "1"}}, "reserved for the node"),
        ({"env": {"NVIDIA_VISIBLE_DEVICES": "all"}}, "reserved for the node"),
        ({"env": {"MODE\n": "x"}}, "not a variable name"),
        ({"ssh_public_key": SAMPLE_SSH_KEY.replace("AAAAI", "AAAAJ", 1)}, "ssh_public_key"),
    ],
)
def test_parse_spec_refuses_what_the_common_model_refuses(
    fields: dict[str, object], says: str
) -> None:
    with pytest.raises(MalformedMessage, match=says) as err:
        parse_spec(json.dumps({**SPEC, **fields}).encode())
    assert err.value.reason == "spec_invalid"


def test_to_workload_applies_the_spec_defaults() -> None:
    workload = to_workload(parse_spec(json.dumps(SPEC).encode()).spec, 5, ())
    assert (workload.cpu_millicores, workload.memory_mib) == (1000, 1024)
    full = to_workload(parse_spec(json.dumps(FULL).encode()).spec, 5, ())
    assert (full.cpu_millicores, full.memory_mib, full.env) == (500, 256, {"A": "b"})


def test_to_workload_maps_chain_gpu_indexes_to_uuids() -> None:
    inventory = Inventory("550", "12.4", tuple(_gpu(i) for i in range(4)), simulated=True)
    workload = to_workload(parse_spec(json.dumps(SPEC).encode()).spec, 5, (1, 3), inventory)
    assert workload.gpu_uuids == ("GPU-1", "GPU-3")
    with pytest.raises(WorkloadInvalid):
        to_workload(parse_spec(json.dumps(SPEC).encode()).spec, 5, (4,), inventory)


def test_store_keeps_specs_across_reopen(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.db")
    first = store.accept(3, SPEC, spec_hash(SPEC), "5Cust", 10)
    again = store.accept(3, SPEC, spec_hash(SPEC), "5Cust", 11)
    assert again == first  # the same spec again: the first accepted row stands
    store.close()

    reopened = NodeStore(tmp_path / "node.db")
    assert reopened.active() == {3: first}
    reopened.mark_ended(3, 20)
    assert reopened.active() == {}
    got = reopened.get(3)
    assert got is not None and got.ended and got.ended_block == 20
    assert reopened.get(2**64 - 1) is None


def test_store_spec_of_an_abandoned_lease_gives_way_to_the_chains_lease(tmp_path: Path) -> None:
    """Lease 3's spec was accepted while lease 3 was customer A's in a block a fork abandoned;
    the finalized chain gave id 3 to B's lease (another spec hash). B's spec, checked against the
    chain as every accepted spec is, replaces A's: otherwise B's workload never starts."""
    store = NodeStore(tmp_path / "node.db")
    store.accept(3, SPEC, spec_hash(SPEC), "5A", 10)
    store.mark_ended(3, 12)
    other = {**SPEC, "env": {"A": "b"}}
    replaced = store.accept(3, other, spec_hash(other), "5B", 14)
    assert replaced.customer == "5B" and replaced.digest == spec_hash(other)
    assert replaced.accepted_block == 14 and not replaced.ended
    assert store.active() == {3: replaced}


def test_store_sequence_increases_across_restarts_even_if_clock_goes_back(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.db")
    assert store.next_sequence(5_000) == 5_000
    assert store.next_sequence(5_000) == 5_001
    store.close()
    reopened = NodeStore(tmp_path / "node.db")
    assert reopened.next_sequence(1_000) == 5_002  # the clock went back: still above
    assert reopened.next_sequence(9_000) == 9_000


def test_store_host_ports_allocated_once_and_kept_across_reopen(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.db")
    store.accept(1, SPEC, spec_hash(SPEC), "5C", 1)
    store.accept(2, SPEC, spec_hash(SPEC), "5C", 1)
    held_elsewhere = {40001}  # another process listens there
    free = lambda port: port not in held_elsewhere  # noqa: E731
    first = store.host_ports(1, (2222, 8080), (40000, 40009), free)
    assert first == {2222: 40000, 8080: 40002}
    assert store.host_ports(2, (2222,), (40000, 40009), free) == {2222: 40003}
    store.close()

    reopened = NodeStore(tmp_path / "node.db")
    # Held by the lease itself: kept even though a probe would now find it busy.
    assert reopened.host_ports(1, (2222, 8080), (40000, 40009), lambda port: False) == first
    # Once the lease ended, its ports go to the next lease.
    reopened.mark_ended(1, 50)
    reopened.accept(3, SPEC, spec_hash(SPEC), "5C", 51)
    assert reopened.host_ports(3, (2222,), (40000, 40009), free) == {2222: 40000}


def test_store_records_runtime_chosen_ports_and_keeps_them(tmp_path: Path) -> None:
    # Kubernetes: the API server picked the node ports; the store keeps them across reopen, and
    # a port the runtime had to change is replaced.
    store = NodeStore(tmp_path / "node.db")
    assert store.recorded_host_ports(1) == {}
    store.record_host_ports(1, {2222: 31022, 8080: 31080})
    store.record_host_ports(1, {2222: 31022, 8080: 31080})
    store.close()
    reopened = NodeStore(tmp_path / "node.db")
    assert reopened.recorded_host_ports(1) == {2222: 31022, 8080: 31080}
    reopened.record_host_ports(1, {8080: 31999})
    assert reopened.recorded_host_ports(1) == {2222: 31022, 8080: 31999}
    assert reopened.recorded_host_ports(2) == {}


def test_store_host_ports_exhausted_is_a_clear_error(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.db")
    store.accept(1, SPEC, spec_hash(SPEC), "5C", 1)
    with pytest.raises(PortsExhausted, match="no free host port left in 40000-40001"):
        store.host_ports(1, (2222, 8080, 8888), (40000, 40001), lambda port: True)
    # Nothing half-allocated: the failed call stored no row.
    assert store.host_ports(1, (2222,), (40000, 40001), lambda port: True) == {2222: 40000}
