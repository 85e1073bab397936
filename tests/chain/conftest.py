from collections.abc import Iterator

import pytest

from tests.utils.devchain import DevChain, start_dev_chain


@pytest.fixture(scope="module")
def dev_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevChain]:
    chain = start_dev_chain(tmp_path_factory.mktemp("chain"))
    yield chain
    chain.stop()
