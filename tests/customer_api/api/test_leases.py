"""The lease path against the real dev chain and a real seed (both database backends). Nodes
listen on closed ports here, so delivery stays pending and is retried in the background."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from services.common import MachineResources
from services.common._chain import ChainClient
from services.customer_api.models import MAX_LEASE_BLOCKS
from tests.seed.harness import SeedProcess, wait_until
from tests.utils.api_accounts import UNIT, fund, funded_customer, sign_up
from tests.utils.api_leases import lease_body
from tests.utils.api_machines import OfferedMachine


def test_create_lease_holds_escrow_and_retries_delivery(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine(gpus=4, price=2_000_000)
    customer = funded_customer(client)
    reply = client.post(
        "/v1/leases", json=lease_body(machine.hex_id, gpus=2), headers=customer.headers
    )
    assert reply.status_code == 201, reply.text
    lease = reply.json()
    assert lease["state"] == "pending" and lease["escrow"] == str(2_000_000 * 2 * 100)
    on_chain = chain.lease(lease["lease_id"])
    assert on_chain is not None and on_chain.customer == customer.address
    assert "0x" + on_chain.spec_hash.hex() == lease["spec_hash"]
    assert chain.held(customer.address, "LeaseEscrow") == 2_000_000 * 2 * 100
    assert lease["delivery"]["state"] == "pending" and lease["delivery"]["error"]

    def retried() -> bool:
        got = client.get(f"/v1/leases/{lease['lease_id']}", headers=customer.headers).json()
        return bool(got["delivery"]["attempts"] >= 2)

    wait_until(retried, what="a background redelivery")


def _leases_created(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("gridlease_api_leases_created_total "):
            return float(line.split()[1])
    raise AssertionError("gridlease_api_leases_created_total is not exported")


def test_create_lease_retry_with_same_key_pays_once(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine()
    customer = funded_customer(client)
    body = lease_body(machine.hex_id)
    headers = {**customer.headers, "Idempotency-Key": "order-42"}
    created_before = _leases_created(client)
    first = client.post("/v1/leases", json=body, headers=headers)
    again = client.post("/v1/leases", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert _leases_created(client) == created_before + 1  # counted once, the replay not
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["lease_id"] == first.json()["lease_id"]
    assert chain.customer_leases(customer.address) == [first.json()["lease_id"]]
    assert chain.held(customer.address, "LeaseEscrow") == int(first.json()["escrow"])
    changed = client.post("/v1/leases", json={**body, "gpus": 2}, headers=headers)
    assert changed.status_code == 409
    assert changed.json()["detail"] == "Idempotency key reused with a different request"
    listed = client.get("/v1/leases", headers=customer.headers).json()
    assert listed["count"] == 1


def test_other_customers_lease_is_not_found(
    client: TestClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine()
    owner, stranger = funded_customer(client), funded_customer(client)
    lease_id = client.post(
        "/v1/leases", json=lease_body(machine.hex_id), headers=owner.headers
    ).json()["lease_id"]
    for method, path in (
        ("GET", f"/v1/leases/{lease_id}"),
        ("GET", f"/v1/leases/{lease_id}/gpus"),
        ("POST", f"/v1/leases/{lease_id}/terminate"),
        ("POST", f"/v1/leases/{lease_id}/cancel"),
    ):
        reply = client.request(method, path, headers=stranger.headers)
        assert reply.status_code == 404 and reply.json()["detail"] == "Lease not found"
    assert client.get("/v1/leases", headers=stranger.headers).json()["count"] == 0
    assert client.get(f"/v1/leases/{lease_id}", headers=owner.headers).status_code == 200
    # The owner is let through to the node, which listens on a closed port here.
    gpus = client.get(f"/v1/leases/{lease_id}/gpus", headers=owner.headers)
    assert (gpus.status_code, gpus.json()["code"]) == (503, "NodeUnreachable")
    assert int(gpus.headers["Retry-After"]) >= 1


def test_create_lease_insufficient_funds_is_402_and_not_recorded(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine(price=1_000_000_000)
    customer = sign_up(client)
    fund(client, customer, 1 * UNIT)
    reply = client.post(
        "/v1/leases",
        json=lease_body(machine.hex_id, gpus=4, duration_blocks=100_000),
        headers={**customer.headers, "Idempotency-Key": "k1"},
    )
    assert reply.status_code == 402, reply.text
    assert reply.json() == {"detail": "Insufficient funds", "code": "InsufficientBalance"}
    assert client.get("/v1/leases", headers=customer.headers).json()["count"] == 0
    assert chain.customer_leases(customer.address) == []


def test_create_lease_chain_refusals_are_409(
    client: TestClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine(gpus=2, price=5_000_000)
    customer = funded_customer(client)
    too_cheap = client.post(
        "/v1/leases",
        json=lease_body(machine.hex_id, max_price_per_gpu_block="4999999"),
        headers=customer.headers,
    )
    assert too_cheap.status_code == 409
    assert too_cheap.json() == {"detail": "Price above ceiling", "code": "PriceAboveLimit"}
    too_many = client.post(
        "/v1/leases", json=lease_body(machine.hex_id, gpus=3), headers=customer.headers
    )
    assert too_many.status_code == 409
    assert too_many.json() == {"detail": "Not enough free GPUs", "code": "NotEnoughFreeGpus"}
    assert client.get("/v1/leases", headers=customer.headers).json()["count"] == 0


def test_create_lease_unknown_offer_is_404(client: TestClient) -> None:
    customer = funded_customer(client)
    reply = client.post("/v1/leases", json=lease_body("0x" + "ab" * 32), headers=customer.headers)
    assert reply.status_code == 404 and reply.json()["detail"] == "Offer not found"


def test_create_lease_malformed_is_422_with_field(client: TestClient) -> None:
    customer = sign_up(client)
    cases = {
        "gpus": lease_body("0x" + "ab" * 32, gpus=0),
        "machine_id": lease_body("0xabc"),
        "ports": lease_body("0x" + "ab" * 32, ports=[70000]),
        "env": lease_body("0x" + "ab" * 32, env={"1BAD": "x"}),
    }
    for field, body in cases.items():
        reply = client.post("/v1/leases", json=body, headers=customer.headers)
        assert reply.status_code == 422, field
        assert field in reply.json()["detail"][0]["loc"], reply.json()


def test_cancel_before_start_pays_the_reservation_and_refunds_the_rest(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine()
    customer = funded_customer(client)
    lease = client.post(
        "/v1/leases", json=lease_body(machine.hex_id), headers=customer.headers
    ).json()
    cancelled = client.post(f"/v1/leases/{lease['lease_id']}/cancel", headers=customer.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["state"] == "ended" and body["end_reason"] == "Cancelled"
    # Reserving GPUs is never free (chain/README.md, "Reservations are paid"): the provider is
    # paid at least one block of the lease's price, the rest is refunded.
    spent, refunded = int(body["spent"]), int(body["refunded"])
    per_block = int(lease["price_per_gpu_block"]) * lease["gpus"]
    assert spent >= per_block and spent % per_block == 0, body
    assert spent + refunded == int(lease["escrow"])
    assert body["delivery"]["state"] == "abandoned"
    assert chain.held(customer.address, "LeaseEscrow") == 0
    again = client.post(f"/v1/leases/{lease['lease_id']}/cancel", headers=customer.headers)
    assert again.status_code == 409 and again.json()["detail"] == "Lease already ended"


def test_running_lease_extends_terminates_and_is_charged(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine(price=1_000_000)
    customer = funded_customer(client)
    lease = client.post(
        "/v1/leases", json=lease_body(machine.hex_id, gpus=2), headers=customer.headers
    ).json()
    lease_id = lease["lease_id"]
    started = chain.gpu_rental(machine.key, "start_lease", lease_id=lease_id)
    got = client.get(f"/v1/leases/{lease_id}", headers=customer.headers).json()
    assert got["state"] == "running" and got["started_block"] == started.block_number
    assert got["connection"]["status"] == "unreachable"
    cancel = client.post(f"/v1/leases/{lease_id}/cancel", headers=customer.headers)
    assert cancel.status_code == 409 and cancel.json()["code"] == "LeaseAlreadyStarted"
    extended = client.post(
        f"/v1/leases/{lease_id}/extend", json={"extra_blocks": 50}, headers=customer.headers
    ).json()
    assert extended["duration_blocks"] == 150
    assert extended["ends_at_block"] == started.block_number + 150
    ended = client.post(f"/v1/leases/{lease_id}/terminate", headers=customer.headers).json()
    assert ended["state"] == "ended" and ended["end_reason"] == "Terminated"
    spent, refunded = int(ended["spent"]), int(ended["refunded"])
    assert spent == (ended["ended_block"] - started.block_number) * 2 * 1_000_000
    assert spent + refunded == 2 * 1_000_000 * 150
    account = client.get("/v1/account", headers=customer.headers).json()
    assert account["held_in_escrow"] == "0"
    assert account["total_spent"] == str(spent)
    assert [entry["lease_id"] for entry in account["leases"]] == [lease_id]


def test_report_downtime_refuses_while_up_then_refunds_and_compensates(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine(price=1_000_000)
    customer = funded_customer(client)
    lease = client.post(
        "/v1/leases", json=lease_body(machine.hex_id, gpus=1), headers=customer.headers
    ).json()
    lease_id = lease["lease_id"]
    chain.gpu_rental(machine.key, "start_lease", lease_id=lease_id)
    early = client.post(f"/v1/leases/{lease_id}/report", headers=customer.headers)
    assert early.status_code == 409 and early.json()["code"] == "MachineNotStale"
    chain.dev_new_blocks(int(chain.constant("HeartbeatGrace")) + 2)
    ended = client.post(f"/v1/leases/{lease_id}/report", headers=customer.headers).json()
    assert ended["state"] == "ended" and ended["end_reason"] == "Failed"
    assert int(ended["compensation"]) > 0
    assert int(ended["spent"]) + int(ended["refunded"]) == int(lease["escrow"])


def test_spec_the_node_would_refuse_is_422_and_nothing_reaches_the_chain(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine()
    customer = funded_customer(client)
    for fields in (
        {"image": "Docker.io/Library/Ubuntu:22.04"},
        {"ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAInotakey x"},
        {"env": {"GRIDLEASE_LEASE_ID": "1"}},
    ):
        reply = client.post(
            "/v1/leases", json=lease_body(machine.hex_id, **fields), headers=customer.headers
        )
        assert reply.status_code == 422, reply.text
        assert reply.json()["detail"][0]["loc"][1] == next(iter(fields))
    assert chain.customer_leases(customer.address) == []
    assert chain.held(customer.address, "LeaseEscrow") == 0


def test_resources_beyond_the_share_the_offer_states_are_422(
    client: TestClient,
    chain: ChainClient,
    seed: SeedProcess,
    offered_machine: Callable[..., OfferedMachine],
) -> None:
    machine = offered_machine(gpus=4)
    machine.announce(seed.endpoint, host=MachineResources(cpu_millicores=4000, memory_mib=16384))
    runtime = client.app.state.runtime  # type: ignore[attr-defined]

    def host_known() -> bool:
        held = runtime.index.get(machine.machine_id)
        return held is not None and held[0].host is not None

    wait_until(host_known, what="the offer with its host resources")
    customer = funded_customer(client)
    greedy = lease_body(machine.hex_id, gpus=1, memory_mib=8192, cpu_millicores=1000)
    reply = client.post("/v1/leases", json=greedy, headers=customer.headers)
    assert reply.status_code == 422, reply.text
    assert [e["loc"] for e in reply.json()["detail"]] == [["body", "memory_mib"]]
    assert chain.customer_leases(customer.address) == []
    fair = lease_body(machine.hex_id, gpus=2, memory_mib=8192, cpu_millicores=2000)
    created = client.post("/v1/leases", json=fair, headers=customer.headers)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["memory_mib"] == 8192


def test_durations_are_bounded_by_the_chain_longest_lease(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    assert int(chain.constant("MaxLeaseDuration")) == MAX_LEASE_BLOCKS
    machine = offered_machine()
    customer = funded_customer(client)
    too_long = lease_body(machine.hex_id, duration_blocks=MAX_LEASE_BLOCKS + 1)
    reply = client.post("/v1/leases", json=too_long, headers=customer.headers)
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == [
        "body",
        "duration_blocks",
    ]
    lease = client.post(
        "/v1/leases", json=lease_body(machine.hex_id), headers=customer.headers
    ).json()
    held = chain.held(customer.address, "LeaseEscrow")
    free = chain.account(customer.address)["free"]
    extended = client.post(
        f"/v1/leases/{lease['lease_id']}/extend",
        json={"extra_blocks": MAX_LEASE_BLOCKS},
        headers=customer.headers,
    )
    assert extended.status_code == 409, extended.text
    assert extended.json() == {
        "detail": "Lease would pass the longest lease",
        "code": "InvalidDuration",
    }
    # Refused before the chain: nothing held, no transaction fee paid.
    assert chain.held(customer.address, "LeaseEscrow") == held
    assert chain.account(customer.address)["free"] == free
