"""The API's refusals: ApiError(status, detail, code), one fixed detail per condition, and the
mapping from the chain's errors (the code carries the chain's error name): pallet errors,
token and arithmetic errors, pool refusals, and the chain being out of reach (503 with
Retry-After)."""

from __future__ import annotations

from services.common import (
    ChainError,
    ChainUnavailable,
    ExtrinsicFailed,
    ExtrinsicRejected,
    InvalidCallArgument,
    SubmitOutcomeUnknown,
    get_logger,
)
from services.common._chain import format_tokens

__all__ = [
    "CHAIN_RETRY_AFTER_S",
    "ApiError",
    "chain_unavailable",
    "from_chain_error",
    "from_extrinsic_failed",
]

log = get_logger(__name__)

# What a client is told to wait before retrying when the chain is out of reach: the API
# reconnects on the next request, so a short pause is enough.
CHAIN_RETRY_AFTER_S = 2


class ApiError(Exception):
    """A refusal: HTTP status, fixed detail, optional code (the chain's error name) and
    headers. 503 and 429 always carry Retry-After (seconds)."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        code: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.code = code
        self.headers = dict(headers or {})
        if status_code in (429, 503):
            self.headers.setdefault("Retry-After", str(CHAIN_RETRY_AFTER_S))


def chain_unavailable(code: str | None = "ChainUnavailable") -> ApiError:
    return ApiError(503, "Chain unavailable", code)


# Pallet error name -> (HTTP status, fixed detail).
_PALLET_ERRORS: dict[str, tuple[int, str]] = {
    "InsufficientBalance": (402, "Insufficient funds"),
    "MachineNotFound": (404, "Machine not registered on chain"),
    "MachineOffline": (409, "Machine offline"),
    "NotEnoughFreeGpus": (409, "Not enough free GPUs"),
    "PriceAboveLimit": (409, "Price above ceiling"),
    "TooManyLeases": (409, "Too many leases"),
    "ZeroGpus": (422, "Invalid GPU count"),
    "InvalidDuration": (422, "Invalid duration"),
    "Overflow": (422, "Amount too large"),
    "LeaseNotFound": (409, "Lease already ended"),
    "NotLeaseCustomer": (404, "Lease not found"),
    "LeaseAlreadyStarted": (409, "Lease already started"),
    "LeaseNotRunning": (409, "Lease not running"),
    "LeaseExpired": (409, "Lease expired"),
    "LeaseNotEnded": (409, "Lease not ended"),
    "StartWindowPassed": (409, "Start window passed"),
    "StartWindowOpen": (409, "Start window still open"),
    "MachineNotStale": (409, "Machine still heartbeating"),
    "CustomerIsProvider": (409, "A provider cannot lease its own machine"),
    "LeaseServed": (409, "Lease was served to its end: no downtime to report"),
    "LeaseIdsExhausted": (503, "Chain cannot create more leases"),
    "BlockNumberOverflow": (422, "Lease would end beyond the chain's last block"),
    "NothingToClaim": (409, "Nothing to claim"),
}

# Token and arithmetic errors (module Token / Arithmetic) -> (HTTP status, fixed detail).
# BelowMinimum and NotExpendable name the existential deposit in the detail.
_DISPATCH_ERRORS: dict[tuple[str, str], tuple[int, str]] = {
    ("Token", "FundsUnavailable"): (402, "Insufficient funds"),
    ("Token", "Frozen"): (409, "Funds frozen on chain"),
    ("Token", "Blocked"): (409, "Account blocked on chain"),
    ("Token", "CannotCreate"): (422, "Account cannot be created on chain"),
    ("Token", "OnlyProvider"): (409, "Account cannot be removed on chain"),
    ("Token", "CannotCreateHold"): (409, "Too many holds on the account"),
    ("Token", "Unsupported"): (422, "Operation not supported by the chain"),
    ("Arithmetic", "Overflow"): (422, "Amount too large"),
    ("Arithmetic", "Underflow"): (402, "Insufficient funds"),
    ("Arithmetic", "DivisionByZero"): (422, "Invalid amount"),
    ("System", "BadOrigin"): (403, "Not allowed by the chain"),
}

# Pool refusals (never included, nothing paid) -> (HTTP status, fixed detail).
_POOL_ERRORS: dict[str, tuple[int, str]] = {
    "Payment": (402, "Insufficient funds for the transaction fee"),
    "ExhaustsResources": (503, "Chain busy: block full"),
    "Dropped": (503, "Chain busy: transaction dropped"),
    "Banned": (503, "Chain refused the transaction for now"),
    "Stale": (503, "Account busy: nonce taken by another transaction"),
    "PriorityTooLow": (503, "Account busy: nonce taken by another transaction"),
    "Usurped": (503, "Account busy: nonce taken by another transaction"),
    "Future": (503, "Account busy: earlier transaction pending"),
    "AlreadyImported": (409, "Transaction already pending"),
}


def _existential_deposit_detail(exc: ExtrinsicFailed) -> str:
    minimum = exc.details.get("minimum")
    if minimum is None:
        return "Amount below the existential deposit"
    return (
        f"Amount below the existential deposit: an account must keep at least {minimum} "
        f"units ({format_tokens(int(minimum))} tokens)"
    )


def from_extrinsic_failed(exc: ExtrinsicFailed) -> ApiError:
    """The refusal for a call the chain failed or refused, by the error's name. Unknown names
    are a 409 with the name kept in the code."""
    if isinstance(exc, ExtrinsicRejected):
        status, detail = _POOL_ERRORS.get(exc.name, (409, "Chain refused the transaction"))
        return ApiError(status, detail, exc.name)
    if exc.module == "Token" and exc.name in ("BelowMinimum", "NotExpendable"):
        return ApiError(422, _existential_deposit_detail(exc), exc.name)
    known = _DISPATCH_ERRORS.get((exc.module, exc.name))
    if known is None and exc.module not in ("Token", "Arithmetic", "System", "Transactional"):
        known = _PALLET_ERRORS.get(exc.name)
    status, detail = known or (409, "Chain refused the call")
    return ApiError(status, detail, exc.name)


def from_chain_error(exc: ChainError) -> ApiError:
    """Any chain failure as a refusal: named call failures by name, bad arguments 422,
    everything else (out of reach, an answer we could not read) 503 with Retry-After."""
    if isinstance(exc, ExtrinsicFailed):
        return from_extrinsic_failed(exc)
    if isinstance(exc, InvalidCallArgument):
        return ApiError(422, "Value out of range for the chain", exc.argument)
    # Why the chain could not be used is for the operator; the client gets 503 + Retry-After.
    log.warning("api.chain_unavailable", extra={"error": str(exc)[:500], "kind": exc.reason})
    if isinstance(exc, SubmitOutcomeUnknown):
        return ApiError(503, "Chain did not confirm the call in time", "SubmitOutcomeUnknown")
    if isinstance(exc, ChainUnavailable):
        return chain_unavailable()
    return chain_unavailable("ChainError")
