"""Helpers and factories shared by the GPU node tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from services.common import MachineResources
from services.gpu_node.desired import DesiredWorkloads
from services.gpu_node.gpus import GpuSet, build_gpu_set
from services.gpu_node.hardware.model import GpuDevice, Inventory
from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.store import NodeStore

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
SIM_ENV_KEYS = (
    "GRIDLEASE_SIM_GPUS",
    "GRIDLEASE_SIM_SEED",
    "GRIDLEASE_SIM_UNSUPPORTED",
    "GRIDLEASE_SIM_UTILIZATION",
    "GRIDLEASE_SIM_ABSENT",
    "GRIDLEASE_SIM_LOST",
    "GRIDLEASE_SIM_MIG",
    "GRIDLEASE_SIM_XID",
    "GRIDLEASE_SIM_ECC",
    "GRIDLEASE_SIM_REMAP",
    "GRIDLEASE_SIM_FAULT_FILE",
)
# A real ed25519 public key (of a fixed, published test seed: never authorise it anywhere); the
# tests that log in generate their own key pair.
SAMPLE_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA/YoadV/E3/AmhRVgdn0qULqXkEtLwBNRdNViOJa+1j "
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


def make_gpu(index: int, uuid: str | None = None, name: str = "NVIDIA H100 80GB HBM3",
             mig: bool | None = False) -> GpuDevice:  # fmt: skip
    """A readable GPU as NVML would report it (index = NVML index)."""
    return GpuDevice(index, uuid or f"GPU-{index}", name, 80 << 30, f"0000:{index:02x}:00.0",
                     "9.0", mig, 700.0, 0, 0, 30, 70.0)  # fmt: skip


def make_inventory(count: int = 4, **fields: Any) -> Inventory:
    gpus = tuple(make_gpu(i) for i in range(count))
    return Inventory("550", "12.4", gpus, simulated=True, **fields)


def make_gpu_set(store: NodeStore, count: int = 4) -> GpuSet:
    """`count` H100s GPU-0.. on slots 0.. (recorded in `store`'s slot table)."""
    return build_gpu_set(make_inventory(count), store, "NVIDIA H100 80GB HBM3")


# A host whose share per GPU (of 4) is 2 CPUs and 8 GiB.
HOST = MachineResources(cpu_millicores=8000, memory_mib=32768)
PORTS = (41000, 41999)


def make_desired(store: NodeStore, gpus: GpuSet, host: MachineResources = HOST) -> DesiredWorkloads:
    return DesiredWorkloads(store, lambda: gpus, host, PORTS, lambda port: True)
