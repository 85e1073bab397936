"""gRPC plumbing shared by the services: server options, health, and error-to-status mapping."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common import _errors
from services.common._errors import GridleaseError, RejectedError

__all__ = [
    "REASON_KEY",
    "abort_with",
    "add_health",
    "error_from_rpc",
    "reason_of",
    "server_options",
    "set_serving",
]

# Trailing-metadata key carrying GridleaseError.reason, so clients can branch without parsing text.
REASON_KEY = "gridlease-reason"


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Channel options capping what a server accepts; gRPC refuses bigger messages itself
    (RESOURCE_EXHAUSTED) before any of our code runs."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ]


def add_health(server: grpc.aio.Server) -> health.aio.HealthServicer:
    """Register grpc.health.v1 on server; mark services with set_serving once they are ready."""
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


async def set_serving(servicer: health.aio.HealthServicer, *service_names: str, up: bool) -> None:
    """Mark the whole server ("") and each service SERVING or NOT_SERVING."""
    status = (
        health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", *service_names):
        await servicer.set(name, status)


async def abort_with(context: grpc.aio.ServicerContext, error: GridleaseError) -> None:
    """End the RPC with error's status code, message and reason trailer (raises)."""
    context.set_trailing_metadata(((REASON_KEY, error.reason),))
    await context.abort(error.code, f"{error.reason}: {error.message}")


def reason_of(error: grpc.RpcError) -> str | None:
    """The gridlease-reason trailer of a failed call, if the server set one."""
    trailers = getattr(error, "trailing_metadata", lambda: None)()
    for key, value in trailers or ():
        if key == REASON_KEY:
            return str(value)
    return None


def _error_classes() -> dict[str, type[GridleaseError]]:
    classes = (getattr(_errors, name) for name in _errors.__all__)
    return {cls.reason: cls for cls in classes if issubclass(cls, GridleaseError)}


_BY_REASON = _error_classes()
_BY_CODE: dict[grpc.StatusCode, type[GridleaseError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: RejectedError,
    grpc.StatusCode.FAILED_PRECONDITION: RejectedError,
    grpc.StatusCode.ALREADY_EXISTS: _errors.DuplicateSequence,
    grpc.StatusCode.NOT_FOUND: _errors.NotFound,
    grpc.StatusCode.UNAVAILABLE: _errors.Unavailable,
}


def error_from_rpc(error: grpc.aio.AioRpcError) -> GridleaseError:
    """The GridleaseError a failed call stands for: by reason trailer, else by status code.
    The original reason is kept even when only the broader class is known."""
    reason = reason_of(error)
    cls = _BY_REASON.get(reason or "") or _BY_CODE.get(error.code(), GridleaseError)
    exc = cls(error.details() or error.code().name, reason=reason)
    exc.code = error.code()
    return exc
