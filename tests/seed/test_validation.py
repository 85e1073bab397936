"""Admission checks as plain functions (the gRPC-level cases live in test_rejections)."""

from __future__ import annotations

import pytest

from services.common import MalformedMessage, TimestampOutOfRange, build_offer, new_keypair
from services.seed.validation import Limits, check_fields, check_timestamp

from .harness import ALICE

LIMITS = Limits(max_offer_bytes=4096, ttl_ms=60_000, max_skew_ms=5_000)


def _offer(**changes: object):  # type: ignore[no-untyped-def]
    offer = build_offer(
        new_keypair()[0],
        provider=ALICE,
        endpoint="[::1]:7700",
        gpu_model="H100",
        gpu_count=8,
        memory_mib=81559,
        compute_capability="9.0",
        price_per_gpu_per_block=2**128 - 1,
        region="eu",
        sequence=1,
        labels={"gridlease/tier": "gold"},
        timestamp_ms=100_000,
    )
    for name, value in changes.items():
        setattr(offer.gpu if name.startswith("gpu_") else offer, name.removeprefix("gpu_"), value)
    return offer


def test_check_fields_accepts_edge_values() -> None:
    check_fields(_offer())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("gpu_model", ""),
        ("gpu_count", 0),
        ("gpu_memory_mib", 0),
        ("gpu_compute_capability", "nine"),
        ("price_per_gpu_per_block", "007"),
        ("region", "r" * 65),
        ("machine_id", b"short"),
    ],
)
def test_check_fields_refuses(name: str, value: object) -> None:
    with pytest.raises(MalformedMessage):
        check_fields(_offer(**{name: value}))


def test_check_fields_refuses_bad_label_key() -> None:
    offer = _offer()
    offer.labels["Bad Key"] = "x"
    with pytest.raises(MalformedMessage):
        check_fields(offer)


@pytest.mark.parametrize(
    ("now", "reason"),
    [(100_000 - 5_001, "timestamp_in_future"), (100_000 + 60_000, "timestamp_expired")],
)
def test_check_timestamp_refuses_outside_window(now: int, reason: str) -> None:
    with pytest.raises(TimestampOutOfRange) as info:
        check_timestamp(_offer(), LIMITS, now)
    assert info.value.reason == reason


def test_check_timestamp_accepts_window_edges() -> None:
    check_timestamp(_offer(), LIMITS, 100_000 - 5_000)
    check_timestamp(_offer(), LIMITS, 100_000 + 59_999)
