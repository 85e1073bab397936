"""Offer signing and opening, against the shared vector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.common import (
    BadSignature,
    MachineResources,
    MalformedMessage,
    UnknownFields,
    build_offer,
    keypair_from_secret,
    open_signed_offer,
    sign_offer,
)
from services.common.grpc_gen.gridlease.v1 import offer_pb2

VECTOR = json.loads((Path(__file__).parent / "vectors" / "signing.json").read_text())["offer"][0]


def _vector_offer() -> offer_pb2.Offer:
    return build_offer(keypair_from_secret(VECTOR["machine_seed"]), **VECTOR["fields"])


def test_build_offer_encodes_as_vector() -> None:
    assert _vector_offer().SerializeToString(deterministic=True).hex() == VECTOR["offer_hex"]


def test_open_signed_offer_accepts_vector_signature() -> None:
    signed = offer_pb2.SignedOffer(
        offer=bytes.fromhex(VECTOR["offer_hex"]), signature=bytes.fromhex(VECTOR["signature_hex"])
    )
    offer = open_signed_offer(signed)
    assert offer.sequence == VECTOR["fields"]["sequence"]
    assert dict(offer.labels) == VECTOR["fields"]["labels"]


def test_open_signed_offer_refuses_other_signer() -> None:
    signed = sign_offer(_vector_offer(), keypair_from_secret("//Mallory"))
    with pytest.raises(BadSignature) as info:
        open_signed_offer(signed)
    assert info.value.reason == "bad_signature"


def test_open_signed_offer_refuses_foreign_machine_id() -> None:
    # Mallory signs correctly but claims the vector machine's id: the id must follow the key.
    mallory = keypair_from_secret("//Mallory")
    offer = build_offer(mallory, **VECTOR["fields"])
    offer.machine_id = bytes.fromhex(VECTOR["machine_id"])
    with pytest.raises(BadSignature) as info:
        open_signed_offer(sign_offer(offer, mallory))
    assert info.value.reason == "machine_id_mismatch"


def test_open_signed_offer_refuses_unknown_fields() -> None:
    key = keypair_from_secret(VECTOR["machine_seed"])
    body = _vector_offer().SerializeToString(deterministic=True) + b"\xf8\x07\x01"  # field 127
    signed = offer_pb2.SignedOffer(offer=body, signature=sign_offer(_vector_offer(), key).signature)
    with pytest.raises(UnknownFields):
        open_signed_offer(signed)


def test_open_signed_offer_refuses_non_canonical_bytes() -> None:
    # Same content, but field 9 (sequence) encoded a second time: decodes fine, not canonical.
    key = keypair_from_secret(VECTOR["machine_seed"])
    body = _vector_offer().SerializeToString(deterministic=True) + b"\x48\x03"
    from services.common import DOMAIN_OFFER, sign

    signed = offer_pb2.SignedOffer(offer=body, signature=sign(key, DOMAIN_OFFER, body))
    with pytest.raises(MalformedMessage) as info:
        open_signed_offer(signed)
    assert info.value.reason == "not_canonical"


def test_open_signed_offer_refuses_garbage() -> None:
    with pytest.raises(MalformedMessage):
        open_signed_offer(offer_pb2.SignedOffer(offer=b"\xff\xff\xff", signature=b"\x00" * 64))


def test_offer_states_the_host_resources_leases_share() -> None:
    fields = {**VECTOR["fields"], "host": MachineResources(cpu_millicores=2000, memory_mib=23552)}
    key = keypair_from_secret(VECTOR["machine_seed"])
    opened = open_signed_offer(sign_offer(build_offer(key, **fields), key))
    assert (opened.host.cpu_millicores, opened.host.memory_mib) == (2000, 23552)
    # Left out, the offer's bytes are those of the shared vector: older offers stay valid.
    assert not _vector_offer().HasField("host")
