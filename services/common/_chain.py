"""The chain client: the one place services talk to the Gridlease chain (substrate-interface).

Writes: `submit` checks every argument against the call's types (a named `InvalidCallArgument`
instead of an encoding error or a trap in the runtime), signs with the nonce the transaction
pool will accept next (`system_accountNextIndex`: the chain's nonce plus what waits in the pool)
and a mortal era (the extrinsic can only be included in `ERA_PERIOD` blocks after it was
signed), sends it, and follows its status until a final one, within a deadline:

    in a block                       -> `Receipt`, or `ExtrinsicFailed` named after the error
    invalid / dropped / usurped      -> `ExtrinsicRejected` (never included, nothing paid);
                                        a lost nonce race is signed again, a few times
    no answer before the deadline,   -> `SubmitOutcomeUnknown` with the extrinsic's hash
    or the connection lost after sending

Signers are serialised from fetching the nonce until the pool has taken the extrinsic, through
`SignerLocks` (in-process by default; the API passes locks kept in its database, so replicas
never sign two extrinsics with one nonce), which also remember the last nonce handed to the
pool (the pool's count misses an extrinsic while it is built into a block). Every wait is
bounded.

Reads return plain dataclasses. Every failure is a `ChainError` (services.common._errors): a
lost or timed-out connection is `ChainUnavailable`, the connection is dropped and the next call
opens a new one; a read is tried once more on a fresh connection first. A client holds one or
more websockets, each used by one call at a time (substrate-interface is not thread-safe).
"""

from __future__ import annotations

import functools
import json
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any, Literal, Protocol, TypeVar

from scalecodec.types import U8, U16, U32, U64, U128, Compact
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from websocket import WebSocketException

from services.common._errors import (
    ChainError,
    ChainUnavailable,
    ExtrinsicFailed,
    ExtrinsicRejected,
    InvalidCallArgument,
    SubmitOutcomeUnknown,
)
from services.common._keys import SS58_FORMAT
from services.common._logging import get_logger

__all__ = [
    "ERA_PERIOD",
    "PALLET",
    "TOKEN_DECIMALS",
    "TOKEN_UNIT",
    "ChainClient",
    "ChainError",
    "ChainEvent",
    "ChainLease",
    "ChainMachine",
    "ChainUnavailable",
    "EraAnchor",
    "ExtrinsicFailed",
    "ExtrinsicRejected",
    "InvalidCallArgument",
    "LocalSignerLocks",
    "Receipt",
    "SignedExtrinsic",
    "SignerLease",
    "SignerLocks",
    "SubmissionStatus",
    "SubmitOutcomeUnknown",
    "accepted_by_pool",
    "extrinsic_hash",
    "format_tokens",
    "submit_through",
]

log = get_logger(__name__)

PALLET = "GpuRental"
# The chain's token: balances are integers of its smallest unit, 10**-12 token (runtime UNIT).
TOKEN_DECIMALS = 12
TOKEN_UNIT = 10**TOKEN_DECIMALS
# Blocks an extrinsic stays valid after signing (a power of two). After that it can never be
# included, which lets a lost submission be declared dead instead of waited on forever.
ERA_PERIOD = 64
# Where a signed extrinsic's mortal era starts (see ChainClient).
EraAnchor = Literal["finalized", "best"]
# How often a lost nonce race (another signer took the nonce) is signed again.
_NONCE_ATTEMPTS = 5
T = TypeVar("T")

# Names of the runtime's non-module dispatch errors, for people.
_DISPATCH_DOCS = {
    "BelowMinimum": "the account would hold less than the existential deposit",
    "FundsUnavailable": "the funds are not available (held, frozen or missing)",
    "NotExpendable": "the account would be left below the existential deposit",
    "Frozen": "the funds are frozen",
    "OnlyProvider": "the account cannot be removed while other things depend on it",
    "CannotCreate": "the account cannot be created",
    "CannotCreateHold": "no more holds can be placed on the account",
    "Blocked": "the account is blocked",
    "Unsupported": "the operation is not supported",
    "UnknownAsset": "unknown asset",
    "Overflow": "an amount overflowed",
    "Underflow": "an amount underflowed",
    "DivisionByZero": "division by zero",
    "BadOrigin": "the caller may not make this call",
    "LimitReached": "too many nested transactional layers",
}
# Token errors about the existential deposit carry it as `minimum` (errors that name a bound
# say the bound).
_BELOW_ED = ("BelowMinimum", "NotExpendable")


def format_tokens(amount: int) -> str:
    """An amount of the smallest unit as tokens, exactly (no float): 1500000000000 -> '1.5'."""
    whole, frac = divmod(int(amount), TOKEN_UNIT)
    text = f"{frac:0{TOKEN_DECIMALS}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


@dataclass(frozen=True)
class ChainEvent:
    """One event: `module`.`name` with its named attributes; `extrinsic_index` is the index in
    its block of the extrinsic that emitted it (None for block initialisation/finalisation)."""

    module: str
    name: str
    attributes: dict[str, Any]
    extrinsic_index: int | None = None


@dataclass(frozen=True)
class Receipt:
    """An included extrinsic: where, what it cost, and what it emitted."""

    extrinsic_hash: str
    block_hash: str
    block_number: int
    fee: int
    events: list[ChainEvent] = field(default_factory=list)

    def find(self, module: str, name: str) -> list[dict[str, Any]]:
        return [e.attributes for e in self.events if e.module == module and e.name == name]

    def one(self, module: str, name: str) -> dict[str, Any]:
        found = self.find(module, name)
        if len(found) != 1:
            raise ChainError(f"expected one {module}.{name} event, found {len(found)}")
        return found[0]


@dataclass(frozen=True)
class SignedExtrinsic:
    """A signed extrinsic ready to send: `data` is its encoding (0x hex), `extrinsic_hash` the
    blake2-256 of it (what blocks are searched for). It can only be included in blocks
    `valid_from` <= n < `valid_until` (its mortal era), and only while `signer`'s nonce is
    `nonce`. Sending the same `data` again is safe: it is included at most once."""

    signer: str
    nonce: int
    extrinsic_hash: str
    data: str
    valid_from: int
    valid_until: int
    call: str  # "Module.function", for messages


