"""The in-memory offer index: filters, price order, paging, chain overlay, why-no-match."""

from __future__ import annotations

from services.common import new_keypair
from services.common.grpc_gen.gridlease.v1 import offer_pb2
from services.customer_api.offers.index import ChainView, OfferIndex, OfferQuery
from tests.seed.harness import make_offer


def _offer(sequence: int = 1, keypair=None, **fields):  # type: ignore[no-untyped-def]
    signed, key = make_offer(keypair, sequence=sequence, **fields)
    offer = offer_pb2.Offer()
    offer.ParseFromString(signed.offer)
    return offer, key


def _index(prices: list[int], **fields) -> tuple[OfferIndex, list[bytes]]:  # type: ignore[no-untyped-def]
    index = OfferIndex(capacity=2)  # small, so growth is exercised
    ids = []
    for price in prices:
        offer, _ = _offer(price_per_gpu_per_block=price, **fields)
        assert index.upsert(offer)
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
    index.upsert(a)
    index.upsert(h)
    assert [x.offer.gpu_model for x in index.search(OfferQuery(gpu_model="h100")).hits] == [
        "NVIDIA H100 80GB HBM3"
    ]
    assert index.search(OfferQuery(min_memory_mib=50000)).count == 1
    assert index.search(OfferQuery(labels={"net": "ib"})).hits[0].offer.gpu_model.endswith("40GB")
    assert index.search(OfferQuery(region="us-east")).count == 1


def test_chain_state_overrides_announced_price_and_gpus() -> None:
    index, ids = _index([10, 20])
    index.set_chain(ids[0], ChainView(True, True, price=99, free_gpus=1, checked_at=0))
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
    assert index.search(OfferQuery()).hits[0].offer.price == 7
    assert index.remove(bytes(newer.machine_id))
    assert len(index) == 0 and index.search(OfferQuery()).count == 0
    other, _ = _offer(labels={"a": "b"})
    index.upsert(other)
    assert index.retain([]) == 1 and len(index) == 0
    assert index.search(OfferQuery(labels={"a": "b"})).count == 0
