"""Schemathesis against the API's own OpenAPI schema: whatever it generates, the API answers
without a 5xx. Bounded: a few examples per operation, against the real chain and seed."""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.utils.api_accounts import sign_up


def _send(client: TestClient, case: Any, headers: dict[str, str]) -> Any:
    kwargs = case.as_transport_kwargs()
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": {**headers, **(kwargs.get("headers") or {})},
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif "data" in kwargs:
        request["content"] = kwargs["data"]
    return client.request(**request)


def test_api_never_answers_5xx(client: TestClient) -> None:
    schema = schemathesis.openapi.from_dict(client.get("/v1/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    headers = sign_up(client, "fuzz").headers
    answered: set[int] = set()

    @settings(
        max_examples=6,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        for operation in operations:
            case = data.draw(operation.as_strategy(), label=operation.label)
            reply = _send(client, case, headers)
            answered.add(reply.status_code)
            assert reply.status_code < 500, (case.method, case.formatted_path, reply.text)

    run()
    assert any(code >= 400 for code in answered)  # the fuzzer did reach refusals
