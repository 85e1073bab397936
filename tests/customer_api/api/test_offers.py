"""Offer search through a real seed with chain prices and free GPUs (both backends)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from services.common._chain import ChainClient
from tests.utils.api_accounts import sign_up
from tests.utils.api_machines import OfferedMachine
from tests.utils.grpc_process import wait_until


def test_search_offers_shows_chain_price_and_free_gpus(
    client: TestClient, chain: ChainClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    machine = offered_machine(gpus=2, price=3_000_000)
    customer = sign_up(client)
    # The owner raises the price on chain; the offer still announces the old one.
    chain.gpu_rental(
        machine.provider, "set_price", machine_id=machine.hex_id, price_per_gpu_block=3_500_000
    )
    query = {"gpu_model": "h100", "min_gpus": 2, "max_price_per_gpu_block": 4_000_000}

    def found_at_new_price() -> dict[str, object] | None:
        # A page may reuse chain state read up to chain_state_ttl_s (1 s here) ago, e.g. by the
        # background check right after the announcement; after that it shows the new price.
        reply = client.get("/v1/offers", params=query, headers=customer.headers)
        assert reply.status_code == 200, reply.text
        found = [o for o in reply.json()["data"] if o["machine_id"] == machine.hex_id]
        assert len(found) == 1
        return found[0] if found[0]["price_per_gpu_block"] == "3500000" else None

    offer = wait_until(found_at_new_price, timeout_s=10, what="the chain price in search")
    assert offer["offer_price_per_gpu_block"] == "3000000"
    assert offer["free_gpus"] == 2 and offer["chain_checked"] is True
    one = client.get(f"/v1/offers/{machine.hex_id}", headers=customer.headers)
    assert one.status_code == 200 and one.json()["price_per_gpu_block"] == "3500000"


def test_search_offers_no_match_explains_filters(
    client: TestClient, offered_machine: Callable[..., OfferedMachine]
) -> None:
    offered_machine(gpus=2, price=5_000_000)
    customer = sign_up(client)
    reply = client.get(
        "/v1/offers",
        params={"max_price_per_gpu_block": 1, "label": "interconnect=nvlink"},
        headers=customer.headers,
    )
    body = reply.json()
    assert reply.status_code == 200 and body["count"] == 0 and body["data"] == []
    excluded = {e["filter"]: e["excluded"] for e in body["no_match"]["excluded_by"]}
    assert excluded["max_price"] == body["no_match"]["total_offers"] > 0
    assert body["no_match"]["nearest"][0]["failed_filters"] == ["max_price"]


def test_search_offers_bad_label_is_422(client: TestClient) -> None:
    customer = sign_up(client)
    reply = client.get("/v1/offers", params={"label": "novalue"}, headers=customer.headers)
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"][:2] == ["query", "label"]


def test_read_offer_unknown_is_404(client: TestClient) -> None:
    customer = sign_up(client)
    reply = client.get("/v1/offers/0x" + "ee" * 32, headers=customer.headers)
    assert reply.status_code == 404 and reply.json()["detail"] == "Offer not found"
