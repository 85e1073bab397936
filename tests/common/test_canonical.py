"""Canonical JSON, hashes and signing payloads against the shared vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.common import (
    EncodingError,
    blake2b_256,
    canonical_json,
    hex0x,
    lease_gpus_request_payload,
    signing_payload,
    spec_hash,
    unhex0x,
    workload_submission_payload,
)

VECTORS = Path(__file__).parent / "vectors"


def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


CANONICAL = _load("canonical_json.json")
SIGNING = _load("signing.json")


@pytest.mark.parametrize("vector", CANONICAL["vectors"], ids=lambda v: v["name"])
def test_encode_canonical_json_matches_vector(vector: dict[str, Any]) -> None:
    encoded = canonical_json(vector["input"])
    assert encoded == vector["canonical"].encode("utf-8")
    assert blake2b_256(encoded).hex() == vector["blake2b_256"]


@pytest.mark.parametrize("vector", CANONICAL["refused"], ids=lambda v: v["name"])
def test_encode_canonical_json_refuses_floats(vector: dict[str, Any]) -> None:
    with pytest.raises(EncodingError, match="float"):
        canonical_json(vector["input"])


@pytest.mark.parametrize(
    "value",
    [{1: "int key"}, {"b": b"raw bytes"}, {"s": "\ud800"}, {"x": float("nan")}],
    ids=["int_key", "bytes", "lone_surrogate", "nan"],
)
def test_encode_canonical_json_refuses_non_json(value: Any) -> None:
    with pytest.raises(EncodingError):
        canonical_json(value)


def test_encode_canonical_json_ignores_insertion_order() -> None:
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == canonical_json(
        {"a": {"c": 3, "d": 2}, "b": 1}
    )


@pytest.mark.parametrize("vector", SIGNING["spec_hash"], ids=lambda v: v["name"])
def test_hash_spec_matches_vector(vector: dict[str, Any]) -> None:
    assert canonical_json(vector["spec"]) == vector["canonical"].encode("utf-8")
    assert spec_hash(vector["spec"]).hex() == vector["spec_hash"]


def test_hash_spec_refuses_non_object() -> None:
    with pytest.raises(EncodingError):
        spec_hash(["not", "an", "object"])  # type: ignore[arg-type]


@pytest.mark.parametrize("vector", SIGNING["workload_submission"], ids=lambda v: v["name"])
def test_build_workload_submission_payload_matches_vector(vector: dict[str, Any]) -> None:
    payload = workload_submission_payload(vector["lease_id"], bytes.fromhex(vector["spec_hash"]))
    assert payload.hex() == vector["payload_hex"]


@pytest.mark.parametrize("vector", SIGNING["lease_gpus"], ids=lambda v: v["name"])
def test_build_lease_gpus_request_payload_matches_vector(vector: dict[str, Any]) -> None:
    payload = lease_gpus_request_payload(
        vector["lease_id"], vector["timestamp_ms"], bytes.fromhex(vector["nonce"])
    )
    assert payload.hex() == vector["payload_hex"]
    with pytest.raises(EncodingError):
        lease_gpus_request_payload(vector["lease_id"], vector["timestamp_ms"], b"\x00" * 8)


def test_build_signing_payload_separates_domains() -> None:
    assert signing_payload("offer/v1", b"x") != signing_payload("submit-workload/v1", b"x")
    assert signing_payload("offer/v1", b"body") == b"gridlease/offer/v1\nbody"
    with pytest.raises(EncodingError):
        signing_payload("two\nlines", b"")


@pytest.mark.parametrize("text", ["abcd", "0xABCD", "0xabc", "0x ab", "0xzz"])
def test_decode_hex0x_refuses_other_forms(text: str) -> None:
    with pytest.raises(EncodingError):
        unhex0x(text)


def test_decode_hex0x_round_trips() -> None:
    assert unhex0x(hex0x(b"\x00\xffgrid")) == b"\x00\xffgrid"
