"""Fixtures for the GPU node tests: SIMULATED NVML in this process, workloads, SSH keys, and
for the agent tests a chain client on the session's dev chain and a seed per module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from services.common._chain import ChainClient
from services.gpu_node.hardware.simulation import SimSpec, enable_simulation
from tests.seed.harness import SeedProcess
from tests.utils.devchain import DevChain

from .utils import SIM_ENV_KEYS


@pytest.fixture(scope="module")
def chain(dev_chain: DevChain) -> Iterator[ChainClient]:
    client = dev_chain.client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedProcess]:
    process = SeedProcess(tmp_path_factory.mktemp("seed")).start()
    yield process
    process.stop()


@pytest.fixture
def simulate() -> Iterator[object]:
    """Call with a SimSpec to point this process's NVML at the simulated library.

    The stand-in reads its configuration at every nvmlInit, so each test may configure it
    anew; the environment is restored afterwards.
    """
    saved = {k: os.environ.get(k) for k in SIM_ENV_KEYS}

    def _enable(spec: SimSpec) -> None:
        enable_simulation(spec)

    yield _enable
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
