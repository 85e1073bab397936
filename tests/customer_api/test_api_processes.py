"""Real API processes (uvicorn, `python -m services.customer_api serve`) on SQLite and
PostgreSQL, against the real dev chain and a real seed:

- killed with SIGKILL in the middle of lease creations, restarted on the same database: a retry
  with the same Idempotency-Key returns that request's own lease (never another request's),
  no lease is left on chain without its request, and no request row stays unsettled;
- two replicas on one database serving one customer at once: every request answers (bounded
  waits), each with its own lease, one nonce per extrinsic;
- 30 concurrent lease creations, then 100 concurrent mixed requests: no 5xx (no database
  connection is held while a request waits on the chain).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.common import TOKEN_UNIT
from services.common._chain import ChainClient
from services.customer_api.core.db import make_engine
from tests.seed.harness import SeedProcess, free_port, wait_until
from tests.utils.api_leases import lease_body
from tests.utils.api_machines import OfferedMachine, register_machine
from tests.utils.api_process import ApiProcess
from tests.utils.devchain import DevChain

# A short RPC deadline keeps a signer lock left by a killed process short-lived (3 x 5 s); a
# long submission deadline (also the wait for an account's lock) lets one customer's calls
# queue behind each other on a dev chain that includes a few extrinsics a second.
CHAIN_ENV = {"GRIDLEASE_API_CHAIN_TIMEOUT_S": "5", "GRIDLEASE_API_CHAIN_SUBMIT_TIMEOUT_S": "60"}


@pytest.fixture
def machines(chain: ChainClient, seed: SeedProcess) -> list[OfferedMachine]:
    """Two fresh 16-GPU machines per test, registered and announced (enough for 30 one-GPU
    leases; nobody starts them, so their GPUs stay reserved)."""
    out = []
    for _ in range(2):
        machine = register_machine(chain, endpoint=f"127.0.0.1:{free_port()}", gpus=16)
        machine.announce(seed.endpoint)
        out.append(machine)
    return out


@pytest.fixture
def start_api(
    tmp_path: Path, database_url: str, dev_chain: DevChain, seed: SeedProcess
) -> Iterator[Callable[..., ApiProcess]]:
    started: list[ApiProcess] = []

    def start(name: str = "api", **env: str) -> ApiProcess:
        api = ApiProcess(
            tmp_path, database_url=database_url, chain_url=dev_chain.url,
            seed_endpoint=seed.endpoint, env={**CHAIN_ENV, **env}, name=name,
        ).start()  # fmt: skip
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


class Customer:
    def __init__(self, http: httpx.Client, amount: int = 1_000 * TOKEN_UNIT) -> None:
        reply = http.post("/v1/auth/signup", json={"name": f"c-{uuid.uuid4().hex[:8]}"})
        assert reply.status_code == 201, reply.text
        body = reply.json()
        self.address: str = body["customer"]["address"]
        self.headers = {"Authorization": f"Bearer {body['api_key']}"}
        funded = http.post("/v1/account/faucet", json={"amount": str(amount)},
                           headers=self.headers)
        assert funded.status_code == 200, funded.text


def wait_offers(http: httpx.Client, customer: Customer, machines: list[OfferedMachine]) -> None:
    for machine in machines:
        wait_until(
            lambda m=machine: http.get(f"/v1/offers/{m.hex_id}",  # type: ignore[misc]
                                       headers=customer.headers).status_code == 200,
            timeout_s=60, what="the offer in the API",
        )  # fmt: skip


def create_until_answered(
    http: httpx.Client, customer: Customer, body: dict[str, Any], key: str,
    timeout_s: float = 120.0,
) -> httpx.Response:
    """POST /v1/leases with key, retried while the answer says to retry (409 in progress, 503)
    as its Retry-After says; fails after timeout_s (a bound, not a speed claim)."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = http.post("/v1/leases", json=body,
                          headers={**customer.headers, "Idempotency-Key": key})
        retry = reply.status_code == 503 or (
            reply.status_code == 409 and reply.json().get("code") == "SubmissionPending"
        )
        if not retry:
            return reply
        assert time.monotonic() < deadline, f"still {reply.status_code}: {reply.text}"
        time.sleep(float(reply.headers.get("Retry-After", "1")))


def unsettled_rows(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(
                text("SELECT count(*) FROM leaserecord WHERE lease_id IS NULL")
            ).scalar_one())  # fmt: skip
    finally:
        engine.dispose()


