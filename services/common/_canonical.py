"""The one canonical encoding for everything Gridlease signs or hashes.

Choice: canonical JSON, plus a domain tag in front of anything signed.

canonical_json(value) is JSON with
- object keys sorted by Unicode code point, every key a string;
- no insignificant whitespace (separators "," and ":");
- UTF-8 output, non-ASCII characters written as themselves (not \\u escapes);
- integers only: floats, NaN and infinities are refused, because their text form differs
  between languages (write fractional quantities as strings such as "0.5" or "500m");
- bytes are not JSON: callers write them as "0x"-prefixed lowercase hex (see hex0x).
This is the same bytes in Python (json.dumps with these options) and Rust (serde_json over a
BTreeMap), which is why it was chosen over protobuf for hashes: a spec is a free-form document.

Signing: signing_payload(domain, body) = b"gridlease/" + domain + b"\\n" + body. The domain tag
names what is signed ("offer/v1", "submit-workload/v1") so a signature for one kind of message
can never be replayed as another. For an offer the body is the offer's protobuf bytes exactly
as carried in SignedOffer: the verifier checks the bytes it received, and seeds additionally
insist that those bytes are the deterministic encoding (see services.seed.validation), so each
offer has exactly one valid byte form.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from services.common._errors import EncodingError

__all__ = [
    "DOMAIN_LEASE_GPUS",
    "DOMAIN_OFFER",
    "DOMAIN_SUBMIT_WORKLOAD",
    "LEASE_GPUS_NONCE_BYTES",
    "blake2b_256",
    "canonical_json",
    "hex0x",
    "lease_gpus_request_payload",
    "signing_payload",
    "spec_hash",
    "unhex0x",
    "workload_submission_payload",
]

_DOMAIN_PREFIX = b"gridlease/"
DOMAIN_OFFER = "offer/v1"
DOMAIN_SUBMIT_WORKLOAD = "submit-workload/v1"
DOMAIN_LEASE_GPUS = "lease-gpus/v1"
LEASE_GPUS_NONCE_BYTES = 16
_HEX0X = re.compile(r"0x(?:[0-9a-f]{2})*")


def _check(value: Any, path: str) -> None:
    """Refuse what has no single JSON text form, naming where it was found."""
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise EncodingError(f"{path}: floats have no canonical form; use an integer or string")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"{path}: object keys must be strings, got {key!r}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise EncodingError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of value (see the module docstring for the rules)."""
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates have no UTF-8 form
        raise EncodingError(f"string is not valid Unicode: {exc.reason}") from exc


def blake2b_256(data: bytes) -> bytes:
    """32-byte BLAKE2b digest (the hash Substrate uses as blake2_256)."""
    return hashlib.blake2b(data, digest_size=32).digest()


def spec_hash(spec: dict[str, Any]) -> bytes:
    """blake2b-256 of the canonical JSON of a workload spec; the hash recorded on chain."""
    if not isinstance(spec, dict):
        raise EncodingError("a workload spec must be a JSON object")
    return blake2b_256(canonical_json(spec))


def signing_payload(domain: str, body: bytes) -> bytes:
    """The bytes actually signed: a domain tag, a newline, then the body."""
    if not domain or "\n" in domain:
        raise EncodingError("domain must be a non-empty single line")
    return _DOMAIN_PREFIX + domain.encode("ascii") + b"\n" + body


def workload_submission_payload(lease_id: int, spec_digest: bytes) -> bytes:
    """What a customer signs to hand a lease's spec to a GPU node (NodeService.SubmitWorkload)."""
    if len(spec_digest) != 32:
        raise EncodingError("spec hash must be 32 bytes")
    body = canonical_json({"lease_id": lease_id, "spec_hash": hex0x(spec_digest)})
    return signing_payload(DOMAIN_SUBMIT_WORKLOAD, body)


def lease_gpus_request_payload(lease_id: int, timestamp_ms: int, nonce: bytes) -> bytes:
    """What a customer signs to read a lease's GPUs from its node (NodeService.GetLeaseGpus):
    the lease, when (ms since the epoch) and a random nonce of LEASE_GPUS_NONCE_BYTES, so the
    node can refuse an old or repeated request."""
    if len(nonce) != LEASE_GPUS_NONCE_BYTES:
        raise EncodingError(f"nonce must be {LEASE_GPUS_NONCE_BYTES} bytes")
    body = canonical_json(
        {"lease_id": lease_id, "nonce": hex0x(nonce), "timestamp_ms": timestamp_ms}
    )
    return signing_payload(DOMAIN_LEASE_GPUS, body)


def hex0x(data: bytes) -> str:
    """Lowercase hex with a 0x prefix, the form bytes take inside canonical JSON."""
    return "0x" + data.hex()


def unhex0x(text: str) -> bytes:
    """Inverse of hex0x; refuses anything else (uppercase, spaces, odd length, no prefix)."""
    if not _HEX0X.fullmatch(text):
        raise EncodingError(f"not 0x-prefixed lowercase hex: {text[:20]!r}")
    return bytes.fromhex(text[2:])
