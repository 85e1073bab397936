"""The in-memory offer index: filters, price order, paging, chain overlay, why-no-match, and
that only offers the chain shows leasable are ever served."""

from __future__ import annotations

from services.common import new_keypair, public_key_from_ss58
from services.common.grpc_gen.gridlease.v1 import offer_pb2
from services.customer_api.offers.index import ChainView, OfferIndex, OfferQuery
from tests.seed.harness import ALICE, make_offer

BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"


def _offer(sequence: int = 1, keypair=None, **fields):  # type: ignore[no-untyped-def]
    signed, key = make_offer(keypair, sequence=sequence, **fields)
    offer = offer_pb2.Offer()
    offer.ParseFromString(signed.offer)
    return offer, key


def _on_chain(
    offer: offer_pb2.Offer,
    *,
    price: int | None = None,
    free: int | None = None,
    online: bool = True,
    owner: str | None = None,
    operator: bytes | None = None,
    checked_at: float = 0,
) -> ChainView:
    """The chain state of offer's machine registered as announced (owner: its provider;
    operator: its signing key), with the given changes."""
    return ChainView(
        registered=True,
        online=online,
        price=int(offer.price_per_gpu_per_block) if price is None else price,
        free_gpus=offer.gpu.count if free is None else free,
        checked_at=checked_at,
        owner=public_key_from_ss58(owner or offer.provider),
        operator=bytes(offer.operator_public_key) if operator is None else operator,
    )


def _index(prices: list[int], **fields) -> tuple[OfferIndex, list[bytes]]:  # type: ignore[no-untyped-def]
    """Offers at these prices, each registered on chain as announced."""
    index = OfferIndex(capacity=2)  # small, so growth is exercised
    ids = []
    for price in prices:
        offer, _ = _offer(price_per_gpu_per_block=price, **fields)
        assert index.upsert(offer)
        index.set_chain(bytes(offer.machine_id), _on_chain(offer))
        ids.append(bytes(offer.machine_id))
    return index, ids


def test_search_orders_by_price_and_pages() -> None:
    index, _ = _index([50, 10, 40, 20, 30, 20])
    first = index.search(OfferQuery(limit=4))
    assert [h.offer.price for h in first.hits] == [10, 20, 20, 30]
    assert first.count == 6
    second = index.search(OfferQuery(offset=4, limit=4))
    assert [h.offer.price for h in second.hits] == [40, 50]
    seen = {h.offer.machine_id for h in (*first.hits, *second.hits)}
    assert len(seen) == 6  # ties split across pages without repeats
    desc = index.search(OfferQuery(descending=True, limit=2))
    assert [h.offer.price for h in desc.hits] == [50, 40]


def test_search_filters_model_memory_labels_region() -> None:
    index = OfferIndex()
    a, _ = _offer(gpu_model="NVIDIA A100 40GB", memory_mib=40960, labels={"net": "ib"})
    h, _ = _offer(gpu_model="NVIDIA H100 80GB HBM3", memory_mib=81559, region="us-east")
    for offer in (a, h):
        index.upsert(offer)
        index.set_chain(bytes(offer.machine_id), _on_chain(offer))
    assert [x.offer.gpu_model for x in index.search(OfferQuery(gpu_model="h100")).hits] == [
        "NVIDIA H100 80GB HBM3"
    ]
    assert index.search(OfferQuery(min_memory_mib=50000)).count == 1
    assert index.search(OfferQuery(labels={"net": "ib"})).hits[0].offer.gpu_model.endswith("40GB")
    assert index.search(OfferQuery(region="us-east")).count == 1


def test_chain_state_overrides_announced_price_and_gpus() -> None:
    index, ids = _index([10, 20])
    offer = index.get(ids[0])
    assert offer is not None
    owner = public_key_from_ss58(offer[0].provider)
    index.set_chain(ids[0], ChainView(True, True, 99, 1, 0, owner, offer[0].operator_key))
    index.set_chain(ids[1], ChainView(False, False, 0, 0, checked_at=0))  # not registered
    result = index.search(OfferQuery())
    assert [h.offer.machine_id for h in result.hits] == [ids[0]]
    assert index.search(OfferQuery(max_price=50)).count == 0
    assert index.search(OfferQuery(min_gpus=2)).count == 0


def test_no_match_names_filters_and_nearest_offers() -> None:
    index, ids = _index([10, 20, 30], gpu_count=2)
    result = index.search(OfferQuery(max_price=5, min_gpus=8))
    assert result.count == 0 and result.total == 3
    assert dict(result.excluded_by) == {"max_price": 3, "min_gpus": 3}
    assert [h.offer.price for h in result.nearest] == [10, 20, 30]
    assert set(result.nearest[0].failed_filters) == {"max_price", "min_gpus"}
    partial = index.search(OfferQuery(max_price=15, min_gpus=8))
    assert partial.nearest[0].offer.machine_id == ids[0]
    assert partial.nearest[0].failed_filters == ("min_gpus",)


