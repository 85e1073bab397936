"""Fan-out of store changes to WatchOffers streams, one bounded queue per watcher.

A watcher that falls too far behind is cut off (its stream ends with RESOURCE_EXHAUSTED) rather
than letting its queue grow without bound; it can reconnect with include_existing. A watcher
that asked for heartbeats gets one after every heartbeat_s without a change, so it can tell a
quiet seed from a frozen one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from services.seed.store import OfferFilterSpec, OfferRecord, OfferStore

__all__ = ["HEARTBEAT", "WatcherOverflow", "watch"]

_QUEUE_SIZE = 10_000
HEARTBEAT = "heartbeat"


class WatcherOverflow(Exception):
    """The watcher did not keep up with the changes."""


async def watch(
    store: OfferStore,
    spec: OfferFilterSpec,
    *,
    include_existing: bool,
    heartbeat_s: float | None = None,
) -> AsyncIterator[tuple[str, OfferRecord | None]]:
    """Yield ("stored"|"expired", record) for matching changes, optionally preceded by every
    matching record already held (as "stored"); with heartbeat_s, (HEARTBEAT, None) after every
    heartbeat_s seconds without a change."""
    queue: asyncio.Queue[tuple[str, OfferRecord] | None] = asyncio.Queue(_QUEUE_SIZE)
    overflowed = False

    def listener(kind: str, rec: OfferRecord) -> None:
        nonlocal overflowed
        if overflowed or not spec.matches(rec):
            return
        try:
            queue.put_nowait((kind, rec))
        except asyncio.QueueFull:
            overflowed = True
            queue.get_nowait()  # make room for the end marker
            queue.put_nowait(None)

    # Subscribe before the snapshot so nothing stored meanwhile is missed (it may come twice;
    # consumers keep the highest sequence per machine anyway).
    unsubscribe = store.subscribe(listener)
    # One get() stays pending across heartbeats: cancelling a get on each timeout could race
    # with an item arriving at that moment.
    getter: asyncio.Task[tuple[str, OfferRecord] | None] | None = None
    try:
        if include_existing:
            for rec in store.scan():
                if spec.matches(rec):
                    yield "stored", rec
        while True:
            if getter is None:
                getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter}, timeout=heartbeat_s)
            if not done:
                yield HEARTBEAT, None
                continue
            item, getter = getter.result(), None
            if item is None:
                raise WatcherOverflow("watcher fell behind by more than the queue holds")
            yield item
    finally:
        unsubscribe()
        if getter is not None:
            getter.cancel()
