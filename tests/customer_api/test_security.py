"""API keys are stored as keyed hashes; custodial keys are encrypted with the server secret."""

from __future__ import annotations

import pytest

from services.customer_api.core.security import (
    Custody,
    CustodyError,
    hash_api_key,
    new_api_key,
)


def test_api_keys_are_random_and_hash_depends_on_secret() -> None:
    key = new_api_key()
    assert key.startswith("glk_") and key != new_api_key()
    assert hash_api_key(key, "a" * 32) != hash_api_key(key, "b" * 32)
    assert key not in hash_api_key(key, "a" * 32)


def test_custody_round_trips_and_refuses_other_secret() -> None:
    token = Custody("a" * 32).encrypt("0x" + "11" * 32)
    assert "11" * 32 not in token
    assert Custody("a" * 32).decrypt(token) == "0x" + "11" * 32
    with pytest.raises(CustodyError):
        Custody("b" * 32).decrypt(token)
