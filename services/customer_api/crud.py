"""Database reads and writes, keyword-only. No chain, no HTTP: callers bring what to store.

Requests must not hold a pooled connection while they wait on the chain or a node, so reads
that open a request's work (the customer behind an API key) end their transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, update
from sqlmodel import Session, col, select
from substrateinterface import Keypair

from services.common import keypair_from_secret, new_keypair
from services.common._chain import SignedExtrinsic
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
    "delete_submission",
    "get_cursor",
    "lease_by_chain_id",
    "lease_by_extrinsic_hash",
    "lease_by_idempotency_key",
    "list_api_keys",
    "list_leases",
    "move_cursor",
    "record_created",
    "reserve_lease",
    "revoke_api_key",
    "set_cursor",
    "set_submission",
    "submission_of",
    "submitting_leases",
    "touch_submission",
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
        session.commit()
        return None
    customer = session.get(Customer, key.customer_id)
    # End the read transaction: the request may wait on the chain next, and an open
    # transaction would keep its pooled connection (sessions here do not expire on commit).
    session.commit()
    return customer


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
    signed: SignedExtrinsic,
) -> LeaseRecord:
    """The row a lease request owns (state SUBMITTING), written with the create_lease
    extrinsic it signed and before that is sent. The unique (customer, idempotency key) makes
    a concurrent retry fail here (IntegrityError), before anything reaches the chain."""
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
    _set_extrinsic(record, signed)
    session.add(record)
    session.commit()
    return record


def _set_extrinsic(record: LeaseRecord, signed: SignedExtrinsic) -> None:
    record.extrinsic_hash = signed.extrinsic_hash
    record.extrinsic_nonce = signed.nonce
    record.extrinsic_data = signed.data
    record.valid_from_block = signed.valid_from
    record.valid_until_block = signed.valid_until
    record.updated_at = utcnow()


def set_submission(*, session: Session, record_id: uuid.UUID, signed: SignedExtrinsic) -> bool:
    """The request signed again (its first nonce went to another extrinsic): record the new
    extrinsic before it is sent. False when the row is gone (the indexer removed it, its
    earlier extrinsic being dead): the caller writes it anew."""
    result = session.execute(
        update(LeaseRecord)
        .where(col(LeaseRecord.id) == record_id, col(LeaseRecord.lease_id).is_(None))
        .values(
            extrinsic_hash=signed.extrinsic_hash,
            extrinsic_nonce=signed.nonce,
            extrinsic_data=signed.data,
            valid_from_block=signed.valid_from,
            valid_until_block=signed.valid_until,
            updated_at=utcnow(),
        )
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def submission_of(record: LeaseRecord) -> SignedExtrinsic | None:
    """The extrinsic a SUBMITTING record signed; None for rows written before extrinsics were
    recorded."""
    if (
        record.extrinsic_hash is None
        or record.extrinsic_data is None
        or record.extrinsic_nonce is None
        or record.valid_from_block is None
        or record.valid_until_block is None
    ):
        return None
    return SignedExtrinsic(
        signer=record.customer_address,
        nonce=record.extrinsic_nonce,
        extrinsic_hash=record.extrinsic_hash,
        data=record.extrinsic_data,
        valid_from=record.valid_from_block,
        valid_until=record.valid_until_block,
        call="GpuRental.create_lease",
    )


def record_created(
    *,
    session: Session,
    record_id: uuid.UUID,
    lease_id: int,
    block_number: int,
    price_per_gpu_block: int,
    escrow: int,
    duration_blocks: int,
    final: bool,
) -> LeaseRecord:
    """Marks a SUBMITTING row as the chain's lease lease_id (PENDING), made in block
    block_number, which is finalized (`final`) or only the best block so far. Only a row without
    a lease changes, so a request finishing after the indexer adopted (and maybe advanced) the
    same lease changes nothing."""
    session.execute(
        update(LeaseRecord)
        .where(
            col(LeaseRecord.id) == record_id,
            col(LeaseRecord.lease_id).is_(None),
        )
        .values(
            lease_id=lease_id,
            chain_state=LeaseState.PENDING,
            created_block=block_number,
            price_per_gpu_block=str(price_per_gpu_block),
            escrow=str(escrow),
            duration_blocks=duration_blocks,
            created_final=final,
            updated_at=utcnow(),
        )
    )
    session.commit()
    record = session.get(LeaseRecord, record_id, populate_existing=True)
    assert record is not None
    return record


def delete_submission(
    *, session: Session, record_id: uuid.UUID, extrinsic_hash: str | None
) -> bool:
    """Removes a request's row whose extrinsic `extrinsic_hash` did not and cannot create a
    lease (refused, failed, or dead). Only while the row still names that extrinsic (its
    request may have signed again meanwhile) and holds no lease. True if a row went."""
    result = session.execute(
        delete(LeaseRecord).where(
            col(LeaseRecord.id) == record_id,
            col(LeaseRecord.lease_id).is_(None),
            col(LeaseRecord.extrinsic_hash).is_(None)
            if extrinsic_hash is None
            else col(LeaseRecord.extrinsic_hash) == extrinsic_hash,
        )
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def touch_submission(*, session: Session, record_id: uuid.UUID) -> None:
    """Marks a request row as just looked at (it is looked at again later)."""
    session.execute(
        update(LeaseRecord)
        .where(col(LeaseRecord.id) == record_id, col(LeaseRecord.lease_id).is_(None))
        .values(updated_at=utcnow())
    )
    session.commit()


def lease_by_extrinsic_hash(*, session: Session, extrinsic_hash: str) -> LeaseRecord | None:
    """The request whose create_lease extrinsic has this hash (it may hold a lease id from its
    receipt already)."""
    return session.exec(
        select(LeaseRecord).where(LeaseRecord.extrinsic_hash == extrinsic_hash)
    ).first()


def forget_lease_id(*, session: Session, record: LeaseRecord) -> None:
    """Takes back what a request's receipt told of its lease, made in a block finality then
    abandoned: the row is a request again (SUBMITTING, not listed), its extrinsic settled like
    any other (included again later, or dead), and delivered again once it has a lease."""
    record.lease_id = None
    record.chain_state = LeaseState.SUBMITTING
    record.created_block = None
    record.created_final = False
    record.delivery_state = DeliveryState.PENDING
    record.delivery_error = None
    record.updated_at = utcnow()
    session.add(record)
    session.flush()  # the lease id is free for its rightful record in this transaction


def unfinalized_created_by(*, session: Session, block_number: int) -> Sequence[LeaseRecord]:
    """Rows whose receipt says their lease was made at or before block_number while no
    finalized block confirmed it (an indexer past that block knows it was abandoned)."""
    return session.exec(
        select(LeaseRecord).where(
            col(LeaseRecord.lease_id).is_not(None),
            col(LeaseRecord.created_final).is_(False),
            col(LeaseRecord.created_block) <= block_number,
        )
    ).all()


def submitting_leases(
    *, session: Session, updated_before: datetime, limit: int = 20
) -> Sequence[LeaseRecord]:
    """Requests still without a lease, untouched since updated_before, oldest first."""
    return session.exec(
        select(LeaseRecord)
        .where(
            col(LeaseRecord.lease_id).is_(None),
            col(LeaseRecord.updated_at) < updated_before,
        )
        .order_by(col(LeaseRecord.updated_at))
        .limit(limit)
    ).all()


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
    where: list[ColumnElement[bool]] = [
        col(LeaseRecord.customer_id) == customer.id,
        col(LeaseRecord.lease_id).is_not(None),
    ]
    if state in (LeaseState.PENDING, LeaseState.STARTING):
        where.append(col(LeaseRecord.chain_state) == LeaseState.PENDING)
        delivered = col(LeaseRecord.delivery_state) == DeliveryState.DELIVERED
        where.append(delivered if state == LeaseState.STARTING else ~delivered)
    elif state is not None:
        where.append(col(LeaseRecord.chain_state) == state)
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


def move_cursor(
    *, session: Session, name: str, expected: int, block_number: int, block_hash: str
) -> bool:
    """Moves the cursor from `expected` to block_number, only if it is still at `expected`
    (the caller commits, together with what the block changed). False: another indexer (an
    API replica on the same database) moved it first, and the caller must roll back."""
    result = session.execute(
        update(IndexerCursor)
        .where(
            col(IndexerCursor.name) == name,
            col(IndexerCursor.block_number) == expected,
        )
        .values(block_number=block_number, block_hash=block_hash, updated_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_cursor(*, session: Session, name: str, block_number: int, block_hash: str) -> None:
    """Moves the cursor (the caller commits, together with what the block changed)."""
    cursor = session.get(IndexerCursor, name)
    if cursor is None:
        cursor = IndexerCursor(name=name, block_number=block_number, block_hash=block_hash)
    cursor.block_number = block_number
    cursor.block_hash = block_hash
    cursor.updated_at = utcnow()
    session.add(cursor)
