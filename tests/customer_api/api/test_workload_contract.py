"""One workload contract end to end: a spec the API accepts is one the GPU node accepts (same
model, same hash), and what the node would refuse is refused by the API with 422 before
anything is reserved or paid: image references, SSH keys, node-owned env, and CPU or memory
beyond the lease's share of the machine (as its offer states the host). No chain here: every
refusal comes before the first chain call, and an accepted request gets as far as the chain
(a closed port: 503)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.common import (
    MachineResources,
    MalformedMessage,
    build_offer,
    canonical_json,
    new_keypair,
    spec_hash,
)
from services.customer_api.main import create_app
from services.customer_api.models import LeaseCreate
from services.gpu_node.spec import parse_spec
from tests.customer_api.conftest import api_settings
from tests.seed.harness import free_port
from tests.utils.api_accounts import sign_up
from tests.utils.api_db import new_sqlite_database
from tests.utils.api_leases import SSH_KEY, lease_body

MACHINE = "0x" + "cd" * 32

# Each a spec field the node refuses; the API must refuse it as well.
NODE_REFUSES: list[tuple[str, dict[str, Any]]] = [
    ("image", {"image": "Docker.io/Library/Ubuntu:22.04"}),
    ("image", {"image": "docker.io/library/ubuntu:22.04\n"}),
    ("ssh_public_key", {"ssh_public_key": "ssh-ed25519 AAAAnotakeyatallnotakeyatall me"}),
    ("ssh_public_key", {"ssh_public_key": SSH_KEY + "\nssh-ed25519 AAAA"}),
    ("env", {"env": {"GRIDLEASE_LEASE_ID": "0"}}),
    ("env", {"env": {"MODE\n": "x"}}),
    ("ports", {"ports": [2222]}),
    ("command", {"command": ["sh", "-c", "\x00"]}),
    ("memory_mib", {"memory_mib": 32}),
]


def _node_parses(body: dict[str, Any]) -> bytes:
    """What the node does with the spec the API derives from body: parse it, return its hash."""
    request = LeaseCreate.model_validate(body)
    return parse_spec(canonical_json(request.spec())).digest


@pytest.mark.parametrize(("field", "fields"), NODE_REFUSES)
def test_api_model_refuses_what_the_node_refuses(field: str, fields: dict[str, Any]) -> None:
    spec = {k: v for k, v in lease_body(MACHINE).items() if k not in ("machine_id", "gpus",
            "duration_blocks")} | fields  # fmt: skip
    with pytest.raises(MalformedMessage):
        parse_spec(json.dumps({"version": 1, **spec}).encode())
    with pytest.raises(ValidationError) as err:
        LeaseCreate.model_validate(lease_body(MACHINE, **fields))
    assert err.value.errors()[0]["loc"][0] == field


def test_spec_the_api_accepts_is_one_the_node_accepts_with_the_same_hash() -> None:
    body = lease_body(MACHINE, cpu_millicores=500, memory_mib=2048, ports=[8080, 80])
    request = LeaseCreate.model_validate(body)
    assert _node_parses(body) == spec_hash(request.spec())


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    closed = f"127.0.0.1:{free_port()}"
    settings = api_settings(
        database_url=new_sqlite_database(Path(tmp_path_factory.mktemp("workload-db"))),
        chain_url=f"ws://{closed}",
        seed_endpoints=[closed],
        indexer_enabled=False,
        delivery_enabled=False,
        offers_stale_after_s=3600,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _offer(client: TestClient, host: MachineResources | None) -> str:
    """A machine of 8 GPUs whose offer states `host`, in the API's offer index."""
    key, _ = new_keypair()
    offer = build_offer(
        key,
        provider=key.ss58_address,
        endpoint="127.0.0.1:1",
        gpu_model="NVIDIA H100",
        gpu_count=8,
        memory_mib=81559,
        compute_capability="9.0",
        price_per_gpu_per_block=1,
        region="",
        sequence=1,
        host=host,
    )
    client.app.state.runtime.index.upsert(offer)  # type: ignore[attr-defined]
    return "0x" + bytes(offer.machine_id).hex()


def test_api_refuses_node_refused_specs_with_422_before_the_chain(offline: TestClient) -> None:
    customer = sign_up(offline)
    machine = _offer(offline, MachineResources(64_000, 512 * 1024))
    for field, fields in NODE_REFUSES:
        reply = offline.post(
            "/v1/leases", json=lease_body(machine, **fields), headers=customer.headers
        )
        assert reply.status_code == 422, (fields, reply.text)
        assert reply.json()["detail"][0]["loc"][:2] == ["body", field]
    image = offline.post(
        "/v1/leases",
        json=lease_body(machine, image="Docker.io/Library/Ubuntu:22.04"),
        headers=customer.headers,
    )
    assert "must be lowercase" in image.json()["detail"][0]["msg"]


def test_cpu_and_memory_beyond_the_lease_share_are_refused(offline: TestClient) -> None:
    """The outside run: 1 of 8 GPUs, asking 1 TiB and 2 CPUs of a 23 GiB, 2-CPU host."""
    customer = sign_up(offline)
    machine = _offer(offline, MachineResources(cpu_millicores=2000, memory_mib=23 * 1024))
    greedy = lease_body(machine, gpus=1, memory_mib=1024 * 1024, cpu_millicores=2000)
    reply = offline.post("/v1/leases", json=greedy, headers=customer.headers)
    assert reply.status_code == 422, reply.text
    errors = {e["loc"][1]: e for e in reply.json()["detail"]}
    assert set(errors) == {"cpu_millicores", "memory_mib"}
    assert errors["memory_mib"]["type"] == "beyond_share"
    assert "(2944)" in errors["memory_mib"]["msg"] and "(250)" in errors["cpu_millicores"]["msg"]
    # The share of 4 GPUs is half the host; exactly the share is allowed (the chain is next).
    fair = lease_body(machine, gpus=4, memory_mib=23 * 512, cpu_millicores=1000)
    assert offline.post("/v1/leases", json=fair, headers=customer.headers).status_code == 503


def test_offer_without_host_resources_leaves_sizing_to_the_node(offline: TestClient) -> None:
    customer = sign_up(offline)
    machine = _offer(offline, None)
    body = lease_body(machine, memory_mib=1024 * 1024)
    assert offline.post("/v1/leases", json=body, headers=customer.headers).status_code == 503
