"""The chain indexer resumes from its cursor after a restart and applies each block once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from services.common._chain import ChainClient
from services.customer_api import crud
from services.customer_api.core.config import Settings
from services.customer_api.indexer import Indexer
from services.customer_api.main import create_app
from tests.customer_api.conftest import api_settings
from tests.seed.harness import SeedProcess, free_port, wait_until
from tests.utils.api_accounts import funded_customer
from tests.utils.api_leases import lease_body
from tests.utils.api_machines import register_machine
from tests.utils.devchain import DevChain


@pytest.fixture(scope="module")
def quiet_client(database_url: str, dev_chain: DevChain, seed: SeedProcess) -> Iterator[TestClient]:
    """The API with its background indexer off, so the test decides when indexing runs."""
    settings: Settings = api_settings(
        database_url=database_url,
        chain_url=dev_chain.url,
        seed_endpoints=[seed.endpoint],
        indexer_enabled=False,
        delivery_enabled=False,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _record(client: TestClient, lease_id: int):  # type: ignore[no-untyped-def]
    with Session(client.app.state.runtime.engine) as session:  # type: ignore[attr-defined]
        return crud.lease_by_chain_id(session=session, lease_id=lease_id)


def test_indexer_restart_resumes_from_cursor(
    quiet_client: TestClient, chain: ChainClient, seed: SeedProcess
) -> None:
    runtime = quiet_client.app.state.runtime  # type: ignore[attr-defined]
    machine = register_machine(chain, endpoint=f"127.0.0.1:{free_port()}", gpus=2)
    machine.announce(seed.endpoint)
    wait_until(lambda: runtime.index.get(machine.machine_id), what="offer in the index")
    customer = funded_customer(quiet_client)
    Indexer(runtime.engine, chain).sync()  # first run: starts at the head
    lease = quiet_client.post(
        "/v1/leases", json=lease_body(machine.hex_id), headers=customer.headers
    ).json()
    lease_id = lease["lease_id"]

    first = Indexer(runtime.engine, chain)
    cursor = first.sync()
    assert cursor == chain.block_number(chain.finalized_head())
    started = chain.gpu_rental(machine.key, "start_lease", lease_id=lease_id)
    claimed = chain.gpu_rental(machine.key, "claim_payment", lease_id=lease_id)
    paid = claimed.one("GpuRental", "PaymentClaimed")
    with Session(runtime.engine) as session:
        keypair = crud.customer_keypair(
            session=session,
            customer_id=_record(quiet_client, lease_id).customer_id,
            custody=runtime.custody,
        )
    ended = chain.gpu_rental(keypair, "terminate_lease", lease_id=lease_id)
    # Nothing indexed these blocks yet: the record still shows the lease as created.
    assert _record(quiet_client, lease_id).chain_state == "pending"
    assert first.cursor() == cursor

    restarted = Indexer(runtime.engine, chain)  # a new process would start like this
    assert restarted.sync() >= ended.block_number
    record = _record(quiet_client, lease_id)
    assert record.chain_state == "ended" and record.end_reason == "Terminated"
    assert record.started_block == started.block_number
    final = ended.one("GpuRental", "PaymentClaimed")
    total = paid["paid"] + paid["fee"] + final["paid"] + final["fee"]
    assert int(record.spent) == total
    assert int(record.refunded) == ended.one("GpuRental", "LeaseEnded")["refunded"]

    # Running it again (or twice at once after a crash) changes nothing.
    Indexer(runtime.engine, chain).sync()
    assert int(_record(quiet_client, lease_id).spent) == total