@dataclass(frozen=True)
class SubmissionStatus:
    """Where a signed extrinsic stands (see `ChainClient.status`): exactly one of
    `receipt` (included and succeeded), `failure` (included and failed), `pending` (in the
    pool), `dead` (can never be included), or none of them (not seen yet, still possible)."""

    receipt: Receipt | None = None
    failure: ExtrinsicFailed | None = None
    pending: bool = False
    dead: bool = False


class SignerLease:
    """A held signer lock (see SignerLocks). `floor` is the lowest nonce the holder may use:
    one past the last extrinsic a signer of this account handed to the pool recently (the
    pool's own count misses extrinsics while they are being built into a block). Calling the
    lease releases it (safe twice)."""

    def __init__(self, release: Callable[[], None], floor: int | None) -> None:
        self._release = _Once(release)
        self.floor = floor

    def __call__(self) -> None:
        self._release()


class SignerLocks(Protocol):
    """Serialises the signers of one account from fetching its nonce until the pool took the
    extrinsic, and remembers the nonces they used. `acquire` waits at most `timeout_s` (then
    raises `ChainUnavailable`). `used(address, nonce)`: the pool took an extrinsic with that
    nonce (the next signer starts above it for a while). `lost(address, nonce)`: one with that
    nonce will not be included (forget any floor above it)."""

    def acquire(self, address: str, timeout_s: float) -> SignerLease: ...

    def used(self, address: str, nonce: int) -> None: ...

    def lost(self, address: str, nonce: int) -> None: ...


class LocalSignerLocks:
    """SignerLocks within one process (one lock per account). A floor is trusted for
    `floor_ttl_s` (by then its extrinsic is in a block or given up)."""

    def __init__(self, floor_ttl_s: float = 60.0) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._floors: dict[str, tuple[int, float]] = {}
        self.floor_ttl_s = floor_ttl_s

    def acquire(self, address: str, timeout_s: float) -> SignerLease:
        with self._guard:
            lock = self._locks.setdefault(address, threading.Lock())
        if not lock.acquire(timeout=max(timeout_s, 0.0)):
            raise ChainUnavailable(f"signer {address} busy for {timeout_s:.0f} s")
        with self._guard:
            floor, until = self._floors.get(address, (0, 0.0))
        return SignerLease(lock.release, floor if until > time.monotonic() else None)

    def used(self, address: str, nonce: int) -> None:
        with self._guard:
            self._floors[address] = (nonce + 1, time.monotonic() + self.floor_ttl_s)

    def lost(self, address: str, nonce: int) -> None:
        with self._guard:
            floor, _ = self._floors.get(address, (0, 0.0))
            if floor > nonce:
                self._floors.pop(address, None)


# Every client of this process shares them unless told otherwise: two clients signing for one
# account (the API's writer connections) must not both take the same nonce.
PROCESS_SIGNER_LOCKS = LocalSignerLocks()


@dataclass(frozen=True)
class ChainMachine:
    machine_id: bytes
    owner: str
    operator: str
    gpu_model: str
    gpu_count: int
    memory_mib: int
    price_per_gpu_block: int
    bond: int
    online: bool
    used_gpus: int
    last_heartbeat: int
    # Bit i set: GPU slot i exists (runtimes before the field: the first gpu_count slots).
    gpus_present: int = 0
    # Bit i set: the last heartbeat reported GPU slot i unhealthy; new leases do not get it.
    unhealthy_gpus: int = 0

    @property
    def free_gpus(self) -> int:
        """GPUs a new lease can get: present, not leased, not reported unhealthy."""
        present = self.gpus_present or (1 << self.gpu_count) - 1
        return bin(present & ~self.used_gpus & ~self.unhealthy_gpus).count("1")


@dataclass(frozen=True)
class ChainLease:
    lease_id: int
    machine_id: bytes
    customer: str
    gpus: int
    gpu_mask: int
    price_per_gpu_block: int
    duration: int
    spec_hash: bytes
    state: str  # "Pending" or "Running"
    created_at: int
    started_at: int
    ends_at: int
    accrue_from: int
    escrow: int
    fee_parts_per_billion: int = 0  # the protocol fee fixed at creation (Perbill)
    # Block from which the lease's GPUs are reported unhealthy (0: healthy); pay stops there.
    unhealthy_since: int = 0

    @property
    def healthy(self) -> bool:
        return self.unhealthy_since == 0

    @property
    def gpu_indexes(self) -> list[int]:
        return [i for i in range(64) if self.gpu_mask >> i & 1]


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _event(record: Any) -> ChainEvent:
    value = record.value if hasattr(record, "value") else record
    event = value["event"] if "event" in value else value
    attributes = event.get("attributes")
    if not isinstance(attributes, dict):
        attributes = {"value": attributes}
    index = value.get("extrinsic_idx")
    return ChainEvent(
        event["module_id"], event["event_id"], attributes, None if index is None else int(index)
    )


def extrinsic_hash(data: str | bytes) -> str:
    """The hash blocks and pools know an extrinsic by: blake2-256 of its encoding."""
    raw = _bytes(data)
    return "0x" + blake2b(raw, digest_size=32).hexdigest()


# -- naming what the chain says --------------------------------------------------------------------
_POOL_REASONS = (
    # (words in the pool's message, name); first match wins.
    (("already imported", "alreadyimported", "already in the pool"), "AlreadyImported"),
    (("outdated", "stale"), "Stale"),
    (("future",), "Future"),
    (("pay some fees", "payment"), "Payment"),
    (("bad signature", "badproof", "bad proof"), "BadProof"),
    (("ancient", "birth block"), "AncientBirthBlock"),
    (("exhaust",), "ExhaustsResources"),
    (("priority is too low", "prioritytoolow", "too low priority"), "PriorityTooLow"),
    (("banned",), "Banned"),
    (("usurped",), "Usurped"),
    (("dropped", "limit"), "Dropped"),
)


