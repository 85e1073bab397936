"""Building, signing and opening offers; shared by the GPU node (signs) and seeds (verify).

An offer is signed as its deterministic protobuf bytes under the "offer/v1" domain
(see _canonical). open_signed_offer refuses anything but that one byte form.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from google.protobuf.message import DecodeError, Message
from substrateinterface import Keypair

from services.common._canonical import DOMAIN_OFFER
from services.common._errors import BadSignature, MalformedMessage, UnknownFields
from services.common._keys import machine_id_for, sign, verify
from services.common._workload import MachineResources
from services.common.grpc_gen.gridlease.v1 import offer_pb2

__all__ = ["build_offer", "has_unknown_fields", "now_ms", "open_signed_offer", "sign_offer"]


def now_ms() -> int:
    """Unix time in milliseconds, the unit of Offer.timestamp_ms."""
    return time.time_ns() // 1_000_000


def build_offer(
    keypair: Keypair,
    *,
    provider: str,
    endpoint: str,
    gpu_model: str,
    gpu_count: int,
    memory_mib: int,
    compute_capability: str,
    price_per_gpu_per_block: int,
    region: str,
    sequence: int,
    labels: Mapping[str, str] | None = None,
    timestamp_ms: int | None = None,
    host: MachineResources | None = None,
) -> offer_pb2.Offer:
    """An Offer for the machine whose key is keypair (machine_id derived from the key); `host`
    is the machine's CPU and memory that leases share (left out of the offer when None)."""
    public_key = bytes(keypair.public_key)
    host_resources = (
        None
        if host is None
        else offer_pb2.HostResources(cpu_millicores=host.cpu_millicores, memory_mib=host.memory_mib)
    )
    return offer_pb2.Offer(
        machine_id=machine_id_for(public_key),
        provider=provider,
        operator_public_key=public_key,
        endpoint=endpoint,
        gpu=offer_pb2.GpuInventory(
            model=gpu_model,
            count=gpu_count,
            memory_mib=memory_mib,
            compute_capability=compute_capability,
        ),
        price_per_gpu_per_block=str(price_per_gpu_per_block),
        region=region,
        labels=dict(labels or {}),
        sequence=sequence,
        timestamp_ms=now_ms() if timestamp_ms is None else timestamp_ms,
        host=host_resources,
    )


def sign_offer(offer: offer_pb2.Offer, keypair: Keypair) -> offer_pb2.SignedOffer:
    """Encode offer deterministically and sign it with the machine key."""
    body = offer.SerializeToString(deterministic=True)
    return offer_pb2.SignedOffer(offer=body, signature=sign(keypair, DOMAIN_OFFER, body))


def has_unknown_fields(message: Message) -> bool:
    """True when message (or any message inside it) carries fields its schema does not know."""
    stripped = type(message)()
    stripped.CopyFrom(message)
    stripped.DiscardUnknownFields()
    return bool(stripped.ByteSize() != message.ByteSize())


def open_signed_offer(signed: offer_pb2.SignedOffer) -> offer_pb2.Offer:
    """Decode and verify a signed offer: the one canonical encoding, no unknown fields, a
    machine_id bound to the operator key, and a valid signature by that key."""
    offer = offer_pb2.Offer()
    try:
        offer.ParseFromString(signed.offer)
    except DecodeError as exc:
        raise MalformedMessage(f"offer does not decode: {exc}") from exc
    if has_unknown_fields(offer):
        raise UnknownFields("offer carries fields unknown to this seed")
    if offer.SerializeToString(deterministic=True) != signed.offer:
        raise MalformedMessage(
            "offer bytes are not the deterministic encoding", reason="not_canonical"
        )
    if len(offer.operator_public_key) != 32:
        raise MalformedMessage("operator_public_key must be 32 bytes")
    if offer.machine_id != machine_id_for(offer.operator_public_key):
        raise BadSignature(
            "machine_id is not derived from operator_public_key", reason="machine_id_mismatch"
        )
    if not verify(offer.operator_public_key, DOMAIN_OFFER, signed.offer, signed.signature):
        raise BadSignature("offer signature does not verify against operator_public_key")
    return offer
