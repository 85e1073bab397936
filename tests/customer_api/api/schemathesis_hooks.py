"""Schemathesis hooks for the contract test (loaded through SCHEMATHESIS_HOOKS): strategies for
the string formats whose rule a pattern cannot state, so schema-valid requests are generated as
the API means them. Only real key lines are "openssh-public-key" strings."""

from __future__ import annotations

import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import strategies as st


def _openssh(key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def _key_lines() -> list[str]:
    keys: list[ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey] = [
        ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed] * 32)).public_key()
        for seed in range(1, 4)
    ]
    keys += [
        ec.derive_private_key(12345, curve).public_key()
        for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1())
    ]
    return [_openssh(key) for key in keys]


_COMMENTS = st.one_of(st.just(""), st.from_regex(r" [a-z0-9@._-]{0,32}", fullmatch=True))
schemathesis.openapi.format(
    "openssh-public-key",
    st.builds(lambda line, comment: line + comment, st.sampled_from(_key_lines()), _COMMENTS),
)
