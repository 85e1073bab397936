"""A real Gridlease network: three validators of our node (chain/node) on loopback, Aura
producing a block per 1 s slot and GRANDPA finalizing them.

GRANDPA finalizes a block once votes of weight at least `n - f` arrive, where f = (n - 1) // 3
is how many voters may be faulty. With n = 3 validators of weight 1, f = 0 and the threshold is
3: one validator killed stalls finality (2 votes of the 3 needed) while the other two keep
producing blocks in their own Aura slots. Restarted, the validator continues from its own
database (its sync starts at the block it had, not at genesis) and finality resumes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common._chain import ChainClient
from services.devstack.chain_node import LocalNetwork
from services.devstack.processes import wait_until


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    net = LocalNetwork.start(tmp_path_factory.mktemp("network"))
    yield net
    net.stop()


def _numbers(url: str) -> tuple[int, int]:
    """(best, finalized) block numbers at the node serving `url`."""
    with ChainClient(url) as c:
        return c.block_number(), c.block_number(c.finalized_head())


def _finalized_hash(url: str, number: int) -> str | None:
    with ChainClient(url) as c:
        return c.block_hash(number)


def _aura_slot(chain: ChainClient, number: int) -> int:
    """The Aura slot in block `number`'s pre-runtime digest: 0x06, b"aura", compact length 8
    (0x20), then the slot as a little-endian u64."""
    header = chain.rpc("chain_getHeader", [chain.block_hash(number)])
    for log in header["digest"]["logs"]:
        raw = bytes.fromhex(log[2:])
        if raw[:6] == b"\x06aura\x20":
            return int.from_bytes(raw[6:14], "little")
    raise AssertionError(f"block {number} has no Aura pre-runtime digest: {header}")


def test_three_validators_produce_and_finalize_blocks(network: LocalNetwork) -> None:
    wait_until("blocks finalized", lambda: _numbers(network.url)[1] >= 3, 120)
    best, finalized = _numbers(network.url)
    assert best >= finalized >= 3
    with ChainClient(network.url) as c:
        # Aura gives slot s to validator s % 3: the finalized blocks come from more than one.
        authors = {_aura_slot(c, n) % 3 for n in range(1, finalized + 1)}
        assert len(authors) >= 2
        assert c.rpc("system_health", [])["peers"] == 2
    # Every validator agrees on the finalized chain.
    hashes = {_finalized_hash(n.url, finalized) for n in network.nodes}
    assert len(hashes) == 1 and None not in hashes


def test_killed_validator_stalls_finality_and_catches_up_from_its_database(
    network: LocalNetwork,
) -> None:
    charlie = network.node("charlie")
    wait_until("blocks finalized", lambda: _numbers(charlie.url)[1] >= 3, 120)
    had, _ = _numbers(charlie.url)

    charlie.kill()  # SIGKILL: no shutdown, as a crash
    time.sleep(3)  # votes already in flight may still finalize a block
    best_at_stall, finalized_at_stall = _numbers(network.url)
    wait_until("blocks without Charlie",
               lambda: _numbers(network.url)[0] >= best_at_stall + 5, 60)  # fmt: skip
    best, finalized = _numbers(network.url)
    assert best >= best_at_stall + 5  # Alice and Bob keep producing in their slots
    assert finalized == finalized_at_stall  # 2 of 3 votes: below GRANDPA's threshold

    charlie.start()
    with ChainClient(charlie.url) as c:
        sync = c.rpc("system_syncState", [])
    assert int(sync["startingBlock"]) >= had  # from its own database, not from genesis
    wait_until("finality resumes",
               lambda: _numbers(network.url)[1] > finalized_at_stall + 2, 120)  # fmt: skip
    wait_until("Charlie follows finality",
               lambda: _numbers(charlie.url)[1] > finalized_at_stall + 2, 60)  # fmt: skip
    number = _numbers(network.url)[1]
    assert len({_finalized_hash(n.url, number) for n in network.nodes}) == 1


def test_every_validator_keeps_its_database_on_disk(network: LocalNetwork) -> None:
    for node in network.nodes:
        assert any(Path(node.base_path).glob("chains/*/paritydb/full/*")), node.name
