"""Leases: create (idempotent with Idempotency-Key), list, read, extend, terminate, cancel, and
the lease's GPUs as its node reports them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from services.common import EncodingError, FullMatch, lease_share
from services.customer_api import crud
from services.customer_api.api.deps import CurrentCustomer, LeasingDep, RuntimeDep, SessionDep
from services.customer_api.api.ratelimit import WRITE_LIMITS
from services.customer_api.api.responses import REPLAYED, errors, refuse
from services.customer_api.errors import ApiError
from services.customer_api.leasing import to_public
from services.customer_api.models import (
    MAX_LEASE_BLOCKS,
    LeaseCreate,
    LeaseExtend,
    LeaseGpusPublic,
    LeasePublic,
    LeaseRecord,
    LeasesPublic,
    LeaseState,
)
from services.customer_api.offers.index import OfferIndex

router = APIRouter(prefix="/leases", tags=["leases"])
_CHANGE_ERRORS = errors(401, 402, 404, 409, 422, 429, 503)
LeaseId = Annotated[int, Path(ge=0, le=2**63 - 1, description="Lease id assigned by the chain.")]
IdempotencyKey = Annotated[
    Annotated[str, FullMatch(r"[\x21-\x7e]{1,255}")] | None,
    Header(
        min_length=1,
        max_length=255,
        description="Retrying with the same key and body returns the same lease, unpaid twice.",
    ),
]


def _own(leasing: LeasingDep, lease_id: int) -> LeaseRecord:
    record = crud.lease_by_chain_id(
        session=leasing.session, lease_id=lease_id, customer=leasing.customer
    )
    if record is None:
        raise ApiError(404, "Lease not found")
    return record


def _check_share(body: LeaseCreate, index: OfferIndex) -> None:
    """422 when the spec asks more CPU or memory than the lease's share of the machine (its
    offer says what the host has). Unknown machine, or GPUs beyond the offer: the chain decides
    (404 / 409), so nothing is checked here."""
    held = index.get(bytes.fromhex(body.machine_id[2:]))
    if held is None or held[0].host is None or not 1 <= body.gpus <= held[0].gpu_count:
        return
    share = lease_share(held[0].host, body.gpus, held[0].gpu_count)
    beyond = body.beyond_share(share)
    if beyond:
        raise refuse(
            {field: (why, getattr(body, field)) for field, why in beyond.items()}, "beyond_share"
        )


@router.post(
    "",
    response_model=LeasePublic,
    status_code=201,
    responses={
        200: {"model": LeasePublic, **REPLAYED},
        **errors(400, 401, 402, 404, 409, 422, 429, 503),
    },
    dependencies=WRITE_LIMITS,
)
def create_lease(
    body: LeaseCreate,
    leasing: LeasingDep,
    runtime: RuntimeDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> LeasePublic:
    """Lease GPUs of a machine (the offer's machine_id). The spec is checked first as the node
    will check it, and against the lease's share of the machine's CPU and memory (422); then the
    price is held in escrow on chain and the spec handed to the node."""
    replay = idempotency_key is not None and (
        crud.lease_by_idempotency_key(
            session=leasing.session, customer=leasing.customer, idempotency_key=idempotency_key
        )
        is not None
    )
    if not replay:  # a replay answers what the first request got, whatever the offer says now
        _check_share(body, runtime.index)
    try:
        record, created = leasing.create(body, idempotency_key)
    except EncodingError as exc:
        raise ApiError(422, "Spec not encodable") from exc
    if created:
        runtime.metrics.leases_created.inc()
        # The request's own attempt to hand over the spec (the retries count in workers.py).
        runtime.metrics.deliveries.labels(record.delivery_state.value).inc()
    else:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return leasing.public(record)


@router.get("", response_model=LeasesPublic, responses=errors(401, 422))
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


@router.get("/{lease_id}", response_model=LeasePublic, responses=errors(401, 404, 422, 503))
def read_lease(lease_id: LeaseId, leasing: LeasingDep) -> LeasePublic:
    """One lease: its state from the chain, and once running the node's connection details."""
    record = leasing.refresh(_own(leasing, lease_id))
    return leasing.public(record, with_connection=True)


@router.get(
    "/{lease_id}/gpus",
    response_model=LeaseGpusPublic,
    responses=errors(401, 404, 409, 422, 502, 503),
)
def read_lease_gpus(lease_id: LeaseId, leasing: LeasingDep) -> LeaseGpusPublic:
    """The lease's GPUs as its node reports them: per GPU the latest utilisation, memory,
    temperature and power, XID count and health, and a short history (readings every
    `sample_interval_ms`, at most `history_limit`). Only the lease's customer sees them; the
    node checks a request signed with the customer's key. 409 once the lease ended, 503 while
    the node does not answer."""
    return leasing.gpus(_own(leasing, lease_id))


@router.post(
    "/{lease_id}/extend",
    response_model=LeasePublic,
    responses=errors(400, 401, 402, 404, 409, 422, 429, 503),
    dependencies=WRITE_LIMITS,
)
def extend_lease(lease_id: LeaseId, body: LeaseExtend, leasing: LeasingDep) -> LeasePublic:
    """Buy more blocks at the lease's price (more escrow). Refused (409, code InvalidDuration)
    when the lease's total would pass the longest lease, 30 days."""
    record = _own(leasing, lease_id)
    if record.duration_blocks + body.extra_blocks > MAX_LEASE_BLOCKS:
        # A conflict with the lease as it stands, not a bad value: checked before the chain
        # would fail the call and charge its fee.
        raise ApiError(409, "Lease would pass the longest lease", "InvalidDuration")
    try:
        return leasing.public(leasing.extend(record, body.extra_blocks))
    except ApiError as exc:
        if exc.code == "InvalidDuration":  # the index lagged behind an extension
            raise ApiError(409, "Lease would pass the longest lease", exc.code) from exc
        raise


@router.post(
    "/{lease_id}/terminate",
    response_model=LeasePublic,
    responses=_CHANGE_ERRORS,
    dependencies=WRITE_LIMITS,
)
def terminate_lease(lease_id: LeaseId, leasing: LeasingDep) -> LeasePublic:
    """End now: what accrued is paid, the rest refunded (a pending lease pays for the blocks
    its GPUs were reserved, see cancel)."""
    return leasing.public(leasing.terminate(_own(leasing, lease_id)))


@router.post(
    "/{lease_id}/cancel",
    response_model=LeasePublic,
    responses=_CHANGE_ERRORS,
    dependencies=WRITE_LIMITS,
)
def cancel_lease(lease_id: LeaseId, leasing: LeasingDep) -> LeasePublic:
    """Cancel before the start. The reservation is paid (the blocks the GPUs were held while
    the machine was up, at least one), the rest of the escrow refunded."""
    return leasing.public(leasing.cancel(_own(leasing, lease_id)))


@router.post(
    "/{lease_id}/report",
    response_model=LeasePublic,
    responses=_CHANGE_ERRORS,
    dependencies=WRITE_LIMITS,
)
def report_downtime(lease_id: LeaseId, leasing: LeasingDep) -> LeasePublic:
    """Report that the machine stopped heartbeating: the lease ends as failed, the unpaid part
    is refunded and a share of the provider's bond compensates you. Refused (409, code
    `MachineNotStale`) while the machine is still up."""
    return leasing.public(leasing.report_downtime(_own(leasing, lease_id)))
