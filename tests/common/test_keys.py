"""sr25519 keys, key files and signatures."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from services.common import (
    DOMAIN_OFFER,
    ConfigError,
    keypair_from_secret,
    load_or_create_keypair,
    machine_id_for,
    public_key_from_ss58,
    sign,
    ss58_from_public_key,
    verify,
)

ALICE_SS58 = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def test_load_keypair_creates_private_file_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "machine.key"
    first = load_or_create_keypair(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create_keypair(path)
    assert second.public_key == first.public_key


def test_load_keypair_refuses_world_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "machine.key"
    load_or_create_keypair(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_keypair(path)


def test_load_keypair_accepts_dev_uri(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"//Alice\n")
    os.close(fd)
    assert load_or_create_keypair(path).ss58_address == ALICE_SS58


def test_load_keypair_refuses_garbage_secret() -> None:
    with pytest.raises(ConfigError):
        keypair_from_secret("0x1234")


def test_verify_signature_accepts_own_and_refuses_tampering() -> None:
    key = keypair_from_secret("//Bob")
    other = keypair_from_secret("//Charlie")
    signature = sign(key, DOMAIN_OFFER, b"offer body")
    assert verify(key.public_key, DOMAIN_OFFER, b"offer body", signature)
    assert not verify(key.public_key, DOMAIN_OFFER, b"offer bodY", signature)
    assert not verify(other.public_key, DOMAIN_OFFER, b"offer body", signature)
    assert not verify(key.public_key, "submit-workload/v1", b"offer body", signature)
    assert not verify(key.public_key, DOMAIN_OFFER, b"offer body", signature[:63])
    assert not verify(key.public_key, DOMAIN_OFFER, b"offer body", b"\xff" * 64)


def test_convert_ss58_round_trips() -> None:
    public_key = public_key_from_ss58(ALICE_SS58)
    assert ss58_from_public_key(public_key) == ALICE_SS58
    with pytest.raises(ConfigError):
        public_key_from_ss58("not-an-address")


def test_derive_machine_id_matches_vector() -> None:
    vectors = json.loads((Path(__file__).parent / "vectors" / "signing.json").read_text())
    vector = vectors["offer"][0]
    key = keypair_from_secret(vector["machine_seed"])
    assert key.public_key.hex() == vector["operator_public_key"]
    assert machine_id_for(key.public_key).hex() == vector["machine_id"]
