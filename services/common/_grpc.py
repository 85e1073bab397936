"""gRPC plumbing shared by the services: channel and server options (message caps, keepalive),
the guard every server installs, health, and error-to-status mapping.

Keepalive is what lets a caller notice a peer that is up at the TCP level but answers nothing
(a process stopped with SIGSTOP, a host that vanished without a FIN): the client pings every
KEEPALIVE_TIME_S and drops the connection (UNAVAILABLE) when the ack takes longer than
KEEPALIVE_TIMEOUT_S, so every call and stream on it fails over instead of waiting for minutes.
Unary calls carry their own deadline on top of that (the callers pass `timeout=`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common import _errors
from services.common._errors import GridleaseError, MalformedMessage, RejectedError
from services.common._logging import get_logger

__all__ = [
    "KEEPALIVE_TIMEOUT_S",
    "KEEPALIVE_TIME_S",
    "REASON_KEY",
    "GuardInterceptor",
    "abort_with",
    "add_health",
    "channel_options",
    "error_from_rpc",
    "new_server",
    "reason_of",
    "server_options",
    "set_serving",
]

log = get_logger(__name__)

if TYPE_CHECKING:
    # grpc-stubs makes these generic over (request, response); at runtime they take no arguments.
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor

# Trailing-metadata key carrying GridleaseError.reason, so clients can branch without parsing text.
REASON_KEY = "gridlease-reason"

# A peer that does not ack a ping within KEEPALIVE_TIME_S + KEEPALIVE_TIMEOUT_S (8 s) is dropped.
KEEPALIVE_TIME_S = 5.0
KEEPALIVE_TIMEOUT_S = 3.0
# Servers accept pings this often (below the clients' KEEPALIVE_TIME_S, so a client is never
# sent GOAWAY "too_many_pings"), and ping their own clients less often, to free streams of
# clients that vanished.
_SERVER_MIN_PING_INTERVAL_S = 4.0
_SERVER_KEEPALIVE_TIME_S = 20.0
_SERVER_KEEPALIVE_TIMEOUT_S = 10.0


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def channel_options(
    max_receive_bytes: int = 16 * 1024 * 1024, *, max_reconnect_backoff_s: float = 5.0
) -> list[tuple[str, int]]:
    """Options for every client channel: a receive cap, keepalive pings (also while only a
    stream is open and the client sends nothing), and a short reconnect backoff so a peer that
    comes back is used again within seconds rather than after gRPC's default two minutes."""
    return [
        ("grpc.max_receive_message_length", max_receive_bytes),
        ("grpc.keepalive_time_ms", _ms(KEEPALIVE_TIME_S)),
        ("grpc.keepalive_timeout_ms", _ms(KEEPALIVE_TIMEOUT_S)),
        # gRPC core (1.6x) times keepalive pings out after this, not after keepalive_timeout_ms
        # (default 60 s): without it a stopped peer is noticed after a minute, not seconds.
        ("grpc.http2.ping_timeout_ms", _ms(KEEPALIVE_TIMEOUT_S)),
        ("grpc.keepalive_permit_without_calls", 1),
        # Default 2: the client would stop pinging on a stream where only the server sends.
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", _ms(max_reconnect_backoff_s)),
    ]


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Options for every server: a cap on what it accepts (gRPC refuses bigger messages itself,
    RESOURCE_EXHAUSTED, before any of our code runs) and the keepalive policy that matches
    channel_options."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.keepalive_time_ms", _ms(_SERVER_KEEPALIVE_TIME_S)),
        ("grpc.keepalive_timeout_ms", _ms(_SERVER_KEEPALIVE_TIMEOUT_S)),
        ("grpc.http2.ping_timeout_ms", _ms(_SERVER_KEEPALIVE_TIMEOUT_S)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(_SERVER_MIN_PING_INTERVAL_S)),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def new_server(max_message_bytes: int) -> grpc.aio.Server:
    """An asyncio gRPC server with server_options and the GuardInterceptor."""
    return grpc.aio.server(
        options=server_options(max_message_bytes), interceptors=[GuardInterceptor()]
    )


