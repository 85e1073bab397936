"""The Gridlease error tree. Every error a service raises on purpose is one of these.

    GridleaseError                      base; carries a stable `reason` string
    ├── ConfigError                     settings or key files are unusable
    ├── EncodingError                   a value has no canonical encoding (floats, non-str keys)
    ├── RejectedError                   input refused at a boundary; carries a gRPC status code
    │   ├── MalformedMessage            INVALID_ARGUMENT: does not decode, bad field values
    │   ├── UnknownFields               INVALID_ARGUMENT: fields this version does not know
    │   ├── MessageTooLarge             INVALID_ARGUMENT: over the size cap
    │   ├── BadSignature                INVALID_ARGUMENT: signature does not verify
    │   ├── StaleSequence               FAILED_PRECONDITION: older than what is held
    │   ├── DuplicateSequence           ALREADY_EXISTS: same sequence as what is held
    │   └── TimestampOutOfRange         FAILED_PRECONDITION: too far in the future or past
    ├── NotFound                        NOT_FOUND: no such object
    ├── RateLimited                     RESOURCE_EXHAUSTED: over a per-source or per-key budget
    ├── Unavailable                     UNAVAILABLE: no endpoint answered
    └── ChainError                      the chain answered with an error we cannot name better
        ├── ChainUnavailable            UNAVAILABLE: no answer (connection lost, deadline passed)
        │   └── SubmitOutcomeUnknown    sent, but whether it was included is not known yet
        ├── InvalidCallArgument         INVALID_ARGUMENT: refused by the client before encoding
        └── ExtrinsicFailed             FAILED_PRECONDITION: the chain failed or refused a call
            └── ExtrinsicRejected       refused by the transaction pool: never included, no fee

`reason` is a short snake_case constant used in gRPC trailers and metric labels; the message
is for people.
"""

from __future__ import annotations

import grpc

__all__ = [
    "BadSignature",
    "ChainError",
    "ChainUnavailable",
    "ConfigError",
    "DuplicateSequence",
    "EncodingError",
    "ExtrinsicFailed",
    "ExtrinsicRejected",
    "GridleaseError",
    "InvalidCallArgument",
    "MalformedMessage",
    "MessageTooLarge",
    "NotFound",
    "RateLimited",
    "RejectedError",
    "StaleSequence",
    "SubmitOutcomeUnknown",
    "TimestampOutOfRange",
    "Unavailable",
    "UnknownFields",
]


class GridleaseError(Exception):
    """Base of every Gridlease error."""

    reason = "error"
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.reason


class ConfigError(GridleaseError):
    reason = "config_error"
    code = grpc.StatusCode.FAILED_PRECONDITION


class EncodingError(GridleaseError):
    reason = "not_encodable"
    code = grpc.StatusCode.INVALID_ARGUMENT


class RejectedError(GridleaseError):
    """Input refused at a boundary; nothing was stored."""

    reason = "rejected"
    code = grpc.StatusCode.INVALID_ARGUMENT


class MalformedMessage(RejectedError):
    reason = "malformed"


class UnknownFields(RejectedError):
    reason = "unknown_fields"


class MessageTooLarge(RejectedError):
    reason = "too_large"


class BadSignature(RejectedError):
    reason = "bad_signature"


class StaleSequence(RejectedError):
    reason = "stale_sequence"
    code = grpc.StatusCode.FAILED_PRECONDITION


class DuplicateSequence(RejectedError):
    reason = "duplicate_sequence"
    code = grpc.StatusCode.ALREADY_EXISTS


class TimestampOutOfRange(RejectedError):
    reason = "timestamp_out_of_range"
    code = grpc.StatusCode.FAILED_PRECONDITION


class NotFound(GridleaseError):
    reason = "not_found"
    code = grpc.StatusCode.NOT_FOUND


class RateLimited(GridleaseError):
    """A source (address, key, account) sent more than its budget; retry after retry_after_s."""

    reason = "rate_limited"
    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self, message: str, *, retry_after_s: float = 1.0, reason: str | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_s = retry_after_s


class Unavailable(GridleaseError):
    reason = "unavailable"
    code = grpc.StatusCode.UNAVAILABLE


# -- the chain -------------------------------------------------------------------------------------
class ChainError(GridleaseError):
    """Something went wrong talking to the chain (an RPC error without a better name)."""

    reason = "chain_error"
    code = grpc.StatusCode.INTERNAL


class ChainUnavailable(ChainError):
    """No answer from the chain's RPC endpoint: refused, closed, or past its deadline. Nothing
    is known to have happened; reads may be retried, the client reconnects on the next call."""

    reason = "chain_unavailable"
    code = grpc.StatusCode.UNAVAILABLE


class SubmitOutcomeUnknown(ChainUnavailable):
    """A signed extrinsic was handed to the chain, then the answer was lost (connection closed
    or deadline passed before a final status). It may still be included: look for
    `extrinsic_hash` in blocks, or resubmit the same bytes (never a new signature)."""

    reason = "submit_outcome_unknown"

    def __init__(self, message: str, *, extrinsic_hash: str) -> None:
        super().__init__(message)
        self.extrinsic_hash = extrinsic_hash


class InvalidCallArgument(ChainError):
    """A call argument is outside what the chain's type can hold (`u32` above 2**32-1, a byte
    string longer than its bound, ...): refused before encoding, so nothing was sent."""

    reason = "invalid_call_argument"
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, call: str, argument: str, problem: str) -> None:
        super().__init__(f"{call}: argument {argument!r} {problem}")
        self.call = call
        self.argument = argument
        self.problem = problem


class ExtrinsicFailed(ChainError):
    """The chain refused or failed a call. `name` is the error's name: a pallet error
    (`NotEnoughFreeGpus`), a token or arithmetic error (`BelowMinimum`, `Overflow`) or a
    dispatch error (`BadOrigin`); `module` says whose (`GpuRental`, `Token`, `Arithmetic`,
    `System`, `Pool`). Included but failed calls have paid their fee. `details` holds what
    the chain client knows besides: `minimum` (the existential deposit, for `BelowMinimum` and
    `NotExpendable`), `block_number`, `fee` and `extrinsic_hash` of an included call."""

    reason = "extrinsic_failed"
    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, name: str, docs: str = "", module: str = "") -> None:
        super().__init__(f"{module + '.' if module else ''}{name}: {docs}".rstrip(": "))
        self.name = name
        self.module = module
        self.docs = docs
        self.details: dict[str, int | str] = {}


class ExtrinsicRejected(ExtrinsicFailed):
    """The transaction pool refused the extrinsic or let it go (`invalid`, `dropped`,
    `usurped`): it was never included and nothing was paid. `name` is one of `Payment`
    (cannot pay the fee), `Stale`/`Future` (nonce used / ahead), `PriorityTooLow`,
    `BadProof`, `AncientBirthBlock`, `ExhaustsResources`, `Invalid`, `Dropped`, `Usurped`,
    `Banned` or `AlreadyImported` (the very same bytes are already in the pool)."""

    reason = "extrinsic_rejected"

    def __init__(self, name: str, docs: str = "") -> None:
        super().__init__(name, docs, "Pool")

    @property
    def nonce_clash(self) -> bool:
        """Lost a race for the account's nonce: signing again with a fresh nonce may succeed."""
        return self.name in ("Stale", "PriorityTooLow", "Usurped")