def pool_rejection(detail: Any) -> ExtrinsicRejected:
    """An `ExtrinsicRejected` named from what the pool said (an RPC error object, or the
    `invalid` / `dropped` / `usurped` status of a watched extrinsic)."""
    text = json.dumps(detail, default=str) if not isinstance(detail, str) else detail
    lowered = text.lower()
    for words, name in _POOL_REASONS:
        if any(w in lowered for w in words):
            return ExtrinsicRejected(name, text)
    return ExtrinsicRejected("Invalid", text)


def _dispatch_failure(substrate: SubstrateInterface, error: Any) -> ExtrinsicFailed:
    """The named error of a `System.ExtrinsicFailed` event's `dispatch_error`: a pallet's own
    error by its name (`GpuRental.NotEnoughFreeGpus`), a token, arithmetic or transactional
    error by its variant (`Token.BelowMinimum`, `Arithmetic.Overflow`), else the bare name
    (`System.BadOrigin`)."""
    if isinstance(error, str):
        return ExtrinsicFailed(error, _DISPATCH_DOCS.get(error, ""), "System")
    if isinstance(error, dict) and len(error) == 1:
        kind, value = next(iter(error.items()))
        if kind == "Module":
            if isinstance(value, (tuple, list)):
                index, raw = value[0], value[1]
            else:
                index, raw = value["index"], value["error"]
            error_index = int(raw[2:4], 16) if isinstance(raw, str) else int(raw)
            found = substrate.metadata.get_module_error(
                module_index=int(index), error_index=error_index
            )
            pallet = substrate.metadata.get_pallet_by_index(int(index)).name
            docs = found.docs if hasattr(found, "docs") else []
            text = " ".join(docs) if isinstance(docs, list) else str(docs)
            return ExtrinsicFailed(str(found.name), text, str(pallet))
        if isinstance(value, str):
            failure = ExtrinsicFailed(value, _DISPATCH_DOCS.get(value, ""), str(kind))
            if kind == "Token" and value in _BELOW_ED:
                minimum = int(substrate.get_constant("Balances", "ExistentialDeposit").value)
                failure.details["minimum"] = minimum
            return failure
        return ExtrinsicFailed(str(kind), json.dumps(value, default=str), "System")
    return ExtrinsicFailed("DispatchError", json.dumps(error, default=str), "System")


# -- checking arguments before encoding ------------------------------------------------------------
_INT_TYPES: tuple[tuple[type, int], ...] = ((U8, 8), (U16, 16), (U32, 32), (U64, 64), (U128, 128))
_BOUND = re.compile(r"BoundedVec<\s*u8\s*,\s*(?:T::)?(\w+)\s*>")
# Byte strings the pallet bounds by a constant although their type does not say so.
_BYTES_BOUNDS = {(PALLET, "register_machine", "gpu_model"): "MaxModelLen"}


def _int_bits(substrate: SubstrateInterface, type_string: str) -> int | None:
    """The width of an unsigned integer type (plain or Compact), None for other types."""
    cls = substrate.runtime_config.get_decoder_class(type_string)
    if cls is None:
        return None
    for base, bits in _INT_TYPES:
        if issubclass(cls, base):
            return bits
    sub_type = getattr(cls, "sub_type", None)
    if issubclass(cls, Compact) and sub_type:
        return _int_bits(substrate, str(sub_type))
    return None


def _check_int(bits: int | None, value: Any) -> str | None:
    """The problem with an integer argument of `bits` width, or None."""
    if bits is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer (u{bits})"
    if not 0 <= value <= 2**bits - 1:
        return f"is out of range for u{bits} (0..{2**bits - 1})"
    return None


def _encoded_bytes(value: Any) -> bytes | None:
    """The bytes a Vec<u8> argument is encoded as (what scalecodec does: 0x hex is decoded,
    any other string is UTF-8); None if it is no byte string."""
    if isinstance(value, str):
        if value.startswith("0x"):
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                return None
        return value.encode()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value)
    return None


def check_call_arguments(
    substrate: SubstrateInterface, module: str, function: str, params: dict[str, Any]
) -> None:
    """Raises `InvalidCallArgument` for a missing or unknown argument, an integer outside its
    type, a byte array of the wrong length, a byte string above its bound, or anything else the
    call's types cannot encode. Nothing is sent."""
    call = f"{module}.{function}"
    found = substrate.get_metadata_call_function(module, function)
    if found is None:
        raise InvalidCallArgument(call, "-", "names no call of this runtime")
    args = {str(a.name): a for a in found.args}
    for name in params:
        if name not in args:
            raise InvalidCallArgument(call, name, "is not an argument of this call")
    for name, arg in args.items():
        if name not in params:
            raise InvalidCallArgument(call, name, "is missing")
        value = params[name]
        problem = _check_int(_int_bits(substrate, arg.type), value)
        type_name = str(arg.value.get("typeName") or "") if hasattr(arg, "value") else ""
        bound_name = _BYTES_BOUNDS.get((module, function, name))
        if bound_name is None and (matched := _BOUND.search(type_name)):
            bound_name = matched.group(1)
        if problem is None and bound_name is not None:
            raw = _encoded_bytes(value)
            bound = int(substrate.get_constant(module, bound_name).value)
            if raw is None:
                problem = "must be bytes or 0x hex"
            elif len(raw) > bound:
                problem = f"is {len(raw)} bytes, more than {bound_name} ({bound})"
        if problem is None:
            try:
                substrate.runtime_config.create_scale_object(
                    type_string=arg.type, metadata=substrate.metadata
                ).encode(value)
            except Exception as exc:  # noqa: BLE001 - scalecodec raises many kinds
                problem = f"cannot be encoded as {type_name or arg.type}: {exc}"
        if problem is not None:
            raise InvalidCallArgument(call, name, problem)


# -- the client ------------------------------------------------------------------------------------
class _DeadlinePassed(Exception):
    pass


