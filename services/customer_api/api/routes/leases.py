"""Leases: create (idempotent with Idempotency-Key), list, read, extend, terminate, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from services.common import EncodingError
from services.customer_api import crud
from services.customer_api.api.deps import CurrentCustomer, LeasingDep, SessionDep
from services.customer_api.errors import ApiError
from services.customer_api.leasing import to_public
from services.customer_api.models import (
    ErrorPublic,
    LeaseCreate,
    LeaseExtend,
    LeasePublic,
    LeaseRecord,
    LeasesPublic,
    LeaseState,
)

router = APIRouter(prefix="/leases", tags=["leases"])
_ERRORS = {code: {"model": ErrorPublic} for code in (401, 402, 404, 409, 503)}
LeaseId = Annotated[int, Path(ge=0, le=2**63 - 1, description="Lease id assigned by the chain.")]


def _own(leasing: LeasingDep, lease_id: int) -> LeaseRecord:
    record = crud.lease_by_chain_id(
        session=leasing.session, lease_id=lease_id, customer=leasing.customer
    )
    if record is None:
        raise ApiError(404, "Lease not found")
    return record


@router.post("", response_model=LeasePublic, status_code=201, responses=_ERRORS)
def create_lease(
    body: LeaseCreate,
    leasing: LeasingDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Retrying with the same key and body returns the same lease, unpaid twice.",
        ),
    ] = None,
) -> LeasePublic:
    """Lease GPUs of a machine (the offer's machine_id). Holds the price in escrow on chain and
    hands the workload spec to the node."""
    try:
        record, created = leasing.create(body, idempotency_key)
    except EncodingError as exc:
        raise ApiError(422, "Spec not encodable") from exc
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return leasing.public(record)


@router.get("", response_model=LeasesPublic, responses=_ERRORS)
def list_leases(
    session: SessionDep,
    customer: CurrentCustomer,
    state: LeaseState | None = None,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> LeasesPublic:
    """This customer's leases, newest first."""
    rows, count = crud.list_leases(
        session=session, customer=customer, skip=skip, limit=limit, state=state
    )
    return LeasesPublic(data=[to_public(r) for r in rows], count=count)


@router.get("/{lease_id}", response_model=LeasePublic, responses=_ERRORS)
def read_lease(lease_id: LeaseId, leasing: LeasingDep) -> LeasePublic:
    """One lease: its state from the chain, and once running the node's connection details."""
    record = leasing.refresh(_own(leasing, lease_id))
    return leasing.public(record, with_connection=True)


@router.post("/{lease_id}/extend", response_model=LeasePublic, responses=_ERRORS)
def extend_lease(lease_id: LeaseId, body: LeaseExtend, leasing: LeasingDep) -> LeasePublic:
    """Buy more blocks at the lease's price (more escrow)."""
    return leasing.public(leasing.extend(_own(leasing, lease_id), body.extra_blocks))


@router.post("/{lease_id}/terminate", response_model=LeasePublic, responses=_ERRORS)
def terminate_lease(lease_id: LeaseId, leasing: LeasingDep) -> LeasePublic:
    """End now: what accrued is paid, the rest refunded (a pending lease is refunded fully)."""
    return leasing.public(leasing.terminate(_own(leasing, lease_id)))


@router.post("/{lease_id}/cancel", response_model=LeasePublic, responses=_ERRORS)
def cancel_lease(lease_id: LeaseId, leasing: LeasingDep) -> LeasePublic:
    """Cancel before the start, with a full refund."""
    return leasing.public(leasing.cancel(_own(leasing, lease_id)))


@router.post("/{lease_id}/report", response_model=LeasePublic, responses=_ERRORS)
def report_downtime(lease_id: LeaseId, leasing: LeasingDep) -> LeasePublic:
    """Report that the machine stopped heartbeating: the lease ends as failed, the unpaid part
    is refunded and a share of the provider's bond compensates you. Refused (409, code
    `MachineNotStale`) while the machine is still up."""
    return leasing.public(leasing.report_downtime(_own(leasing, lease_id)))
