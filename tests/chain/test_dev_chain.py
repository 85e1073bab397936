"""The dev chain end to end through substrate-interface: signing, SCALE types and events.

One lease's whole life on the real runtime (Chopsticks executing our wasm), asserting balances
and events to the unit. In Instant mode every extrinsic gets its own block, so accrual is exact:
pay = blocks between checkpoints * GPUs * price.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from substrateinterface import Keypair

from services.common import SS58_FORMAT, TOKEN_UNIT
from services.common._chain import ChainClient, ExtrinsicFailed
from tests.utils.devchain import DevChain

PRICE = 1_000_000  # per GPU per block
UNIT = TOKEN_UNIT
GPUS = 2
DURATION = 100


@pytest.fixture(scope="module")
def chain(dev_chain: DevChain) -> Iterator[ChainClient]:
    client = dev_chain.client()
    yield client
    client.close()


def kp(name: str) -> Keypair:
    return Keypair.create_from_uri(f"//{name}", ss58_format=SS58_FORMAT)


def test_lease_lifecycle_moves_money_to_the_unit(chain: ChainClient) -> None:
    provider, operator, customer = kp("Alice"), kp("Dave"), kp("Bob")
    treasury = chain.constant("Treasury")
    fee_share = 5  # percent, the runtime's ProtocolFee
    machine_id = os.urandom(32)  # the session chain may already hold other machines

    provider_free0 = chain.free_balance(provider.ss58_address)
    r = chain.gpu_rental(
        provider, "register_machine", machine_id="0x" + machine_id.hex(),
        operator=operator.ss58_address, gpu_model=b"NVIDIA H100 80GB HBM3".hex(),
        gpu_count=8, memory_mib=81559, price_per_gpu_block=PRICE,
    )
    bond = 8 * chain.constant("MinBondPerGpu")
    reg = r.one("GpuRental", "MachineRegistered")
    assert reg["bond"] == bond and reg["gpu_count"] == 8 and reg["owner"] == provider.ss58_address
    assert chain.free_balance(provider.ss58_address) == provider_free0 - bond - r.fee
    machine = chain.machine(machine_id)
    assert machine is not None and machine.gpu_model == "NVIDIA H100 80GB HBM3"
    assert machine.free_gpus == 8 and machine.operator == operator.ss58_address

    customer_free0 = chain.free_balance(customer.ss58_address)
    spec_hash = hashlib.blake2b(b'{"image":"x"}', digest_size=32).digest()
    r = chain.gpu_rental(
        customer, "create_lease", machine_id="0x" + machine_id.hex(), gpus=GPUS,
        duration=DURATION, max_price_per_gpu_block=PRICE, spec_hash="0x" + spec_hash.hex(),
    )
    created = r.one("GpuRental", "LeaseCreated")
    lease_id = created["lease_id"]
    escrow = PRICE * GPUS * DURATION
    assert created["escrow"] == escrow and created["gpu_mask"] == 0b11
    customer_fees = r.fee
    assert chain.held(customer.ss58_address, "LeaseEscrow") == escrow
    assert chain.customer_leases(customer.ss58_address) == [lease_id]
    assert chain.machine_leases(machine_id) == [lease_id]
    lease = chain.lease(lease_id)
    assert lease is not None and lease.state == "Pending" and lease.spec_hash == spec_hash

    # The operator's key needs funds for its own fees.
    chain.transfer(kp("Eve"), operator.ss58_address, 10 * UNIT)
    started = chain.gpu_rental(operator, "start_lease", lease_id=lease_id)
    start_block = started.block_number
    assert started.one("GpuRental", "LeaseStarted")["ends_at"] == start_block + DURATION

    hb = chain.gpu_rental(
        operator, "heartbeat", machine_id="0x" + machine_id.hex(), unhealthy_gpus=0
    )
    assert hb.one("GpuRental", "HeartbeatReceived")["gap"] == 0

    provider_before_claim = chain.free_balance(provider.ss58_address)
    claim = chain.gpu_rental(operator, "claim_payment", lease_id=lease_id)
    accrued = (claim.block_number - start_block) * GPUS * PRICE
    paid = claim.one("GpuRental", "PaymentClaimed")
    assert paid["paid"] + paid["fee"] == accrued
    assert paid["fee"] == accrued * fee_share // 100
    assert chain.free_balance(provider.ss58_address) == provider_before_claim + paid["paid"]

    ext = chain.gpu_rental(customer, "extend_lease", lease_id=lease_id, extra_blocks=50)
    customer_fees += ext.fee
    assert ext.one("GpuRental", "LeaseExtended")["added_escrow"] == PRICE * GPUS * 50

    treasury_before = chain.free_balance(treasury)
    term = chain.gpu_rental(customer, "terminate_lease", lease_id=lease_id)
    customer_fees += term.fee
    final = term.one("GpuRental", "PaymentClaimed")
    assert final["paid"] + final["fee"] == (term.block_number - claim.block_number) * GPUS * PRICE
    ended = term.one("GpuRental", "LeaseEnded")
    assert ended["reason"] == "Terminated"
    spent = accrued + final["paid"] + final["fee"]
    assert ended["refunded"] == escrow + PRICE * GPUS * 50 - spent
    # The customer paid exactly what accrued plus transaction fees; nothing is left held.
    assert chain.free_balance(customer.ss58_address) == customer_free0 - spent - customer_fees
    assert chain.held(customer.ss58_address, "LeaseEscrow") == 0
    assert chain.free_balance(treasury) == treasury_before + final["fee"]
    assert chain.lease(lease_id) is None
    assert chain.machine(machine_id).free_gpus == 8  # type: ignore[union-attr]


def test_bad_calls_return_named_pallet_errors(chain: ChainClient) -> None:
    customer = kp("Charlie")
    missing = "0x" + "ab" * 32
    with pytest.raises(ExtrinsicFailed) as err:
        chain.gpu_rental(
            customer, "create_lease", machine_id=missing, gpus=1, duration=10,
            max_price_per_gpu_block=PRICE, spec_hash="0x" + "00" * 32,
        )
    assert err.value.name == "MachineNotFound"
    with pytest.raises(ExtrinsicFailed) as err:
        chain.gpu_rental(customer, "terminate_lease", lease_id=10**9)
    assert err.value.name == "LeaseNotFound"
