"""Liveness, readiness (database, chain, a seed) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlmodel import Session

from services.common import GridleaseError
from services.common._chain import ChainError
from services.customer_api.api.deps import RuntimeDep
from services.customer_api.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


def _database(runtime: Runtime) -> str:
    try:
        with Session(runtime.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _chain(runtime: Runtime) -> str:
    try:
        runtime.chain.reader.block_number()
    except ChainError as exc:
        return f"unavailable: {exc.reason}"
    return "ok"


@router.get(
    "/readyz",
    responses={503: {"description": "A dependency is down; `checks` says which and why."}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the database, the chain and at least one seed answer."""
    checks = {
        "database": await asyncio.to_thread(_database, runtime),
        "chain": await asyncio.to_thread(_chain, runtime),
    }
    try:
        await runtime.seeds.list_offers(page_size=1)
        checks["seeds"] = "ok"
    except GridleaseError as exc:
        checks["seeds"] = f"unavailable: {exc.reason}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=Response)
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format."""
    runtime.metrics.offers.set(len(runtime.index))
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
