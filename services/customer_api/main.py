"""Assembles the customer API: lifespan (migrations, shared runtime, background workers), error
handlers, metrics middleware and routers. No logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common import ChainError, RateLimited, decimal_range_pattern
from services.customer_api.api.main import api_router
from services.customer_api.api.ratelimit import LimitExceeded, RateLimits, retry_after_header
from services.customer_api.api.routes import health
from services.customer_api.console import mount_console
from services.customer_api.core.config import Settings
from services.customer_api.core.migrate import upgrade
from services.customer_api.errors import ApiError, from_chain_error
from services.customer_api.node_client import NodeClient
from services.customer_api.runtime import Runtime
from services.customer_api.workers import start_workers

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, nodes: NodeClient | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, nodes=nodes)
        if settings.migrate_on_startup:
            await asyncio.to_thread(upgrade, runtime.engine)
        app.state.runtime = runtime
        workers = start_workers(runtime)
        try:
            yield
        finally:
            await workers.stop()
            await runtime.close()

    app = FastAPI(
        title="Gridlease customer API",
        version="1.0.0",
        description="Search GPU offers, lease GPUs on the Gridlease chain, run workloads.",
        openapi_url=f"{settings.api_v1_str}/openapi.json",
        # Swagger UI (/docs) and ReDoc (/redoc) with their files served by the API itself, and
        # the web console (/console/): services/customer_api/console.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )

    app.state.rate_limits = RateLimits(settings)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        if exc.status_code == 422:
            # One 422 shape for the whole API (see api.responses): a refusal of a value by a
            # route or by the chain (InvalidDuration, ...) is a field error like any other.
            error = {"loc": ["body"], "msg": exc.detail, "type": exc.code or "value_error"}
            return JSONResponse({"detail": [error]}, status_code=422, headers=exc.headers)
        return JSONResponse(
            {"detail": exc.detail, "code": exc.code},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(ChainError)
    async def _chain_error(request: Request, exc: ChainError) -> JSONResponse:
        # Any chain failure a route did not name itself: never a 500 with a library's
        # exception (a dropped websocket is ChainUnavailable: 503 + Retry-After).
        return await _api_error(request, from_chain_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            # Not JSON at all is a malformed request (400), not a refused value (422).
            return JSONResponse({"detail": "Malformed JSON body", "code": "MalformedJson"}, 400)
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(RateLimited)
    async def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is not None and isinstance(exc, LimitExceeded):
            runtime.metrics.rate_limited.labels(exc.limit).inc()
        return JSONResponse(
            {"detail": "Too many requests", "code": "RateLimited"},
            status_code=429,
            headers={"Retry-After": retry_after_header(exc.retry_after_s)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route that matched the path; a
            # path has one route per method here, so list them all (RFC 9110 Allow).
            headers["Allow"] = ", ".join(_allowed_methods(request))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers=headers)
        return JSONResponse(
            {"detail": exc.detail, "code": None}, status_code=exc.status_code, headers=headers
        )

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            runtime.metrics.requests.labels(
                request.method, route, str(response.status_code)
            ).observe(time.perf_counter() - started)
        return response

    app.include_router(health.router)
    app.include_router(api_router, prefix=settings.api_v1_str)
    mount_console(app, settings.api_v1_str)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # The faucet's bound is a setting, so the document states it here: the amount's pattern
        # is exactly what the faucet accepts (FastAPI caches the document; this is idempotent).
        document = generate_openapi()
        amount = document["components"]["schemas"]["FaucetRequest"]["properties"]["amount"]
        amount["pattern"] = f"^(?:{decimal_range_pattern(1, settings.faucet_max_amount)})$"
        amount["description"] = f"Smallest units, 1 to {settings.faucet_max_amount}."
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    return app


_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents for the request's path, and OPTIONS."""
    app = request.app
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "methods", None)
    if table is None:  # (path regex, methods) per path of the OpenAPI document, built once
        table = []
        for template, operations in app.openapi()["paths"].items():
            parts = re.split(r"\{[^/}]+\}", template)  # "/v1/leases/{lease_id}" -> 2 parts
            regex = re.compile("[^/]+".join(re.escape(part) for part in parts))
            table.append((regex, {m.upper() for m in operations} & _HTTP_METHODS))
        app.state.methods = table
    methods = {"OPTIONS"}
    for regex, served in table:
        if regex.fullmatch(request.url.path):
            methods |= served
    return sorted(methods)
