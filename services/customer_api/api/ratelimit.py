"""Rate limits per client address and per account, as route dependencies (429 + Retry-After).

Each limit (Settings.*_limit_per_source / *_limit_per_account) is a token bucket per key, kept
as one float per key (GCRA: the "theoretical arrival time" of the next request). Memory is
bounded: at most Settings.rate_limit_keys keys per limit, the least recently seen forgotten
first; a forgotten key starts again with a full burst, so the bound only ever costs accuracy for
the longest-idle keys. State is per process (see Settings for several replicas). Every request
checked counts against the address's limit, also one an account limit then refuses: hammering
is what is being limited.

The address is the ASGI client host: behind a proxy, run uvicorn with --proxy-headers and
--forwarded-allow-ips set to the proxy so that it is the real client's address.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request

from services.common import RateLimited
from services.customer_api.api.deps import CurrentCustomer
from services.customer_api.core.config import RateLimit, Settings

__all__ = [
    "FAUCET_LIMITS",
    "LimitExceeded",
    "PUBLIC_READ_LIMITS",
    "SIGNUP_LIMITS",
    "WRITE_LIMITS",
    "RateLimits",
    "TokenBuckets",
    "retry_after_header",
]


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, rounded up and at least 1 (RFC 9110 delay-seconds)."""
    return str(max(1, math.ceil(seconds)))


# Far below any limit's interval, far above the rounding of a monotonic clock's values.
_ROUNDING_S = 1e-6


class TokenBuckets:
    """One RateLimit applied to many keys. Thread-safe (sync routes run in a thread pool)."""

    def __init__(
        self, limit: RateLimit, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._interval = limit.per_s / limit.requests  # seconds one request costs
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # key -> when its bucket is full again (monotonic seconds); oldest-seen first.
        self._full_at: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._full_at)

    def take(self, key: str) -> float:
        """0.0 when key may make a request now (and it is counted); otherwise the seconds to
        wait before it may (nothing is counted)."""
        now = self._clock()
        with self._lock:
            # Seconds of credit already spent (0 for a new or full bucket), plus this request's;
            # a full bucket holds limit.requests tokens, i.e. per_s seconds' worth. Float
            # rounding of clock-sized values (1e-10 s at 2e6 s, 1e-7 s at 1e9 s) must not turn
            # an allowed request into a refused one (it did: a new key's first request, the
            # last of a burst): a wait under a microsecond counts as none.
            spent = max(self._full_at.get(key, now) - now, 0.0) + self._interval
            wait = spent - self.limit.per_s
            if wait > _ROUNDING_S:
                return wait
            self._full_at[key] = now + spent
            self._full_at.move_to_end(key)
            while len(self._full_at) > self._max_keys:
                self._full_at.popitem(last=False)
            return 0.0


class LimitExceeded(RateLimited):
    """Over the limit named `limit` (a Settings field name); retry after retry_after_s."""

    def __init__(self, limit: str, retry_after_s: float) -> None:
        super().__init__(f"{limit} exceeded", retry_after_s=retry_after_s)
        self.limit = limit


class RateLimits:
    """Every limit of the API, built from Settings; `check` raises LimitExceeded."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = settings.rate_limits_enabled
        names = (
            "signup_limit_per_source",
            "faucet_limit_per_account",
            "faucet_limit_per_source",
            "write_limit_per_account",
            "write_limit_per_source",
            "public_read_limit_per_source",
        )
        self._buckets = {
            name: TokenBuckets(getattr(settings, name), settings.rate_limit_keys, clock)
            for name in names
        }

    def check(self, name: str, key: str) -> None:
        """Count one request of key against the limit `name`; LimitExceeded when over it."""
        if not self.enabled:
            return
        wait = self._buckets[name].take(key)
        if wait > 0:
            raise LimitExceeded(name, wait)


def _limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _per_source(group: str) -> Any:
    def check(request: Request) -> None:
        _limits(request).check(f"{group}_limit_per_source", _source(request))

    return Depends(check)


def _per_account(group: str) -> Any:
    def check(request: Request, customer: CurrentCustomer) -> None:
        _limits(request).check(f"{group}_limit_per_account", str(customer.id))

    return Depends(check)


# Route dependencies, the address checked first (before the API key is even looked up).
SIGNUP_LIMITS = [_per_source("signup")]
FAUCET_LIMITS = [_per_source("faucet"), _per_account("faucet")]
WRITE_LIMITS = [_per_source("write"), _per_account("write")]
# Reads open to anyone (public chain and seed data): limited per address only.
PUBLIC_READ_LIMITS = [_per_source("public_read")]
