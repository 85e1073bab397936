"""Account balance and the dev-mode faucet."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.utils.api_accounts import UNIT, sign_up


def test_faucet_funds_account_and_balance_shows_it(client: TestClient) -> None:
    customer = sign_up(client)
    before = client.get("/v1/account", headers=customer.headers).json()
    assert before["free"] == "0" and before["leases"] == []
    reply = client.post(
        "/v1/account/faucet", json={"amount": str(5 * UNIT)}, headers=customer.headers
    )
    assert reply.status_code == 200 and reply.json()["amount"] == str(5 * UNIT)
    after = client.get("/v1/account", headers=customer.headers).json()
    assert after["free"] == str(5 * UNIT)


def test_faucet_amount_over_limit_is_422(client: TestClient) -> None:
    customer = sign_up(client)
    reply = client.post(
        "/v1/account/faucet", json={"amount": str(10**30)}, headers=customer.headers
    )
    assert reply.status_code == 422
    [error] = reply.json()["detail"]  # the one 422 shape, naming the field
    assert error["loc"] == ["body", "amount"] and error["type"] == "out_of_range"
    assert error["msg"].startswith("Faucet amount out of range (1 to ")
