"""Whether a submitted spec may run here: the checks of SubmitWorkload as one plain function;
and whether a customer may read a lease's GPUs (GetLeaseGpus, `authorize_lease_read`).

Order: cheap checks of the request itself first (so garbage costs no chain read), then the lease
as the chain shows it. Each refusal is a GridleaseError with its own gRPC code and reason:

    spec or request malformed            INVALID_ARGUMENT   spec_* / malformed
    lease absent, or on another machine  NOT_FOUND          lease_not_found
    signer is not the lease's customer   PERMISSION_DENIED  not_lease_customer
    spec hash differs from the chain's   INVALID_ARGUMENT   spec_hash_mismatch
    signature does not verify            PERMISSION_DENIED  bad_signature
    lease past its start window or end   FAILED_PRECONDITION lease_not_accepting
    lease holds a GPU slot not usable    FAILED_PRECONDITION gpus_missing
      here (lost, absent, MIG mode)

GetLeaseGpus, in the same spirit (request, freshness, lease, signer, signature, replay):

    request malformed                    INVALID_ARGUMENT   bad_customer / bad_signature_length
                                                            / bad_nonce_length
    timestamp over REQUEST_MAX_SKEW_MS   FAILED_PRECONDITION request_expired /
      from the node's clock                                 timestamp_in_future
    lease absent, or on another machine  NOT_FOUND          lease_not_found
    signer is not the lease's customer   PERMISSION_DENIED  not_lease_customer
    signature does not verify            PERMISSION_DENIED  bad_signature
    nonce seen before (a replay)         PERMISSION_DENIED  request_replayed
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from services.common import (
    DOMAIN_LEASE_GPUS,
    DOMAIN_SUBMIT_WORKLOAD,
    LEASE_GPUS_NONCE_BYTES,
    ConfigError,
    MalformedMessage,
    NotFound,
    RateLimited,
    RejectedError,
    TimestampOutOfRange,
    lease_gpus_request_payload,
    public_key_from_ss58,
    signing_payload,
    verify,
    workload_submission_payload,
)
from services.common._chain import ChainLease
from services.gpu_node.gpus import slots_of
from services.gpu_node.spec import ParsedSpec, parse_spec

__all__ = [
    "REQUEST_MAX_SKEW_MS",
    "LeaseReadRequest",
    "PermissionDenied",
    "ReplayGuard",
    "SubmissionRequest",
    "admit",
    "authorize_lease_read",
    "check_request",
    "lease_accepting",
    "missing_slots",
    "signer_key",
]

_PAYLOAD_PREFIX = signing_payload(DOMAIN_SUBMIT_WORKLOAD, b"")
_LEASE_GPUS_PREFIX = signing_payload(DOMAIN_LEASE_GPUS, b"")
# How far a GetLeaseGpus timestamp may be from the node's clock, either way: room for clock
# skew and a slow network, short enough that a captured request soon stops working.
REQUEST_MAX_SKEW_MS = 60_000


class PermissionDenied(RejectedError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "permission_denied"


@dataclass(frozen=True)
class SubmissionRequest:
    """The SubmitWorkload fields (see node.proto)."""

    lease_id: int
    spec: bytes
    customer: str
    signature: bytes


def check_request(request: SubmissionRequest) -> tuple[ParsedSpec, bytes]:
    """The parsed spec and the customer's public key; MalformedMessage when unusable."""
    parsed = parse_spec(request.spec)
    return parsed, signer_key(request.customer, request.signature)


def signer_key(customer: str, signature: bytes) -> bytes:
    """The public key of `customer` (SS58) for checking `signature`; MalformedMessage when the
    address is not SS58 or the signature is not 64 bytes (sr25519)."""
    try:
        customer_key = public_key_from_ss58(customer)
    except ConfigError as exc:
        raise MalformedMessage("customer is not an SS58 address", reason="bad_customer") from exc
    if len(signature) != 64:
        raise MalformedMessage("signature must be 64 bytes", reason="bad_signature_length")
    return customer_key


def lease_accepting(lease: ChainLease, block: int, start_window: int) -> str | None:
    """Why the lease takes no spec at `block`, or None when it does."""
    if lease.state == "Pending" and block > lease.created_at + start_window:
        return "the lease's start window has passed"
    if lease.state == "Running" and block >= lease.ends_at:
        return "the lease has reached its end block"
    return None


def missing_slots(lease: ChainLease, gpus_usable: int) -> list[int]:
    """The GPU slots of `lease` that are not in the `gpus_usable` bit mask."""
    return [slot for slot in lease.gpu_indexes if not gpus_usable >> slot & 1]


