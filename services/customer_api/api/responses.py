"""The documented refusals of every route, in one place, so the OpenAPI document says what the
handlers in services.customer_api.main really send:

    400  malformed JSON body                      ErrorPublic (code MalformedJson)
    401  no or unknown API key                    ErrorPublic
    402, 403, 404, 409                            ErrorPublic (code: the condition / chain error)
    422  a value is refused                        ValidationErrorsPublic (one shape, always)
    429  over a rate limit                        ErrorPublic (code RateLimited) + Retry-After
    502  a GPU node refused a request it should take   ErrorPublic (code NodeRefused)
    503  chain, seeds or a node unavailable       ErrorPublic (+ Retry-After when known)
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from services.customer_api.models import ErrorPublic, ValidationErrorsPublic

__all__ = ["REPLAYED", "errors", "refuse"]

_DESCRIPTIONS = {
    400: "Malformed request body (not JSON, not UTF-8).",
    401: "No API key, or one that is unknown or revoked.",
    402: "The account cannot pay (escrow or transaction fee).",
    403: "Not allowed here (e.g. the faucet outside dev mode).",
    404: "No such resource for this customer.",
    409: "Refused in the current state (the chain's error name is in `code`).",
    422: "A value is refused; `detail` lists each field and why.",
    429: "Too many requests from this address or account; retry after Retry-After seconds.",
    502: "The lease's GPU node refused the request (see `code`).",
    503: "The chain, the seeds or the lease's GPU node cannot be reached just now.",
}
_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 1},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may refuse with these statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "model": ValidationErrorsPublic if code == 422 else ErrorPublic,
            "description": _DESCRIPTIONS[code],
        }
        if code == 429:
            entry["headers"] = {"Retry-After": {**_RETRY_AFTER, "required": True}}
        elif code == 503:
            entry["headers"] = {"Retry-After": _RETRY_AFTER}
        out[code] = entry
    return out


# The 200 of an idempotent replay (POST /leases with an Idempotency-Key already used).
REPLAYED: dict[str, Any] = {
    "description": "Replay of an earlier request with the same Idempotency-Key and body: the "
    "same lease, not paid again.",
    "headers": {
        "Idempotent-Replayed": {
            "description": "Always `true`.",
            "schema": {"type": "string", "enum": ["true"]},
            "required": True,
        }
    },
}


def refuse(fields: dict[str, tuple[str, Any]], kind: str = "value_error") -> RequestValidationError:
    """The 422 for body fields a route refuses, {field: (why, value)}, in the shape of a schema
    violation; `kind` is the errors' type."""
    return RequestValidationError(
        [
            {"type": kind, "loc": ("body", field), "msg": why, "input": value}
            for field, (why, value) in fields.items()
        ]
    )
