"""Assembles the customer API: lifespan (migrations, shared runtime, background workers), error
handlers, metrics middleware and routers. No logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.customer_api.api.main import api_router
from services.customer_api.api.routes import health
from services.customer_api.core.config import Settings
from services.customer_api.core.migrate import upgrade
from services.customer_api.errors import ApiError
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
        lifespan=lifespan,
    )

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status_code)

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
    return app
