"""The chain client's pure parts: naming what the pool and the runtime say, the error tree,
token amounts, signer locks and GPU sets. (What needs a chain is in tests/chain.)"""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from services.common import (
    TOKEN_UNIT,
    ChainError,
    ChainUnavailable,
    ExtrinsicFailed,
    ExtrinsicRejected,
    GridleaseError,
    InvalidCallArgument,
    SubmitOutcomeUnknown,
    format_tokens,
)
from services.common._chain import ChainMachine, LocalSignerLocks, extrinsic_hash, pool_rejection


@pytest.mark.parametrize(
    ("said", "name"),
    [
        # Chopsticks: the `invalid` status carries the validity error itself.
        ({"invalid": {"stale": None}}, "Stale"),
        ({"invalid": {"future": None}}, "Future"),
        ({"invalid": {"payment": None}}, "Payment"),
        ({"invalid": {"badProof": None}}, "BadProof"),
        ({"invalid": {"ancientBirthBlock": None}}, "AncientBirthBlock"),
        # Substrate's RPC errors.
        ({"code": 1010, "message": "Invalid Transaction", "data": "Transaction is outdated"},
         "Stale"),
        ({"code": 1010, "message": "Invalid Transaction",
          "data": "Inability to pay some fees (e.g. account balance too low)"}, "Payment"),
        ({"code": 1014, "message": "Priority is too low: (100 vs 100)"}, "PriorityTooLow"),
        ({"code": 1013, "message": "Transaction Already Imported"}, "AlreadyImported"),
        ({"code": 1012, "message": "Transaction is temporarily banned"}, "Banned"),
        ("usurped", "Usurped"),
        ("dropped", "Dropped"),
        ({"invalid": {"custom": 7}}, "Invalid"),
    ],
)
def test_pool_answers_are_named(said: object, name: str) -> None:
    rejection = pool_rejection(said)
    assert isinstance(rejection, ExtrinsicRejected) and rejection.name == name
    assert rejection.module == "Pool"
    assert rejection.nonce_clash == (name in ("Stale", "PriorityTooLow", "Usurped"))


def test_chain_errors_are_in_the_common_tree() -> None:
    for cls in (ChainUnavailable, SubmitOutcomeUnknown, InvalidCallArgument, ExtrinsicFailed,
                ExtrinsicRejected):
        assert issubclass(cls, ChainError) and issubclass(cls, GridleaseError)
    assert issubclass(SubmitOutcomeUnknown, ChainUnavailable)
    assert issubclass(ExtrinsicRejected, ExtrinsicFailed)
    assert ChainUnavailable("x").code == grpc.StatusCode.UNAVAILABLE
    assert InvalidCallArgument("GpuRental.x", "gpus", "too big").code == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    lost = SubmitOutcomeUnknown("lost", extrinsic_hash="0xab")
    assert lost.extrinsic_hash == "0xab" and lost.reason == "submit_outcome_unknown"
    failed = ExtrinsicFailed("BelowMinimum", "below ED", "Token")
    assert str(failed) == "Token.BelowMinimum: below ED" and failed.details == {}


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "0"), (TOKEN_UNIT, "1"), (1_500_000_000_000, "1.5"), (1, "0.000000000001"),
     (2**128 - 1, "340282366920938463463374607.431768211455")],
)
def test_token_amounts_format_exactly(amount: int, text: str) -> None:
    assert format_tokens(amount) == text


def test_extrinsic_hash_is_blake2_of_the_encoding() -> None:
    # blake2b-256 of the empty string, a published test vector.
    assert extrinsic_hash("0x") == (
        "0x0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    )
    assert extrinsic_hash(b"\x00") == extrinsic_hash("0x00")


def test_signer_lock_wait_is_bounded_and_release_is_idempotent() -> None:
    locks = LocalSignerLocks()
    release = locks.acquire("5Alice", 1.0)
    started = time.monotonic()
    with pytest.raises(ChainUnavailable):
        locks.acquire("5Alice", 0.2)
    assert time.monotonic() - started < 5  # it gave up instead of waiting forever
    other = locks.acquire("5Bob", 0.1)  # other accounts are not blocked
    other()
    release()
    release()  # twice is harmless
    again = locks.acquire("5Alice", 0.1)
    got: list[bool] = []

    def waiter() -> None:
        locks.acquire("5Alice", 5.0)()
        got.append(True)

    thread = threading.Thread(target=waiter)
    thread.start()
    again()
    thread.join(5)
    assert got == [True]


def _machine(gpu_count: int, present: int, used: int) -> ChainMachine:
    return ChainMachine(b"\0" * 32, "o", "op", "H100", gpu_count, 1, 1, 1, True, used, 0, present)


def test_free_gpus_count_only_present_unused_slots() -> None:
    assert _machine(8, 0xFF, 0b1010).free_gpus == 6
    assert _machine(7, 0b11110111, 0b1000).free_gpus == 7  # slot 3 gone, used bit ignored
    assert _machine(7, 0b11110111, 0b1).free_gpus == 6
    assert _machine(4, 0, 0b1).free_gpus == 3  # a runtime without the field: first 4 slots


def test_local_nonce_floor_follows_used_and_lost() -> None:
    locks = LocalSignerLocks(floor_ttl_s=60)
    lease = locks.acquire("5A", 1)
    assert lease.floor is None
    locks.used("5A", 4)
    lease()
    lease = locks.acquire("5A", 1)
    assert lease.floor == 5
    locks.lost("5A", 4)
    lease()
    assert locks.acquire("5A", 1).floor is None