def test_upsert_keeps_newest_sequence_and_remove_frees_row() -> None:
    index = OfferIndex()
    key, _ = new_keypair()
    newer, _ = _offer(sequence=5, keypair=key, price_per_gpu_per_block=7)
    older, _ = _offer(sequence=4, keypair=key, price_per_gpu_per_block=9)
    assert index.upsert(newer)
    assert not index.upsert(older)
    assert not index.upsert(newer)  # replay changes nothing
    index.set_chain(bytes(newer.machine_id), _on_chain(newer))
    assert index.search(OfferQuery()).hits[0].offer.price == 7
    assert index.remove(bytes(newer.machine_id))
    assert len(index) == 0 and index.search(OfferQuery()).count == 0
    other, _ = _offer(labels={"a": "b"})
    index.upsert(other)
    index.set_chain(bytes(other.machine_id), _on_chain(other))
    assert index.search(OfferQuery(labels={"a": "b"})).count == 1
    assert index.retain([]) == 1 and len(index) == 0
    assert index.search(OfferQuery(labels={"a": "b"})).count == 0


def test_junk_offers_never_served_nor_ranked_above_registered() -> None:
    # Item 19: 20,000 validly signed offers from fresh keys, all cheaper than the one registered
    # machine. Before the chain is read they are held but not served; once read (unregistered)
    # they are excluded; the registered machine is first on the first page throughout.
    index = OfferIndex()
    real, _ = _offer(price_per_gpu_per_block=1_000)
    index.upsert(real)
    index.set_chain(bytes(real.machine_id), _on_chain(real))
    key = new_keypair()[0]
    template, _ = _offer(keypair=key, price_per_gpu_per_block=1)
    junk_ids = []
    for i in range(20_000):
        junk = offer_pb2.Offer()
        junk.CopyFrom(template)
        junk.machine_id = i.to_bytes(32, "big")  # the index trusts the seeds' signature check
        assert index.upsert(junk)
        junk_ids.append(bytes(junk.machine_id))
    page = index.search(OfferQuery(limit=20))
    assert [h.offer.machine_id for h in page.hits] == [bytes(real.machine_id)]
    assert page.count == 1 and page.total == 20_001
    assert index.leasable(junk_ids[0]) is None
    # Unchecked first, cheapest first: what the search reads from the chain before answering.
    assert index.unchecked(OfferQuery(), limit=5) == junk_ids[:5]
    assert index.due_for_check(checked_before=0, limit=3) == junk_ids[:3]
    for machine_id in junk_ids:
        index.set_chain(machine_id, ChainView.of(None, checked_at=1))
    assert index.unchecked(None, limit=5) == []
    after = index.search(OfferQuery(limit=20))
    assert [h.offer.machine_id for h in after.hits] == [bytes(real.machine_id)]
    # Nothing matches a ceiling below the real price: the nearest offers are leasable ones only.
    none = index.search(OfferQuery(max_price=500))
    assert none.count == 0
    assert [h.offer.machine_id for h in none.nearest] == [bytes(real.machine_id)]
    assert dict(none.excluded_by)["available_on_chain"] == 20_000


def test_offer_whose_accounts_differ_from_chain_is_not_leasable() -> None:
    # Registered, but to another owner, or operated by another key than the one that signed the
    # offer (an old machine key after the operator was changed): never leasable.
    index = OfferIndex()
    cases = {
        "owner": {"owner": BOB},
        "operator": {"operator": bytes(32)},
        "offline": {"online": False},
    }
    ids = {}
    for name, change in cases.items():
        offer, _ = _offer(provider=ALICE)
        index.upsert(offer)
        index.set_chain(bytes(offer.machine_id), _on_chain(offer, **change))  # type: ignore[arg-type]
        ids[name] = bytes(offer.machine_id)
    assert index.search(OfferQuery()).count == 0
    assert all(index.leasable(machine_id) is None for machine_id in ids.values())


def test_newer_offer_naming_another_provider_is_judged_again() -> None:
    index = OfferIndex()
    key = new_keypair()[0]
    first, _ = _offer(sequence=1, keypair=key, provider=ALICE)
    index.upsert(first)
    index.set_chain(bytes(first.machine_id), _on_chain(first))
    assert index.leasable(bytes(first.machine_id)) is not None
    moved, _ = _offer(sequence=2, keypair=key, provider=BOB)  # the chain still says Alice
    index.upsert(moved)
    assert index.leasable(bytes(first.machine_id)) is None
    assert index.search(OfferQuery()).count == 0


def test_out_of_range_numbers_are_clamped_not_raised() -> None:
    # A seed is trusted for signatures, not for ranges: a uint64 beyond int64 must not raise.
    index = OfferIndex()
    offer, _ = _offer()
    offer.gpu.memory_mib = 2**64 - 1
    assert index.upsert(offer)
    index.set_chain(bytes(offer.machine_id), _on_chain(offer, free=2**63 + 5))
    assert index.search(OfferQuery(min_memory_mib=2**40)).count == 1
