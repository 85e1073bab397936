"""The dev chain keeps its blocks: reading many old block hashes (an indexer catching up) must
not make Chopsticks forget recent blocks, after which signatures failed (badProof) and lookups
of recent blocks missed (the issue read blocks 1..600 on a chain at 816, with Chopsticks' 500
blocks in memory). chain/dev-chain keeps every block in Chopsticks' database; this chain keeps
only 16 in memory, so a few dozen blocks show the same eviction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from substrateinterface import Keypair

from services.common import SS58_FORMAT, TOKEN_UNIT, new_keypair
from services.common._chain import ChainClient
from tests.utils.devchain import DevChain, start_dev_chain

IN_MEMORY = 16


@pytest.fixture(scope="module")
def small_memory_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevChain]:
    chain = start_dev_chain(
        Path(tmp_path_factory.mktemp("chain-small")),
        extra_args=("--memory-blocks", str(IN_MEMORY)),
    )
    yield chain
    chain.stop()


def test_reading_old_blocks_keeps_recent_ones(small_memory_chain: DevChain) -> None:
    with ChainClient(small_memory_chain.url, timeout_s=120) as chain:
        chain.dev_new_blocks(3 * IN_MEMORY)
        head = chain.block_number()
        recent = {n: chain.block_hash(n) for n in range(head - IN_MEMORY // 2, head + 1)}
        assert all(recent.values())
        for number in range(1, head - IN_MEMORY):  # old blocks push recent ones out of memory
            assert chain.block_hash(number) is not None
        for number, block_hash in recent.items():
            assert chain.block_hash(number) == block_hash
            assert chain.extrinsic_hashes(str(block_hash)) is not None
            chain.events(str(block_hash))
        # Signing still works (the era's birth block and the genesis hash are known).
        dest, _ = new_keypair()
        sender = Keypair.create_from_uri("//Eve", ss58_format=SS58_FORMAT)
        receipt = chain.transfer(sender, dest.ss58_address, TOKEN_UNIT)
        assert receipt.block_number > head
        assert chain.free_balance(dest.ss58_address) == TOKEN_UNIT
