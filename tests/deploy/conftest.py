"""Fixtures of the deployment tests: Helm (tests.utils.helm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.utils.helm import built_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    return built_helm()
