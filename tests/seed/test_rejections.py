"""Every way an announcement is refused, over real gRPC: the status code, the reason trailer,
and that the offers already held are untouched."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from services.common import DOMAIN_OFFER, REASON_KEY, build_offer, now_ms, sign
from services.common.grpc_gen.gridlease.v1 import offer_pb2, seed_pb2

from .harness import SeedProcess, free_port, make_offer

Code = grpc.StatusCode


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedProcess]:
    process = SeedProcess(
        tmp_path_factory.mktemp("rejections"),
        metrics_port=free_port(),
        env={"GRIDLEASE_SEED_MAX_CLOCK_SKEW_S": "30", "GRIDLEASE_SEED_OFFER_TTL_S": "300"},
    ).start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def held(seed: SeedProcess) -> tuple[offer_pb2.SignedOffer, Any]:
    """An offer at sequence 5 that every test checks is still there, byte for byte."""
    signed, key = make_offer(sequence=5)
    seed.stub().Announce(seed_pb2.AnnounceRequest(signed_offer=signed), timeout=5)
    return signed, key


def _refused(seed: SeedProcess, request: seed_pb2.AnnounceRequest) -> tuple[Code, str | None]:
    with pytest.raises(grpc.RpcError) as info:
        seed.stub().Announce(request, timeout=5)
    error: Any = info.value
    reason = dict(error.trailing_metadata() or ()).get(REASON_KEY)
    return error.code(), reason


def _assert_unchanged(seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]) -> None:
    signed = held[0]
    machine_id = offer_pb2.Offer.FromString(signed.offer).machine_id
    entry = seed.get(machine_id)
    assert entry is not None and entry.signed_offer == signed
    listed = seed.stub().ListOffers(seed_pb2.ListOffersRequest(page_size=1000), timeout=5)
    assert [e.signed_offer for e in listed.entries] == [signed]


def _announce(signed: offer_pb2.SignedOffer) -> seed_pb2.AnnounceRequest:
    return seed_pb2.AnnounceRequest(signed_offer=signed)


def _resigned(key: Any, offer: offer_pb2.Offer) -> offer_pb2.SignedOffer:
    body = offer.SerializeToString(deterministic=True)
    return offer_pb2.SignedOffer(offer=body, signature=sign(key, DOMAIN_OFFER, body))


def test_reject_bad_signature(seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]) -> None:
    signed, _ = make_offer(held[1], sequence=6)
    signed.signature = bytes(64 - 1) + b"\x01"
    assert _refused(seed, _announce(signed)) == (Code.INVALID_ARGUMENT, "bad_signature")
    _assert_unchanged(seed, held)


def test_reject_hijacked_machine_id(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]
) -> None:
    # Mallory signs validly with her own key but names the held machine, with a higher sequence.
    signed, mallory = make_offer(sequence=99)
    offer = offer_pb2.Offer.FromString(signed.offer)
    offer.machine_id = offer_pb2.Offer.FromString(held[0].offer).machine_id
    refused = _refused(seed, _announce(_resigned(mallory, offer)))
    assert refused == (Code.INVALID_ARGUMENT, "machine_id_mismatch")
    _assert_unchanged(seed, held)


def test_reject_replayed_sequence(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]
) -> None:
    assert _refused(seed, _announce(held[0])) == (Code.ALREADY_EXISTS, "duplicate_sequence")
    _assert_unchanged(seed, held)


def test_reject_older_sequence(seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]) -> None:
    older, _ = make_offer(held[1], sequence=4, price_per_gpu_per_block=1)
    assert _refused(seed, _announce(older)) == (Code.FAILED_PRECONDITION, "stale_sequence")
    _assert_unchanged(seed, held)


@pytest.mark.parametrize(
    ("offset_ms", "reason"),
    [(10 * 60_000, "timestamp_in_future"), (-400_000, "timestamp_expired")],
    ids=["future", "past"],
)
def test_reject_timestamp_out_of_range(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any], offset_ms: int, reason: str
) -> None:
    signed, _ = make_offer(held[1], sequence=7, timestamp_ms=now_ms() + offset_ms)
    assert _refused(seed, _announce(signed)) == (Code.FAILED_PRECONDITION, reason)
    _assert_unchanged(seed, held)


def test_reject_offer_over_size_cap(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]
) -> None:
    labels = {f"k{i}": "v" * 200 for i in range(30)}  # about 6 KiB: over the 4 KiB offer cap
    signed, _ = make_offer(held[1], sequence=8, labels=labels)
    assert _refused(seed, _announce(signed)) == (Code.INVALID_ARGUMENT, "too_large")
    _assert_unchanged(seed, held)


def test_reject_message_over_grpc_limit(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]
) -> None:
    signed = offer_pb2.SignedOffer(offer=b"\x00" * (2 * 1024 * 1024), signature=bytes(64))
    code, _ = _refused(seed, _announce(signed))
    assert code == Code.RESOURCE_EXHAUSTED  # refused by gRPC before our code runs
    _assert_unchanged(seed, held)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff\xff", b"\x0a\x05ab"],  # bad varint; length past the end
    ids=["bad_varint", "truncated"],
)
def test_reject_malformed_offer(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any], body: bytes
) -> None:
    signed = offer_pb2.SignedOffer(offer=body, signature=bytes(64))
    assert _refused(seed, _announce(signed)) == (Code.INVALID_ARGUMENT, "malformed")
    _assert_unchanged(seed, held)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint", "no-port"),
        ("provider", "not-ss58"),
        ("price_per_gpu_per_block", "-1"),
        ("price_per_gpu_per_block", str(2**128)),
        ("price_per_gpu_per_block", "\u0661\u0662"),  # Arabic-Indic digits: isdecimal, not ASCII
        ("sequence", 0),
        # Item 18: beyond SQLite's signed 64-bit INTEGER. Refused at admission, never stored.
        ("sequence", 2**63),
        ("sequence", 2**64 - 1),
        ("timestamp_ms", 2**63),
    ],
)
def test_reject_bad_field(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any], field: str, value: Any
) -> None:
    offer = build_offer(held[1], **_fields(), sequence=9)
    setattr(offer, field, value)
    assert _refused(seed, _announce(_resigned(held[1], offer))) == (
        Code.INVALID_ARGUMENT,
        "malformed",
    )
    _assert_unchanged(seed, held)


def test_reject_unknown_offer_fields(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]
) -> None:
    body = build_offer(held[1], **_fields(), sequence=10).SerializeToString(deterministic=True)
    body += b"\xf8\x07\x01"  # field 127, varint 1: not in this schema
    signed = offer_pb2.SignedOffer(offer=body, signature=sign(held[1], DOMAIN_OFFER, body))
    assert _refused(seed, _announce(signed)) == (Code.INVALID_ARGUMENT, "unknown_fields")
    _assert_unchanged(seed, held)


def test_reject_unknown_request_fields(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]
) -> None:
    signed, _ = make_offer(held[1], sequence=11)
    raw = _announce(signed).SerializeToString() + b"\xa0\x06\x01"  # field 100 on the request
    request = seed_pb2.AnnounceRequest.FromString(raw)
    assert _refused(seed, request) == (Code.INVALID_ARGUMENT, "unknown_fields")
    _assert_unchanged(seed, held)


def test_reject_missing_offer(seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]) -> None:
    assert _refused(seed, seed_pb2.AnnounceRequest()) == (Code.INVALID_ARGUMENT, "malformed")
    _assert_unchanged(seed, held)


def test_survive_garbage_request_bytes(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]
) -> None:
    # Not a protobuf at all, straight onto the wire.
    call = seed.channel().unary_unary(
        "/gridlease.v1.SeedService/Announce",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as info:
        call(b"\xff" * 64, timeout=5)
    error: Any = info.value
    # The caller's bytes are at fault: INVALID_ARGUMENT naming it, not UNKNOWN with a traceback.
    assert (error.code(), dict(error.trailing_metadata() or ()).get(REASON_KEY)) == (
        Code.INVALID_ARGUMENT,
        "malformed",
    )
    seed.wait_ready(timeout_s=5)
    _assert_unchanged(seed, held)


def test_count_rejections_in_metrics(
    seed: SeedProcess, held: tuple[offer_pb2.SignedOffer, Any]
) -> None:
    _refused(seed, _announce(held[0]))
    url = f"http://127.0.0.1:{seed.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        body = reply.read().decode()
    assert (
        'gridlease_seed_announcements_total{reason="duplicate_sequence",result="rejected"}' in body
    )
    assert "gridlease_seed_offers_held 1.0" in body


def _fields() -> dict[str, Any]:
    return {
        "provider": "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
        "endpoint": "127.0.0.1:7700",
        "gpu_model": "NVIDIA H100 80GB HBM3",
        "gpu_count": 8,
        "memory_mib": 81559,
        "compute_capability": "9.0",
        "price_per_gpu_per_block": 1000,
        "region": "eu-west",
    }