class _SharedExclusiveLock:
    """Many holders share it, or one holds it alone; a waiting exclusive holder goes first.
    Every wait is bounded (ChainUnavailable)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0

    @contextmanager
    def shared(self, timeout_s: float) -> Iterator[None]:
        with self._cond:
            if not self._cond.wait_for(
                lambda: not self._exclusive and not self._waiting_exclusive, timeout_s
            ):
                raise ChainUnavailable("chain client busy connecting")
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self, timeout_s: float) -> Iterator[None]:
        with self._cond:
            self._waiting_exclusive += 1
            try:
                if not self._cond.wait_for(
                    lambda: not self._exclusive and not self._shared, timeout_s
                ):
                    raise ChainUnavailable("chain client busy: cannot connect now")
            finally:
                self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


# scalecodec keeps state in its classes shared by every connection of the process (each
# lookup points a decoder class at the asking connection's type registry), and a connection
# empties and refills its registry while it connects. So connecting is exclusive, and every
# other use of a connection that may decode shares this lock: a decode never meets a registry
# being rebuilt. (Waiting on a watched extrinsic only reads JSON and holds nothing.)
_REGISTRY = _SharedExclusiveLock()


class _Connection:
    """One websocket of a client (None until opened, and again after a failure)."""

    def __init__(self) -> None:
        self.substrate: SubstrateInterface | None = None


class ChainClient:
    """Connections to one chain endpoint (e.g. ws://127.0.0.1:9944).

    `connections` websockets serve calls side by side (each call takes a free one; one is
    enough for a service's own loop, the API's many requests want several). `timeout_s`
    bounds every RPC answer; `submit_timeout_s` bounds a submission from sending to its block,
    and the wait for a free connection. `signer_locks` serialise signers of one account
    (default: this process's). `on_error` is told the kind of every failed RPC
    ("unavailable", "error", "unreadable"; see services.common.chain_rpc_errors).

    `era_anchor` is the block each signed extrinsic's mortal era starts at. "finalized" (default):
    the extrinsic stays valid whatever fork wins, so a request's extrinsic can still land after
    a reorganisation (the API's lease requests, settled by extrinsic hash). "best": valid only on
    the chain the signer saw, so an action decided on a block a fork then abandons (a GPU node
    starting or cancelling lease N) can never land on the other fork, where N may be another
    lease; the next decision is made again on the new best block."""

    def __init__(
        self,
        url: str,
        *,
        connect: bool = True,
        timeout_s: float = 10.0,
        submit_timeout_s: float = 60.0,
        signer_locks: SignerLocks | None = None,
        connections: int = 1,
        on_error: Callable[[str], None] | None = None,
        era_anchor: EraAnchor = "finalized",
    ) -> None:
        self.url = url
        self.era_anchor: EraAnchor = era_anchor
        self.timeout_s = timeout_s
        self._on_error = on_error
        # Whether the chain builds blocks on request (Chopsticks' dev_newBlock); None: not known.
        self._builds_on_request: bool | None = None
        self.submit_timeout_s = submit_timeout_s
        self.signer_locks: SignerLocks = signer_locks or PROCESS_SIGNER_LOCKS
        self._all = [_Connection() for _ in range(max(connections, 1))]
        self._free: queue.LifoQueue[_Connection] = queue.LifoQueue()
        for conn in self._all:
            self._free.put(conn)
        if connect:
            with self._connection() as conn:
                self._connect(conn)

    # -- connection ------------------------------------------------------------------------------
    def _connect(self, conn: _Connection) -> SubstrateInterface:
        if conn.substrate is None:
            try:
                # Metadata and the type registry are built while no client of this process
                # decodes (see _REGISTRY).
                with _REGISTRY.exclusive(3 * self.timeout_s):
                    substrate = SubstrateInterface(
                        url=self.url,
                        ss58_format=SS58_FORMAT,
                        ws_options={"timeout": self.timeout_s},
                        # We reconnect ourselves: a silent resend could submit twice.
                        auto_reconnect=False,
                    )
                    try:
                        substrate.init_runtime()
                    except BaseException:
                        substrate.close()
                        raise
            except (OSError, WebSocketException, SubstrateRequestException) as e:
                self._failed("unavailable")
                raise ChainUnavailable(f"chain at {self.url} unreachable: {e}") from e
            except ChainError:
                raise
            except Exception as e:  # noqa: BLE001 - a half-read metadata raises anything
                self._failed("unreadable")
                raise ChainUnavailable(f"chain at {self.url}: unusable answer: {e!r}") from e
            conn.substrate = substrate
        return conn.substrate

    @contextmanager
    def _connection(self) -> Iterator[_Connection]:
        """A connection nobody else uses meanwhile (substrate-interface is not thread-safe).
        A submission keeps one for up to submit_timeout_s; nobody waits longer than that."""
        try:
            conn = self._free.get(timeout=self.submit_timeout_s + self.timeout_s)
        except queue.Empty:
            raise ChainUnavailable(f"every connection to {self.url} is busy") from None
        try:
            yield conn
        finally:
            self._free.put(conn)

    def _failed(self, kind: str) -> None:
        if self._on_error is not None:
            self._on_error(kind)

    @staticmethod
    def _drop(conn: _Connection) -> None:
        """Forget a connection (its state is unknown); its next use opens a new one."""
        substrate, conn.substrate = conn.substrate, None
        if substrate is not None:
            try:
                substrate.close()
            except Exception:  # noqa: BLE001 - closing a broken socket may fail any way
                pass

    def _call(self, fn: Callable[[SubstrateInterface], T], *, retry: bool = True) -> T:
        """fn on a free connection. A lost connection, or an answer that could not be read,
        drops the connection and, for `retry` (reads), fn runs once more on a new one; then
        ChainUnavailable (or ChainError for an unreadable answer)."""
        with self._connection() as conn:
            for attempt in (1, 2):
                substrate = self._connect(conn)
                last = not retry or attempt == 2
                try:
                    with _REGISTRY.shared(3 * self.timeout_s):
                        return fn(substrate)
                except ChainError:
                    raise
                except SubstrateRequestException as e:
                    self._failed("error")
                    raise ChainError(f"chain at {self.url} answered: {e}") from e
                except (OSError, WebSocketException) as e:
                    self._failed("unavailable")
                    self._drop(conn)
                    if last:
                        raise ChainUnavailable(f"chain at {self.url} unreachable: {e}") from e
                except Exception as e:  # noqa: BLE001 - substrate-interface raises anything
                    # An answer we could not read (a block the node no longer has, a decoder
                    # missing, a connection left half-read): the connection's state is not
                    # trusted any more, and the error is named, never a bare library one.
                    self._failed("unreadable")
                    self._drop(conn)
                    if last:
                        raise ChainError(f"unreadable answer from {self.url}: {e!r}") from e
            raise AssertionError("unreachable")

    def close(self) -> None:
        """Closes every connection (waiting for calls in flight, within the usual bound)."""
        taken = []
        try:
            for _ in self._all:
                taken.append(self._free.get(timeout=self.submit_timeout_s + self.timeout_s))
        except queue.Empty:
            pass
        for conn in self._all:
            self._drop(conn)
        for conn in taken:
            self._free.put(conn)

    def __enter__(self) -> ChainClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------------
    def sign(
        self,
        keypair: Keypair,
        module: str,
        function: str,
        params: dict[str, Any],
        *,
        nonce_floor: int | None = None,
    ) -> SignedExtrinsic:
        """Checks the arguments and signs the call with the pool's next nonce for keypair (at
        least nonce_floor; the caller holds the signer lock) and a mortal era starting at the
        finalized or the best head (`era_anchor`)."""

        def run(s: SubstrateInterface) -> SignedExtrinsic:
            check_call_arguments(s, module, function, params)
            call = s.compose_call(call_module=module, call_function=function, call_params=params)
            pool = int(s.rpc_request("system_accountNextIndex", [keypair.ss58_address])["result"])
            nonce = max(pool, nonce_floor or 0)
            best = self.era_anchor == "best"
            anchor = s.get_chain_head() if best else s.get_chain_finalised_head()
            current = int(s.get_block_number(anchor))
            era = {"period": ERA_PERIOD, "current": current}
            extrinsic = s.create_signed_extrinsic(call=call, keypair=keypair, nonce=nonce, era=era)
            era_obj = s.runtime_config.create_scale_object("Era")
            era_obj.encode(era)
            data = "0x" + bytes(extrinsic.data.data).hex()
            return SignedExtrinsic(
                signer=keypair.ss58_address,
                nonce=nonce,
                extrinsic_hash=extrinsic_hash(data),
                data=data,
                valid_from=int(era_obj.birth(current)),
                valid_until=int(era_obj.death(current)),
                call=f"{module}.{function}",
            )

        return self._call(run)

    def send(
        self, signed: SignedExtrinsic, *, on_accepted: Callable[[], None] | None = None
    ) -> Receipt:
        """Sends signed and waits for its block (at most submit_timeout_s). `on_accepted` runs
        once the pool has taken it (or refused it). Raises ExtrinsicFailed (included, failed),
        ExtrinsicRejected (never included), SubmitOutcomeUnknown (sent, answer lost) or
        ChainUnavailable (not sent)."""
        accepted = _Once(on_accepted)
        try:
            with self._connection() as conn:
                self._connect(conn)
                deadline = time.monotonic() + self.submit_timeout_s
                try:
                    block_hash = self._submit_and_watch(conn, signed, accepted, deadline)
                except _Sent as e:
                    self._drop(conn)
                    raise SubmitOutcomeUnknown(
                        f"{signed.call} {signed.extrinsic_hash}: sent, then {e.reason}",
                        extrinsic_hash=signed.extrinsic_hash,
                    ) from e.__cause__
                except (OSError, WebSocketException) as e:
                    self._failed("unavailable")
                    self._drop(conn)
                    raise ChainUnavailable(f"chain at {self.url} unreachable: {e}") from e
                finally:
                    current = conn.substrate
                    if current is not None:  # still usable: back to read deadlines
                        current.websocket.settimeout(self.timeout_s)
        finally:
            accepted()
        try:
            found = self.receipt_in(block_hash, signed.extrinsic_hash)
        except ExtrinsicFailed:
            raise
        except ChainError as e:
            # Included, but its block could not be read just now: the outcome is not known
            # here (it is on chain; `status` finds it).
            raise SubmitOutcomeUnknown(
                f"{signed.call} {signed.extrinsic_hash}: in block {block_hash}, unread: {e}",
                extrinsic_hash=signed.extrinsic_hash,
            ) from e
        if found is None:
            raise SubmitOutcomeUnknown(
                f"{signed.call} {signed.extrinsic_hash}: block {block_hash} does not hold it",
                extrinsic_hash=signed.extrinsic_hash,
            )
        return found

    def _submit_and_watch(
        self,
        conn: _Connection,
        signed: SignedExtrinsic,
        accepted: _Once,
        deadline: float,
    ) -> str:
        """author_submitAndWatchExtrinsic by hand: substrate-interface ignores `invalid`,
        `usurped` and `retracted` and waits without a deadline. Returns the block hash."""
        s = conn.substrate
        assert s is not None
        ws = s.websocket
        request_id = s.request_id
        s.request_id += 1
        ws.settimeout(max(deadline - time.monotonic(), 0.001))
        ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "author_submitAndWatchExtrinsic",
                    "params": [signed.data],
                }
            )
        )
        subscription: Any = None
        early: list[dict[str, Any]] = []  # updates can arrive before the subscription id
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _DeadlinePassed
                ws.settimeout(left)
                message = json.loads(ws.recv())
                if message.get("id") == request_id:
                    accepted()
                    if "error" in message:
                        raise pool_rejection(message["error"])
                    subscription = message["result"]
                    updates = [m for m in early if m.get("subscription") == subscription]
                else:
                    params = message.get("params")
                    if not isinstance(params, dict) or "subscription" not in params:
                        continue  # an answer to nothing we wait for
                    if subscription is None:
                        early.append(params)
                        continue
                    updates = [params] if params["subscription"] == subscription else []
                for update in updates:
                    status: Any = update.get("result")
                    value: Any = None
                    if isinstance(status, dict) and status:
                        kind, value = next(iter(status.items()))
                    else:
                        kind = str(status)
                    kind = str(kind).lower()
                    if kind in ("inblock", "finalized"):
                        self._unwatch(conn, subscription, deadline)
                        return str(value)
                    if kind in ("invalid", "dropped", "usurped"):
                        # Final: the pool let it go, it was not included. (Chopsticks sends
                        # the validity error itself, e.g. {"invalid": {"stale": null}}.)
                        rejection = pool_rejection(status)
                        if kind != "invalid" and rejection.name == "Invalid":
                            rejection = ExtrinsicRejected(kind.capitalize(), str(status))
                        raise rejection
                    # future / ready / broadcast / retracted (re-included later, or the
                    # deadline ends it) / finalityTimeout (we return at inBlock already).
        except ExtrinsicRejected:
            raise
        except _DeadlinePassed as e:
            raise _Sent(f"no block within {self.submit_timeout_s:.0f} s") from e
        except (OSError, WebSocketException, ValueError) as e:
            raise _Sent(f"the connection failed: {e!r}") from e

    def _unwatch(self, conn: _Connection, subscription: Any, deadline: float) -> None:
        """Ends the subscription and reads up to its answer, so no stale update is left on the
        socket for the next call (best effort: on failure the connection is dropped)."""
        s = conn.substrate
        assert s is not None
        request_id = s.request_id
        s.request_id += 1
        try:
            s.websocket.settimeout(max(min(deadline - time.monotonic(), self.timeout_s), 0.5))
            s.websocket.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": request_id,
                        "method": "author_unwatchExtrinsic",
                        "params": [subscription],
                    }
                )
            )
            while json.loads(s.websocket.recv()).get("id") != request_id:
                pass
            s.websocket.settimeout(self.timeout_s)
        except (OSError, WebSocketException, ValueError):
            self._drop(conn)

    def submit(
        self,
        keypair: Keypair,
        module: str,
        function: str,
        params: dict[str, Any],
        *,
        on_signed: Callable[[SignedExtrinsic], None] | None = None,
    ) -> Receipt:
        """Signs (under the signer lock), sends, waits for its block; see the module docs.
        `on_signed` runs before each signed extrinsic is sent (to record its hash and bytes);
        an exception there releases the lock and sends nothing. A lost nonce race is signed
        again with a fresh nonce, at most a few times."""

        @contextmanager
        def this() -> Iterator[ChainClient]:
            yield self

        return submit_through(
            self.signer_locks,
            self.lock_wait_s,
            this,
            keypair,
            module,
            function,
            params,
            on_signed=on_signed,
        )

    @property
    def lock_wait_s(self) -> float:
        """How long a signer waits for its account's lock: as long as one submission may
        take, and at least a few RPC answers (a holder keeps it for nonce, signing and pool
        acceptance; others of the same account queue behind it)."""
        return max(3 * self.timeout_s, self.submit_timeout_s)

    def lost_nonce_race(self, rejection: ExtrinsicRejected, signed: SignedExtrinsic) -> bool:
        """Whether another extrinsic took signed's nonce (so signing again can succeed)."""
        if rejection.nonce_clash:
            return True
        if rejection.name not in ("Invalid", "Future", "Dropped"):
            return False
        try:
            return self.next_nonce(signed.signer) != signed.nonce
        except ChainError:
            return False

    def gpu_rental(self, keypair: Keypair, function: str, **params: Any) -> Receipt:
        """Submits a GPU rental call, e.g. `client.gpu_rental(kp, "heartbeat", machine_id=...)`."""
        return self.submit(keypair, PALLET, function, params)

    def transfer(self, keypair: Keypair, dest: str, amount: int) -> Receipt:
        return self.submit(
            keypair, "Balances", "transfer_keep_alive", {"dest": dest, "value": amount}
        )

    # -- where a submission stands ---------------------------------------------------------------
    def receipt_in(self, block_hash: str, wanted_hash: str) -> Receipt | None:
        """The receipt of the extrinsic `wanted_hash` in block `block_hash`; None when the block
        does not hold it. Raises ExtrinsicFailed, named, if it failed there."""

        def run(s: SubstrateInterface) -> Receipt | None:
            block = s.rpc_request("chain_getBlock", [block_hash])["result"]
            if block is None:
                raise ChainError(f"chain has no block {block_hash}")
            hashes = [extrinsic_hash(x) for x in block["block"]["extrinsics"]]
            if wanted_hash not in hashes:
                return None
            index = hashes.index(wanted_hash)
            number = int(block["block"]["header"]["number"], 16)
            records = [_event(e) for e in s.get_events(block_hash)]
            mine = [e for e in records if e.extrinsic_index == index]
            fee = sum(
                int(e.attributes.get("actual_fee", 0))
                for e in mine
                if (e.module, e.name) == ("TransactionPayment", "TransactionFeePaid")
            )
            for e in mine:
                if (e.module, e.name) == ("System", "ExtrinsicFailed"):
                    failure = _dispatch_failure(s, e.attributes.get("dispatch_error"))
                    failure.details.update(block_number=number, fee=fee, extrinsic_hash=wanted_hash)
                    raise failure
            return Receipt(wanted_hash, block_hash, number, fee, mine)

        return self._call(run)

    def status(self, signed: SignedExtrinsic) -> SubmissionStatus:
        """Where signed stands now: included (receipt, or the failure), in the pool, dead (its
        nonce went to another extrinsic, or its era passed), or not seen but still possible.
        The nonce is read before the blocks are searched, so an inclusion that consumed it
        is always found."""
        head_hash = self.finalized_head()
        head = self.block_number(head_hash)
        account = self._query("System", "Account", [signed.signer], head_hash)
        used = int(account["nonce"]) > signed.nonce
        for number in range(signed.valid_from, min(head, signed.valid_until - 1) + 1):
            block_hash = self.block_hash(number)
            if block_hash is None:
                raise ChainUnavailable(f"chain has no block {number} (yet)")
            try:
                found = self.receipt_in(block_hash, signed.extrinsic_hash)
            except ExtrinsicFailed as failure:
                return SubmissionStatus(failure=failure)
            if found is not None:
                return SubmissionStatus(receipt=found)
        if used or head >= signed.valid_until:
            return SubmissionStatus(dead=True)
        pending = self._call(lambda s: s.rpc_request("author_pendingExtrinsics", [])["result"])
        if any(extrinsic_hash(x) == signed.extrinsic_hash for x in pending or []):
            return SubmissionStatus(pending=True)
        return SubmissionStatus()

    def extrinsic_hashes(self, block_hash: str) -> list[str] | None:
        """The hashes of block_hash's extrinsics, in order; None when the chain lacks it."""

        def run(s: SubstrateInterface) -> list[str] | None:
            block = s.rpc_request("chain_getBlock", [block_hash])["result"]
            if block is None:
                return None
            return [extrinsic_hash(x) for x in block["block"]["extrinsics"]]

        return self._call(run)

    def next_nonce(self, address: str) -> int:
        """The nonce the pool accepts next from address (its pending extrinsics counted)."""
        return self._call(
            lambda s: int(s.rpc_request("system_accountNextIndex", [address])["result"])
        )

    # -- reads -----------------------------------------------------------------------------------
    def rpc(self, method: str, params: list[Any]) -> Any:
        """The `result` of one JSON-RPC call (e.g. `system_health`); ChainError on an error."""
        return self._call(lambda s: s.rpc_request(method, params).get("result"))

    def block_number(self, block_hash: str | None = None) -> int:
        return self._call(lambda s: int(s.get_block_number(block_hash)))

    def finalized_head(self) -> str:
        return self._call(lambda s: str(s.get_chain_finalised_head()))

    def best_head(self) -> str:
        """The hash of the best block (may be abandoned by a fork; see finalized_head)."""
        return self._call(lambda s: str(s.get_chain_head()))

    def block_hash(self, number: int) -> str | None:
        """The hash of block `number`; None when the chain does not have it (yet)."""
        found = self._call(lambda s: s.rpc_request("chain_getBlockHash", [number]).get("result"))
        return None if found is None else str(found)

    def events(self, block_hash: str) -> list[ChainEvent]:
        return self._call(lambda s: [_event(e) for e in s.get_events(block_hash)])

    def constant(self, name: str, module: str = PALLET) -> Any:
        return self._call(lambda s: s.get_constant(module, name).value)

    def properties(self) -> dict[str, Any]:
        """The chain spec's properties (system_properties: tokenSymbol, tokenDecimals, ...)."""
        return dict(self._call(lambda s: s.rpc_request("system_properties", []))["result"] or {})

    def account(self, address: str, block_hash: str | None = None) -> dict[str, int]:
        """free, reserved (holds included) and frozen balance of an account."""
        data = self._query("System", "Account", [address], block_hash)["data"]
        return {k: int(data[k]) for k in ("free", "reserved", "frozen")}

    def free_balance(self, address: str, block_hash: str | None = None) -> int:
        return self.account(address, block_hash)["free"]

    def held(self, address: str, reason: str, block_hash: str | None = None) -> int:
        """Balance held from `address` under the GPU rental hold `reason` (e.g. LeaseEscrow)."""
        holds = self._query("Balances", "Holds", [address], block_hash) or []
        total = 0
        for hold in holds:
            rid = hold["id"]
            if isinstance(rid, dict) and rid.get(PALLET) == reason:
                total += int(hold["amount"])
        return total

    def total_issuance(self, block_hash: str | None = None) -> int:
        return int(self._query("Balances", "TotalIssuance", [], block_hash))

    def machine(self, machine_id: bytes, block_hash: str | None = None) -> ChainMachine | None:
        raw = self._query(PALLET, "Machines", ["0x" + machine_id.hex()], block_hash)
        return None if raw is None else _machine(machine_id, raw)

    def machines(
        self, machine_ids: list[bytes], block_hash: str | None = None
    ) -> dict[bytes, ChainMachine | None]:
        """Several machines in one RPC (state_queryStorageAt); None for unregistered ids."""
        if not machine_ids:
            return {}

        def run(s: SubstrateInterface) -> dict[bytes, ChainMachine | None]:
            storage_keys = [
                s.create_storage_key(PALLET, "Machines", ["0x" + m.hex()]) for m in machine_ids
            ]
            by_key = {k.to_hex(): m for k, m in zip(storage_keys, machine_ids, strict=True)}
            out: dict[bytes, ChainMachine | None] = dict.fromkeys(machine_ids)
            for key, value in s.query_multi(storage_keys, block_hash=block_hash):
                mid = by_key[key.to_hex()]
                out[mid] = None if value.value is None else _machine(mid, value.value)
            return out

        return self._call(run)

    def next_lease_id(self, block_hash: str | None = None) -> int:
        """The id the next create_lease gets (GpuRental::NextLeaseId) at block_hash (best)."""
        return int(self._query(PALLET, "NextLeaseId", [], block_hash))

    def lease(self, lease_id: int, block_hash: str | None = None) -> ChainLease | None:
        raw = self._query(PALLET, "Leases", [lease_id], block_hash)
        return None if raw is None else _lease(lease_id, raw)

    def machine_leases(self, machine_id: bytes, block_hash: str | None = None) -> list[int]:
        raw = self._query(PALLET, "MachineLeases", ["0x" + machine_id.hex()], block_hash)
        return [int(i) for i in raw or []]

    def customer_leases(self, address: str, block_hash: str | None = None) -> list[int]:
        return [int(i) for i in self._query(PALLET, "CustomerLeases", [address], block_hash) or []]

    def leases_of_machine(self, machine_id: bytes) -> Iterator[ChainLease]:
        """The live leases of a machine, read at one block so they agree with each other."""
        head = self.finalized_head()
        for lease_id in self.machine_leases(machine_id, head):
            found = self.lease(lease_id, head)
            if found is not None:
                yield found

    def _query(self, module: str, name: str, params: list[Any], block_hash: str | None) -> Any:
        return self._call(lambda s: s.query(module, name, params, block_hash=block_hash).value)

    # -- making time pass (tests, demos) ---------------------------------------------------------
    def dev_new_blocks(self, count: int = 1) -> None:
        """Makes `count` more blocks happen, so time passes on chain.

        Chopsticks builds them at once on request (`dev_newBlock`, a few per request: each must be
        answered within timeout_s). A real node has no such method (JSON-RPC error -32601) and
        builds one block per slot on its own: then this waits until the best block is `count`
        higher, at most three slots per block plus timeout_s, else ChainError."""
        if self._builds_on_request is not False:
            remaining = count
            try:
                while remaining > 0:
                    step = min(remaining, 4)
                    self._call(functools.partial(_new_blocks, count=step), retry=False)
                    self._builds_on_request = True
                    remaining -= step
                return
            except ChainError as e:
                if self._builds_on_request or "-32601" not in str(e):
                    raise
                self._builds_on_request = False
        self.wait_for_blocks(count)

    def wait_for_blocks(self, count: int) -> int:
        """Waits until the best block is `count` above what it is now; returns its number.
        Waits at most three slots per block plus timeout_s, then ChainError."""
        slot_s = 2 * int(self.constant("MinimumPeriod", "Timestamp")) / 1000
        target = self.block_number() + count
        deadline = time.monotonic() + 3 * slot_s * count + self.timeout_s
        while (now := self.block_number()) < target:
            if time.monotonic() > deadline:
                raise ChainError(f"chain at {self.url}: block {now} of {target} after waiting")
            time.sleep(min(slot_s / 4, 0.25))
        return now


def accepted_by_pool(
    locks: SignerLocks, lease: SignerLease, signed: SignedExtrinsic
) -> Callable[[], None]:
    """What runs once the pool has answered for signed: its nonce is noted as used (so the
    next signer starts above it even while the pool does not count it), the lock released."""

    def run() -> None:
        try:
            locks.used(signed.signer, signed.nonce)
        finally:
            lease()

    return run


def submit_through(
    locks: SignerLocks,
    lock_wait_s: float,
    connection: Callable[[], AbstractContextManager[ChainClient]],
    keypair: Keypair,
    module: str,
    function: str,
    params: dict[str, Any],
    *,
    on_signed: Callable[[SignedExtrinsic], None] | None = None,
) -> Receipt:
    """ChainClient.submit with the connection taken from `connection()` only once the signer
    lock is held (so a pooled connection never idles while its caller waits for the lock)."""
    address = keypair.ss58_address
    for attempt in range(1, _NONCE_ATTEMPTS + 1):
        lease = locks.acquire(address, lock_wait_s)
        try:
            with connection() as client:
                signed = client.sign(keypair, module, function, params, nonce_floor=lease.floor)
                if on_signed is not None:
                    on_signed(signed)
                try:
                    return client.send(signed, on_accepted=accepted_by_pool(locks, lease, signed))
                except ExtrinsicRejected as e:
                    locks.lost(address, signed.nonce)
                    if attempt == _NONCE_ATTEMPTS or not client.lost_nonce_race(e, signed):
                        raise
                    log.info(
                        "chain.nonce_race",
                        extra={"signer": signed.signer, "nonce": signed.nonce, "pool": e.name},
                    )
        finally:
            lease()
        # Another signer outside our locks uses this account: let it go first, for a random
        # while, so two of them do not keep colliding in step.
        time.sleep(random.uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")


def _new_blocks(s: SubstrateInterface, count: int) -> Any:
    return s.rpc_request("dev_newBlock", [{"count": count}])


class _Sent(Exception):
    """The extrinsic left this process; then the answer was lost (`reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Once:
    """Calls fn at most once (None: nothing)."""

    def __init__(self, fn: Callable[[], None] | None) -> None:
        self._fn = fn

    def __call__(self) -> None:
        fn, self._fn = self._fn, None
        if fn is not None:
            fn()


def _machine(machine_id: bytes, raw: dict[str, Any]) -> ChainMachine:
    return ChainMachine(
        machine_id=machine_id,
        owner=raw["owner"],
        operator=raw["operator"],
        gpu_model=_bytes(raw["gpu_model"]).decode("utf-8", "replace"),
        gpu_count=int(raw["gpu_count"]),
        memory_mib=int(raw["memory_mib"]),
        price_per_gpu_block=int(raw["price_per_gpu_block"]),
        bond=int(raw["bond"]),
        online=bool(raw["online"]),
        used_gpus=int(raw["used_gpus"]),
        last_heartbeat=int(raw["last_heartbeat"]),
        gpus_present=int(raw.get("gpus_present", 0)),
        unhealthy_gpus=int(raw.get("unhealthy_gpus", 0)),
    )


def _lease(lease_id: int, raw: dict[str, Any]) -> ChainLease:
    state = raw["state"]
    return ChainLease(
        lease_id=lease_id,
        machine_id=_bytes(raw["machine_id"]),
        customer=raw["customer"],
        gpus=int(raw["gpus"]),
        gpu_mask=int(raw["gpu_mask"]),
        price_per_gpu_block=int(raw["price_per_gpu_block"]),
        duration=int(raw["duration"]),
        spec_hash=_bytes(raw["spec_hash"]),
        state=state if isinstance(state, str) else next(iter(state)),
        created_at=int(raw["created_at"]),
        started_at=int(raw["started_at"]),
        ends_at=int(raw["ends_at"]),
        accrue_from=int(raw["accrue_from"]),
        escrow=int(raw["escrow"]),
        fee_parts_per_billion=int(raw.get("fee", 0)),
        unhealthy_since=int(raw.get("unhealthy_since", 0)),
    )
