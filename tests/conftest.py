"""Fixtures shared across the suite. The dev chain is one real chain per test session: Chopsticks
executing our runtime's wasm, started by chain/dev-chain on a free port."""

from collections.abc import Iterator

import pytest

from tests.utils.devchain import DevChain, start_dev_chain


@pytest.fixture(scope="session")
def dev_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevChain]:
    chain = start_dev_chain(tmp_path_factory.mktemp("chain"))
    yield chain
    chain.stop()