def admit(
    request: SubmissionRequest,
    lookup: Callable[[int], tuple[ChainLease | None, int]],
    machine_id: bytes,
    start_window: int,
    gpus_usable: int | None = None,
) -> tuple[ParsedSpec, ChainLease, int]:
    """Raises the refusal, or returns the spec that may run, its lease and the block at which
    the lease was read. `lookup(lease_id)` reads the lease and says at which block;
    `gpus_usable` is the bit mask of GPU slots this node can run now (None: not checked)."""
    parsed, customer_key = check_request(request)
    lease, block = lookup(request.lease_id)
    if lease is None or lease.machine_id != machine_id:
        raise NotFound(f"lease {request.lease_id} is not on this machine", reason="lease_not_found")
    if public_key_from_ss58(lease.customer) != customer_key:
        raise PermissionDenied(
            "the signer is not the lease's customer", reason="not_lease_customer"
        )
    if parsed.digest != lease.spec_hash:
        raise RejectedError(
            "the spec's hash differs from the one recorded on chain", reason="spec_hash_mismatch"
        )
    payload = workload_submission_payload(request.lease_id, parsed.digest)
    body = payload[len(_PAYLOAD_PREFIX) :]
    if not verify(customer_key, DOMAIN_SUBMIT_WORKLOAD, body, request.signature):
        raise PermissionDenied("signature does not verify", reason="bad_signature")
    why = lease_accepting(lease, block, start_window)
    if why is not None:
        error = RejectedError(why, reason="lease_not_accepting")
        error.code = grpc.StatusCode.FAILED_PRECONDITION
        raise error
    missing = [] if gpus_usable is None else missing_slots(lease, gpus_usable)
    if gpus_usable is not None and missing:
        # The chain still books a GPU this machine cannot run (lost, gone, MIG mode); the
        # node's GPU reconcile takes it off the chain, which ends this lease with a refund.
        error = RejectedError(
            f"lease {lease.lease_id} holds GPU slots {missing} that this machine cannot run "
            f"now (usable slots: {slots_of(gpus_usable)}); the chain will end the lease",
            reason="gpus_missing",
        )
        error.code = grpc.StatusCode.FAILED_PRECONDITION
        raise error
    return parsed, lease, block


@dataclass(frozen=True)
class LeaseReadRequest:
    """The GetLeaseGpus fields (see node.proto)."""

    lease_id: int
    customer: str
    timestamp_ms: int
    nonce: bytes
    signature: bytes


class ReplayGuard:
    """The nonces of accepted requests still within REQUEST_MAX_SKEW_MS, so each signed request
    is answered once. Entries leave as their timestamps age out; at most `max_entries` are held
    (more within one window is refused as RateLimited rather than forgetting one early)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._seen: dict[tuple[bytes, bytes], int] = {}

    def remember(self, signer: bytes, nonce: bytes, timestamp_ms: int, now_ms: int) -> None:
        """Record (signer, nonce); PermissionDenied if it is already recorded."""
        with self._lock:
            if (signer, nonce) in self._seen:
                raise PermissionDenied(
                    "this request was already answered", reason="request_replayed"
                )
            oldest = now_ms - REQUEST_MAX_SKEW_MS
            if len(self._seen) >= self._max_entries:
                self._seen = {key: ts for key, ts in self._seen.items() if ts >= oldest}
            if len(self._seen) >= self._max_entries:
                raise RateLimited("too many telemetry requests; retry shortly")
            self._seen[(signer, nonce)] = timestamp_ms


def authorize_lease_read(
    request: LeaseReadRequest,
    lookup: Callable[[int], ChainLease | None],
    machine_id: bytes,
    now_ms: int,
    replays: ReplayGuard,
) -> ChainLease:
    """The lease whose GPUs `request` may read, or the refusal (see the module docstring).
    `lookup(lease_id)` reads the lease on chain; `now_ms` is the node's clock."""
    customer_key = signer_key(request.customer, request.signature)
    if len(request.nonce) != LEASE_GPUS_NONCE_BYTES:
        raise MalformedMessage(
            f"nonce must be {LEASE_GPUS_NONCE_BYTES} bytes", reason="bad_nonce_length"
        )
    if request.timestamp_ms < now_ms - REQUEST_MAX_SKEW_MS:
        raise TimestampOutOfRange("the request is too old", reason="request_expired")
    if request.timestamp_ms > now_ms + REQUEST_MAX_SKEW_MS:
        raise TimestampOutOfRange("the request is from the future", reason="timestamp_in_future")
    lease = lookup(request.lease_id)
    if lease is None or lease.machine_id != machine_id:
        raise NotFound(f"lease {request.lease_id} is not on this machine", reason="lease_not_found")
    if public_key_from_ss58(lease.customer) != customer_key:
        raise PermissionDenied(
            "the signer is not the lease's customer", reason="not_lease_customer"
        )
    payload = lease_gpus_request_payload(request.lease_id, request.timestamp_ms, request.nonce)
    body = payload[len(_LEASE_GPUS_PREFIX) :]
    if not verify(customer_key, DOMAIN_LEASE_GPUS, body, request.signature):
        raise PermissionDenied("signature does not verify", reason="bad_signature")
    replays.remember(customer_key, request.nonce, request.timestamp_ms, now_ms)
    return lease
