"""End to end with the real GPU node agent (its own process: Podman, SIMULATED GPUs, the dev
chain, a real seed): the API finds the node's offer, leases through the chain, delivers the
signed spec, and shows the connection once the node has started the lease."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.common import keypair_from_secret, machine_id_for
from services.common._chain import ChainClient
from services.customer_api.main import create_app
from services.gpu_node.runtime.images import SSHD_IMAGE
from tests.customer_api.conftest import api_settings
from tests.seed.harness import SeedProcess, free_port
from tests.utils.api_accounts import funded_customer
from tests.utils.api_db import new_sqlite_database
from tests.utils.api_leases import lease_body
from tests.utils.devchain import DevChain
from tests.utils.gpu_node_process import NodeProcess, wait_for


@pytest.fixture(scope="module")
def node(
    dev_chain: DevChain, seed: SeedProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeProcess]:
    env = {
        "GRIDLEASE_NODE_CHAIN_URL": dev_chain.url,
        "GRIDLEASE_NODE_PROVIDER_SECRET": "//Charlie",
        "GRIDLEASE_NODE_SIMULATE_GPUS": "h100:2",
        "GRIDLEASE_NODE_SEEDS": seed.endpoint,
        "GRIDLEASE_NODE_PUBLIC_HOST": "127.0.0.1",
        "GRIDLEASE_NODE_PUBLISH_HOST": "127.0.0.1",
        "GRIDLEASE_NODE_RECONCILE_INTERVAL_S": "1",
        "GRIDLEASE_NODE_HEARTBEAT_CHECK_S": "1",
    }
    process = NodeProcess(tmp_path_factory.mktemp("api-node"), free_port(), free_port(), env)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def node_client(
    tmp_path_factory: pytest.TempPathFactory, dev_chain: DevChain, seed: SeedProcess
) -> Iterator[TestClient]:
    settings = api_settings(
        database_url=new_sqlite_database(tmp_path_factory.mktemp("api-node-db")),
        chain_url=dev_chain.url,
        seed_endpoints=[seed.endpoint],
        node_timeout_s=30.0,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_lease_spec_reaches_real_node_and_runs(
    node: NodeProcess, node_client: TestClient, chain: ChainClient
) -> None:
    machine_key = keypair_from_secret((Path(node.data_dir) / "machine.key").read_text())
    machine_id = "0x" + machine_id_for(bytes(machine_key.public_key)).hex()
    runtime = node_client.app.state.runtime  # type: ignore[attr-defined]
    wait_for(lambda: runtime.index.get(bytes.fromhex(machine_id[2:])), what="the node's offer")
    customer = funded_customer(node_client)
    body = lease_body(
        machine_id, image=SSHD_IMAGE, command=[], env={}, cpu_millicores=500, memory_mib=256
    )
    created = node_client.post("/v1/leases", json=body, headers=customer.headers)
    assert created.status_code == 201, created.text
    lease = created.json()
    assert lease["delivery"] == {"state": "delivered", "attempts": 1, "error": None}
    assert lease["state"] == "starting"

    def running() -> dict[str, object] | None:
        got = node_client.get(f"/v1/leases/{lease['lease_id']}", headers=customer.headers)
        body = got.json()
        return body if body["state"] == "running" else None

    shown = wait_for(running, what="the node to start the lease")
    connection = shown["connection"]
    assert isinstance(connection, dict)
    assert connection["status"] == "running" and connection["host"] == "127.0.0.1"
    assert connection["ssh_port"] > 0
    assert [p["container_port"] for p in connection["ports"]] == [8080]
    ended = node_client.post(
        f"/v1/leases/{lease['lease_id']}/terminate", headers=customer.headers
    ).json()
    assert ended["state"] == "ended" and ended["end_reason"] == "Terminated"


def _nvml(node: NodeProcess, name: str, uuid: str) -> float:
    """The node's reading `name` (dcgm-exporter's series, read from NVML at scrape) of `uuid`."""
    (value,) = [v for labels, v in node.samples(name) if labels["UUID"] == uuid]
    return value


def test_lease_gpus_are_shown_to_their_customer_only_as_nvml_reports_them(
    node: NodeProcess, node_client: TestClient, chain: ChainClient
) -> None:
    machine_key = keypair_from_secret((Path(node.data_dir) / "machine.key").read_text())
    machine_id = "0x" + machine_id_for(bytes(machine_key.public_key)).hex()
    runtime = node_client.app.state.runtime  # type: ignore[attr-defined]
    wait_for(lambda: runtime.index.get(bytes.fromhex(machine_id[2:])), what="the node's offer")
    body = lease_body(
        machine_id, image=SSHD_IMAGE, command=[], env={}, cpu_millicores=500, memory_mib=256
    )
    first, second = funded_customer(node_client), funded_customer(node_client)
    leases = {}
    for customer in (first, second):  # one GPU each, of the node's two
        created = node_client.post("/v1/leases", json=body, headers=customer.headers)
        assert created.status_code == 201, created.text
        leases[customer.address] = created.json()["lease_id"]
    lease_a, lease_b = leases[first.address], leases[second.address]

    shown = {}
    for customer, lease_id in ((first, lease_a), (second, lease_b)):
        got = node_client.get(f"/v1/leases/{lease_id}/gpus", headers=customer.headers)
        assert got.status_code == 200, got.text
        shown[lease_id] = got.json()
        on_chain = chain.lease(lease_id)
        assert on_chain is not None
        assert [g["slot"] for g in shown[lease_id]["gpus"]] == on_chain.gpu_indexes
    (gpu_a,) = shown[lease_a]["gpus"]
    (gpu_b,) = shown[lease_b]["gpus"]
    assert gpu_a["uuid"] != gpu_b["uuid"]  # each customer sees its own GPU only

    # Another customer's lease is as unknown as a lease that does not exist.
    for lease_id in (lease_b, 10**12):
        refused = node_client.get(f"/v1/leases/{lease_id}/gpus", headers=first.headers)
        assert (refused.status_code, refused.json()["detail"]) == (404, "Lease not found")

    # The readings are NVML's (the simulated boards' readings are steady, so a later scrape of
    # the node's own metrics reads the same values).
    now = gpu_a["current"]
    assert gpu_a["model"] == "NVIDIA H100 80GB HBM3" and gpu_a["memory_total_bytes"] > 0
    assert now["utilization_pct"] == _nvml(node, "DCGM_FI_DEV_GPU_UTIL", gpu_a["uuid"])
    assert now["temperature_c"] == _nvml(node, "DCGM_FI_DEV_GPU_TEMP", gpu_a["uuid"])
    assert now["power_w"] == _nvml(node, "DCGM_FI_DEV_POWER_USAGE", gpu_a["uuid"])
    fb_used_mib = _nvml(node, "DCGM_FI_DEV_FB_USED", gpu_a["uuid"])
    assert now["memory_used_bytes"] // (1024 * 1024) == fb_used_mib
    assert gpu_a["healthy"] and gpu_a["health_reason"] == "" and gpu_a["xid_count"] == 0
    assert gpu_a["history"][-1] == now
    assert shown[lease_a]["history_limit"] >= 1 and shown[lease_a]["sample_interval_ms"] > 0

    for customer, lease_id in ((first, lease_a), (second, lease_b)):
        node_client.post(f"/v1/leases/{lease_id}/terminate", headers=customer.headers)
    ended = node_client.get(f"/v1/leases/{lease_a}/gpus", headers=first.headers)
    assert (ended.status_code, ended.json()["code"]) == (409, "LeaseEnded")
