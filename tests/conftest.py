"""Fixtures shared across the suite. The dev chain is one real chain per test session: Chopsticks
executing our runtime's wasm, started by chain/dev-chain on a free port."""

import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from services.gpu_node import labels
from tests.utils.devchain import DevChain, start_dev_chain


@pytest.fixture(scope="session")
def dev_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevChain]:
    chain = start_dev_chain(tmp_path_factory.mktemp("chain"))
    yield chain
    chain.stop()


@pytest.fixture(scope="session", autouse=True)
def _remove_lease_containers_left_by_this_session() -> Iterator[None]:
    """Lease containers outlive their node agent by design (a restarted agent adopts them), so
    tests that stop agents leave them running, holding host ports. Removed at the end of the
    session: those the session created, never older ones."""
    started = time.time() - 1
    yield
    if shutil.which("podman") is None:
        return
    listed = subprocess.run(
        ["podman", "ps", "--all", "--format", "json", "--filter",
         f"label={labels.MANAGED_BY}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if listed.returncode != 0:
        return
    ids = [str(e["Id"]) for e in json.loads(listed.stdout or "[]") if e["Created"] >= started]
    if ids:
        subprocess.run(["podman", "rm", "--force", "--time", "2", *ids], timeout=300, check=False)