class _Undecodable:
    """Stands in for a request whose bytes did not decode, so the handler can answer
    INVALID_ARGUMENT (gRPC itself would answer UNKNOWN with the Python exception's text)."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    def run(data: bytes) -> Any:
        if deserialize is None:
            return data
        try:
            return deserialize(data)
        except Exception as exc:  # noqa: BLE001 - any decode failure is the caller's input
            return _Undecodable(f"{type(exc).__name__}: {exc}"[:200])

    return run


async def _answer(context: grpc.aio.ServicerContext[Any, Any], method: str, exc: Exception) -> None:
    """Abort the RPC for an exception that escaped its handler (raises AbortError)."""
    if isinstance(exc, GridleaseError):
        await abort_with(context, exc)
    log.error("grpc.handler_failed", extra={"method": method}, exc_info=exc)
    await abort_with(context, GridleaseError("internal error", reason="internal"))


def _guard_unary(
    behavior: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]], method: str
) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]:
    async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, _Undecodable):
            await abort_with(context, MalformedMessage(f"request does not decode: {request.error}"))
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - the guard: named answer, logged traceback
            await _answer(context, method, exc)

    return run


def _guard_stream(
    behavior: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any], method: str
) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]:
    if not inspect.isasyncgenfunction(behavior):
        # A coroutine that writes with context.write (e.g. the health service's Watch).
        return _guard_unary(behavior, method)

    async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        if isinstance(request, _Undecodable):
            await abort_with(context, MalformedMessage(f"request does not decode: {request.error}"))
        try:
            async for item in behavior(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - the guard: named answer, logged traceback
            await _answer(context, method, exc)

    return run


class GuardInterceptor(_ServerInterceptor):
    """Installed on every server (new_server). A request that does not decode is answered
    INVALID_ARGUMENT (reason "malformed"); a GridleaseError escaping a handler is answered with
    its status and reason; any other exception is logged with its traceback and answered
    INTERNAL (reason "internal"), never as UNKNOWN with the exception's text."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = cast(Any, await continuation(handler_call_details))
        if handler is None or handler.request_streaming:  # no client-streaming methods here
            return cast("grpc.RpcMethodHandler[Any, Any]", handler)
        method = str(handler_call_details.method)
        deserialize = _safe_deserializer(handler.request_deserializer)
        if handler.response_streaming:
            guarded = handler._replace(
                request_deserializer=deserialize,
                unary_stream=_guard_stream(handler.unary_stream, method),
            )
        else:
            guarded = handler._replace(
                request_deserializer=deserialize,
                unary_unary=_guard_unary(handler.unary_unary, method),
            )
        return cast("grpc.RpcMethodHandler[Any, Any]", guarded)


class HealthServicer(Protocol):
    """What this module uses of grpc_health's asyncio servicer (`health.aio.HealthServicer`),
    which grpc-stubs does not describe (it only has the threaded one)."""

    async def set(self, service: str, status: int) -> None:
        """Set service's status (a health_pb2.HealthCheckResponse.ServingStatus value)."""


def add_health(server: grpc.aio.Server) -> HealthServicer:
    """Register grpc.health.v1 on server; mark services with set_serving once they are ready."""
    servicer: HealthServicer = health.aio.HealthServicer()  # type: ignore[attr-defined]  # no stub
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


async def set_serving(servicer: HealthServicer, *service_names: str, up: bool) -> None:
    """Mark the whole server ("") and each service SERVING or NOT_SERVING."""
    status = (
        health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", *service_names):
        await servicer.set(name, status)


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: GridleaseError) -> None:
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


def _rebuildable(cls: type[GridleaseError]) -> bool:
    """Whether cls can be made from (message, reason=...) alone; errors that need more (an
    extrinsic hash, a pallet error name) are rebuilt as their nearest plain ancestor."""
    try:
        inspect.signature(cls).bind("message", reason="reason")
    except TypeError:
        return False
    return True


def _error_classes() -> dict[str, type[GridleaseError]]:
    classes = (getattr(_errors, name) for name in _errors.__all__)
    return {
        cls.reason: cls
        for cls in classes
        if isinstance(cls, type) and issubclass(cls, GridleaseError) and _rebuildable(cls)
    }


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
