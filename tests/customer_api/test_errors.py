"""The API's answer to each kind of chain failure: named by the chain's error, never a bare
'Chain refused the call' when the chain said why, and 503 with Retry-After when out of reach."""

from __future__ import annotations

import pytest

from services.common import (
    TOKEN_UNIT,
    ChainError,
    ChainUnavailable,
    ExtrinsicFailed,
    InvalidCallArgument,
    SubmitOutcomeUnknown,
)
from services.common._chain import pool_rejection
from services.customer_api.errors import ApiError, from_chain_error, from_extrinsic_failed

ED = TOKEN_UNIT // 1000


def _below_minimum(name: str = "BelowMinimum") -> ExtrinsicFailed:
    failure = ExtrinsicFailed(name, "", "Token")
    failure.details["minimum"] = ED
    return failure


@pytest.mark.parametrize("name", ["BelowMinimum", "NotExpendable"])
def test_below_existential_deposit_names_cause_and_minimum(name: str) -> None:
    error = from_extrinsic_failed(_below_minimum(name))
    assert error.status_code == 422 and error.code == name
    assert "existential deposit" in error.detail
    assert str(ED) in error.detail and "0.001 tokens" in error.detail


@pytest.mark.parametrize(
    ("failure", "status", "detail"),
    [
        (ExtrinsicFailed("FundsUnavailable", "", "Token"), 402, "Insufficient funds"),
        (ExtrinsicFailed("Frozen", "", "Token"), 409, "Funds frozen on chain"),
        (ExtrinsicFailed("Overflow", "", "Arithmetic"), 422, "Amount too large"),
        (ExtrinsicFailed("Underflow", "", "Arithmetic"), 402, "Insufficient funds"),
        (ExtrinsicFailed("BadOrigin", "", "System"), 403, "Not allowed by the chain"),
        (ExtrinsicFailed("NotEnoughFreeGpus", "", "GpuRental"), 409, "Not enough free GPUs"),
        (ExtrinsicFailed("CustomerIsProvider", "", "GpuRental"), 409,
         "A provider cannot lease its own machine"),
        (ExtrinsicFailed("LeaseServed", "", "GpuRental"), 409,
         "Lease was served to its end: no downtime to report"),
        (ExtrinsicFailed("InsufficientBalance", "", "GpuRental"), 402, "Insufficient funds"),
        (pool_rejection({"invalid": {"payment": None}}), 402,
         "Insufficient funds for the transaction fee"),
        (pool_rejection({"invalid": {"stale": None}}), 503,
         "Account busy: nonce taken by another transaction"),
        (ExtrinsicFailed("SomethingNew", "", "GpuRental"), 409, "Chain refused the call"),
    ],
)
def test_chain_failures_map_by_name(failure: ExtrinsicFailed, status: int, detail: str) -> None:
    error = from_extrinsic_failed(failure)
    assert (error.status_code, error.detail, error.code) == (status, detail, failure.name)


def test_a_token_error_is_not_taken_for_a_pallet_error_of_the_same_name() -> None:
    # Arithmetic.Overflow and GpuRental.Overflow share a name, not a module.
    assert from_extrinsic_failed(ExtrinsicFailed("Overflow", "", "GpuRental")).status_code == 422
    assert from_extrinsic_failed(ExtrinsicFailed("LeaseNotFound", "", "Token")).detail == (
        "Chain refused the call"
    )


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ChainUnavailable("gone"), 503, "ChainUnavailable"),
        (SubmitOutcomeUnknown("lost", extrinsic_hash="0x1"), 503, "SubmitOutcomeUnknown"),
        (ChainError("odd answer"), 503, "ChainError"),
        (InvalidCallArgument("GpuRental.create_lease", "gpus", "out of range"), 422, "gpus"),
    ],
)
def test_every_chain_error_is_an_api_error(exc: ChainError, status: int, code: str) -> None:
    error = from_chain_error(exc)
    assert (error.status_code, error.code) == (status, code)
    if status == 503:
        assert int(error.headers["Retry-After"]) >= 1


def test_unavailable_always_says_when_to_retry() -> None:
    assert ApiError(503, "Seeds unavailable").headers["Retry-After"]
    assert "Retry-After" not in ApiError(409, "x").headers
    assert ApiError(503, "x", headers={"Retry-After": "9"}).headers["Retry-After"] == "9"
