"""The indexer against the real dev chain, on both database backends: a lease is matched to the
request that signed its extrinsic (never to another request of the same customer and spec), a
request whose extrinsic can no longer be included is settled (its row removed), two indexers
on one database never apply a block twice, and a block the chain does not serve is retryable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col
from substrateinterface import Keypair

from services.common import SS58_FORMAT, TOKEN_UNIT, ChainUnavailable, hex0x, spec_hash
from services.common._chain import PALLET, ChainClient
from services.customer_api import crud
from services.customer_api.core.db import make_engine
from services.customer_api.core.migrate import upgrade
from services.customer_api.core.security import Custody
from services.customer_api.indexer import CURSOR, BlockUnavailable, Indexer, IndexerError
from services.customer_api.models import LeaseRecord, utcnow
from tests.seed.harness import free_port
from tests.utils.api_machines import OfferedMachine, register_machine

SECRET = "test-server-secret-0123456789abcdef"
SPEC: dict[str, object] = {"version": 1, "image": "docker.io/library/python:3.12"}
FUNDER = Keypair.create_from_uri("//Dave", ss58_format=SS58_FORMAT)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def machine(chain: ChainClient) -> OfferedMachine:
    return register_machine(chain, endpoint=f"127.0.0.1:{free_port()}", gpus=8)


def _customer(engine: Engine, chain: ChainClient):  # type: ignore[no-untyped-def]
    custody = Custody(SECRET)
    with Session(engine, expire_on_commit=False) as session:
        customer, _ = crud.create_customer(
            session=session, name="indexed", custody=custody, server_secret=SECRET
        )
        keypair = crud.customer_keypair(session=session, customer_id=customer.id, custody=custody)
    chain.transfer(FUNDER, customer.address, 100 * TOKEN_UNIT)
    return customer, keypair


def _set_cursor_before(engine: Engine, chain: ChainClient, number: int) -> None:
    with Session(engine) as session:
        crud.set_cursor(session=session, name=CURSOR, block_number=number,
                        block_hash=str(chain.block_hash(number)))  # fmt: skip
        session.commit()


def _row(engine: Engine, record_id: object) -> LeaseRecord | None:
    with Session(engine) as session:
        return session.get(LeaseRecord, record_id)


def test_lease_goes_to_the_request_that_signed_it(
    engine: Engine, chain: ChainClient, machine: OfferedMachine
) -> None:
    customer, keypair = _customer(engine, chain)
    params = {
        "machine_id": machine.hex_id, "gpus": 1, "duration": 50,
        "max_price_per_gpu_block": machine.price, "spec_hash": hex0x(spec_hash(SPEC)),
    }  # fmt: skip
    # Two requests of one customer with one spec: both signed with the same nonce, only the
    # second reaches the chain. A match by customer + spec hash could take either.
    first = chain.sign(keypair, PALLET, "create_lease", params)
    second = chain.sign(keypair, PALLET, "create_lease", {**params, "duration": 60})
    assert first.nonce == second.nonce
    rows = []
    with Session(engine, expire_on_commit=False) as session:
        for key, signed in (("k1", first), ("k2", second)):
            rows.append(crud.reserve_lease(
                session=session, customer=customer, idempotency_key=key, request_hash=key,
                machine_id=machine.hex_id, endpoint=machine.endpoint, gpus=1,
                duration_blocks=50, spec=SPEC, spec_hash=hex0x(spec_hash(SPEC)), signed=signed,
            ))  # fmt: skip
        # Old enough for any age-based guess, and for settling.
        session.execute(update(LeaseRecord).where(col(LeaseRecord.customer_id) == customer.id)
                        .values(created_at=utcnow() - timedelta(minutes=5),
                                updated_at=utcnow() - timedelta(minutes=5)))  # fmt: skip
        session.commit()
    _set_cursor_before(engine, chain, chain.block_number())
    receipt = chain.send(second)
    lease_id = int(receipt.one(PALLET, "LeaseCreated")["lease_id"])
    indexer = Indexer(engine, chain)
    indexer.sync()
    got_first, got_second = _row(engine, rows[0].id), _row(engine, rows[1].id)
    assert got_second is not None and got_second.lease_id == lease_id
    assert got_second.duration_blocks == 60
    assert got_first is not None and got_first.lease_id is None
    # The first can never be included now (its nonce is taken): settling removes its row.
    indexer.settle_submissions()
    assert _row(engine, rows[0].id) is None
    assert _row(engine, rows[1].id) is not None


def test_two_indexers_apply_each_block_once(
    engine: Engine, chain: ChainClient, machine: OfferedMachine
) -> None:
    customer, keypair = _customer(engine, chain)
    start = chain.block_number()
    created = chain.gpu_rental(
        keypair, "create_lease", machine_id=machine.hex_id, gpus=1, duration=40,
        max_price_per_gpu_block=machine.price, spec_hash=hex0x(spec_hash(SPEC)),
    )  # fmt: skip
    lease_id = int(created.one(PALLET, "LeaseCreated")["lease_id"])
    with Session(engine, expire_on_commit=False) as session:
        record = crud.reserve_lease(
            session=session, customer=customer, idempotency_key=None, request_hash="x",
            machine_id=machine.hex_id, endpoint=machine.endpoint, gpus=1, duration_blocks=40,
            spec=SPEC, spec_hash=hex0x(spec_hash(SPEC)),
            signed=chain.sign(keypair, "System", "remark", {"remark": "0x00"}),
        )  # fmt: skip
        crud.record_created(
            session=session, record_id=record.id, lease_id=lease_id, block_number=0,
            price_per_gpu_block=machine.price, escrow=0, duration_blocks=40, final=True,
        )  # fmt: skip
    chain.gpu_rental(machine.key, "start_lease", lease_id=lease_id)
    claims = [chain.gpu_rental(machine.key, "claim_payment", lease_id=lease_id)
              for _ in range(3)]  # fmt: skip
    charged = sum(int(c.one(PALLET, "PaymentClaimed")["paid"])
                  + int(c.one(PALLET, "PaymentClaimed")["fee"]) for c in claims)  # fmt: skip
    _set_cursor_before(engine, chain, start)
    # Two replicas' indexers over the same blocks at once.
    indexers = [Indexer(engine, ChainClient(chain.url)) for _ in range(2)]
    errors: list[Exception] = []

    def run(indexer: Indexer) -> None:
        try:
            indexer.sync()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in indexers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    found = _row(engine, record.id)
    assert found is not None and int(found.spent) == charged
    assert found.chain_state == "running"
    for indexer in indexers:
        indexer.chain.close()


def test_a_block_the_chain_does_not_serve_is_retryable(engine: Engine, chain: ChainClient) -> None:
    head = chain.block_number()
    with Session(engine) as session:
        crud.set_cursor(session=session, name=CURSOR, block_number=head + 10_000,
                        block_hash="0x" + "ab" * 32)  # fmt: skip
        session.commit()
    indexer = Indexer(engine, chain)
    with pytest.raises(BlockUnavailable) as missing:
        indexer.sync()
    assert isinstance(missing.value, ChainUnavailable)  # retried by the loop, not fatal
    # A block the chain has, with another hash, is another chain: that is fatal.
    with Session(engine) as session:
        crud.set_cursor(session=session, name=CURSOR, block_number=head,
                        block_hash="0x" + "cd" * 32)  # fmt: skip
        session.commit()
    with pytest.raises(IndexerError):
        indexer.sync()
    _set_cursor_before(engine, chain, head)
    assert indexer.sync() >= head


def test_lease_health_follows_the_heartbeats(
    engine: Engine, chain: ChainClient, machine: OfferedMachine
) -> None:
    """A heartbeat reporting the lease's GPU unhealthy stops its pay on chain at that block and
    the index shows it; a healthy heartbeat clears both. The free GPU count leaves the sick one
    out, so no new lease gets it."""
    customer, keypair = _customer(engine, chain)
    params = {
        "machine_id": machine.hex_id, "gpus": 1, "duration": 50,
        "max_price_per_gpu_block": machine.price, "spec_hash": hex0x(spec_hash(SPEC)),
    }  # fmt: skip
    signed = chain.sign(keypair, PALLET, "create_lease", params)
    with Session(engine, expire_on_commit=False) as session:
        row = crud.reserve_lease(
            session=session, customer=customer, idempotency_key="health", request_hash="health",
            machine_id=machine.hex_id, endpoint=machine.endpoint, gpus=1, duration_blocks=50,
            spec=SPEC, spec_hash=hex0x(spec_hash(SPEC)), signed=signed,
        )  # fmt: skip
        session.commit()
    _set_cursor_before(engine, chain, chain.block_number())
    lease_id = int(chain.send(signed).one(PALLET, "LeaseCreated")["lease_id"])
    chain.gpu_rental(machine.key, "start_lease", lease_id=lease_id)
    lease = chain.lease(lease_id)
    assert lease is not None and lease.healthy
    before = chain.machine(machine.machine_id)
    assert before is not None
    slot = lease.gpu_indexes[0]
    # A free slot (other tests' leases may hold the rest of this shared machine).
    others = next(i for i in range(machine.gpus) if not before.used_gpus >> i & 1)
    try:
        sick = chain.gpu_rental(
            machine.key, "heartbeat", machine_id=machine.hex_id,
            unhealthy_gpus=(1 << slot) | (1 << others),
        )  # fmt: skip
        assert sick.one(PALLET, "LeaseHealthChanged") == {"lease_id": lease_id, "healthy": False}
        assert chain.lease(lease_id).unhealthy_since == sick.block_number  # type: ignore[union-attr]
        # The leased slot was not free anyway; the other sick one no longer is.
        assert chain.machine(machine.machine_id).free_gpus == before.free_gpus - 1  # type: ignore[union-attr]
        indexer = Indexer(engine, chain)
        indexer.sync()
        got = _row(engine, row.id)
        assert got is not None and got.unhealthy_since_block == sick.block_number
    finally:
        well = chain.gpu_rental(
            machine.key, "heartbeat", machine_id=machine.hex_id, unhealthy_gpus=0
        )
    assert well.one(PALLET, "LeaseHealthChanged") == {"lease_id": lease_id, "healthy": True}
    indexer.sync()
    got = _row(engine, row.id)
    assert got is not None and got.unhealthy_since_block is None
    chain.gpu_rental(keypair, "terminate_lease", lease_id=lease_id)


def _reserve(engine: Engine, customer, signed, key: str) -> LeaseRecord:  # type: ignore[no-untyped-def]
    with Session(engine, expire_on_commit=False) as session:
        return crud.reserve_lease(
            session=session, customer=customer, idempotency_key=key, request_hash=key,
            machine_id="0x" + "00" * 32, endpoint="127.0.0.1:1", gpus=1, duration_blocks=50,
            spec=SPEC, spec_hash=hex0x(spec_hash(SPEC)), signed=signed,
        )  # fmt: skip


def _tentative(engine: Engine, row: LeaseRecord, lease_id: int, block: int) -> None:
    """What a request's receipt from a best block (later abandoned by a fork) would record."""
    with Session(engine) as session:
        crud.record_created(
            session=session, record_id=row.id, lease_id=lease_id, block_number=block,
            price_per_gpu_block=1, escrow=50, duration_blocks=50, final=False,
        )  # fmt: skip
        session.execute(update(LeaseRecord).where(col(LeaseRecord.id) == row.id)
                        .values(delivery_state="delivered"))  # fmt: skip
        session.commit()


