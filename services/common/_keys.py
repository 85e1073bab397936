"""sr25519 keys and signatures, through substrate-interface's Keypair (no crypto of our own).

Key files hold one secret per file, created with mode 0600: either a 0x-prefixed 32-byte seed
(what load_or_create_keypair writes) or a Substrate secret URI / mnemonic ("//Alice" for dev).
"""

from __future__ import annotations

import functools
import os
import secrets
import stat
from pathlib import Path

from substrateinterface import Keypair, KeypairType

from services.common._canonical import blake2b_256, signing_payload
from services.common._errors import ConfigError

__all__ = [
    "SS58_FORMAT",
    "keypair_from_secret",
    "load_or_create_keypair",
    "machine_id_for",
    "new_keypair",
    "public_key_from_ss58",
    "sign",
    "ss58_from_public_key",
    "verify",
]

# Generic Substrate prefix; the dev chain uses it too.
SS58_FORMAT = 42
_MACHINE_ID_DOMAIN = b"gridlease/machine-id/v1\n"


def keypair_from_secret(secret: str) -> Keypair:
    """A Keypair from a 0x seed, a secret URI (//Alice) or a mnemonic."""
    secret = secret.strip()
    try:
        if secret.startswith("0x"):
            return Keypair.create_from_seed(
                secret, ss58_format=SS58_FORMAT, crypto_type=KeypairType.SR25519
            )
        return Keypair.create_from_uri(
            secret, ss58_format=SS58_FORMAT, crypto_type=KeypairType.SR25519
        )
    except (ValueError, TypeError, IndexError) as exc:  # the bindings raise all three
        raise ConfigError(f"unusable sr25519 secret: {exc}") from exc


def new_keypair() -> tuple[Keypair, str]:
    """A fresh random keypair and its secret (0x seed) to store."""
    secret = "0x" + secrets.token_bytes(32).hex()
    return keypair_from_secret(secret), secret


def load_or_create_keypair(path: Path) -> Keypair:
    """Load the key in path, or create one there (0600, never overwriting) if it is missing."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keypair, secret = new_keypair()
        # O_EXCL: if another process created it meanwhile we fail rather than clobber its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        return keypair
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"key file {path} is readable by others (mode {mode:o}); chmod 600 it")
    return keypair_from_secret(path.read_text())


def sign(keypair: Keypair, domain: str, body: bytes) -> bytes:
    """64-byte sr25519 signature over signing_payload(domain, body)."""
    return bytes(keypair.sign(signing_payload(domain, body)))


def verify(public_key: bytes, domain: str, body: bytes, signature: bytes) -> bool:
    """True only when signature is public_key's over signing_payload(domain, body)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        return bool(_verifier(bytes(public_key)).verify(signing_payload(domain, body), signature))
    except ValueError:
        # The bindings raise on signatures that are not even well-formed points.
        return False


@functools.lru_cache(maxsize=8192)
def _verifier(public_key: bytes) -> Keypair:
    # Building a Keypair computes its SS58 address in pure-Python base58, which costs more than
    # the signature check itself; machines re-announce often, so keep recent ones.
    return Keypair(public_key=public_key, ss58_format=SS58_FORMAT, crypto_type=KeypairType.SR25519)


def ss58_from_public_key(public_key: bytes) -> str:
    """SS58 address (generic prefix 42) of a 32-byte public key."""
    address: str = Keypair(
        public_key=public_key, ss58_format=SS58_FORMAT, crypto_type=KeypairType.SR25519
    ).ss58_address
    return address


@functools.lru_cache(maxsize=1024)
def public_key_from_ss58(address: str) -> bytes:
    """The 32-byte public key inside an SS58 address; ConfigError if it is not one.
    Cached: a provider owns many machines, so the same addresses recur in every offer."""
    try:
        keypair = Keypair(ss58_address=address, crypto_type=KeypairType.SR25519)
    except (ValueError, TypeError, IndexError) as exc:
        raise ConfigError(f"not an SS58 address: {address[:60]!r}") from exc
    return bytes(keypair.public_key)


def machine_id_for(public_key: bytes) -> bytes:
    """A machine's id: blake2b-256 of its machine key. Binding the id to the key means nobody
    but the key holder can announce (or overwrite) offers for that machine."""
    return blake2b_256(_MACHINE_ID_DOMAIN + public_key)