def signed_rows(database_url: str, address: str) -> int:
    """Requests of address whose extrinsic is recorded but whose lease is not (yet)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(
                text("SELECT count(*) FROM leaserecord WHERE lease_id IS NULL AND "
                     "extrinsic_hash IS NOT NULL AND customer_address = :a"), {"a": address},
            ).scalar_one())  # fmt: skip
    finally:
        engine.dispose()


def post_in_background(
    url: str, customer: Customer, body: dict[str, Any], key: str
) -> threading.Thread:
    def run() -> None:
        try:
            httpx.post(f"{url}/v1/leases", json=body, timeout=60,
                       headers={**customer.headers, "Idempotency-Key": key})
        except httpx.HTTPError:
            pass  # the server was killed under it

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("kill_at", ["signed", 0.15, 0.4, 1.0])
def test_api_killed_mid_creation_then_retry_returns_own_lease(
    start_api: Callable[..., ApiProcess], database_url: str, chain: ChainClient,
    machines: list[OfferedMachine], kill_at: str | float,
) -> None:
    api = start_api()
    with api.client() as http:
        customer = Customer(http)
        wait_offers(http, customer, machines)
        # Identical bodies: same machine, same spec (hash); only the keys differ. A match by
        # customer + spec hash would attach either lease to either request.
        body = lease_body(machines[0].hex_id)
        keys = [f"order-{uuid.uuid4().hex[:6]}" for _ in range(2)]
        threads = [post_in_background(api.url, customer, body, key) for key in keys]
        if kill_at == "signed":
            wait_until(lambda: signed_rows(database_url, customer.address), timeout_s=60,
                       poll_s=0.002, what="a signed, unrecorded lease request")
        else:
            time.sleep(float(kill_at))
        api.kill()
        for thread in threads:
            thread.join(60)
        api.start()  # same database, fresh process
        leases = {}
        for key in keys:
            reply = create_until_answered(http, customer, body, key)
            assert reply.status_code in (200, 201), reply.text
            leases[key] = reply.json()["lease_id"]
            again = create_until_answered(http, customer, body, key)
            assert again.status_code == 200 and again.json()["lease_id"] == leases[key]
    assert len(set(leases.values())) == 2, leases  # each request its own lease
    # Nothing on chain that no request owns (such a lease would run to expiry, charged).
    assert sorted(chain.customer_leases(customer.address)) == sorted(leases.values())
    for lease_id in leases.values():
        found = chain.lease(lease_id)
        assert found is not None and found.customer == customer.address
    wait_until(lambda: unsettled_rows(database_url) == 0, timeout_s=60,
               what="every request row settled")


def test_two_replicas_serve_one_customer_at_once(
    start_api: Callable[..., ApiProcess], chain: ChainClient, machines: list[OfferedMachine]
) -> None:
    first, second = start_api("api-a"), start_api("api-b")
    with first.client() as a, second.client() as b:
        customer = Customer(a)
        other = Customer(b)
        wait_offers(a, customer, machines)
        wait_offers(b, customer, machines)
        body = lease_body(machines[1].hex_id)
        jobs: list[tuple[httpx.Client, Customer, str]] = [
            (a if n % 2 else b, customer, f"both-{n}") for n in range(8)
        ]
        jobs += [(a, other, "other-1")]  # another customer behind the same replicas
        with ThreadPoolExecutor(len(jobs)) as pool:
            replies = list(pool.map(lambda j: create_until_answered(j[0], j[1], body, j[2]),
                                    jobs))  # fmt: skip
        assert [r.status_code for r in replies] == [201] * len(jobs), [r.text for r in replies]
        mine = [r.json()["lease_id"] for r in replies[:-1]]
        assert len(set(mine)) == len(mine)
        assert sorted(chain.customer_leases(customer.address)) == sorted(mine)
        # The same key through both replicas at once: one lease, paid once.
        with ThreadPoolExecutor(2) as pool:
            same = list(pool.map(lambda c: create_until_answered(c, customer, body, "same-key"),
                                 (a, b)))  # fmt: skip
        assert sorted(r.status_code for r in same) == [200, 201], [r.text for r in same]
        assert same[0].json()["lease_id"] == same[1].json()["lease_id"]
        assert len(chain.customer_leases(customer.address)) == len(mine) + 1


def test_concurrent_creations_and_mixed_requests_never_5xx(
    start_api: Callable[..., ApiProcess], chain: ChainClient, machines: list[OfferedMachine]
) -> None:
    api = start_api()
    with api.client() as http:
        customers = [Customer(http) for _ in range(10)]
        wait_offers(http, customers[0], machines)
        free = sum(m.free_gpus for m in chain.machines([x.machine_id for x in machines]).values()
                   if m is not None)  # fmt: skip
        creations = min(30, free)
        assert creations >= 20, f"only {free} GPUs free"

        def create(n: int) -> httpx.Response:
            machine = machines[n % 2]
            return http.post("/v1/leases", json=lease_body(machine.hex_id),
                             headers=customers[n % 10].headers)

        with ThreadPoolExecutor(30) as pool:
            created = list(pool.map(create, range(creations)))
        codes = [r.status_code for r in created]
        assert all(c < 500 for c in codes), [r.text for r in created if r.status_code >= 500]
        assert codes.count(201) >= creations - 2, codes  # at most a GPU race lost (409)
        leases: dict[int, list[int]] = {}  # customer index -> their lease ids
        for n, reply in enumerate(created):
            if reply.status_code == 201:
                leases.setdefault(n % 10, []).append(reply.json()["lease_id"])

        def mixed(n: int) -> httpx.Response:
            c = n % 10
            who = customers[c]
            own = leases.get(c) or [0]
            kind = n % 6
            if kind == 0:
                return http.post("/v1/leases", json=lease_body(machines[n % 2].hex_id),
                                 headers=who.headers)  # mostly 409: no GPU left
            if kind == 1:
                return http.get("/v1/account", headers=who.headers)
            if kind == 2:
                return http.get("/v1/offers", headers=who.headers)
            if kind == 3:
                return http.get(f"/v1/leases/{own[0]}", headers=who.headers)
            if kind == 4:
                return http.post(f"/v1/leases/{own[-1]}/extend", json={"extra_blocks": 1},
                                 headers=who.headers)
            return http.get("/v1/leases", headers=who.headers)

        with ThreadPoolExecutor(100) as pool:
            replies = list(pool.map(mixed, range(100)))
    errors = [(r.request.url.path, r.status_code, r.text) for r in replies if r.status_code >= 500]
    assert errors == []
