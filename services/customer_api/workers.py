"""The background loops of a running API: index the chain, redeliver specs, follow the seeds.
Each loop is level-triggered (one pass compares and acts) and survives its own failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from services.common import get_logger
from services.customer_api import crud
from services.customer_api.leasing import deliver
from services.customer_api.runtime import Runtime

__all__ = ["MAX_BACKOFF_S", "Workers", "backoff_s", "redeliver_once", "start_workers"]

log = get_logger(__name__)


def redeliver_once(runtime: Runtime) -> int:
    """One pass over undelivered leases; returns how many were delivered."""
    delivered = 0
    with Session(runtime.engine, expire_on_commit=False) as session:
        for record in crud.undelivered_leases(session=session):
            keypair = crud.customer_keypair(
                session=session, customer_id=record.customer_id, custody=runtime.custody
            )
            deliver(session, record, keypair, runtime.nodes)
            outcome = record.delivery_state
            runtime.metrics.deliveries.labels(outcome).inc()
            delivered += outcome == "delivered"
    return delivered


# A failing loop waits longer after each failure in a row (interval doubled, up to this), so
# a dependency that is down is not hammered and the log is not flooded.
MAX_BACKOFF_S = 30.0


def backoff_s(interval_s: float, failures: int) -> float:
    """The pause after `failures` failed passes in a row (0: the plain interval)."""
    if failures <= 0:
        return interval_s
    return min(interval_s * 2.0**failures, max(MAX_BACKOFF_S, interval_s))


async def _every(
    name: str, interval_s: float, step: Callable[[], object], stop: asyncio.Event
) -> None:
    """step() in a worker thread every interval_s until stop is set. Stopping waits for the pass
    in flight: a thread cannot be cancelled, and it must not outlive the engine it uses. A failed
    pass is logged with its traceback (the first of a run of failures in full, then one line
    each), and the loop backs off until a pass succeeds."""
    failures = 0
    while not stop.is_set():
        try:
            await asyncio.to_thread(step)
        except Exception as exc:  # noqa: BLE001 - a loop must outlive one bad pass
            failures += 1
            log.warning(
                f"{name}.failed",
                extra={"error": repr(exc)[:500], "failures": failures},
                exc_info=failures == 1,
            )
        else:
            if failures:
                log.info(f"{name}.recovered", extra={"after_failures": failures})
            failures = 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff_s(interval_s, failures))


@dataclass
class Workers:
    tasks: list[asyncio.Task[None]]
    stop_event: asyncio.Event

    async def stop(self) -> None:
        self.stop_event.set()
        self.tasks[0].cancel()  # the offer watcher only awaits the network
        await asyncio.gather(*self.tasks, return_exceptions=True)


def start_workers(runtime: Runtime) -> Workers:
    settings = runtime.settings
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runtime.watcher.run(), name="offers")]
    if settings.indexer_enabled:
        tasks.append(
            asyncio.create_task(
                _every("indexer", settings.indexer_interval_s, runtime.indexer.run_once, stop),
                name="indexer",
            )
        )
    if settings.delivery_enabled:
        tasks.append(
            asyncio.create_task(
                _every(
                    "delivery", settings.delivery_retry_s, lambda: redeliver_once(runtime), stop
                ),
                name="delivery",
            )
        )
    return Workers(tasks, stop)
