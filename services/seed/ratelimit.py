"""Token buckets that bound what one source may push into a seed.

    buckets = TokenBuckets(rate_per_s=20, burst=200)
    wait_s = buckets.take("127.0.0.1")   # 0.0: allowed (a token was taken); else seconds to wait

A seed keeps one bucket per peer address (before any work is done on the request) and one per
machine (after the signature is verified, so nobody can spend another machine's budget). A
bucket that has refilled completely is the same as no bucket, so the map only holds sources that
pushed recently, and is capped at max_sources (the oldest bucket is forgotten first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["TokenBuckets", "peer_host"]


class TokenBuckets:
    """One token bucket per key: burst tokens, refilled at rate_per_s; rate_per_s 0 disables."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_sources: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s < 0 or burst < 1:
            raise ValueError("rate_per_s must be >= 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._max_sources = max_sources
        self._clock = clock
        # key -> (tokens, time of last update); most recently used last.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def take(self, key: Hashable) -> float:
        """Take one token for key: 0.0 when allowed, else the seconds until one is available
        (nothing is taken then)."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self.rate_per_s
        self._buckets[key] = (tokens, now)
        self._prune(now)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        # Drop buckets that are full again (oldest first), then the oldest beyond the cap.
        full_after = self.burst / self.rate_per_s
        while self._buckets:
            key, (_, at) = next(iter(self._buckets.items()))
            if now - at < full_after and len(self._buckets) <= self._max_sources:
                break
            del self._buckets[key]


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string: "ipv4:10.0.0.1:5123" -> "ipv4:10.0.0.1",
    "ipv6:[::1]:5123" -> "ipv6:[::1]"; other forms (unix sockets) are kept whole."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return f"{kind}:{rest.rsplit(':', 1)[0]}"
    return peer
