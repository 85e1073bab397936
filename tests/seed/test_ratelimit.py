"""Token buckets per source: burst, refill, the wait they report, and a bounded map."""

from __future__ import annotations

import pytest

from services.seed.ratelimit import TokenBuckets, peer_host


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token takes 1/rate seconds
    assert buckets.take("b") == 0.0  # another source has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 100  # refills up to the burst, not beyond
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_zero_rate_disables() -> None:
    buckets = TokenBuckets(rate_per_s=0, burst=1)
    assert not buckets.enabled
    assert all(buckets.take("a") == 0.0 for _ in range(1000))
    assert len(buckets) == 0


def test_map_forgets_full_buckets_and_stays_under_cap() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=1.0, burst=2, max_sources=100, clock=clock)
    for i in range(1000):  # a flood of distinct sources
        buckets.take(i)
    assert len(buckets) == 100
    clock.now += 2.0  # every bucket full again: the same as no bucket
    buckets.take("new")
    assert len(buckets) == 1


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:10.0.0.1:5123", "ipv4:10.0.0.1"),
        ("ipv6:[::1]:5123", "ipv6:[::1]"),
        ("unix:/tmp/sock", "unix:/tmp/sock"),
    ],
)
def test_peer_host_drops_the_port(peer: str, host: str) -> None:
    assert peer_host(peer) == host
