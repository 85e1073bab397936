"""Helpers and factories shared by the GPU node tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from services.gpu_node.runtime.base import LeaseWorkload

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
SIM_ENV_KEYS = (
    "GRIDLEASE_SIM_GPUS",
    "GRIDLEASE_SIM_SEED",
    "GRIDLEASE_SIM_UNSUPPORTED",
    "GRIDLEASE_SIM_UTILIZATION",
)
# A well-formed key line; the tests that log in generate their own key pair.
SAMPLE_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGridleaseTestKeyNotForUseAAAAAAAAAAAAAAAAAAA "
    "test@gridlease"
)


def run_python(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the venv's Python in a fresh process (NVML state is per process)."""
    clean = {k: v for k, v in os.environ.items() if k not in SIM_ENV_KEYS}
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def make_workload(**overrides: Any) -> LeaseWorkload:
    """A valid two-GPU workload; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "lease_id": 42,
        "gpu_indices": (0, 1),
        "gpu_uuids": (
            "GPU-aaaaaaaa-0000-0000-0000-000000000000",
            "GPU-bbbbbbbb-0000-0000-0000-000000000000",
        ),
        "image": "localhost/gridlease-sshd:1",
        "ssh_public_key": SAMPLE_SSH_KEY,
        "command": ("sleep", "infinity"),
        "env": {"MODEL": "llama", "HF_HOME": "/data/hf"},
        "ports": (8080, 8888),
        "cpu_millicores": 1500,
        "memory_mib": 2048,
    }
    fields.update(overrides)
    return LeaseWorkload(**fields)
