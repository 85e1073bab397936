"""Sign-up, API keys and customer scoping (both database backends)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from services.customer_api.models import ApiKey, CustodialKey
from tests.utils.api_accounts import sign_up


def test_signup_returns_key_once_and_stores_only_its_hash(client: TestClient) -> None:
    customer = sign_up(client, "alice")
    me = client.get("/v1/auth/me", headers=customer.headers)
    assert me.status_code == 200 and me.json()["address"] == customer.address
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with Session(runtime.engine) as session:
        stored = session.exec(select(ApiKey.key_hash, ApiKey.prefix)).all()
        custodial = session.exec(
            select(CustodialKey).where(CustodialKey.address == customer.address)
        ).one()
    assert all(customer.api_key != h and customer.api_key[10:] not in h for h, _ in stored)
    secret = runtime.custody.decrypt(custodial.secret_encrypted)
    assert secret not in custodial.secret_encrypted
    keys = client.get("/v1/auth/keys", headers=customer.headers).json()
    assert keys["count"] == 1 and "api_key" not in keys["data"][0]


def test_read_me_without_or_with_bad_key_is_401(client: TestClient) -> None:
    assert client.get("/v1/auth/me").json() == {"detail": "Not authenticated", "code": None}
    bad = client.get("/v1/auth/me", headers={"Authorization": "Bearer glk_nope"})
    assert bad.status_code == 401 and bad.json()["detail"] == "Invalid API key"


def test_revoked_key_stops_working_and_other_key_still_does(client: TestClient) -> None:
    customer = sign_up(client)
    extra = client.post("/v1/auth/keys", headers=customer.headers)
    assert extra.status_code == 201
    extra_headers = {"Authorization": f"Bearer {extra.json()['api_key']}"}
    revoked = client.delete(f"/v1/auth/keys/{extra.json()['id']}", headers=customer.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/v1/auth/me", headers=extra_headers).status_code == 401
    assert client.get("/v1/auth/me", headers=customer.headers).status_code == 200


def test_revoke_other_customers_key_not_found(client: TestClient) -> None:
    owner, other = sign_up(client), sign_up(client)
    key_id = client.get("/v1/auth/keys", headers=owner.headers).json()["data"][0]["id"]
    reply = client.delete(f"/v1/auth/keys/{key_id}", headers=other.headers)
    assert reply.status_code == 404 and reply.json()["detail"] == "API key not found"
    assert client.get("/v1/auth/me", headers=owner.headers).status_code == 200


def test_signup_malformed_name_is_422_with_field(client: TestClient) -> None:
    reply = client.post("/v1/auth/signup", json={"name": ""})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "name"]
