"""Item 19 against the real dev chain: offers of machines the chain does not show (or shows with
other accounts) are never served, never rank above registered machines, and are sorted out in
the background; through HTTP, a junk offer announced to the seed is neither listed nor found."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from fastapi.testclient import TestClient

from services.common import machine_id_for
from services.common._chain import ChainClient, ChainMachine
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2
from services.customer_api.offers.index import OfferIndex, OfferQuery
from services.customer_api.offers.search import VERIFY_BATCH, OfferSearch
from tests.seed.harness import SeedProcess, free_port, make_offer, wait_until
from tests.utils.api_accounts import sign_up
from tests.utils.api_machines import GPU_MODEL, OfferedMachine, register_machine


def _offer_of(machine: OfferedMachine, sequence: int = 1, **fields: object) -> offer_pb2.Offer:
    values: dict[str, object] = {
        "provider": machine.provider.ss58_address,
        "endpoint": machine.endpoint,
        "gpu_count": machine.gpus,
        "price_per_gpu_per_block": machine.price,
        "gpu_model": GPU_MODEL,
    }
    values.update(fields)
    signed, _ = make_offer(machine.key, sequence=sequence, **values)  # type: ignore[arg-type]
    return offer_pb2.Offer.FromString(signed.offer)


def _junk(count: int, price: int) -> list[offer_pb2.Offer]:
    """count offers of machines nobody registered, cheaper than the real one. The index trusts
    the seeds' signature check, so these are built unsigned from random keys (signing 20,000
    offers would only slow the test)."""
    template = offer_pb2.Offer.FromString(make_offer(price_per_gpu_per_block=price)[0].offer)
    offers = []
    for _ in range(count):
        offer = offer_pb2.Offer()
        offer.CopyFrom(template)
        offer.operator_public_key = os.urandom(32)
        offer.machine_id = machine_id_for(offer.operator_public_key)
        offers.append(offer)
    return offers


def test_junk_offer_flood_never_outranks_a_registered_machine(
    chain: ChainClient,
) -> None:
    machine = register_machine(chain, endpoint=f"127.0.0.1:{free_port()}", price=1_000_000)
    index = OfferIndex()
    search = OfferSearch(index, chain.machines, ttl_s=5.0)
    index.upsert(_offer_of(machine))
    # 20,000 in test_offer_index (the index alone); here a few batches of real chain reads.
    junk = _junk(5 * VERIFY_BATCH, price=1)
    for offer in junk:
        index.upsert(offer)
    # Unchecked offers are checked in arrival order: the machine that was there before the
    # flood is in the first background batch, and from then on it heads the first page, while
    # none of the cheaper junk offers is ever served.
    assert search.verify_pending() == VERIFY_BATCH
    first = search.search(OfferQuery(limit=20))
    assert [h.offer.machine_id for h in first.hits] == [machine.machine_id]
    assert first.count == 1

    # The background check sorts every junk offer out, a chain read per VERIFY_BATCH.
    reads = 1
    while search.verify_pending():
        reads += 1
    assert reads >= len(junk) // VERIFY_BATCH
    assert index.unchecked(None, limit=1) == []
    assert all(index.leasable(bytes(o.machine_id)) is None for o in junk)
    again = search.search(OfferQuery(limit=20))
    assert [h.offer.machine_id for h in again.hits] == [machine.machine_id]


def test_search_checks_a_new_machine_before_answering(chain: ChainClient) -> None:
    # A registered machine whose offer just arrived: the search reads it from the chain before
    # answering, so it is on the page at once; an unregistered one is read and left out.
    machine = register_machine(chain, endpoint=f"127.0.0.1:{free_port()}", price=1_000_000)
    index = OfferIndex()
    search = OfferSearch(index, chain.machines, ttl_s=5.0)
    index.upsert(_offer_of(machine))
    for offer in _junk(5, price=1):
        index.upsert(offer)
    page = search.search(OfferQuery(limit=20))
    assert [h.offer.machine_id for h in page.hits] == [machine.machine_id]
    assert page.hits[0].chain is not None and page.hits[0].chain.registered
    assert index.unchecked(None, limit=10) == []


def test_offer_with_other_accounts_than_the_chain_is_not_leasable(chain: ChainClient) -> None:
    # The machine key signs an offer naming another provider than the chain's owner.
    machine = register_machine(chain, endpoint=f"127.0.0.1:{free_port()}")
    index = OfferIndex()
    search = OfferSearch(index, chain.machines, ttl_s=5.0)
    bob = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
    index.upsert(_offer_of(machine, provider=bob))
    assert search.search(OfferQuery()).count == 0
    assert search.one(machine.machine_id) is None
    # The node announces again with the chain's owner: judged again, now leasable.
    index.upsert(_offer_of(machine, sequence=2))
    assert [h.offer.machine_id for h in search.search(OfferQuery()).hits] == [machine.machine_id]
    assert search.one(machine.machine_id) is not None


def test_verify_loop_backs_off_while_the_chain_is_down() -> None:
    # A chain that does not answer: the loop logs, waits longer each time, and keeps running.
    unreachable = ChainClient(f"ws://127.0.0.1:{free_port()}", connect=False)
    index = OfferIndex()
    for offer in _junk(3, price=1):
        index.upsert(offer)
    attempts: list[int] = []

    def read(machine_ids: list[bytes]) -> dict[bytes, ChainMachine | None]:
        attempts.append(len(machine_ids))
        return unreachable.machines(machine_ids)

    search = OfferSearch(index, read, ttl_s=5.0)

    async def run_for(seconds: float) -> bool:
        task = asyncio.create_task(search.verify_loop(idle_s=0.05))
        await asyncio.sleep(seconds)
        alive = not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return alive

    assert asyncio.run(run_for(1.0))
    # Waits 0.1, 0.2, 0.4, 0.8 s after failures in a row: a handful of tries, not one per 50 ms.
    assert 1 <= len(attempts) <= 5
    assert len(index.unchecked(None, limit=10)) == 3  # nothing served on a guess


def test_junk_offer_through_the_seed_is_neither_listed_nor_found(
    client: TestClient,
    seed: SeedProcess,
    offered_machine: Callable[..., OfferedMachine],
) -> None:
    real = offered_machine(gpus=2, price=2_000_000)
    junk, _ = make_offer(price_per_gpu_per_block=1, gpu_count=8)  # validly signed, unregistered
    junk_id = offer_pb2.Offer.FromString(junk.offer).machine_id
    seed.stub().Announce(seed_pb2.AnnounceRequest(signed_offer=junk), timeout=5)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    wait_until(lambda: runtime.index.get(junk_id), what="junk offer in the API index")
    customer = sign_up(client)
    listed = client.get("/v1/offers", params={"limit": 100}, headers=customer.headers)
    assert listed.status_code == 200, listed.text
    ids = [o["machine_id"] for o in listed.json()["data"]]
    assert real.hex_id in ids and "0x" + junk_id.hex() not in ids
    one = client.get(f"/v1/offers/0x{junk_id.hex()}", headers=customer.headers)
    assert one.status_code == 404
