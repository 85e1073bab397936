"""Signer locks in the database: API replicas sharing it sign for one account one at a time,
every wait is bounded, and a holder that died frees the lock after its time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from services.common import ChainUnavailable
from services.customer_api.chain import DbSignerLocks
from services.customer_api.core.db import make_engine
from services.customer_api.core.migrate import upgrade


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_one_holder_per_account_and_bounded_wait(engine: Engine) -> None:
    # Two "replicas": separate lock objects on one database.
    first, second = DbSignerLocks(engine, ttl_s=30), DbSignerLocks(engine, ttl_s=30)
    release = first.acquire("5Customer", 1)
    with pytest.raises(ChainUnavailable, match="busy"):
        second.acquire("5Customer", 0.3)
    second.acquire("5Other", 0.3)()  # another account is free meanwhile
    release()
    release()  # releasing twice is harmless
    second.acquire("5Customer", 1)()


def test_waiters_take_turns(engine: Engine) -> None:
    replicas = [DbSignerLocks(engine, ttl_s=30) for _ in range(3)]
    inside: list[int] = []
    overlaps: list[int] = []

    def work(n: int) -> None:
        for _ in range(5):
            release = replicas[n % 3].acquire("5Shared", 30)
            inside.append(n)
            if len(inside) > 1:
                overlaps.append(n)
            time.sleep(0.005)
            inside.remove(n)
            release()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert overlaps == []


def test_a_dead_holders_lock_expires(engine: Engine) -> None:
    dead = DbSignerLocks(engine, ttl_s=0.5)
    dead.acquire("5Crashed", 1)  # never released: its process was killed
    alive = DbSignerLocks(engine, ttl_s=30)
    with pytest.raises(ChainUnavailable):
        alive.acquire("5Crashed", 0.1)
    alive.acquire("5Crashed", 5)()  # taken over once the dead holder's time is up


def test_replicas_share_the_accounts_nonce_floor(engine: Engine) -> None:
    """The pool does not count an extrinsic while it is built into a block: the next signer,
    on any replica, starts above the last nonce handed to the pool."""
    first, second = DbSignerLocks(engine, ttl_s=30), DbSignerLocks(engine, ttl_s=30)
    lease = first.acquire("5Floor", 1)
    assert lease.floor is None
    first.used("5Floor", 7)
    lease()
    lease = second.acquire("5Floor", 1)
    assert lease.floor == 8
    second.lost("5Floor", 9)  # a later nonce lost: the floor stays
    lease()
    lease = first.acquire("5Floor", 1)
    assert lease.floor == 8
    first.lost("5Floor", 7)  # the extrinsic behind the floor will not be included
    lease()
    assert second.acquire("5Floor", 1).floor is None


def test_a_floor_is_trusted_only_for_a_while(engine: Engine) -> None:
    locks = DbSignerLocks(engine, ttl_s=30, floor_ttl_s=0.2)
    locks.acquire("5Stale", 1)()
    locks.used("5Stale", 3)
    time.sleep(0.3)
    assert locks.acquire("5Stale", 1).floor is None
