"""The API under chain faults, with its connection to the real dev chain passing through a TCP
proxy the test controls: a dropped websocket is reconnected, an unreachable chain is a 503
with Retry-After (never a 500 with a library's exception), an answer lost in flight leaves a
lease request that a retry with the same Idempotency-Key turns into its own lease, and chain
refusals are named (the faucet below the existential deposit says the minimum)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from services.common._chain import ChainClient
from services.customer_api.main import create_app
from tests.customer_api.conftest import api_settings
from tests.seed.harness import SeedProcess, free_port, wait_until
from tests.utils.api_accounts import ApiCustomer, funded_customer, sign_up
from tests.utils.api_leases import lease_body
from tests.utils.api_machines import OfferedMachine, register_machine
from tests.utils.devchain import DevChain
from tests.utils.tcp_proxy import TcpProxy


@pytest.fixture(scope="module")
def proxy(dev_chain: DevChain) -> Iterator[TcpProxy]:
    parsed = urlparse(dev_chain.url)
    assert parsed.hostname is not None and parsed.port is not None
    started = TcpProxy((parsed.hostname, parsed.port)).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, proxy: TcpProxy, seed: SeedProcess
        ) -> Iterator[TestClient]:
    settings = api_settings(
        database_url=f"sqlite:///{tmp_path_factory.mktemp('faults') / 'api.db'}",
        chain_url=proxy.url,
        seed_endpoints=[seed.endpoint],
        chain_timeout_s=3.0,
        chain_submit_timeout_s=10.0,
        rate_limits_enabled=False,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def machine(api: TestClient, chain: ChainClient, seed: SeedProcess) -> OfferedMachine:
    offered = register_machine(chain, endpoint=f"127.0.0.1:{free_port()}", gpus=8)
    offered.announce(seed.endpoint)
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    wait_until(lambda: runtime.index.get(offered.machine_id), what="offer in the API index")
    return offered


@pytest.fixture(scope="module")
def customer(api: TestClient) -> ApiCustomer:
    return funded_customer(api)


def test_dropped_websocket_reconnects_on_the_next_request(
    api: TestClient, proxy: TcpProxy, customer: ApiCustomer
) -> None:
    assert api.get("/v1/account", headers=customer.headers).status_code == 200
    assert proxy.cut_all() >= 1  # every chain connection of the API drops; the chain is up
    reply = api.get("/v1/account", headers=customer.headers)
    assert reply.status_code == 200, reply.text


def test_unreachable_chain_is_503_with_retry_after(
    api: TestClient, proxy: TcpProxy, customer: ApiCustomer, machine: OfferedMachine
) -> None:
    proxy.stop()
    try:
        for method, path, body in (
            ("GET", "/v1/account", None),
            ("POST", "/v1/leases", lease_body(machine.hex_id)),
            ("POST", "/v1/account/faucet", {"amount": "1000000000000"}),
        ):
            reply = api.request(method, path, json=body, headers=customer.headers)
            assert reply.status_code == 503, (path, reply.text)
            assert int(reply.headers["Retry-After"]) >= 1
            assert reply.json()["detail"] == "Chain unavailable"
            assert "WebSocket" not in reply.text
    finally:
        proxy.start()  # reachable again on the same port
    assert api.get("/v1/account", headers=customer.headers).status_code == 200


def test_answer_lost_in_flight_then_retry_returns_its_own_lease(
    api: TestClient, proxy: TcpProxy, chain: ChainClient, machine: OfferedMachine
) -> None:
    customer = funded_customer(api)
    body = lease_body(machine.hex_id)
    headers = {**customer.headers, "Idempotency-Key": "lost-answer"}
    # The chain takes the extrinsic; its status updates never reach the API.
    proxy.cut_at_reply_containing(b"author_extrinsicUpdate")
    cuts = proxy.cut_count
    first = api.post("/v1/leases", json=body, headers=headers)
    assert proxy.cut_count == cuts + 1
    assert first.status_code == 503, first.text
    assert first.json()["code"] == "SubmitOutcomeUnknown" and first.headers["Retry-After"]
    again = api.post("/v1/leases", json=body, headers=headers)
    assert again.status_code == 200, again.text  # the lease its extrinsic made, found by hash
    lease_id = again.json()["lease_id"]
    assert chain.customer_leases(customer.address) == [lease_id]  # paid once
    on_chain = chain.lease(lease_id)
    assert on_chain is not None and "0x" + on_chain.spec_hash.hex() == again.json()["spec_hash"]


def test_faucet_below_existential_deposit_names_the_minimum(
    api: TestClient, chain: ChainClient
) -> None:
    fresh = sign_up(api)
    existential = int(chain.constant("ExistentialDeposit", "Balances"))
    reply = api.post(
        "/v1/account/faucet", json={"amount": str(existential - 1)}, headers=fresh.headers
    )
    assert reply.status_code == 422, reply.text
    text = reply.text
    assert "existential deposit" in text and str(existential) in text
    assert "Chain refused the call" not in text
    ok = api.post("/v1/account/faucet", json={"amount": str(existential)}, headers=fresh.headers)
    assert ok.status_code == 200, ok.text
