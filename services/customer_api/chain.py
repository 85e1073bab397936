"""The API's connections to the chain: a client for reads and one for calls (several
connections each), and the signer locks that keep nonces apart.

Any free connection sends a call: a submission holds its connection until the block (a second
or so), so calls do not queue behind one connection. What keeps one account's nonces in order is
`DbSignerLocks`: a row per account in the API's database, taken from fetching the nonce until
the transaction pool holds the extrinsic, so two threads or two API replicas sharing the
database never sign with the same nonce. Every wait is bounded.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col
from substrateinterface import Keypair

from services.common import ChainUnavailable, ExtrinsicRejected, get_logger
from services.common._chain import (
    PALLET,
    ChainClient,
    ChainMachine,
    Receipt,
    SignedExtrinsic,
    SignerLease,
    accepted_by_pool,
)
from services.customer_api.models import SignerLock

__all__ = ["ChainGateway", "DbSignerLocks"]

log = get_logger(__name__)


class DbSignerLocks:
    """SignerLocks kept in the database (table `signerlock`), shared by every API process on it.

    A lock is a row per account: `holder` (a random token) and `expires_at`. Taking it is one
    conditional UPDATE (free, or expired), or the INSERT of the row; each attempt is its own
    short transaction, so no connection is held while waiting or while the chain answers. A
    holder that dies frees the lock after `ttl_s`. The row also carries the account's nonce
    floor (`next_nonce`, trusted for `floor_ttl_s`), so replicas agree on the next nonce even
    while the pool does not count an extrinsic yet."""

    def __init__(self, engine: Engine, *, ttl_s: float, floor_ttl_s: float = 60.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self.floor_ttl_s = floor_ttl_s
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    def acquire(self, address: str, timeout_s: float) -> SignerLease:
        token = f"{self._owner}-{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + timeout_s
        pause = 0.005
        while (floor := self._try(address, token)) is False:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChainUnavailable(f"signer {address} busy for {timeout_s:.0f} s")
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)

        def release() -> None:
            self._write(
                address,
                update(SignerLock)
                .where(
                    col(SignerLock.address) == address,
                    col(SignerLock.holder) == token,
                )
                .values(holder=None, expires_at=0.0),
            )

        return SignerLease(release, None if floor is True else floor)

    def used(self, address: str, nonce: int) -> None:
        self._write(
            address,
            update(SignerLock)
            .where(col(SignerLock.address) == address)
            .values(next_nonce=nonce + 1, nonce_until=time.time() + self.floor_ttl_s),
        )

    def lost(self, address: str, nonce: int) -> None:
        self._write(
            address,
            update(SignerLock)
            .where(col(SignerLock.address) == address, col(SignerLock.next_nonce) > nonce)
            .values(next_nonce=None, nonce_until=0.0),
        )

    def _write(self, address: str, statement: Any) -> None:
        try:
            with Session(self.engine) as session:
                session.execute(statement)
                session.commit()
        except OperationalError:
            # The database is out of reach: a lock expires by itself, a floor too.
            log.warning("signer_lock.write_failed", extra={"address": address})

    def _try(self, address: str, token: str) -> int | bool:
        """Takes the lock for token: the account's nonce floor if one is current, True if
        taken without one, False if somebody else holds it."""
        now = time.time()
        try:
            with Session(self.engine) as session:
                taken = session.execute(
                    update(SignerLock)
                    .where(
                        col(SignerLock.address) == address,
                        or_(col(SignerLock.holder).is_(None), col(SignerLock.expires_at) < now),
                    )
                    .values(holder=token, expires_at=now + self.ttl_s)
                )
                session.commit()
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    row = session.get(SignerLock, address, populate_existing=True)
                    session.commit()
                    if row is not None and row.next_nonce is not None and row.nonce_until > now:
                        return int(row.next_nonce)
                    return True
                if session.get(SignerLock, address) is not None:
                    session.commit()
                    return False
                session.add(SignerLock(address=address, holder=token, expires_at=now + self.ttl_s))
                session.commit()
                return True
        except IntegrityError:
            return False  # another process inserted the row first
        except OperationalError as exc:
            # SQLite busy past its timeout, PostgreSQL serialisation: try again shortly.
            log.info("signer_lock.retry", extra={"address": address, "error": repr(exc)[:200]})
            return False


class ChainGateway:
    """The reader and the writer (each a client with several connections), and submission
    through the signer locks."""

    def __init__(
        self,
        url: str,
        *,
        writers: int = 4,
        readers: int = 4,
        timeout_s: float = 10.0,
        submit_timeout_s: float = 60.0,
        engine: Engine | None = None,
        factory: Callable[..., ChainClient] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.submit_timeout_s = submit_timeout_s
        # A holder keeps the lock for a few RPC answers; past ttl it is presumed dead.
        self.signer_locks = (
            DbSignerLocks(engine, ttl_s=3 * timeout_s, floor_ttl_s=submit_timeout_s)
            if engine is not None
            else None
        )
        make = factory or ChainClient
        options: dict[str, Any] = {
            "connect": False,
            "timeout_s": timeout_s,
            "submit_timeout_s": submit_timeout_s,
            "signer_locks": self.signer_locks,
        }
        if on_error is not None:
            options["on_error"] = on_error
        self.reader = make(url, connections=readers, **options)
        # Calls wait on their block for a second or so each: their own connections, so reads
        # never queue behind them.
        self.writer = make(url, connections=writers, **options)

    def submit(
        self,
        keypair: Keypair,
        module: str,
        function: str,
        params: dict[str, Any],
        *,
        on_signed: Callable[[SignedExtrinsic], None] | None = None,
    ) -> Receipt:
        return self.writer.submit(keypair, module, function, params, on_signed=on_signed)

    def gpu_rental(self, keypair: Keypair, function: str, **params: Any) -> Receipt:
        return self.submit(keypair, PALLET, function, params)

    def transfer(self, keypair: Keypair, dest: str, amount: int) -> Receipt:
        return self.submit(
            keypair, "Balances", "transfer_keep_alive", {"dest": dest, "value": amount}
        )

    def resend(self, signed: SignedExtrinsic) -> Receipt:
        """Sends an extrinsic signed earlier, byte for byte, under its signer's lock (a new
        signature could be included as well; the same bytes at most once)."""
        locks = self.writer.signer_locks
        lease = locks.acquire(signed.signer, self.writer.lock_wait_s)
        try:
            return self.writer.send(signed, on_accepted=accepted_by_pool(locks, lease, signed))
        except ExtrinsicRejected:
            locks.lost(signed.signer, signed.nonce)
            raise
        finally:
            lease()

    def machines(self, machine_ids: list[bytes]) -> dict[bytes, ChainMachine | None]:
        return self.reader.machines(machine_ids)

    def close(self) -> None:
        self.reader.close()
        self.writer.close()
