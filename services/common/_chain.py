"""The chain client: the one place services talk to the Gridlease chain (substrate-interface).

It submits signed extrinsics and waits for their block, turning a failed dispatch into
`ExtrinsicFailed` carrying the pallet's error name (`NotEnoughFreeGpus`, ...), and reads the
GPU rental pallet's storage into plain dataclasses. One websocket per client, guarded by a lock,
because substrate-interface is not thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException

from services.common._errors import GridleaseError

__all__ = [
    "PALLET",
    "ChainClient",
    "ChainError",
    "ChainEvent",
    "ChainLease",
    "ChainMachine",
    "ChainUnavailable",
    "ExtrinsicFailed",
    "Receipt",
]

PALLET = "GpuRental"
T = TypeVar("T")


class ChainError(GridleaseError):
    """Something went wrong talking to the chain."""

    reason = "chain_error"


class ChainUnavailable(ChainError):
    """No answer from the chain's RPC endpoint."""

    reason = "chain_unavailable"


class ExtrinsicFailed(ChainError):
    """The chain refused or failed a call; `name` is the pallet or dispatch error's name."""

    reason = "extrinsic_failed"

    def __init__(self, name: str, docs: str = "", module: str = "") -> None:
        super().__init__(f"{module + '.' if module else ''}{name}: {docs}".rstrip(": "))
        self.name = name
        self.module = module
        self.docs = docs


@dataclass(frozen=True)
class ChainEvent:
    """One event: `module`.`name` with its named attributes."""

    module: str
    name: str
    attributes: dict[str, Any]


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

    @property
    def free_gpus(self) -> int:
        return self.gpu_count - bin(self.used_gpus).count("1")


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
    return ChainEvent(event["module_id"], event["event_id"], attributes)


class ChainClient:
    """A connection to one chain endpoint (e.g. ws://127.0.0.1:9944)."""

    def __init__(self, url: str, *, connect: bool = True) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._substrate: SubstrateInterface | None = None
        if connect:
            self._connect()

    # -- connection ------------------------------------------------------------------------------
    def _connect(self) -> SubstrateInterface:
        if self._substrate is None:
            try:
                self._substrate = SubstrateInterface(url=self.url, ss58_format=42)
            except (OSError, ConnectionError, SubstrateRequestException) as e:
                raise ChainUnavailable(f"chain at {self.url} unreachable: {e}") from e
        return self._substrate

    def _call(self, fn: Callable[[SubstrateInterface], T]) -> T:
        with self._lock:
            substrate = self._connect()
            try:
                return fn(substrate)
            except (OSError, ConnectionError) as e:
                self.close()
                raise ChainUnavailable(f"chain at {self.url} unreachable: {e}") from e
            except SubstrateRequestException as e:
                raise ChainError(str(e)) from e

    def close(self) -> None:
        with self._lock:
            if self._substrate is not None:
                try:
                    self._substrate.close()
                finally:
                    self._substrate = None

    def __enter__(self) -> ChainClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------------
    def submit(
        self, keypair: Keypair, module: str, function: str, params: dict[str, Any]
    ) -> Receipt:
        """Signs and submits a call, waits for its block, raises `ExtrinsicFailed` if it failed."""

        def run(s: SubstrateInterface) -> Receipt:
            call = s.compose_call(call_module=module, call_function=function, call_params=params)
            extrinsic = s.create_signed_extrinsic(call=call, keypair=keypair)
            try:
                receipt = s.submit_extrinsic(extrinsic, wait_for_inclusion=True)
            except SubstrateRequestException as e:
                # Refused by the pool before inclusion: bad nonce, cannot pay fees, ...
                raise ExtrinsicFailed("Invalid", str(e)) from e
            if not receipt.is_success:
                err = receipt.error_message or {}
                raise ExtrinsicFailed(
                    str(err.get("name", "DispatchError")),
                    " ".join(err.get("docs", []) or []) if isinstance(err.get("docs"), list)
                    else str(err.get("docs", "")),
                    str(err.get("module", "") or ""),
                )
            block_number = s.get_block_number(receipt.block_hash)
            return Receipt(
                extrinsic_hash=receipt.extrinsic_hash,
                block_hash=receipt.block_hash,
                block_number=block_number,
                fee=int(receipt.total_fee_amount or 0),
                events=[_event(e) for e in receipt.triggered_events],
            )

        return self._call(run)

    def gpu_rental(self, keypair: Keypair, function: str, **params: Any) -> Receipt:
        """Submits a GPU rental call, e.g. `client.gpu_rental(kp, "heartbeat", machine_id=...)`."""
        return self.submit(keypair, PALLET, function, params)

    def transfer(self, keypair: Keypair, dest: str, amount: int) -> Receipt:
        return self.submit(
            keypair, "Balances", "transfer_keep_alive", {"dest": dest, "value": amount}
        )

    # -- reads -----------------------------------------------------------------------------------
    def block_number(self, block_hash: str | None = None) -> int:
        return self._call(lambda s: int(s.get_block_number(block_hash)))

    def finalized_head(self) -> str:
        return self._call(lambda s: s.get_chain_finalised_head())

    def block_hash(self, number: int) -> str | None:
        return self._call(lambda s: s.get_block_hash(number))

    def events(self, block_hash: str) -> list[ChainEvent]:
        return self._call(lambda s: [_event(e) for e in s.get_events(block_hash)])

    def constant(self, name: str, module: str = PALLET) -> Any:
        return self._call(lambda s: s.get_constant(module, name).value)

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

    # -- dev chain only (Chopsticks) -------------------------------------------------------------
    def dev_new_blocks(self, count: int = 1) -> None:
        """Asks the dev chain (Chopsticks) to build `count` empty blocks, so time passes."""
        self._call(lambda s: s.rpc_request("dev_newBlock", [{"count": count}]))


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
    )
