"""Rate limits per client address and per account: 429 with Retry-After, configured in Settings,
memory bounded. The limits come before any chain call, so the chain is not needed here (its
URL is a closed port: calls that pass the limit answer 503)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.customer_api.api.ratelimit import TokenBuckets, retry_after_header
from services.customer_api.core.config import RateLimit, Settings
from services.customer_api.main import create_app
from tests.customer_api.conftest import api_settings
from tests.seed.harness import free_port
from tests.utils.api_accounts import ApiCustomer, sign_up
from tests.utils.api_db import new_sqlite_database


def _app_settings(tmp_path: Path, **limits: Any) -> Settings:
    closed = f"127.0.0.1:{free_port()}"
    return api_settings(
        database_url=new_sqlite_database(tmp_path),
        chain_url=f"ws://{closed}",
        seed_endpoints=[closed],
        indexer_enabled=False,
        delivery_enabled=False,
        **{"rate_limits_enabled": True, **limits},
    )


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[TestClient]:
    settings = _app_settings(
        tmp_path,
        signup_limit_per_source="3/3600",
        faucet_limit_per_account="2/3600",
        faucet_limit_per_source="4/3600",
        write_limit_per_account="2/3600",
        write_limit_per_source="1000/60",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _signups(client: TestClient, n: int) -> list[int]:
    return [client.post("/v1/auth/signup", json={"name": f"c{i}"}).status_code for i in range(n)]


def _refused_with_retry_after(reply: Any, at_most_s: int) -> None:
    assert reply.status_code == 429, reply.text
    assert reply.json() == {"detail": "Too many requests", "code": "RateLimited"}
    assert 1 <= int(reply.headers["Retry-After"]) <= at_most_s


def test_signups_from_one_address_are_limited_and_others_are_not(limited: TestClient) -> None:
    """The outside run: 200 anonymous sign-ups in 23 s, all accepted."""
    assert _signups(limited, 3) == [201, 201, 201]
    refused = limited.post("/v1/auth/signup", json={"name": "one-too-many"})
    _refused_with_retry_after(refused, 1200)  # one of 3 per hour comes back in 20 minutes
    other = TestClient(limited.app, client=("203.0.113.9", 50000))
    assert other.post("/v1/auth/signup", json={"name": "elsewhere"}).status_code == 201
    metrics = limited.get("/metrics").text
    assert 'gridlease_api_rate_limited_total{limit="signup_limit_per_source"} 1.0' in metrics


def test_faucet_is_limited_per_account_then_per_address(limited: TestClient) -> None:
    """The outside run: 40 faucet calls by one customer, all accepted."""
    first, second = (
        sign_up(limited, "a"),
        sign_up(TestClient(limited.app, client=("203.0.113.7", 1)), "b"),
    )

    def faucet(customer: ApiCustomer) -> Any:
        return limited.post("/v1/account/faucet", json={"amount": "1000"}, headers=customer.headers)

    # Within the limit the call reaches the chain (closed here: 503); then 429.
    assert [faucet(first).status_code for _ in range(2)] == [503, 503]
    _refused_with_retry_after(faucet(first), 1800)
    # Another account from the same address has its own budget, until the address's runs out
    # (4 per hour: the refused call counted too).
    assert faucet(second).status_code == 503
    _refused_with_retry_after(faucet(second), 900)


def test_other_writes_are_limited_per_account(limited: TestClient) -> None:
    customer = sign_up(limited)
    created = [limited.post("/v1/auth/keys", headers=customer.headers) for _ in range(2)]
    assert [r.status_code for r in created] == [201, 201]
    _refused_with_retry_after(limited.post("/v1/auth/keys", headers=customer.headers), 1800)
    key_id = created[0].json()["id"]
    _refused_with_retry_after(
        limited.delete(f"/v1/auth/keys/{key_id}", headers=customer.headers), 1800
    )
    # Reads are not writes.
    assert limited.get("/v1/auth/keys", headers=customer.headers).status_code == 200


def test_limits_off_when_disabled(tmp_path: Path) -> None:
    settings = _app_settings(tmp_path, rate_limits_enabled=False, signup_limit_per_source="1/3600")
    with TestClient(create_app(settings)) as client:
        assert _signups(client, 3) == [201, 201, 201]


def test_token_bucket_refills_evenly_and_says_how_long_to_wait() -> None:
    now = [1000.0]
    buckets = TokenBuckets(RateLimit(requests=4, per_s=60), max_keys=10, clock=lambda: now[0])
    assert [buckets.take("k") for _ in range(4)] == [0.0] * 4  # the burst
    assert buckets.take("k") == pytest.approx(15.0)  # one request per 15 s afterwards
    now[0] += 14.9
    assert buckets.take("k") == pytest.approx(0.1)
    now[0] += 0.1
    assert buckets.take("k") == 0.0
    assert buckets.take("other") == 0.0  # keys are independent
    now[0] += 3600
    assert [buckets.take("k") for _ in range(5)][-1] > 0  # a full burst again, not more


def test_token_buckets_remember_a_bounded_number_of_keys() -> None:
    buckets = TokenBuckets(RateLimit(requests=1, per_s=3600), max_keys=100)
    for source in range(10_000):
        buckets.take(f"10.0.{source // 256}.{source % 256}")
    assert len(buckets) == 100
    assert buckets.take("10.0.39.15") > 0  # the most recent keys are still limited


@pytest.mark.parametrize("now", [2095160.2757234497, 0.0, 1e9 + 0.1])
def test_a_new_keys_first_request_is_never_refused_by_rounding(now: float) -> None:
    """2095160.2757234497 + 3600 - 3600 - itself is 2.3e-10 in floats: the first request of a
    new key was refused for that long (Retry-After 1) at such monotonic clock values, which made
    test_token_buckets_remember_a_bounded_number_of_keys fail now and then."""
    for requests, per_s in ((1, 3600), (3, 10), (25, 60), (7, 0.7)):
        buckets = TokenBuckets(RateLimit(requests=requests, per_s=per_s), 10, clock=lambda: now)
        assert [buckets.take("k") for _ in range(requests)] == [0.0] * requests
        assert buckets.take("k") > 0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after_header(s) for s in (0.001, 1.0, 1.2, 59.99)] == ["1", "1", "2", "60"]


def test_limits_are_settings_written_as_requests_per_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRIDLEASE_API_SIGNUP_LIMIT_PER_SOURCE", "25/60")
    monkeypatch.setenv("GRIDLEASE_API_FAUCET_LIMIT_PER_ACCOUNT", '{"requests": 2, "per_s": 10}')
    settings = Settings(dev_mode=True)
    assert settings.signup_limit_per_source == RateLimit(requests=25, per_s=60)
    assert settings.faucet_limit_per_account == RateLimit(requests=2, per_s=10)
    assert settings.rate_limits_enabled and settings.rate_limit_keys == 100_000
    monkeypatch.setenv("GRIDLEASE_API_WRITE_LIMIT_PER_SOURCE", "lots")
    with pytest.raises(ValueError, match="REQUESTS/SECONDS"):
        Settings(dev_mode=True)
