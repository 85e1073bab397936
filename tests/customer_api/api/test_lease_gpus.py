"""GET /v1/leases/{id}/gpus without the chain: the API signs with the customer's custodial key
and a real NodeService (the node's own servicer, over gRPC on loopback) checks that signature
against the lease's customer. The leases are written into the API's index directly and the
node's chain is a table, so the customers, keys, signatures and messages are real and nothing
else is needed. With the real chain and node: test_node_delivery.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from services.common import new_registry
from services.common._chain import ChainLease
from services.common.grpc_gen.gridlease.v1 import node_pb2_grpc
from services.customer_api.main import create_app
from services.customer_api.models import LeaseRecord, LeaseState
from services.gpu_node.agent_metrics import AgentMetrics
from services.gpu_node.hardware.model import Inventory
from services.gpu_node.service import NodeServicer
from services.gpu_node.store import NodeStore
from services.gpu_node.telemetry import TelemetrySampler
from tests.customer_api.conftest import api_settings
from tests.gpu_node.utils import make_gpu
from tests.seed.harness import free_port
from tests.utils.api_accounts import ApiCustomer, sign_up
from tests.utils.api_db import new_sqlite_database
from tests.utils.lease_table import LeaseTable

MACHINE = b"\x07" * 32
BOARDS = Inventory(
    "550.54.15",
    "12.4",
    tuple(make_gpu(i, f"GPU-{i}") for i in range(4)),
    simulated=True,
)


class _Node:
    """A NodeServicer served by grpc.aio on loopback, in a thread with its own event loop."""

    def __init__(self, servicer: NodeServicer) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="node", daemon=True)
        self.thread.start()

        async def start() -> tuple[grpc.aio.Server, int]:
            server = grpc.aio.server()
            node_pb2_grpc.add_NodeServiceServicer_to_server(servicer, server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            return server, port

        self.server, port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)
        self.endpoint = f"127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def chain() -> LeaseTable:
    return LeaseTable()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, chain: LeaseTable) -> Iterator[_Node]:
    store = NodeStore(Path(tmp_path_factory.mktemp("node")) / "node.db")
    store.assign_gpu_slots(gpu.uuid for gpu in BOARDS.gpus)
    clock = iter(range(1_000, 10**9, 1_000))
    sampler = TelemetrySampler(lambda: BOARDS, interval_s=1.0, clock=lambda: next(clock))
    sampler.sample_once()
    sampler.sample_once()
    runtime: Any = None  # GetLeaseGpus never asks the runtime
    served = _Node(
        NodeServicer(
            chain=chain,  # type: ignore[arg-type]
            machine_id=MACHINE,
            start_window=120,
            store=store,
            runtime=runtime,
            public_host="127.0.0.1",
            metrics=AgentMetrics(new_registry()),
            telemetry=sampler,
        )
    )
    yield served
    served.stop()
    store.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    closed = f"127.0.0.1:{free_port()}"
    settings = api_settings(
        database_url=new_sqlite_database(tmp_path_factory.mktemp("gpus-db")),
        chain_url=f"ws://{closed}",
        seed_endpoints=[closed],
        indexer_enabled=False,
        delivery_enabled=False,
        node_timeout_s=10.0,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _lease(
    client: TestClient,
    chain: LeaseTable,
    owner: ApiCustomer,
    lease_id: int,
    mask: int,
    endpoint: str,
    *,
    state: LeaseState = LeaseState.RUNNING,
    on_chain: bool = True,
) -> None:
    """The lease as the API's index and the node's chain both hold it."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    record = LeaseRecord(
        customer_id=uuid.UUID(owner.id), customer_address=owner.address, request_hash="0" * 64,
        lease_id=lease_id, machine_id="0x" + MACHINE.hex(), endpoint=endpoint,
        gpus=bin(mask).count("1"), duration_blocks=100, spec_json=json.dumps({}),
        spec_hash="0x" + "00" * 32, chain_state=state,
    )  # fmt: skip
    with Session(runtime.engine) as session:
        session.add(record)
        session.commit()
    if on_chain:
        chain.leases[lease_id] = ChainLease(
            lease_id=lease_id, machine_id=MACHINE, customer=owner.address,
            gpus=bin(mask).count("1"), gpu_mask=mask, price_per_gpu_block=1, duration=100,
            spec_hash=b"\x00" * 32, state="Running", created_at=50, started_at=52,
            ends_at=152, accrue_from=52, escrow=100,
        )  # fmt: skip


