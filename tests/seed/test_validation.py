"""Admission checks as plain functions (the gRPC-level cases live in test_rejections)."""

from __future__ import annotations

import pytest

from services.common import MalformedMessage, TimestampOutOfRange, build_offer, new_keypair
from services.seed.validation import Limits, check_fields, check_timestamp, parse_price

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
        ("price_per_gpu_per_block", "9" * 5000),
        ("sequence", 2**63),
        ("timestamp_ms", 2**63),
        ("gpu_memory_mib", 2**64 - 1),
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


@pytest.mark.parametrize(
    ("cpu_millicores", "memory_mib"), [(0, 1024), (1000, 0), (2**64 - 1, 1024), (1000, 2**63)]
)
def test_check_fields_refuses_host_out_of_range(cpu_millicores: int, memory_mib: int) -> None:
    offer = _offer()
    offer.host.cpu_millicores = cpu_millicores
    offer.host.memory_mib = memory_mib
    with pytest.raises(MalformedMessage):
        check_fields(offer)


def test_check_fields_accepts_sequence_and_host_at_their_limits() -> None:
    offer = _offer(sequence=2**63 - 1, timestamp_ms=2**63 - 1)
    offer.host.cpu_millicores = 10**9
    offer.host.memory_mib = 2**40
    check_fields(offer)


@pytest.mark.parametrize("text", ["9" * 5000, "\u0661", "+1", " 1", "01", str(2**128), ""])
def test_parse_price_refuses_all_but_canonical_u128(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_price(text, "max_price")


def test_parse_price_accepts_u128_range() -> None:
    assert parse_price("0", "p") == 0 and parse_price(str(2**128 - 1), "p") == 2**128 - 1
