"""The API's refusals: ApiError(status, detail, code), one fixed detail per condition, and the
mapping from the chain's pallet errors (the code carries the pallet's error name)."""

from __future__ import annotations

from services.common._chain import ExtrinsicFailed

__all__ = ["ApiError", "from_extrinsic_failed"]


class ApiError(Exception):
    def __init__(self, status_code: int, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.code = code


# Pallet error name -> (HTTP status, fixed detail).
_CHAIN_ERRORS: dict[str, tuple[int, str]] = {
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
    "StartWindowPassed": (409, "Start window passed"),
    "MachineNotStale": (409, "Machine still heartbeating"),
}


def from_extrinsic_failed(exc: ExtrinsicFailed) -> ApiError:
    """The refusal for a call the chain failed; unknown names are a 409 with the name kept."""
    if exc.name == "Invalid" and "pay" in exc.docs.lower():
        # Refused by the pool: the account cannot pay the transaction fee.
        return ApiError(402, "Insufficient funds", "Invalid")
    status, detail = _CHAIN_ERRORS.get(exc.name, (409, "Chain refused the call"))
    return ApiError(status, detail, exc.name)
