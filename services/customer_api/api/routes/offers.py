"""Offer search over what the seeds announce, priced and counted by the chain.

Open without an API key: offers are public facts (the chain's machines and prices, the seeds'
announcements), so browsing before signing up exposes nothing of any customer. The routes are
limited per client address instead (public_read_limit_per_source); everything that spends or
shows a customer's money still needs a key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.common import FullMatch
from services.common._chain import ChainUnavailable
from services.customer_api.api.deps import SeedsDep
from services.customer_api.api.ratelimit import PUBLIC_READ_LIMITS
from services.customer_api.api.responses import errors
from services.customer_api.errors import ApiError
from services.customer_api.models import U128_MAX, OfferPublic, OfferSort, OffersPublic
from services.customer_api.offers.index import OfferQuery

router = APIRouter(prefix="/offers", tags=["offers"])
LabelFilter = Annotated[str, FullMatch(r"[^=\x00-\x1f]{1,128}=[^\x00-\x1f]{0,256}", "key=value")]


@router.get(
    "",
    response_model=OffersPublic,
    responses=errors(422, 429, 503),
    dependencies=PUBLIC_READ_LIMITS,
)
def search_offers(
    offers: SeedsDep,
    gpu_model: Annotated[
        str | None, Query(max_length=128, description="Part of the GPU model name, any case.")
    ] = None,
    min_gpus: Annotated[int | None, Query(ge=1, le=64, description="Free GPUs at least.")] = None,
    min_memory_mib: Annotated[int | None, Query(ge=0, le=2**40)] = None,
    max_price_per_gpu_block: Annotated[
        int | None, Query(ge=0, le=U128_MAX, description="Price ceiling per GPU per block.")
    ] = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    label: Annotated[
        list[LabelFilter], Query(max_length=16, description="key=value, repeatable.")
    ] = [],  # noqa: B006 - FastAPI copies query defaults
    sort: OfferSort = OfferSort.PRICE_ASC,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OffersPublic:
    """Offers matching every filter, cheapest first (or dearest with sort=price_desc). When
    nothing matches, `no_match` says how many offers each filter excluded and shows the nearest."""
    query = OfferQuery(
        gpu_model=gpu_model,
        min_gpus=min_gpus,
        min_memory_mib=min_memory_mib,
        max_price=max_price_per_gpu_block,
        region=region,
        labels=dict(item.split("=", 1) for item in label),
        descending=sort == OfferSort.PRICE_DESC,
        offset=offset,
        limit=limit,
    )
    try:
        result = offers.search(query)
    except ChainUnavailable as exc:
        raise ApiError(503, "Chain unavailable") from exc
    return offers.public(result, query)


@router.get(
    "/{machine_id}",
    response_model=OfferPublic,
    responses=errors(404, 422, 429, 503),
    dependencies=PUBLIC_READ_LIMITS,
)
def read_offer(
    offers: SeedsDep,
    machine_id: Annotated[str, FullMatch(r"0x[0-9a-f]{64}"), Path()],
) -> OfferPublic:
    try:
        found = offers.one(bytes.fromhex(machine_id[2:]))
    except ChainUnavailable as exc:
        raise ApiError(503, "Chain unavailable") from exc
    if found is None:
        raise ApiError(404, "Offer not found")
    return found
