"""Tables and API shapes, one family per entity: XBase, XCreate, X(table=True), XPublic,
XsPublic{data, count}. Amounts are decimal strings: they are u128 on chain and JSON numbers lose
precision above 2**53."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import ConfigDict, StrictInt
from pydantic import Field as PydanticField
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from services.common import JSON_INTEGER, FullMatch, WorkloadFields, decimal_range_pattern

__all__ = [
    "ErrorPublic",
    "FieldError",
    "ValidationErrorsPublic",
    "FilterExclusion",
    "NearestOffer",
    "NoMatch",
    "OfferPublic",
    "OfferSort",
    "OffersPublic",
    "Account",
    "ApiKey",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ApiKeysPublic",
    "Connection",
    "CustodialKey",
    "Customer",
    "CustomerPublic",
    "Delivery",
    "DeliveryState",
    "FaucetRequest",
    "FaucetResult",
    "GpuSamplePublic",
    "IndexerCursor",
    "LeaseCreate",
    "LeaseExtend",
    "LeaseGpuPublic",
    "LeaseGpusPublic",
    "LeasePublic",
    "LeaseRecord",
    "LeaseSpending",
    "LeaseState",
    "LeasesPublic",
    "PortMapping",
    "SignerLock",
    "Signup",
    "SignupCreate",
]

U128_MAX = 2**128 - 1
# The runtime's MaxLeaseDuration (chain/runtime/src/configs.rs: 30 days of 1 s blocks), so a
# request the chain would fail (and charge a fee for) is refused here; a chain-backed test pins
# the two together.
MAX_LEASE_BLOCKS = 30 * 24 * 60 * 60
HexId = Annotated[str, FullMatch(r"0x[0-9a-f]{64}", "32 bytes as 0x-prefixed lowercase hex.")]


# A u128 in the chain's smallest unit, as a decimal string (JSON numbers lose precision above
# 2**53). The pattern states the range exactly; no leading zeros, so each amount has one spelling.
Amount = Annotated[
    str,
    FullMatch(
        decimal_range_pattern(0, U128_MAX),
        f"Decimal string in the chain's smallest unit, 0 to {U128_MAX}.",
        message=f"must be a whole number from 0 to {U128_MAX}, without leading zeros",
    ),
]
DisplayName = Annotated[str, FullMatch(r"[^\x00-\x1f\x7f]{1,100}", "No control characters.")]


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- customers and keys ---------------------------------------------------------------------------
class CustomerBase(SQLModel):
    name: DisplayName = Field(min_length=1, max_length=100)


class SignupCreate(CustomerBase):
    """Sign-up: a display name; the API creates the account and its custodial chain key."""


class Customer(CustomerBase, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    address: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class CustomerPublic(CustomerBase):
    id: uuid.UUID
    address: str
    created_at: datetime


class ApiKey(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True, ondelete="CASCADE")
    key_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ApiKeyPublic(SQLModel):
    id: uuid.UUID
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeysPublic(SQLModel):
    data: list[ApiKeyPublic]
    count: int


class ApiKeyCreated(ApiKeyPublic):
    """A new key; `api_key` is shown this once and never again."""

    api_key: str


class Signup(SQLModel):
    customer: CustomerPublic
    api_key: str


class CustodialKey(SQLModel, table=True):
    """The customer's sr25519 key, encrypted with the server secret."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = Field(
        foreign_key="customer.id", unique=True, index=True, ondelete="CASCADE"
    )
    address: str = Field(max_length=64)
    secret_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


# -- leases ---------------------------------------------------------------------------------------
class LeaseState(StrEnum):
    SUBMITTING = "submitting"  # reserved row; the chain has not answered yet (never listed)
    PENDING = "pending"  # on chain, spec not yet taken by the node
    STARTING = "starting"  # the node took the spec; waiting for start_lease
    RUNNING = "running"
    ENDED = "ended"


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A StrEnum stored as its value in a VARCHAR(16) (the columns' type since the first
    migration), read back as the enum member, so code compares members, never loose strings.
    An unknown stored value raises ValueError rather than passing through."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class DeliveryState(StrEnum):
    PENDING = "pending"  # not delivered yet; retried in the background
    DELIVERED = "delivered"
    REJECTED = "rejected"  # the node refused the spec (see error)
    ABANDONED = "abandoned"  # the lease ended before delivery


