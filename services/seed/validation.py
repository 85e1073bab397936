"""Admission checks for signed offers, as plain functions of (message, limits, now).

Order: cheap structure first, the signature (the costly part) last; the sequence check needs the
store and happens there. Every refusal is a RejectedError naming its reason; nothing is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from services.common import (
    ConfigError,
    MalformedMessage,
    MessageTooLarge,
    TimestampOutOfRange,
    UnknownFields,
    has_unknown_fields,
    open_signed_offer,
    public_key_from_ss58,
)
from services.common.grpc_gen.gridlease.v1 import offer_pb2

__all__ = [
    "MAX_INT64",
    "MAX_PRICE",
    "Limits",
    "admit_offer",
    "check_fields",
    "check_timestamp",
    "parse_price",
    "reject_unknown_fields",
]

MAX_PRICE = 2**128 - 1  # the chain's Balance is a u128
# The store keeps sequence and timestamp_ms in SQLite INTEGER columns (signed 64-bit): a uint64
# above this must be refused here, or the commit fails after the offer was accepted.
MAX_INT64 = 2**63 - 1
# ASCII digits only (str.isdecimal also accepts other scripts' digits), no leading zeros, and at
# most 39 digits, so int() never meets a 5,000-digit string.
_PRICE = re.compile(r"0|[1-9][0-9]{0,38}")
_ENDPOINT = re.compile(r"[A-Za-z0-9.\-\[\]:]{1,253}:[0-9]{1,5}")
_CAPABILITY = re.compile(r"[0-9]{1,2}\.[0-9]{1,2}")
_LABEL_KEY = re.compile(r"[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?")
_MAX_LABELS = 32
# Generous bounds for the host beside the GPUs (a million CPUs, 1 EiB), far inside int64.
_MAX_HOST_MILLICORES = 10**9
_MAX_HOST_MEMORY_MIB = 2**40


@dataclass(frozen=True)
class Limits:
    """What a seed accepts; built from SeedSettings."""

    max_offer_bytes: int
    ttl_ms: int
    max_skew_ms: int


def reject_unknown_fields(message: Message) -> None:
    """Refuse requests carrying fields this seed does not know (a newer client, or junk)."""
    if has_unknown_fields(message):
        raise UnknownFields(f"{type(message).__name__} carries fields unknown to this seed")


def parse_price(text: str, what: str) -> int:
    """A price as the protos carry it (decimal string, u128 range); MalformedMessage otherwise."""
    if not _PRICE.fullmatch(text) or int(text) > MAX_PRICE:
        raise MalformedMessage(f"{what} must be a decimal u128 without leading zeros")
    return int(text)


def check_fields(offer: offer_pb2.Offer) -> None:
    """Field-by-field sanity of a decoded offer: every string's form and every number's range."""
    if len(offer.machine_id) != 32:
        raise MalformedMessage("machine_id must be 32 bytes")
    try:
        public_key_from_ss58(offer.provider)
    except ConfigError as exc:
        raise MalformedMessage("provider is not an SS58 address") from exc
    if not _ENDPOINT.fullmatch(offer.endpoint):
        raise MalformedMessage("endpoint must be host:port")
    gpu = offer.gpu
    if not offer.HasField("gpu") or not 0 < len(gpu.model) <= 128:
        raise MalformedMessage("gpu.model must be 1 to 128 characters")
    if not 1 <= gpu.count <= 1024:
        raise MalformedMessage("gpu.count must be 1 to 1024")
    if not 1 <= gpu.memory_mib <= 1 << 24:
        raise MalformedMessage("gpu.memory_mib must be 1 to 16 Mi")
    if gpu.compute_capability and not _CAPABILITY.fullmatch(gpu.compute_capability):
        raise MalformedMessage("gpu.compute_capability must look like 9.0")
    parse_price(offer.price_per_gpu_per_block, "price_per_gpu_per_block")
    if offer.HasField("host") and not (
        1 <= offer.host.cpu_millicores <= _MAX_HOST_MILLICORES
        and 1 <= offer.host.memory_mib <= _MAX_HOST_MEMORY_MIB
    ):
        raise MalformedMessage("host must have 1 to 10^9 cpu_millicores and 1 to 2^40 memory_mib")
    if len(offer.region) > 64:
        raise MalformedMessage("region must be at most 64 characters")
    if len(offer.labels) > _MAX_LABELS:
        raise MalformedMessage(f"at most {_MAX_LABELS} labels")
    for key, value in offer.labels.items():
        if not _LABEL_KEY.fullmatch(key) or len(value) > 255:
            raise MalformedMessage(f"bad label {key[:64]!r}")
    if not 1 <= offer.sequence <= MAX_INT64:
        raise MalformedMessage("sequence must be 1 to 2^63-1")
    if not 1 <= offer.timestamp_ms <= MAX_INT64:
        raise MalformedMessage("timestamp_ms must be 1 to 2^63-1")


def check_timestamp(offer: offer_pb2.Offer, limits: Limits, now_ms: int) -> None:
    """An offer must be fresh (within the TTL) and not from the future (beyond the skew)."""
    if offer.timestamp_ms > now_ms + limits.max_skew_ms:
        raise TimestampOutOfRange("offer timestamp is in the future", reason="timestamp_in_future")
    if offer.timestamp_ms + limits.ttl_ms <= now_ms:
        raise TimestampOutOfRange("offer is older than the TTL", reason="timestamp_expired")


def admit_offer(signed: offer_pb2.SignedOffer, limits: Limits, now_ms: int) -> offer_pb2.Offer:
    """Every check a seed makes before storing an offer, except the sequence; returns it decoded.
    Used alike for announcements and for offers pulled from peers."""
    reject_unknown_fields(signed)
    if len(signed.offer) > limits.max_offer_bytes:
        raise MessageTooLarge(f"offer is {len(signed.offer)} bytes; cap {limits.max_offer_bytes}")
    if len(signed.signature) != 64:
        raise MalformedMessage("signature must be 64 bytes")
    offer = _decode_unverified(signed)
    check_fields(offer)
    check_timestamp(offer, limits, now_ms)
    return open_signed_offer(signed)


def _decode_unverified(signed: offer_pb2.SignedOffer) -> offer_pb2.Offer:
    # Decoding happens again (with the signature check) in open_signed_offer; doing the cheap
    # field checks first keeps junk from costing a signature verification.
    offer = offer_pb2.Offer()
    try:
        offer.ParseFromString(signed.offer)
    except DecodeError as exc:
        raise MalformedMessage(f"offer does not decode: {exc}") from exc
    return offer
