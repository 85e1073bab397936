"""The OpenAPI document tells the truth. Schemathesis runs every contract check it has (status
codes, headers, bodies and content types as documented, schema-valid requests accepted and
schema-invalid ones refused, 405 with Allow for undocumented methods, no 5xx, ...) against the
API served over HTTP by uvicorn on the real chain and seed; then each fault the outside run
found is pinned on its own, without the chain."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.customer_api import models
from services.customer_api.core.config import Settings
from services.customer_api.main import create_app
from tests.customer_api.conftest import api_settings
from tests.seed.harness import free_port
from tests.utils.api_accounts import UNIT, funded_customer, sign_up
from tests.utils.api_db import new_sqlite_database
from tests.utils.api_machines import OfferedMachine

REPO = Path(__file__).resolve().parents[3]
HOOKS = "tests.customer_api.api.schemathesis_hooks"


def _serve(app: FastAPI) -> Iterator[str]:
    """Serve app with uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def live_api(settings: Settings) -> Iterator[str]:
    """A second API process-alike on the module's database, chain and seed, over real HTTP."""
    yield from _serve(create_app(settings.model_copy(update={"indexer_enabled": False})))


def test_schemathesis_contract_checks_pass(
    client: TestClient,
    live_api: str,
    offered_machine: Callable[..., OfferedMachine],
    tmp_path: Path,
) -> None:
    offered_machine(gpus=4, price=1_000_000)  # so lease requests can reach the chain
    customer = funded_customer(client, 5_000 * UNIT)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{live_api}/v1/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {customer.api_key}",
            "--max-examples",
            "25",
            "--seed",
            "14",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--max-failures",
            "50",
        ],
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
        env={**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    # Every generated case passed every check ("1082 generated, 1082 passed, 24 skipped").
    assert re.search(r"\b(\d+) generated, \1 passed\b", run.stdout), run.stdout[-5_000:]


# -- each contract fault on its own (no chain: the checks come before any chain call) ----------
@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    closed = f"127.0.0.1:{free_port()}"
    app = create_app(
        api_settings(
            database_url=new_sqlite_database(tmp_path_factory.mktemp("contract-db")),
            chain_url=f"ws://{closed}",
            seed_endpoints=[closed],
            indexer_enabled=False,
            delivery_enabled=False,
            faucet_max_amount=5_000,
        )
    )
    with TestClient(app) as test_client:
        yield test_client


def _document(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/v1/openapi.json").json()
    return document


def _conforms(document: dict[str, Any], path: str, status: int, body: Any) -> None:
    """body is what the document says POST path answers with status (its schema is one of
    the API's models, by name)."""
    content = document["paths"][path]["post"]["responses"][str(status)]["content"]
    name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    getattr(models, name).model_validate(body, strict=True)


def _pattern(schema: dict[str, Any]) -> str:
    """The pattern of a string schema, or of the string branch of an anyOf."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if "pattern" in branch:
            pattern: str = branch["pattern"]
            return pattern
    raise AssertionError(f"no pattern in {schema}")


def test_options_and_unsupported_methods_list_every_method(offline: TestClient) -> None:
    options = offline.options("/v1/leases")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, OPTIONS, POST"
    put = offline.put("/v1/leases/7")
    assert put.status_code == 405 and put.headers["allow"] == "GET, OPTIONS"
    delete = offline.request("DELETE", "/v1/auth/keys")
    assert delete.status_code == 405 and delete.headers["allow"] == "GET, OPTIONS, POST"
    assert offline.options("/v1/nowhere").status_code == 404


def test_malformed_json_is_a_documented_400(offline: TestClient) -> None:
    document = _document(offline)
    for body in (b"{bad", b"\xff\xfe"):
        reply = offline.post(
            "/v1/auth/signup", content=body, headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 400, reply.text
        assert reply.json() == {"detail": "Malformed JSON body", "code": "MalformedJson"}
        _conforms(document, "/v1/auth/signup", 400, reply.json())
    for path in ("/v1/leases", "/v1/account/faucet", "/v1/leases/{lease_id}/extend"):
        assert "400" in document["paths"][path]["post"]["responses"], path


def test_every_422_body_has_the_documented_shape(offline: TestClient) -> None:
    """The faucet's own range refusal and a schema refusal answer the one documented 422."""
    document = _document(offline)
    customer = sign_up(offline)
    too_much = offline.post("/v1/account/faucet", json={"amount": "5001"}, headers=customer.headers)
    assert too_much.status_code == 422
    assert too_much.json()["detail"][0]["loc"] == ["body", "amount"]
    not_amount = offline.post(
        "/v1/account/faucet", json={"amount": "007"}, headers=customer.headers
    )
    assert not_amount.status_code == 422
    for reply in (too_much, not_amount):
        _conforms(document, "/v1/account/faucet", 422, reply.json())
    for path in ("/v1/account/faucet", "/v1/leases/{lease_id}/extend", "/v1/leases"):
        ref = document["paths"][path]["post"]["responses"]["422"]["content"]
        assert ref["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ValidationErrorsPublic"
        }


def test_idempotent_replay_and_rate_limit_are_documented(offline: TestClient) -> None:
    responses = _document(offline)["paths"]["/v1/leases"]["post"]["responses"]
    assert responses["200"]["headers"]["Idempotent-Replayed"]["required"] is True
    assert (
        responses["201"]["content"]["application/json"]["schema"]
        == (responses["200"]["content"]["application/json"]["schema"])
    )
    assert responses["429"]["headers"]["Retry-After"]["required"] is True


def test_numeric_limits_are_in_the_schema(offline: TestClient) -> None:
    schemas = _document(offline)["components"]["schemas"]
    lease = schemas["LeaseCreate"]["properties"]
    assert lease["ports"]["items"]["minimum"] == 1 and lease["ports"]["items"]["maximum"] == 65535
    assert lease["ports"]["items"]["not"] == {"enum": [2222]}
    assert lease["ports"]["uniqueItems"] is True
    assert lease["gpus"]["minimum"] == 1 and lease["gpus"]["maximum"] == 64
    assert lease["memory_mib"]["anyOf"][0]["minimum"] == 64
    price = re.compile(_pattern(lease["max_price_per_gpu_block"]))
    assert price.fullmatch(str(2**128 - 1)) and price.fullmatch("0")
    assert not price.fullmatch(str(2**128)) and not price.fullmatch("01")
    faucet = re.compile(_pattern(schemas["FaucetRequest"]["properties"]["amount"]))
    assert faucet.fullmatch("5000") and faucet.fullmatch("1")  # the configured range, exactly
    assert not any(faucet.fullmatch(amount) for amount in ("0", "5001", "05", "-1"))
