"""Helm for tests: built from its Go module and cached by deploy/helm/build-helm.sh (warm in a
second, a few minutes cold)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from services.devstack.processes import REPO

__all__ = ["CHART", "built_helm"]

CHART = REPO / "deploy" / "helm" / "gridlease"


def built_helm() -> Path:
    """The helm binary, built first if the cache is cold. AssertionError with the build's output
    if the build fails."""
    built = subprocess.run(
        ["bash", str(REPO / "deploy" / "helm" / "build-helm.sh")],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return Path(built.stdout.strip().splitlines()[-1])
