"""The node agent under GPU hardware faults (issue 14, items 8-10), as real processes: the dev
chain, a real seed, Podman containers, SIMULATED GPUs with faults injected by the C stand-in.

One machine lives through the module in order: registered with 8 GPUs; restarted with GPU 3
lost (the node keeps serving the other 7 and takes slot 3 off the chain, ending the lease that
held it); restarted with GPU 3 gone from the bus (the others keep their slots, a 7-GPU lease
runs on exactly them). Then machines with mixed models and MIG.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common import keypair_from_secret, machine_id_for
from services.common._chain import ChainClient, ExtrinsicFailed
from services.common.grpc_gen.gridlease.v1 import node_pb2
from services.gpu_node import labels
from services.gpu_node.runtime.images import SSHD_IMAGE
from services.gpu_node.runtime.podman_cli import PodmanCli
from tests.seed.harness import SeedProcess, free_port
from tests.utils.devchain import DevChain
from tests.utils.gpu_node_chain import create_lease, dev_key, submission
from tests.utils.gpu_node_process import NodeProcess, wait_for
from tests.utils.grpc_process import ROOT

from .utils import SAMPLE_SSH_KEY

SPEC: dict[str, Any] = {
    "version": 1,
    "image": SSHD_IMAGE,
    "ssh_public_key": SAMPLE_SSH_KEY,
    "cpu_millicores": 100,
    "memory_mib": 128,
}
H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"


def _env(dev_chain: DevChain, seed: SeedProcess, gpus: str, faults: str) -> dict[str, str]:
    return {
        "GRIDLEASE_NODE_CHAIN_URL": dev_chain.url,
        "GRIDLEASE_NODE_PROVIDER_SECRET": "//Alice",
        "GRIDLEASE_NODE_SIMULATE_GPUS": gpus,
        "GRIDLEASE_NODE_SIMULATE_GPU_FAULTS": faults,
        "GRIDLEASE_NODE_SEEDS": seed.endpoint,
        "GRIDLEASE_NODE_PUBLIC_HOST": "127.0.0.1",
        "GRIDLEASE_NODE_PUBLISH_HOST": "127.0.0.1",
        "GRIDLEASE_NODE_RECONCILE_INTERVAL_S": "1",
        "GRIDLEASE_NODE_HEARTBEAT_CHECK_S": "1",
        "GRIDLEASE_NODE_ANNOUNCE_INTERVAL_S": "1",
    }


def _machine_id(node: NodeProcess) -> bytes:
    keypair = keypair_from_secret((node.data_dir / "machine.key").read_text())
    return machine_id_for(bytes(keypair.public_key))


def _slot_table(node: NodeProcess) -> dict[int, str]:
    with sqlite3.connect(node.data_dir / "node.db") as db:
        return dict(db.execute("SELECT slot, uuid FROM gpu_slots").fetchall())


def _remove_containers(machine_id: bytes) -> None:
    podman = PodmanCli()
    found = podman.run_json(
        ["ps", "--all", "--format", "json", "--filter", f"label={labels.NODE}={machine_id.hex()}"]
    )
    ids = [c["Id"] for c in found if isinstance(c, dict)]
    if ids:
        podman.run_checked(["rm", "--force", *ids])


def _lease_end_reason(chain: ChainClient, lease_id: int, first_block: int) -> str | None:
    for number in range(first_block, chain.block_number() + 1):
        block_hash = chain.block_hash(number)
        for event in chain.events(block_hash) if block_hash else []:
            if (event.module, event.name) == ("GpuRental", "LeaseEnded") and event.attributes.get(
                "lease_id"
            ) == lease_id:
                return str(event.attributes["reason"])
    return None


@pytest.fixture(scope="module")
def node(
    dev_chain: DevChain, seed: SeedProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeProcess]:
    env = _env(dev_chain, seed, "h100:8", "")
    process = NodeProcess(tmp_path_factory.mktemp("node"), free_port(), free_port(), env).start()
    yield process
    process.stop()
    _remove_containers(_machine_id(process))


def test_lost_gpu_keeps_the_node_serving_the_other_seven(
    node: NodeProcess, chain: ChainClient, seed: SeedProcess
) -> None:
    machine_id = _machine_id(node)
    machine = chain.machine(machine_id)
    assert machine is not None and (machine.gpus_present, machine.gpu_count) == (0xFF, 8)
    slots = _slot_table(node)
    assert sorted(slots) == list(range(8))
    # A lease holding slots 0..3, booked before the fault.
    bob = dev_key("Bob")
    held, held_block = create_lease(chain, bob, machine_id, SPEC, gpus=4)

    node.stop()
    node.env["GRIDLEASE_NODE_SIMULATE_GPU_FAULTS"] = "lost=3"
    node.start()  # GPU 3 answers GPU_IS_LOST: the node still starts and serves

    def chain_follows() -> bool:
        found = chain.machine(machine_id)
        return found is not None and found.gpus_present == 0xF7

    wait_for(chain_follows, what="update_gpus taking slot 3 off the chain")
    machine = chain.machine(machine_id)
    assert machine is not None and machine.gpu_count == 7
    # The lease on the lost GPU ended (its customer refunded what was not served).
    assert chain.lease(held) is None
    assert _lease_end_reason(chain, held, held_block) == "GpusRemoved"
    # The other 7 keep every per-GPU metric; the lost one is marked.
    util = node.samples("DCGM_FI_DEV_GPU_UTIL")
    assert sorted(int(labels_["gpu"]) for labels_, _ in util) == [0, 1, 2, 4, 5, 6, 7]
    offered = {(s["gpu"], s["slot"], s["reason"]): v for s, v in node.samples(
        "gridlease_gpu_offered")}  # fmt: skip
    assert offered[("3", "3", "lost")] == 0.0
    assert sum(offered.values()) == 7.0
    states = {s["state"]: v for s, v in node.samples("gridlease_node_gpus")}
    assert (states["offered"], states["lost"]) == (7.0, 1.0)

    # The offer promises 7; an 8-GPU lease cannot be made any more.
    def offers_seven() -> bool:
        entry = seed.get(machine_id)
        return entry is not None and entry.offer.gpu.count == 7

    wait_for(offers_seven, what="the offer to say 7 GPUs")
    with pytest.raises(ExtrinsicFailed) as err:
        create_lease(chain, bob, machine_id, SPEC, gpus=8)
    assert err.value.name == "NotEnoughFreeGpus"
    assert _slot_table(node) == slots


def test_vanished_gpu_keeps_slots_and_a_seven_gpu_lease_runs_on_them(
    node: NodeProcess, chain: ChainClient
) -> None:
    machine_id = _machine_id(node)
    slots = _slot_table(node)
    node.stop()
    # Board 3 gone from the bus: NVML now numbers boards 4..7 as 3..6.
    node.env["GRIDLEASE_NODE_SIMULATE_GPU_FAULTS"] = "absent=3"
    node.start()
    wait_for(
        lambda: node.metric("gridlease_node_reconcile_seconds_count") >= 2,
        what="two reconcile runs after the restart",
    )
    machine = chain.machine(machine_id)
    assert machine is not None and machine.gpus_present == 0xF7  # the same slots: no change
    assert _slot_table(node) == slots

    bob = dev_key("Bob")
    lease_id, _ = create_lease(chain, bob, machine_id, SPEC, gpus=7)
    assert node.stub().SubmitWorkload(submission(lease_id, SPEC, bob), timeout=30).accepted

    def started() -> bool:
        lease = chain.lease(lease_id)
        return lease is not None and lease.state == "Running"

    wait_for(started, what="the 7-GPU lease to start")
    [container] = PodmanCli().run_json(
        ["ps", "--format", "json", "--filter", f"label={labels.LEASE_ID}={lease_id}",
         "--filter", f"label={labels.NODE}={machine_id.hex()}"]
    )  # fmt: skip
    uuids = container["Labels"][labels.GPU_UUIDS].split(",")
    assert uuids == [slots[s] for s in (0, 1, 2, 4, 5, 6, 7)]
    chain.gpu_rental(bob, "terminate_lease", lease_id=lease_id)
    wait_for(
        lambda: (
            node.stub().GetLeaseStatus(node_pb2.GetLeaseStatusRequest(lease_id=lease_id)).status
            == node_pb2.WORKLOAD_STATUS_TERMINATED
        ),
        what="the lease to read as terminated",
    )


def test_mixed_models_and_mig_register_only_whole_gpus_of_one_model(
    dev_chain: DevChain,
    seed: SeedProcess,
    chain: ChainClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # a100:2,t4:1 with the second A100 in MIG mode: one whole A100 to offer, not 3 x A100.
    env = _env(dev_chain, seed, "a100:2,t4:1", "mig=1")
    node = NodeProcess(tmp_path_factory.mktemp("mixed"), free_port(), free_port(), env).start()
    try:
        machine_id = _machine_id(node)
        machine = chain.machine(machine_id)
        assert machine is not None
        assert (machine.gpu_model, machine.gpu_count, machine.memory_mib) == (A100, 1, 81920)
        entry = wait_for(lambda: seed.get(machine_id), what="the offer on the seed")
        assert (entry.offer.gpu.model, entry.offer.gpu.count) == (A100, 1)
        reasons = sorted(s["reason"] for s, v in node.samples("gridlease_gpu_offered") if not v)
        assert reasons == ["mig", "other_model"]
    finally:
        node.stop()


def test_node_refuses_to_start_on_a_model_it_does_not_have(
    dev_chain: DevChain, seed: SeedProcess, tmp_path: Path
) -> None:
    env = {
        **_env(dev_chain, seed, "a100:2,t4:1", ""),
        "GRIDLEASE_NODE_GPU_MODEL": "NVIDIA H100 80GB HBM3",
        "GRIDLEASE_NODE_DATA_DIR": str(tmp_path),
        "GRIDLEASE_NODE_LISTEN": f"127.0.0.1:{free_port()}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "services.gpu_node", "run"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("GRIDLEASE_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "gpu_model 'NVIDIA H100 80GB HBM3' matches no GPU here" in proc.stderr
    assert "2 x NVIDIA A100-SXM4-80GB, 1 x Tesla T4" in proc.stderr
