"""Liveness, readiness and metrics; 503 with a reason when seeds or chain are out of reach."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from services.customer_api.main import create_app
from tests.customer_api.conftest import api_settings
from tests.seed.harness import free_port
from tests.utils.api_accounts import sign_up
from tests.utils.api_db import new_sqlite_database
from tests.utils.devchain import DevChain


def test_healthz_readyz_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "chain": "ok", "seeds": "ok"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'gridlease_api_request_seconds_count{method="GET",route="/readyz"' in metrics.text


def test_unreachable_seeds_and_chain_are_503(tmp_path: Path, dev_chain: DevChain) -> None:
    closed = f"127.0.0.1:{free_port()}"
    settings = api_settings(
        database_url=new_sqlite_database(tmp_path),
        chain_url=f"ws://127.0.0.1:{free_port()}",
        seed_endpoints=[closed],
        indexer_enabled=False,
    )
    with TestClient(create_app(settings)) as client:
        customer = sign_up(client)
        offers = client.get("/v1/offers", headers=customer.headers)
        assert offers.status_code == 503 and offers.json()["detail"] == "Seeds unavailable"
        account = client.get("/v1/account", headers=customer.headers)
        assert account.status_code == 503 and account.json()["detail"] == "Chain unavailable"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["chain"].startswith("unavailable") and checks["seeds"].startswith(
            "unavailable"
        )
        # The chain's refusals are counted for the operator (GridleaseChainRpcErrors).
        metrics = client.get("/metrics").text
        unavailable = next(
            line for line in metrics.splitlines()
            if line.startswith('gridlease_chain_rpc_errors_total{kind="unavailable"}')
        )  # fmt: skip
        assert float(unavailable.split()[-1]) >= 1