def test_each_customer_reads_the_gpus_of_its_own_lease_only(
    client: TestClient, chain: LeaseTable, node: _Node
) -> None:
    alice, bob = sign_up(client), sign_up(client)
    _lease(client, chain, alice, 41, 0b0101, node.endpoint)
    _lease(client, chain, bob, 42, 0b1000, node.endpoint)

    got = client.get("/v1/leases/41/gpus", headers=alice.headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["lease_id"], body["sample_interval_ms"], body["history_limit"]) == (41, 1000, 120)
    assert [(g["slot"], g["uuid"]) for g in body["gpus"]] == [(0, "GPU-0"), (2, "GPU-2")]
    for gpu in body["gpus"]:
        board = BOARDS.by_uuid(gpu["uuid"])
        assert gpu["current"] == {
            "timestamp_ms": 2_000,
            "utilization_pct": board.utilization_pct,
            "memory_used_bytes": board.memory_used_bytes,
            "temperature_c": board.temperature_c,
            "power_w": board.power_w,
        }
        assert (gpu["model"], gpu["memory_total_bytes"]) == (board.name, board.memory_total_bytes)
        assert [s["timestamp_ms"] for s in gpu["history"]] == [1_000, 2_000]
        assert (gpu["healthy"], gpu["health_reason"], gpu["xid_count"]) == (True, "", None)
    bobs = client.get("/v1/leases/42/gpus", headers=bob.headers).json()
    assert [g["uuid"] for g in bobs["gpus"]] == ["GPU-3"]

    # Another customer's lease reads exactly as a lease that does not exist.
    for lease_id, who in ((42, alice), (41, bob), (999, alice)):
        refused = client.get(f"/v1/leases/{lease_id}/gpus", headers=who.headers)
        assert (refused.status_code, refused.json()) == (
            404, {"detail": "Lease not found", "code": None},
        )  # fmt: skip
    assert client.get("/v1/leases/41/gpus").status_code == 401


def test_a_lease_that_is_not_running_is_409_and_a_silent_node_503(
    client: TestClient, chain: LeaseTable, node: _Node
) -> None:
    carol = sign_up(client)
    _lease(client, chain, carol, 51, 0b1, node.endpoint, state=LeaseState.ENDED, on_chain=False)
    # The API's index has not seen the end yet; the node, reading the chain, no longer has it.
    _lease(client, chain, carol, 52, 0b1, node.endpoint, on_chain=False)
    _lease(client, chain, carol, 53, 0b1, f"127.0.0.1:{free_port()}")
    answers = {
        lease_id: client.get(f"/v1/leases/{lease_id}/gpus", headers=carol.headers)
        for lease_id in (51, 52, 53)
    }
    assert {k: (r.status_code, r.json()["code"]) for k, r in answers.items()} == {
        51: (409, "LeaseEnded"),
        52: (409, "LeaseNotOnNode"),
        53: (503, "NodeUnreachable"),
    }
    assert int(answers[53].headers["Retry-After"]) >= 1


def test_a_node_refusing_the_signed_request_is_502(
    client: TestClient, chain: LeaseTable, node: _Node
) -> None:
    dave, erin = sign_up(client), sign_up(client)
    # The index says dave's, the chain says erin's: the node refuses dave's signature.
    _lease(client, chain, dave, 61, 0b1, node.endpoint, on_chain=False)
    _lease(client, chain, erin, 62, 0b1, node.endpoint)
    chain.leases[61] = dataclasses.replace(chain.leases.pop(62), lease_id=61)
    got = client.get("/v1/leases/61/gpus", headers=dave.headers)
    assert (got.status_code, got.json()) == (
        502, {"detail": "Node refused the request", "code": "NodeRefused"},
    )  # fmt: skip
