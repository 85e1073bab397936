"""Error tree and the mapping of failed RPCs back onto it."""

from __future__ import annotations

import grpc
import pytest

from services.common import (
    REASON_KEY,
    BadSignature,
    DuplicateSequence,
    GridleaseError,
    MalformedMessage,
    RejectedError,
    Unavailable,
    error_from_rpc,
)


def _rpc_error(code: grpc.StatusCode, reason: str | None) -> grpc.aio.AioRpcError:
    trailers = grpc.aio.Metadata((REASON_KEY, reason)) if reason else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, details="because")


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "bad_signature", BadSignature),
        (grpc.StatusCode.ALREADY_EXISTS, "duplicate_sequence", DuplicateSequence),
        (grpc.StatusCode.INVALID_ARGUMENT, "not_canonical", RejectedError),
        (grpc.StatusCode.UNAVAILABLE, None, Unavailable),
        (grpc.StatusCode.INTERNAL, None, GridleaseError),
    ],
)
def test_map_rpc_error_to_tree(
    code: grpc.StatusCode, reason: str | None, expected: type[GridleaseError]
) -> None:
    error = error_from_rpc(_rpc_error(code, reason))
    assert type(error) is expected
    assert error.code == code
    if reason:
        assert error.reason == reason


def test_rejections_share_one_base() -> None:
    assert issubclass(MalformedMessage, RejectedError)
    assert issubclass(RejectedError, GridleaseError)
    assert MalformedMessage("x", reason="not_canonical").reason == "not_canonical"
    assert MalformedMessage("x").reason == "malformed"
