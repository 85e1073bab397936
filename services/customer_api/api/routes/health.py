"""Liveness, readiness (database, chain, a live offer watch) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlmodel import Session

from services.common import get_logger
from services.common._chain import ChainError
from services.customer_api.api.deps import RuntimeDep
from services.customer_api.runtime import Runtime

router = APIRouter(tags=["health"])
log = get_logger(__name__)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


def _database(runtime: Runtime) -> str:
    try:
        with Session(runtime.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        # A probe has no caller to raise to: the traceback goes to the log (probes come every
        # few seconds, a volume the log bears while the database is down).
        log.warning("readyz.database_unavailable", exc_info=exc)
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
    """Ready when the database and the chain answer and the offer watch is alive (a seed
    streams to it: offers or heartbeats within the seed client's watch_idle_s)."""
    checks = {
        "database": await asyncio.to_thread(_database, runtime),
        "chain": await asyncio.to_thread(_chain, runtime),
    }
    # The seeds are judged by the offer watch itself, not by a probe call that another seed may
    # answer while the watch hangs on a frozen one. Before the first sync (start-up), give it a
    # moment rather than answer "not ready" to the very first probe.
    if runtime.watcher.silent_s() is None:
        await runtime.watcher.wait_streaming(runtime.settings.seed_timeout_s)
    checks["seeds"] = runtime.watcher.status()
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=Response)
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format."""
    runtime.metrics.offers.set(len(runtime.index))
    runtime.metrics.set_gpus(*runtime.index.gpu_totals())
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
