"""Customer factories for API tests: sign up through the API, fund through the faucet."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from services.common import TOKEN_UNIT

UNIT = TOKEN_UNIT  # re-exported for tests that import it from here


@dataclass(frozen=True)
class ApiCustomer:
    id: str
    address: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def sign_up(client: TestClient, name: str | None = None) -> ApiCustomer:
    reply = client.post("/v1/auth/signup", json={"name": name or f"c-{uuid.uuid4().hex[:8]}"})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return ApiCustomer(body["customer"]["id"], body["customer"]["address"], body["api_key"])


def fund(client: TestClient, customer: ApiCustomer, amount: int = 1_000 * UNIT) -> None:
    reply = client.post(
        "/v1/account/faucet", json={"amount": str(amount)}, headers=customer.headers
    )
    assert reply.status_code == 200, reply.text


def funded_customer(client: TestClient, amount: int = 1_000 * UNIT) -> ApiCustomer:
    customer = sign_up(client)
    fund(client, customer, amount)
    return customer
