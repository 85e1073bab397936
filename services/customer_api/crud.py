"""Database reads and writes, keyword-only. No chain, no HTTP: callers bring what to store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select
from substrateinterface import Keypair

from services.common import keypair_from_secret, new_keypair
from services.customer_api.core.security import Custody, hash_api_key, new_api_key
from services.customer_api.models import (
    ApiKey,
    CustodialKey,
    Customer,
    DeliveryState,
    IndexerCursor,
    LeaseRecord,
    LeaseState,
    utcnow,
)

__all__ = [
    "create_api_key",
    "create_customer",
    "customer_by_api_key",
    "customer_keypair",
    "delete_lease_record",
    "get_cursor",
    "lease_by_chain_id",
    "lease_by_idempotency_key",
    "list_api_keys",
    "list_leases",
    "reserve_lease",
    "revoke_api_key",
    "set_cursor",
    "undelivered_leases",
]

_KEY_PREFIX_LEN = 10


# -- customers and keys ---------------------------------------------------------------------------
def create_customer(
    *, session: Session, name: str, custody: Custody, server_secret: str
) -> tuple[Customer, str]:
    """A customer with a new custodial sr25519 key and a first API key (returned in clear once)."""
    keypair, secret = new_keypair()
    customer = Customer(name=name, address=keypair.ss58_address)
    session.add(customer)
    session.flush()  # no ORM relationships: the parent row goes first explicitly
    session.add(
        CustodialKey(
            customer_id=customer.id,
            address=keypair.ss58_address,
            secret_encrypted=custody.encrypt(secret),
        )
    )
    _, api_key = _add_api_key(session=session, customer=customer, server_secret=server_secret)
    session.commit()
    session.refresh(customer)
    return customer, api_key


def _add_api_key(*, session: Session, customer: Customer, server_secret: str) -> tuple[ApiKey, str]:
    plain = new_api_key()
    key = ApiKey(
        customer_id=customer.id,
        key_hash=hash_api_key(plain, server_secret),
        prefix=plain[:_KEY_PREFIX_LEN],
    )
    session.add(key)
    return key, plain


def create_api_key(
    *, session: Session, customer: Customer, server_secret: str
) -> tuple[ApiKey, str]:
    key, plain = _add_api_key(session=session, customer=customer, server_secret=server_secret)
    session.commit()
    session.refresh(key)
    return key, plain


def list_api_keys(*, session: Session, customer: Customer) -> Sequence[ApiKey]:
    query = select(ApiKey).where(ApiKey.customer_id == customer.id).order_by(col(ApiKey.created_at))
    return session.exec(query).all()


def revoke_api_key(*, session: Session, customer: Customer, key_id: uuid.UUID) -> ApiKey | None:
    key = session.get(ApiKey, key_id)
    if key is None or key.customer_id != customer.id:
        return None
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.commit()
        session.refresh(key)
    return key


def customer_by_api_key(*, session: Session, api_key: str, server_secret: str) -> Customer | None:
    key = session.exec(
        select(ApiKey).where(ApiKey.key_hash == hash_api_key(api_key, server_secret))
    ).first()
    if key is None or key.revoked_at is not None:
        return None
    return session.get(Customer, key.customer_id)


def customer_keypair(*, session: Session, customer_id: uuid.UUID, custody: Custody) -> Keypair:
    """The customer's custodial Keypair, decrypted."""
    stored = session.exec(select(CustodialKey).where(CustodialKey.customer_id == customer_id)).one()
    return keypair_from_secret(custody.decrypt(stored.secret_encrypted))


# -- leases ---------------------------------------------------------------------------------------
def reserve_lease(
    *,
    session: Session,
    customer: Customer,
    idempotency_key: str | None,
    request_hash: str,
    machine_id: str,
    endpoint: str,
    gpus: int,
    duration_blocks: int,
    spec: dict[str, object],
    spec_hash: str,
) -> LeaseRecord:
    """The row a lease request owns before the chain is asked (state SUBMITTING). The unique
    (customer, idempotency key) makes a concurrent retry fail here, before any payment."""
    record = LeaseRecord(
        customer_id=customer.id,
        customer_address=customer.address,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        machine_id=machine_id,
        endpoint=endpoint,
        gpus=gpus,
        duration_blocks=duration_blocks,
        spec_json=json.dumps(spec, sort_keys=True),
        spec_hash=spec_hash,
    )
    session.add(record)
    session.commit()
    session.refresh(record)
    return record


def delete_lease_record(*, session: Session, record: LeaseRecord) -> None:
    session.delete(record)
    session.commit()


def lease_by_idempotency_key(
    *, session: Session, customer: Customer, idempotency_key: str
) -> LeaseRecord | None:
    return session.exec(
        select(LeaseRecord).where(
            LeaseRecord.customer_id == customer.id,
            LeaseRecord.idempotency_key == idempotency_key,
        )
    ).first()


def lease_by_chain_id(
    *, session: Session, lease_id: int, customer: Customer | None = None
) -> LeaseRecord | None:
    """The record of chain lease lease_id; with customer, only if it is theirs."""
    query = select(LeaseRecord).where(LeaseRecord.lease_id == lease_id)
    if customer is not None:
        query = query.where(LeaseRecord.customer_id == customer.id)
    return session.exec(query).first()


def list_leases(
    *,
    session: Session,
    customer: Customer,
    skip: int = 0,
    limit: int = 100,
    state: LeaseState | None = None,
) -> tuple[Sequence[LeaseRecord], int]:
    """A page of the customer's leases on chain (STARTING = pending and delivered)."""
    where = [
        LeaseRecord.customer_id == customer.id,
        col(LeaseRecord.lease_id).is_not(None),
    ]
    if state in (LeaseState.PENDING, LeaseState.STARTING):
        where.append(LeaseRecord.chain_state == LeaseState.PENDING)
        delivered = LeaseRecord.delivery_state == DeliveryState.DELIVERED
        where.append(delivered if state == LeaseState.STARTING else ~delivered)  # type: ignore[arg-type]
    elif state is not None:
        where.append(LeaseRecord.chain_state == state)
    count = session.exec(select(func.count()).select_from(LeaseRecord).where(*where)).one()
    rows = session.exec(
        select(LeaseRecord)
        .where(*where)
        .order_by(col(LeaseRecord.lease_id).desc())
        .offset(skip)
        .limit(limit)
    ).all()
    return rows, int(count)


def undelivered_leases(*, session: Session, limit: int = 100) -> Sequence[LeaseRecord]:
    """Leases on chain whose spec the node has not taken yet, oldest first."""
    return session.exec(
        select(LeaseRecord)
        .where(
            LeaseRecord.delivery_state == DeliveryState.PENDING,
            LeaseRecord.chain_state == LeaseState.PENDING,
            col(LeaseRecord.lease_id).is_not(None),
        )
        .order_by(col(LeaseRecord.updated_at))
        .limit(limit)
    ).all()


# -- indexer cursor -------------------------------------------------------------------------------
def get_cursor(*, session: Session, name: str) -> IndexerCursor | None:
    return session.get(IndexerCursor, name)


def set_cursor(*, session: Session, name: str, block_number: int, block_hash: str) -> None:
    """Moves the cursor (the caller commits, together with what the block changed)."""
    cursor = session.get(IndexerCursor, name)
    if cursor is None:
        cursor = IndexerCursor(name=name, block_number=block_number, block_hash=block_hash)
    cursor.block_number = block_number
    cursor.block_hash = block_hash
    cursor.updated_at = utcnow()
    session.add(cursor)
