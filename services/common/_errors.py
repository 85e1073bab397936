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
    └── Unavailable                     UNAVAILABLE: no endpoint answered

`reason` is a short snake_case constant used in gRPC trailers and metric labels; the message
is for people.
"""

from __future__ import annotations

import grpc

__all__ = [
    "BadSignature",
    "ConfigError",
    "DuplicateSequence",
    "EncodingError",
    "GridleaseError",
    "MalformedMessage",
    "MessageTooLarge",
    "NotFound",
    "RejectedError",
    "StaleSequence",
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


class Unavailable(GridleaseError):
    reason = "unavailable"
    code = grpc.StatusCode.UNAVAILABLE
