"""Sign-up and API keys."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.customer_api import crud
from services.customer_api.api.deps import CurrentCustomer, RuntimeDep, SessionDep
from services.customer_api.api.ratelimit import SIGNUP_LIMITS, WRITE_LIMITS
from services.customer_api.api.responses import errors
from services.customer_api.errors import ApiError
from services.customer_api.models import (
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeysPublic,
    CustomerPublic,
    Signup,
    SignupCreate,
)

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/signup",
    response_model=Signup,
    status_code=201,
    responses=errors(400, 422, 429),
    dependencies=SIGNUP_LIMITS,
)
def signup(body: SignupCreate, session: SessionDep, runtime: RuntimeDep) -> Signup:
    """Create a customer with a custodial chain account. The API key is shown only here.
    Rate limited per client address."""
    customer, api_key = crud.create_customer(
        session=session,
        name=body.name,
        custody=runtime.custody,
        server_secret=runtime.settings.server_secret.get_secret_value(),
    )
    return Signup(customer=CustomerPublic.model_validate(customer), api_key=api_key)


@router.get("/me", response_model=CustomerPublic, responses=errors(401))
def read_me(customer: CurrentCustomer) -> CustomerPublic:
    return CustomerPublic.model_validate(customer)


@router.get("/keys", response_model=ApiKeysPublic, responses=errors(401))
def list_keys(session: SessionDep, customer: CurrentCustomer) -> ApiKeysPublic:
    keys = crud.list_api_keys(session=session, customer=customer)
    return ApiKeysPublic(data=[ApiKeyPublic.model_validate(k) for k in keys], count=len(keys))


@router.post(
    "/keys",
    response_model=ApiKeyCreated,
    status_code=201,
    responses=errors(401, 429),
    dependencies=WRITE_LIMITS,
)
def create_key(
    session: SessionDep, customer: CurrentCustomer, runtime: RuntimeDep
) -> ApiKeyCreated:
    """Another API key for the same customer; shown only here."""
    key, plain = crud.create_api_key(
        session=session,
        customer=customer,
        server_secret=runtime.settings.server_secret.get_secret_value(),
    )
    return ApiKeyCreated(**ApiKeyPublic.model_validate(key).model_dump(), api_key=plain)


@router.delete(
    "/keys/{key_id}",
    response_model=ApiKeyPublic,
    responses=errors(401, 404, 422, 429),
    dependencies=WRITE_LIMITS,
)
def revoke_key(key_id: uuid.UUID, session: SessionDep, customer: CurrentCustomer) -> ApiKeyPublic:
    key = crud.revoke_api_key(session=session, customer=customer, key_id=key_id)
    if key is None:
        raise ApiError(404, "API key not found")
    return ApiKeyPublic.model_validate(key)
