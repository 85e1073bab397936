"""Fixtures that start real seed processes and always end them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import SeedProcess, start_mesh


@pytest.fixture
def spawn_mesh(tmp_path: Path) -> Iterator[Callable[..., list[SeedProcess]]]:
    """spawn_mesh(n, **kwargs) starts n peered seeds; all are killed at teardown."""
    started: list[SeedProcess] = []

    def spawn(count: int, **kwargs: Any) -> list[SeedProcess]:
        seeds = start_mesh(tmp_path, count, **kwargs)
        started.extend(seeds)
        return seeds

    yield spawn
    for seed in started:
        seed.kill()
