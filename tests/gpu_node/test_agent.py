"""The node agent as a real process: the dev chain (Chopsticks running our runtime), a real seed,
Podman containers, SIMULATED GPUs (h100:8 through the C stand-in), gRPC between processes.

One agent serves the whole module; the tests share it in order: registration and announcement,
SubmitWorkload's refusals, then one lease's life with a kill -9 in the middle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common import REASON_KEY, keypair_from_secret, machine_id_for
from services.common._chain import ChainClient
from services.common.grpc_gen.gridlease.v1 import node_pb2
from services.gpu_node import labels
from services.gpu_node.runtime.images import SSHD_IMAGE
from services.gpu_node.runtime.podman_cli import PodmanCli
from tests.seed.harness import SeedProcess, free_port
from tests.utils.devchain import DevChain
from tests.utils.gpu_node_chain import count_events, create_lease, dev_key, submission
from tests.utils.gpu_node_process import NodeProcess, wait_for

from .utils import SAMPLE_SSH_KEY

SPEC: dict[str, Any] = {
    "version": 1,
    "image": SSHD_IMAGE,
    "ssh_public_key": SAMPLE_SSH_KEY,
    "ports": [8080],
    "cpu_millicores": 500,
    "memory_mib": 256,
}


def _containers(machine_id: bytes) -> list[dict[str, Any]]:
    found = PodmanCli().run_json(
        ["ps", "--all", "--format", "json", "--filter", f"label={labels.NODE}={machine_id.hex()}"]
    )
    return [c for c in found if isinstance(c, dict)]


def _lease_ids(machine_id: bytes) -> list[int]:
    return sorted(int(c["Labels"][labels.LEASE_ID]) for c in _containers(machine_id))


@pytest.fixture(scope="module")
def node(
    dev_chain: DevChain, seed: SeedProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeProcess]:
    data_dir: Path = tmp_path_factory.mktemp("node")
    env = {
        "GRIDLEASE_NODE_CHAIN_URL": dev_chain.url,
        "GRIDLEASE_NODE_PROVIDER_SECRET": "//Alice",
        "GRIDLEASE_NODE_SIMULATE_GPUS": "h100:8",
        "GRIDLEASE_NODE_SEEDS": seed.endpoint,
        "GRIDLEASE_NODE_PUBLIC_HOST": "127.0.0.1",
        "GRIDLEASE_NODE_PUBLISH_HOST": "127.0.0.1",
        "GRIDLEASE_NODE_RECONCILE_INTERVAL_S": "1",
        "GRIDLEASE_NODE_HEARTBEAT_CHECK_S": "1",
        "GRIDLEASE_NODE_REGION": "test-1",
        "GRIDLEASE_NODE_ANNOUNCE_INTERVAL_S": "1",
    }
    process = NodeProcess(data_dir, free_port(), free_port(), env).start()
    yield process
    process.stop()
    machine_id = node_machine_id(process)
    ids = [c["Id"] for c in _containers(machine_id)]
    if ids:
        PodmanCli().run_checked(["rm", "--force", *ids])


def node_machine_id(node: NodeProcess) -> bytes:
    keypair = keypair_from_secret((node.data_dir / "machine.key").read_text())
    return machine_id_for(bytes(keypair.public_key))


def _status(node: NodeProcess, lease_id: int) -> node_pb2.GetLeaseStatusResponse:
    return node.stub().GetLeaseStatus(node_pb2.GetLeaseStatusRequest(lease_id=lease_id))


def _refusal(node: NodeProcess, request: node_pb2.SubmitWorkloadRequest) -> tuple[str, str]:
    with pytest.raises(grpc.RpcError) as err:
        node.stub().SubmitWorkload(request, timeout=30)
    rpc: Any = err.value
    reason = dict(rpc.trailing_metadata() or ()).get(REASON_KEY, "")
    return rpc.code().name, reason


def test_node_registers_machine_and_announces_offer(
    node: NodeProcess, chain: ChainClient, seed: SeedProcess
) -> None:
    machine_id = node_machine_id(node)
    machine = chain.machine(machine_id)
    operator = keypair_from_secret((node.data_dir / "machine.key").read_text())
    assert machine is not None
    assert (machine.gpu_count, machine.operator) == (8, operator.ss58_address)
    assert machine.owner == dev_key("Alice").ss58_address
    entry = wait_for(lambda: seed.get(machine_id), timeout_s=60, what="offer on the seed")
    assert entry.offer.endpoint == f"127.0.0.1:{node.port}"
    assert (entry.offer.gpu.count, entry.offer.region) == (8, "test-1")


def test_submit_workload_refusals(node: NodeProcess, chain: ChainClient) -> None:
    machine_id = node_machine_id(node)
    bob, charlie = dev_key("Bob"), dev_key("Charlie")
    lease_id, _ = create_lease(chain, bob, machine_id, SPEC)
    other = {**SPEC, "memory_mib": 512}

    cases = {
        "unknown lease": (submission(10**9, SPEC, bob), ("NOT_FOUND", "lease_not_found")),
        "other customer": (
            submission(lease_id, SPEC, charlie),
            ("PERMISSION_DENIED", "not_lease_customer"),
        ),
        "signed by someone else": (
            submission(lease_id, SPEC, charlie, customer=bob.ss58_address),
            ("PERMISSION_DENIED", "bad_signature"),
        ),
        "spec differs from chain": (
            submission(lease_id, other, bob),
            ("INVALID_ARGUMENT", "spec_hash_mismatch"),
        ),
        "signature over another spec": (
            submission(lease_id, SPEC, bob, signed_spec=other),
            ("PERMISSION_DENIED", "bad_signature"),
        ),
        "malformed spec": (
            submission(lease_id, {**SPEC, "privileged": True}, bob),
            ("INVALID_ARGUMENT", "spec_invalid"),
        ),
    }
    for name, (request, expected) in cases.items():
        assert _refusal(node, request) == expected, name

    # A lease on another machine is not this node's to run, even when correctly signed.
    other_machine = b"\x42" * 32
    chain.gpu_rental(
        dev_key("Alice"), "register_machine", machine_id="0x" + other_machine.hex(),
        operator=dev_key("Dave").ss58_address, gpu_model=b"NVIDIA H100".hex(),
        gpu_count=1, memory_mib=81559, price_per_gpu_block=1_000_000,
    )  # fmt: skip
    foreign, _ = create_lease(chain, bob, other_machine, SPEC, gpus=1)
    assert _refusal(node, submission(foreign, SPEC, bob)) == ("NOT_FOUND", "lease_not_found")

    status = node.stub().GetLeaseStatus(node_pb2.GetLeaseStatusRequest(lease_id=lease_id))
    assert status.status == node_pb2.WORKLOAD_STATUS_UNKNOWN
    assert _lease_ids(machine_id) == []  # nothing refused ever ran

    # Past the start window the node cancels the never-started lease to free its GPUs (the
    # refusal of a spec for such a lease is in test_admission.py: here the node is too quick).
    before = chain.block_number()
    # In batches: one RPC building 21 blocks can outlast the client's per-call deadline.
    for _ in range(int(chain.constant("StartWindow")) + 1):
        chain.dev_new_blocks(1)
    wait_for(lambda: chain.lease(lease_id) is None, what="the node to cancel the stale lease")
    assert count_events(chain, "LeaseEnded", lease_id, before) == 1
    # Those blocks made a heartbeat due, and the node sent one.
    wait_for(
        lambda: getattr(chain.machine(machine_id), "last_heartbeat", 0) > before,
        what="a heartbeat after the idle blocks",
    )
    chain.gpu_rental(bob, "cancel_lease", lease_id=foreign)


@pytest.mark.parametrize("method", ["SubmitWorkload", "GetLeaseStatus", "GetLeaseGpus"])
def test_undecodable_request_is_invalid_argument(node: NodeProcess, method: str) -> None:
    # The agent's server carries the same guard as the seeds' (common new_server): bytes that
    # do not decode are the caller's fault, answered INVALID_ARGUMENT, never UNKNOWN.
    call = node.channel().unary_unary(
        f"/gridlease.v1.NodeService/{method}",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as err:
        call(b"\xff" * 16, timeout=30)
    rpc: Any = err.value
    reason = dict(rpc.trailing_metadata() or ()).get(REASON_KEY, "")
    assert (rpc.code().name, reason) == ("INVALID_ARGUMENT", "malformed")


def test_lease_runs_survives_kill_and_is_removed_on_terminate(
    node: NodeProcess, chain: ChainClient
) -> None:
    machine_id = node_machine_id(node)
    bob = dev_key("Bob")
    lease_id, created_block = create_lease(chain, bob, machine_id, SPEC)

    reply = node.stub().SubmitWorkload(submission(lease_id, SPEC, bob), timeout=30)
    assert reply.accepted
    # Submitting again is accepted again and changes nothing.
    assert node.stub().SubmitWorkload(submission(lease_id, SPEC, bob), timeout=30).accepted

    def started() -> bool:
        lease = chain.lease(lease_id)
        return lease is not None and lease.state == "Running"

    wait_for(started, what="the node to start the lease on chain")
    status = node.stub().GetLeaseStatus(node_pb2.GetLeaseStatusRequest(lease_id=lease_id))
    assert status.status == node_pb2.WORKLOAD_STATUS_RUNNING
    assert (status.host, status.chain_state) == ("127.0.0.1", "Running")
    assert status.ssh_port > 0
    assert [p.container_port for p in status.ports] == [8080]
    assert _lease_ids(machine_id) == [lease_id]

    # A crash mid-lease: the workload stays, and the restarted node neither starts the lease
    # again nor duplicates or drops the container.
    node.kill()
    assert _lease_ids(machine_id) == [lease_id]
    node.start()
    wait_for(
        lambda: node.metric("gridlease_node_reconcile_seconds_count") >= 2,
        what="two reconcile runs after the restart",
    )
    lease = chain.lease(lease_id)
    assert lease is not None and lease.state == "Running"
    assert count_events(chain, "LeaseStarted", lease_id, created_block) == 1
    assert _lease_ids(machine_id) == [lease_id]
    assert node.metric("gridlease_node_reconcile_errors_total") == 0
    ssh_port = _status(node, lease_id).ssh_port
    assert ssh_port == status.ssh_port  # the node's restart moved nothing

    # The workload itself dies: the node brings it back, on the SSH port the customer has.
    [before] = [c["Id"] for c in _containers(machine_id)]
    PodmanCli().run_checked(["kill", before])

    def recreated() -> bool:
        now = [c for c in _containers(machine_id) if c["Id"] != before]
        return bool(now) and _status(node, lease_id).status == node_pb2.WORKLOAD_STATUS_RUNNING

    wait_for(recreated, what="the node to re-create the killed workload")
    again = _status(node, lease_id)
    assert (again.host, again.ssh_port) == ("127.0.0.1", ssh_port)
    assert [(p.container_port, p.host_port) for p in again.ports] == [
        (p.container_port, p.host_port) for p in status.ports
    ]

    chain.gpu_rental(bob, "terminate_lease", lease_id=lease_id)
    wait_for(lambda: _lease_ids(machine_id) == [], what="the node to remove the workload")
    wait_for(
        lambda: (
            node.stub().GetLeaseStatus(node_pb2.GetLeaseStatusRequest(lease_id=lease_id)).status
            == node_pb2.WORKLOAD_STATUS_TERMINATED
        ),
        what="the lease to read as terminated",
    )
    assert count_events(chain, "LeaseStarted", lease_id, created_block) == 1


def test_offer_follows_set_price_on_chain(
    node: NodeProcess, chain: ChainClient, seed: SeedProcess
) -> None:
    # The provider changes the price while the node runs: the next announcement says the
    # chain's price, not the one seen at start-up.
    machine_id = node_machine_id(node)
    machine = chain.machine(machine_id)
    assert machine is not None
    new_price = machine.price_per_gpu_block * 3 + 7
    chain.gpu_rental(
        dev_key("Alice"), "set_price", machine_id="0x" + machine_id.hex(),
        price_per_gpu_block=new_price,
    )  # fmt: skip

    def announced() -> bool:
        entry = seed.get(machine_id)
        return entry is not None and entry.offer.price_per_gpu_per_block == str(new_price)

    wait_for(announced, timeout_s=60, what="the offer to carry the new price")