class LeaseCreate(WorkloadFields):
    """A lease request: which machine (the offer's machine_id), how much, and the workload.

    The workload fields are services.common's WorkloadFields, the very rules the GPU node
    applies to the spec it is handed, so a spec the node would refuse is refused here (422)
    before anything is paid. Unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")

    machine_id: HexId
    gpus: Annotated[StrictInt, PydanticField(ge=1, le=64), JSON_INTEGER]
    duration_blocks: Annotated[
        StrictInt, PydanticField(ge=1, le=MAX_LEASE_BLOCKS), JSON_INTEGER
    ] = PydanticField(description="Blocks to pay for; a lease lasts at most 30 days.")
    max_price_per_gpu_block: Amount | None = PydanticField(
        default=None, description="Ceiling; defaults to the machine's current chain price."
    )

    def spec(self) -> dict[str, object]:
        """The workload spec whose canonical hash goes on chain."""
        return self.workload_document()


class LeaseExtend(SQLModel):
    extra_blocks: Annotated[StrictInt, PydanticField(ge=1, le=MAX_LEASE_BLOCKS), JSON_INTEGER] = (
        PydanticField(description="Blocks to add; the lease's total stays within 30 days.")
    )


class LeaseRecord(SQLModel, table=True):
    """The API's index of one lease: chain state (rebuildable from events), the spec, the
    idempotency key of the request that made it, and the state of delivery to the node."""

    __table_args__ = (UniqueConstraint("customer_id", "idempotency_key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True, ondelete="CASCADE")
    customer_address: str = Field(max_length=64, index=True)
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str = Field(max_length=64)
    lease_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, unique=True, index=True, nullable=True)
    )
    machine_id: str = Field(max_length=66, index=True)
    endpoint: str = Field(max_length=255)
    gpus: int
    duration_blocks: int = Field(sa_column=Column(BigInteger, nullable=False))
    price_per_gpu_block: str = Field(default="0", max_length=40)
    escrow: str = Field(default="0", max_length=40)
    spec_json: str = Field(sa_column=Column(Text, nullable=False))
    spec_hash: str = Field(max_length=66)
    chain_state: LeaseState = Field(
        default=LeaseState.SUBMITTING,
        sa_column=Column(EnumText(LeaseState), nullable=False, index=True),
    )
    end_reason: str | None = Field(default=None, max_length=32)
    created_block: int | None = None
    # Whether the lease's creation is known from a finalized block. False while the lease id and
    # created_block come only from its request's receipt (the best block, which a fork may
    # abandon: then the id may name someone else's lease; see indexer.apply_events).
    created_final: bool = Field(
        default=False,
        # Indexed: the indexer looks up the (few) unconfirmed rows at every block.
        sa_column=Column(Boolean, nullable=False, server_default=true(), index=True),
    )
    started_block: int | None = None
    ends_at_block: int | None = None
    ended_block: int | None = None
    # Block from which the node reported the lease's GPUs unhealthy (pay stopped); None: healthy.
    unhealthy_since_block: int | None = None
    spent: str = Field(default="0", max_length=40)
    refunded: str = Field(default="0", max_length=40)
    compensation: str = Field(default="0", max_length=40)
    delivery_state: DeliveryState = Field(
        default=DeliveryState.PENDING,
        sa_column=Column(EnumText(DeliveryState), nullable=False, index=True),
    )
    delivery_attempts: int = 0
    delivery_error: str | None = Field(default=None, max_length=500)
    # The create_lease extrinsic this request signed, recorded before it is sent, so that the
    # request is tied to what reached the chain (by hash), never to a guess: its hash, the
    # custodial account's nonce it used, its encoding (resending the same bytes is safe) and
    # the blocks it can be included in (valid_from <= n < valid_until).
    extrinsic_hash: str | None = Field(default=None, max_length=66, index=True)
    extrinsic_nonce: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    extrinsic_data: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    valid_from_block: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    valid_until_block: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SignerLock(SQLModel, table=True):
    """Who may sign for a chain account now (see customer_api.chain.DbSignerLocks): API
    replicas sharing this database take the lock from fetching a nonce until the transaction
    pool took the extrinsic, so no two of them sign with one nonce. `expires_at` (unix
    seconds) frees the lock of a holder that died."""

    address: str = Field(primary_key=True, max_length=64)
    holder: str | None = Field(default=None, max_length=64)
    expires_at: float = 0.0
    # One past the nonce of the last extrinsic a holder handed to the pool, trusted until
    # nonce_until (unix seconds): the pool's count misses extrinsics being built into a block.
    next_nonce: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    nonce_until: float = 0.0


class Delivery(SQLModel):
    state: DeliveryState
    attempts: int
    error: str | None


class PortMapping(SQLModel):
    container_port: int
    host_port: int


class Connection(SQLModel):
    """What the node reports for a running lease: `ssh -p ssh_port root@host`."""

    status: str
    message: str = ""
    host: str | None = None
    ssh_port: int | None = None
    ports: list[PortMapping] = Field(default_factory=list)


class LeasePublic(SQLModel):
    lease_id: int
    machine_id: str
    state: LeaseState
    end_reason: str | None
    gpus: int
    duration_blocks: int
    price_per_gpu_block: str
    escrow: str
    spent: str
    refunded: str
    compensation: str
    spec_hash: str
    spec: dict[str, object]
    created_block: int | None
    # True once a finalized block holds the lease's creation; before that (on a real network,
    # a few blocks) a fork may still take it back, and its id with it.
    created_final: bool = False
    started_block: int | None
    ends_at_block: int | None
    ended_block: int | None
    # Set while the node reports the lease's GPUs unhealthy: pay stopped at this block, and once
    # the chain's UnhealthyGrace has passed anyone may end the lease (POST .../report).
    unhealthy_since_block: int | None = None
    delivery: Delivery
    connection: Connection | None = None


class LeasesPublic(SQLModel):
    data: list[LeasePublic]
    count: int


class GpuSamplePublic(SQLModel):
    """One reading of one GPU by its node; a value the GPU does not report is null."""

    timestamp_ms: int = Field(description="When the node read it, ms since the Unix epoch.")
    utilization_pct: int | None = Field(description="GPU utilisation, 0 to 100 percent.")
    memory_used_bytes: int | None = Field(description="GPU memory in use, in bytes.")
    temperature_c: int | None = Field(description="GPU temperature, degrees Celsius.")
    power_w: float | None = Field(description="Power draw, watts.")


class LeaseGpuPublic(SQLModel):
    """One GPU of a lease, from its node: the latest reading, XIDs, health and a short history.
    A GPU the node cannot read now has no current reading, an empty model and is unhealthy."""

    slot: int = Field(description="The GPU's slot on its machine (bit of the lease's GPU mask).")
    uuid: str = Field(description="NVML UUID of the board in this slot.")
    model: str = Field(description="NVML model name; empty when the board cannot be read now.")
    memory_total_bytes: int = Field(description="GPU memory, in bytes; 0 when unreadable.")
    current: GpuSamplePublic | None = Field(description="The latest reading, if any.")
    xid_count: int | None = Field(
        description="XID errors since the node started; null when the node cannot watch XIDs."
    )
    last_xid: int = Field(description="The last XID of this GPU (0: none).")
    healthy: bool = Field(
        description="As the node's health check finds it: what the lease's pay depends on."
    )
    health_reason: str = Field(
        description='Why not healthy, "reason: detail" (reason: lost, absent, mig, xid, ecc, '
        'row_remap), e.g. "xid: XID 79"; empty when healthy.'
    )
    history: list[GpuSamplePublic] = Field(description="Readings, oldest first.")


class LeaseGpusPublic(SQLModel):
    lease_id: int
    sample_interval_ms: int = Field(description="How often the node samples its GPUs, in ms.")
    history_limit: int = Field(description="Most readings the node keeps per GPU.")
    gpus: list[LeaseGpuPublic]


# -- account --------------------------------------------------------------------------------------
class LeaseSpending(SQLModel):
    lease_id: int
    state: LeaseState
    escrow: str
    spent: str
    refunded: str
    compensation: str


class Account(SQLModel):
    address: str
    free: str
    held_in_escrow: str
    leases: list[LeaseSpending]
    total_spent: str


class FaucetRequest(SQLModel):
    amount: Amount = Field(description="Amount in the chain's smallest unit.")


class FaucetResult(SQLModel):
    address: str
    amount: str
    block_number: int


# -- chain indexer --------------------------------------------------------------------------------
class IndexerCursor(SQLModel, table=True):
    """The last block the indexer processed completely."""

    name: str = Field(primary_key=True, max_length=32)
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_hash: str = Field(max_length=66)
    updated_at: datetime = Field(default_factory=utcnow)


# -- offers (not stored: the API keeps them in memory, fed by the seeds) --------------------------
class OfferSort(StrEnum):
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"


class OfferPublic(SQLModel):
    machine_id: str
    provider: str
    region: str
    gpu_model: str
    gpu_count: int
    memory_mib: int
    compute_capability: str
    labels: dict[str, str]
    offer_price_per_gpu_block: str = Field(description="Price the machine announced.")
    price_per_gpu_block: str = Field(description="Current price on chain (what a lease pays).")
    free_gpus: int = Field(description="GPUs not leased, from the chain.")
    chain_checked: bool = Field(description="False when the chain could not be read just now.")


class FilterExclusion(SQLModel):
    filter: str
    excluded: int


class NearestOffer(SQLModel):
    offer: OfferPublic
    failed_filters: list[str]


class NoMatch(SQLModel):
    """Why a search found nothing: how many offers each filter excluded, and the nearest ones."""

    total_offers: int
    excluded_by: list[FilterExclusion]
    nearest: list[NearestOffer]


class OffersPublic(SQLModel):
    data: list[OfferPublic]
    count: int
    offset: int
    limit: int
    no_match: NoMatch | None = None


class ErrorPublic(SQLModel):
    """Every refusal but 422: one fixed detail per condition; code names the condition (the
    chain's error name when the chain refused)."""

    detail: str
    code: str | None = None


class FieldError(SQLModel):
    """One reason a request was unprocessable: where (`["body", "amount"]`), why, and its kind
    (pydantic's error type, or the condition's code such as the chain's error name)."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorsPublic(SQLModel):
    """Every 422 body: the request is well-formed but some value is refused."""

    detail: list[FieldError]


def _api_metadata() -> MetaData:
    """The API's own tables. SQLModel's shared metadata also holds other services' tables (the
    seed's offers) whenever they are imported in the same process, so migrations and their
    check compare against this instead."""
    metadata = MetaData()
    for model in (Customer, ApiKey, CustodialKey, LeaseRecord, IndexerCursor, SignerLock):
        model.__table__.to_metadata(metadata)  # type: ignore[union-attr]
    return metadata


API_METADATA = _api_metadata()


# -- chain ----------------------------------------------------------------------------------------
class ChainInfoPublic(SQLModel):
    """The chain's facts a client needs to show prices and amounts (GET /v1/chain/info)."""

    token_symbol: str = Field(description="The token's name, e.g. GLT.")
    token_decimals: int = Field(description="Amounts are integers of 10^-decimals token.")
    block_time_ms: int = Field(description="Target time between blocks (Aura slot duration).")
    blocks_per_hour: str = Field(
        description="3_600_000 / block_time_ms: exact when block_time_ms divides an hour, else "
        "rounded to 6 decimals (compute with block_time_ms)."
    )
    existential_deposit: str = Field(description="Least balance an account keeps (smallest unit).")
