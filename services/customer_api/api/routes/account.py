"""The customer's chain account: balance, escrow, spending per lease; the dev-mode faucet."""

from __future__ import annotations

from fastapi import APIRouter

from services.common import keypair_from_secret
from services.common._chain import ChainUnavailable, ExtrinsicFailed
from services.customer_api import crud
from services.customer_api.api.deps import ChainDep, CurrentCustomer, RuntimeDep, SessionDep
from services.customer_api.api.ratelimit import FAUCET_LIMITS
from services.customer_api.api.responses import errors, refuse
from services.customer_api.errors import ApiError, from_extrinsic_failed
from services.customer_api.leasing import lease_state
from services.customer_api.models import Account, FaucetRequest, FaucetResult, LeaseSpending

router = APIRouter(prefix="/account", tags=["account"])


@router.get("", response_model=Account, responses=errors(401, 503))
def read_account(session: SessionDep, customer: CurrentCustomer, chain: ChainDep) -> Account:
    """Free balance and escrow on chain, and what each lease has cost so far."""
    try:
        balance = chain.reader.account(customer.address)
        held = chain.reader.held(customer.address, "LeaseEscrow")
    except ChainUnavailable as exc:
        raise ApiError(503, "Chain unavailable") from exc
    rows, _ = crud.list_leases(session=session, customer=customer, limit=10_000)
    leases = [
        LeaseSpending(
            lease_id=r.lease_id or 0,
            state=lease_state(r),
            escrow=r.escrow,
            spent=r.spent,
            refunded=r.refunded,
            compensation=r.compensation,
        )
        for r in rows
    ]
    return Account(
        address=customer.address,
        free=str(balance["free"]),
        held_in_escrow=str(held),
        leases=leases,
        total_spent=str(sum(int(r.spent) for r in rows)),
    )


@router.post(
    "/faucet",
    response_model=FaucetResult,
    responses=errors(400, 401, 403, 422, 429, 503),
    dependencies=FAUCET_LIMITS,
)
def faucet(
    body: FaucetRequest, customer: CurrentCustomer, chain: ChainDep, runtime: RuntimeDep
) -> FaucetResult:
    """Dev mode only: fund this account from the faucet account (//Alice by default), at most
    `faucet_max_amount` (setting) per call. Rate limited per account and per address."""
    settings = runtime.settings
    if not settings.dev_mode:
        raise ApiError(403, "Faucet disabled outside dev mode")
    amount = int(body.amount)
    if amount < 1 or amount > settings.faucet_max_amount:
        why = f"Faucet amount out of range (1 to {settings.faucet_max_amount})"
        raise refuse({"amount": (why, body.amount)}, kind="out_of_range")
    source = keypair_from_secret(settings.faucet_secret.get_secret_value())
    try:
        receipt = chain.transfer(source, customer.address, amount)
    except ExtrinsicFailed as exc:
        raise from_extrinsic_failed(exc) from exc
    except ChainUnavailable as exc:
        raise ApiError(503, "Chain unavailable") from exc
    return FaucetResult(
        address=customer.address, amount=str(amount), block_number=receipt.block_number
    )
