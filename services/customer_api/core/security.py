"""API keys (random, stored as a keyed hash) and custodial key encryption (Fernet)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["API_KEY_PREFIX", "Custody", "CustodyError", "hash_api_key", "new_api_key"]

API_KEY_PREFIX = "glk_"


def new_api_key() -> str:
    """A fresh API key: a recognisable prefix and 256 random bits."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str, server_secret: str) -> str:
    """What is stored for a key: HMAC-SHA256 keyed by the server secret, so a leaked table
    alone does not let anyone check guesses."""
    return hmac.new(server_secret.encode(), api_key.encode(), hashlib.sha256).hexdigest()


class CustodyError(Exception):
    """A custodial key does not decrypt with this server secret."""


class Custody:
    """Encrypts and decrypts custodial key secrets with a key derived from the server secret."""

    def __init__(self, server_secret: str) -> None:
        digest = hashlib.blake2b(
            server_secret.encode(), digest_size=32, person=b"gl-custody-v1"
        ).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise CustodyError("custodial key does not decrypt with this server secret") from exc
