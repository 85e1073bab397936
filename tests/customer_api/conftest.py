"""Fixtures for the customer API: a real seed process, the session's dev chain, and the API
itself over SQLite and PostgreSQL (module-scoped, one fresh database per module and backend)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.common._chain import ChainClient
from services.customer_api.core.config import Settings
from services.customer_api.main import create_app
from tests.seed.harness import SeedProcess, free_port, wait_until
from tests.utils.api_db import (
    BACKENDS,
    new_postgres_database,
    new_sqlite_database,
    postgres_cluster,
)
from tests.utils.api_machines import OfferedMachine, register_machine
from tests.utils.devchain import DevChain

TEST_SECRET = "test-server-secret-0123456789abcdef"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedProcess]:
    process = SeedProcess(tmp_path_factory.mktemp("api-seed")).start()
    yield process
    process.kill()


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "postgresql":
        return new_postgres_database(request.getfixturevalue("pg_admin_url"))
    return new_sqlite_database(tmp_path_factory.mktemp("api-db"))


def api_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "dev_mode": True,
        "server_secret": TEST_SECRET,
        "indexer_interval_s": 0.2,
        "delivery_retry_s": 0.3,
        "chain_state_ttl_s": 1.0,
        "node_timeout_s": 1.0,
        "offers_retry_s": 0.2,
        "chain_writers": 2,
        # One test client signs up and funds many customers per module from one address;
        # tests/customer_api/api/test_rate_limits.py turns the limits on.
        "rate_limits_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def settings(database_url: str, dev_chain: DevChain, seed: SeedProcess) -> Settings:
    return api_settings(
        database_url=database_url, chain_url=dev_chain.url, seed_endpoints=[seed.endpoint]
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def chain(dev_chain: DevChain) -> Iterator[ChainClient]:
    with dev_chain.client() as client:
        yield client


@pytest.fixture(scope="module")
def offered_machine(
    chain: ChainClient, seed: SeedProcess, client: TestClient
) -> Callable[..., OfferedMachine]:
    """offered_machine(gpus=, price=, endpoint=) registers a machine on chain, announces its
    offer to the seed and waits until the API's index holds it."""

    def make(
        *, gpus: int = 4, price: int = 1_000_000, endpoint: str | None = None
    ) -> OfferedMachine:
        machine = register_machine(
            chain, endpoint=endpoint or f"127.0.0.1:{free_port()}", gpus=gpus, price=price
        )
        machine.announce(seed.endpoint)
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        wait_until(lambda: runtime.index.get(machine.machine_id), what="offer in the API index")
        return machine

    return make


@pytest.fixture
def tmp_db(tmp_path: Path) -> str:
    return new_sqlite_database(tmp_path)