def test_a_lease_id_from_an_abandoned_block_goes_to_its_rightful_lease(
    engine: Engine, chain: ChainClient, machine: OfferedMachine
) -> None:
    """Customer X's receipt came from a block a fork abandoned; on the finalized chain the same
    lease id went to customer Y's extrinsic. Y's record gets the lease; X's record holds nothing
    (a request again, not listed, delivered again if it ever gets a lease), and when X's own
    extrinsic lands later it gets the id the finalized chain gave it."""
    params = {
        "machine_id": machine.hex_id, "gpus": 1, "duration": 50,
        "max_price_per_gpu_block": machine.price, "spec_hash": hex0x(spec_hash(SPEC)),
    }  # fmt: skip
    x, x_key = _customer(engine, chain)
    y, y_key = _customer(engine, chain)
    x_signed = chain.sign(x_key, PALLET, "create_lease", params)
    y_signed = chain.sign(y_key, PALLET, "create_lease", params)
    x_row, y_row = _reserve(engine, x, x_signed, "fork-x"), _reserve(engine, y, y_signed, "fork-y")
    head = chain.block_number()
    _set_cursor_before(engine, chain, head)
    taken = chain.next_lease_id()
    _tentative(engine, x_row, taken, head + 1)

    receipt = chain.send(y_signed)
    assert int(receipt.one(PALLET, "LeaseCreated")["lease_id"]) == taken
    Indexer(engine, chain).sync()
    got_y, got_x = _row(engine, y_row.id), _row(engine, x_row.id)
    assert got_y is not None and got_y.lease_id == taken and got_y.created_final
    assert got_y.customer_id == y.id and got_y.chain_state == "pending"
    assert got_x is not None and got_x.lease_id is None and got_x.chain_state == "submitting"
    assert got_x.delivery_state == "pending" and not got_x.created_final
    with Session(engine) as session:
        assert crud.list_leases(session=session, customer=x) == ([], 0)

    later = chain.send(x_signed)
    again = int(later.one(PALLET, "LeaseCreated")["lease_id"])
    assert again != taken
    Indexer(engine, chain).sync()
    got_x = _row(engine, x_row.id)
    assert got_x is not None and got_x.lease_id == again and got_x.created_final
    assert got_x.chain_state == "pending" and got_x.delivery_state == "pending"
    for key, lease_id in ((x_key, again), (y_key, taken)):
        chain.gpu_rental(key, "cancel_lease", lease_id=lease_id)


