"""The chain client against the real dev chain: every submission ends (a final status or its
deadline), nonces come from the pool, two signers of one account do not hang each other, a
dropped websocket is named and reconnected, chain errors are named (below the existential
deposit says so and the minimum), and out-of-range arguments never reach the runtime."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from substrateinterface import Keypair

from services.common import (
    SS58_FORMAT,
    TOKEN_UNIT,
    ChainUnavailable,
    ExtrinsicFailed,
    ExtrinsicRejected,
    InvalidCallArgument,
    SubmitOutcomeUnknown,
    new_keypair,
)
from services.common._chain import PALLET, ChainClient, LocalSignerLocks, Receipt
from tests.utils.devchain import DevChain
from tests.utils.tcp_proxy import TcpProxy

FUNDER = "//Dave"


def dev(name: str) -> Keypair:
    return Keypair.create_from_uri(name, ss58_format=SS58_FORMAT)


@pytest.fixture(scope="module")
def chain(dev_chain: DevChain) -> Iterator[ChainClient]:
    with ChainClient(dev_chain.url, timeout_s=10, submit_timeout_s=60) as client:
        yield client


def funded(chain: ChainClient, amount: int = 50 * TOKEN_UNIT) -> Keypair:
    """A fresh account of its own (other tests sign with the dev accounts meanwhile)."""
    key, _ = new_keypair()
    chain.transfer(dev(FUNDER), key.ss58_address, amount)
    return key


def proxy_to(dev_chain: DevChain) -> TcpProxy:
    parsed = urlparse(dev_chain.url)
    assert parsed.hostname is not None and parsed.port is not None
    return TcpProxy((parsed.hostname, parsed.port)).start()


def test_receipt_is_the_extrinsics_own(chain: ChainClient) -> None:
    sender = funded(chain)
    dest, _ = new_keypair()
    receipt = chain.transfer(sender, dest.ss58_address, 2 * TOKEN_UNIT)
    hashes = chain.extrinsic_hashes(receipt.block_hash)
    assert hashes is not None and receipt.extrinsic_hash in hashes
    transfer = receipt.one("Balances", "Transfer")
    assert transfer["to"] == dest.ss58_address and transfer["amount"] == 2 * TOKEN_UNIT
    assert receipt.fee > 0
    assert chain.free_balance(dest.ss58_address) == 2 * TOKEN_UNIT


@pytest.mark.parametrize(
    ("argument", "value", "problem"),
    [
        ("gpu_count", 2**32, "out of range for u32"),
        ("gpu_count", -1, "out of range for u32"),
        ("memory_mib", "lots", "must be an integer"),
        ("price_per_gpu_block", 2**128, "out of range for u128"),
        ("gpu_model", "0x" + "41" * 65, "more than MaxModelLen"),
        ("machine_id", "0x" + "00" * 31, "cannot be encoded"),
    ],
)
def test_out_of_range_arguments_never_reach_the_runtime(
    chain: ChainClient, argument: str, value: Any, problem: str
) -> None:
    owner = dev(FUNDER)
    nonce = chain.next_nonce(owner.ss58_address)
    params: dict[str, Any] = {
        "machine_id": "0x" + "ab" * 32,
        "operator": owner.ss58_address,
        "gpu_model": "0x" + b"NVIDIA H100".hex(),
        "gpu_count": 1,
        "memory_mib": 1024,
        "price_per_gpu_block": 1,
        argument: value,
    }
    with pytest.raises(InvalidCallArgument) as refused:
        chain.submit(owner, PALLET, "register_machine", params)
    assert refused.value.argument == argument and problem in refused.value.problem
    assert refused.value.call == "GpuRental.register_machine"
    assert chain.next_nonce(owner.ss58_address) == nonce  # nothing was sent


def test_missing_and_unknown_arguments_are_named(chain: ChainClient) -> None:
    owner = dev(FUNDER)
    with pytest.raises(InvalidCallArgument) as missing:
        chain.submit(owner, PALLET, "heartbeat", {})
    assert missing.value.argument == "machine_id" and "missing" in missing.value.problem
    with pytest.raises(InvalidCallArgument) as unknown:
        chain.submit(owner, PALLET, "heartbeat", {"machine_id": "0x" + "00" * 32, "x": 1})
    assert unknown.value.argument == "x"
    with pytest.raises(InvalidCallArgument):
        chain.submit(owner, PALLET, "no_such_call", {})


def test_a_model_name_at_the_bound_reaches_the_pallet(chain: ChainClient) -> None:
    owner = funded(chain, 1_000 * TOKEN_UNIT)
    bound = int(chain.constant("MaxModelLen"))
    machine_id = new_keypair()[0].public_key
    receipt = chain.gpu_rental(
        owner, "register_machine", machine_id="0x" + machine_id.hex(),
        operator=owner.ss58_address, gpu_model="0x" + "41" * bound, gpu_count=1,
        memory_mib=1024, price_per_gpu_block=1,
    )  # fmt: skip
    assert receipt.one(PALLET, "MachineRegistered")["gpu_count"] == 1


def test_transfer_below_existential_deposit_is_named_with_the_minimum(chain: ChainClient) -> None:
    sender = funded(chain)
    existential = int(chain.constant("ExistentialDeposit", "Balances"))
    fresh, _ = new_keypair()
    with pytest.raises(ExtrinsicFailed) as failed:
        chain.transfer(sender, fresh.ss58_address, existential - 1)
    assert (failed.value.module, failed.value.name) == ("Token", "BelowMinimum")
    assert failed.value.details["minimum"] == existential
    assert int(failed.value.details["fee"]) > 0  # included (and paid for), then failed
    chain.transfer(sender, fresh.ss58_address, existential)  # the minimum itself is fine


def test_two_signers_of_one_account_never_hang(chain: ChainClient, dev_chain: DevChain) -> None:
    """Two services on one account (the dev stack's faucet and node once shared //Alice): both
    sign the same nonce; the loser's `invalid` ends its call instead of hanging it."""
    account = funded(chain)
    faucet = ChainClient(dev_chain.url, signer_locks=LocalSignerLocks(), submit_timeout_s=60)
    node = ChainClient(dev_chain.url, signer_locks=LocalSignerLocks(), submit_timeout_s=60)
    a = faucet.sign(account, "Balances", "transfer_keep_alive",
                    {"dest": new_keypair()[0].ss58_address, "value": TOKEN_UNIT})
    b = node.sign(account, "Balances", "transfer_keep_alive",
                  {"dest": new_keypair()[0].ss58_address, "value": TOKEN_UNIT})
    assert a.nonce == b.nonce and a.extrinsic_hash != b.extrinsic_hash
    outcomes: dict[str, Receipt | Exception] = {}

    def send(name: str, client: ChainClient, signed: Any) -> None:
        try:
            outcomes[name] = client.send(signed)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test looks at
            outcomes[name] = exc

    threads = [
        threading.Thread(target=send, args=("faucet", faucet, a)),
        threading.Thread(target=send, args=("node", node, b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads), "a submission never ended"
    receipts = [o for o in outcomes.values() if isinstance(o, Receipt)]
    refused = [o for o in outcomes.values() if isinstance(o, ExtrinsicRejected)]
    assert len(receipts) == 1 and len(refused) == 1, outcomes
    assert chain.next_nonce(account.ss58_address) == a.nonce + 1

    # Through submit, a lost race is signed again with the pool's next nonce: all succeed.
    done: list[Receipt] = []
    errors: list[Exception] = []

    def many(client: ChainClient) -> None:
        for _ in range(3):
            try:
                done.append(client.transfer(account, new_keypair()[0].ss58_address, TOKEN_UNIT))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=many, args=(c,)) for c in (faucet, node)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert len({r.extrinsic_hash for r in done}) == 6
    assert chain.next_nonce(account.ss58_address) == a.nonce + 7
    faucet.close()
    node.close()


def test_a_submission_without_answer_ends_at_its_deadline(
    chain: ChainClient, dev_chain: DevChain
) -> None:
    proxy = proxy_to(dev_chain)
    client = ChainClient(proxy.url, timeout_s=2, submit_timeout_s=3)
    try:
        sender = funded(chain)
        signed = client.sign(sender, "Balances", "transfer_keep_alive",
                             {"dest": new_keypair()[0].ss58_address, "value": TOKEN_UNIT})
        proxy.blackhole = True  # the chain still gets what is sent; no answer comes back
        started = time.monotonic()
        with pytest.raises(SubmitOutcomeUnknown) as lost:
            client.send(signed)
        assert time.monotonic() - started < 30  # bounded (3 s deadline), never forever
        assert lost.value.extrinsic_hash == signed.extrinsic_hash
        with pytest.raises(ChainUnavailable):
            client.block_number()  # reads have their deadline too
        proxy.blackhole = False
        # It did reach the chain: its status says where, by its hash.
        status = chain.status(signed)
        assert status.receipt is not None
        assert status.receipt.extrinsic_hash == signed.extrinsic_hash
        assert client.block_number() >= status.receipt.block_number  # reconnected
    finally:
        client.close()
        proxy.stop()


def test_a_dropped_websocket_is_named_and_reconnected(dev_chain: DevChain) -> None:
    proxy = proxy_to(dev_chain)
    client = ChainClient(proxy.url, timeout_s=5)
    try:
        first = client.block_number()
        assert proxy.cut_all() >= 1  # the link drops; the chain stays up
        assert client.block_number() >= first  # the next call reconnects by itself
        proxy.stop()  # now nothing answers
        with pytest.raises(ChainUnavailable):
            client.block_number()
        proxy.start()  # the same port answers again
        assert client.block_number() >= first
        sender_before = client.next_nonce(dev(FUNDER).ss58_address)
        assert sender_before >= 0
    finally:
        client.close()
        proxy.stop()


def test_status_tells_included_pending_and_dead(chain: ChainClient) -> None:
    account = funded(chain)
    signed = chain.sign(account, "Balances", "transfer_keep_alive",
                        {"dest": new_keypair()[0].ss58_address, "value": TOKEN_UNIT})
    status = chain.status(signed)  # never sent: not seen, still possible
    assert (status.receipt, status.failure, status.pending, status.dead) == (
        None, None, False, False
    )
    chain.transfer(account, new_keypair()[0].ss58_address, TOKEN_UNIT)  # takes its nonce
    assert chain.status(signed).dead
    sent = chain.sign(account, "Balances", "transfer_keep_alive",
                      {"dest": new_keypair()[0].ss58_address, "value": TOKEN_UNIT})
    receipt = chain.send(sent)
    found = chain.status(sent).receipt
    assert found is not None and found.block_hash == receipt.block_hash
    # Sending the very same bytes again cannot pay twice.
    with pytest.raises(ExtrinsicRejected) as again:
        chain.send(sent)
    assert again.value.name in ("Stale", "AlreadyImported")
