"""Dependencies as Annotated aliases: the shared runtime, a database session per request, the
authenticated customer, the chain, the offers (seeds) and the lease operations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from services.customer_api import crud
from services.customer_api.chain import ChainGateway
from services.customer_api.errors import ApiError
from services.customer_api.leasing import Leasing
from services.customer_api.models import Customer
from services.customer_api.offers.search import OfferSearch
from services.customer_api.runtime import Runtime

__all__ = [
    "ChainDep",
    "CurrentCustomer",
    "LeasingDep",
    "RuntimeDep",
    "SeedsDep",
    "SessionDep",
    "get_current_customer",
    "get_db",
]

_bearer = HTTPBearer(auto_error=False, description="An API key from sign-up: `Bearer glk_...`")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_db(runtime: RuntimeDep) -> Iterator[Session]:
    with Session(runtime.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
TokenDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_current_customer(session: SessionDep, runtime: RuntimeDep, token: TokenDep) -> Customer:
    if token is None:
        raise ApiError(401, "Not authenticated")
    customer = crud.customer_by_api_key(
        session=session,
        api_key=token.credentials,
        server_secret=runtime.settings.server_secret.get_secret_value(),
    )
    if customer is None:
        raise ApiError(401, "Invalid API key")
    return customer


CurrentCustomer = Annotated[Customer, Depends(get_current_customer)]


def get_chain(runtime: RuntimeDep) -> ChainGateway:
    return runtime.chain


ChainDep = Annotated[ChainGateway, Depends(get_chain)]


def get_offers(runtime: RuntimeDep) -> OfferSearch:
    """The offer search, refused (503) when the seeds have been out of reach too long."""
    if not runtime.watcher.fresh(runtime.settings.offers_stale_after_s):
        raise ApiError(503, "Seeds unavailable")
    return runtime.search


SeedsDep = Annotated[OfferSearch, Depends(get_offers)]


def get_leasing(session: SessionDep, customer: CurrentCustomer, runtime: RuntimeDep) -> Leasing:
    return Leasing(
        session=session,
        customer=customer,
        chain=runtime.chain,
        custody=runtime.custody,
        offers=runtime.index,
        nodes=runtime.nodes,
        indexer=runtime.indexer,
    )


LeasingDep = Annotated[Leasing, Depends(get_leasing)]