def test_a_receipt_whose_block_finality_passed_by_is_taken_back(
    engine: Engine, chain: ChainClient, machine: OfferedMachine
) -> None:
    """A receipt named a block finality abandoned, and no finalized block holds the lease: once
    the indexer is past that block the record is a request again; when its extrinsic can no
    longer be included (its nonce went to another), settling removes it. Nothing was shown as
    running and nothing was charged."""
    x, x_key = _customer(engine, chain)
    signed = chain.sign(x_key, PALLET, "create_lease", {
        "machine_id": machine.hex_id, "gpus": 1, "duration": 50,
        "max_price_per_gpu_block": machine.price, "spec_hash": hex0x(spec_hash(SPEC)),
    })  # fmt: skip
    row = _reserve(engine, x, signed, "abandoned")
    head = chain.block_number()
    _set_cursor_before(engine, chain, head)
    _tentative(engine, row, 2**40, head + 1)
    balance = chain.free_balance(x.address)
    chain.dev_new_blocks(1)
    indexer = Indexer(engine, chain)
    indexer.sync()
    got = _row(engine, row.id)
    assert got is not None and got.lease_id is None and got.chain_state == "submitting"
    # X's nonce goes to another extrinsic: the create can never be included now.
    chain.send(chain.sign(x_key, "System", "remark", {"remark": "0x01"}))
    with Session(engine) as session:
        session.execute(update(LeaseRecord).where(col(LeaseRecord.id) == row.id)
                        .values(updated_at=utcnow() - timedelta(minutes=5)))  # fmt: skip
        session.commit()
    indexer.sync()
    indexer.settle_submissions()
    assert _row(engine, row.id) is None
    assert chain.free_balance(x.address) > balance - TOKEN_UNIT // 100  # a remark's fee only
