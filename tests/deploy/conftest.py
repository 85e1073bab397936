"""Fixtures of the deployment tests: Helm (built from its Go module and cached by
deploy/helm/build-helm.sh; warm in a second, a few minutes cold)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def helm() -> Path:
    built = subprocess.run(
        ["bash", str(REPO / "deploy" / "helm" / "build-helm.sh")],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return Path(built.stdout.strip().splitlines()[-1])
