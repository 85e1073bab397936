"""Tables and API shapes, one family per entity: XBase, XCreate, X(table=True), XPublic,
XsPublic{data, count}. Amounts are decimal strings: they are u128 on chain and JSON numbers lose
precision above 2**53."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints, field_validator
from sqlalchemy import BigInteger, Column, MetaData, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "ErrorPublic",
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
    "IndexerCursor",
    "LeaseCreate",
    "LeaseExtend",
    "LeasePublic",
    "LeaseRecord",
    "LeaseSpending",
    "LeaseState",
    "LeasesPublic",
    "PortMapping",
    "Signup",
    "SignupCreate",
]

HexId = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{64}$")]
Amount = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,39}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- customers and keys ---------------------------------------------------------------------------
class CustomerBase(SQLModel):
    name: Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]+$")] = Field(
        min_length=1, max_length=100
    )


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


class DeliveryState(StrEnum):
    PENDING = "pending"  # not delivered yet; retried in the background
    DELIVERED = "delivered"
    REJECTED = "rejected"  # the node refused the spec (see error)
    ABANDONED = "abandoned"  # the lease ended before delivery


class LeaseCreate(SQLModel):
    """A lease request: which machine (the offer's machine_id), how much, and the workload."""

    machine_id: HexId
    gpus: int = Field(ge=1, le=64)
    duration_blocks: int = Field(ge=1, le=10_000_000)
    max_price_per_gpu_block: Amount | None = Field(
        default=None, description="Ceiling; defaults to the machine's current chain price."
    )
    image: Annotated[str, StringConstraints(pattern=r"^\S+$")] = Field(min_length=1, max_length=512)
    command: list[Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=list, max_length=64
    )
    ports: list[int] = Field(default_factory=list, max_length=32)
    ssh_public_key: str = Field(
        min_length=1, max_length=16 * 1024, description="OpenSSH public key line for root."
    )
    cpu_millicores: int | None = Field(default=None, ge=100, le=1_024_000)
    memory_mib: int | None = Field(default=None, ge=64, le=16 * 1024 * 1024)
    env: dict[EnvName, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict, max_length=64
    )

    @field_validator("ports")
    @classmethod
    def _ports_valid(cls, ports: list[int]) -> list[int]:
        if any(p < 1 or p > 65535 for p in ports):
            raise ValueError("ports must be between 1 and 65535")
        if len(set(ports)) != len(ports):
            raise ValueError("ports must not repeat")
        return ports

    def spec(self) -> dict[str, object]:
        """The workload spec whose canonical hash goes on chain."""
        spec: dict[str, object] = {
            "version": 1,
            "image": self.image,
            "command": list(self.command),
            "ports": sorted(self.ports),
            "env": dict(self.env),
            "ssh_public_key": self.ssh_public_key,
        }
        if self.cpu_millicores is not None:
            spec["cpu_millicores"] = self.cpu_millicores
        if self.memory_mib is not None:
            spec["memory_mib"] = self.memory_mib
        return spec


class LeaseExtend(SQLModel):
    extra_blocks: int = Field(ge=1, le=10_000_000)


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
    chain_state: str = Field(default=LeaseState.SUBMITTING, max_length=16, index=True)
    end_reason: str | None = Field(default=None, max_length=32)
    created_block: int | None = None
    started_block: int | None = None
    ends_at_block: int | None = None
    ended_block: int | None = None
    spent: str = Field(default="0", max_length=40)
    refunded: str = Field(default="0", max_length=40)
    compensation: str = Field(default="0", max_length=40)
    delivery_state: str = Field(default=DeliveryState.PENDING, max_length=16, index=True)
    delivery_attempts: int = 0
    delivery_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


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
    started_block: int | None
    ends_at_block: int | None
    ended_block: int | None
    delivery: Delivery
    connection: Connection | None = None


class LeasesPublic(SQLModel):
    data: list[LeasePublic]
    count: int


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
    """Every refusal: one fixed detail per condition; code names the chain's error if any."""

    detail: str
    code: str | None = None


def _api_metadata() -> MetaData:
    """The API's own tables. SQLModel's shared metadata also holds other services' tables (the
    seed's offers) whenever they are imported in the same process, so migrations and their
    check compare against this instead."""
    metadata = MetaData()
    for model in (Customer, ApiKey, CustodialKey, LeaseRecord, IndexerCursor):
        model.__table__.to_metadata(metadata)  # type: ignore[attr-defined]
    return metadata


API_METADATA = _api_metadata()
