"""Validation of the desired workload before any runtime builds it."""

from __future__ import annotations

from typing import Any

import pytest

from services.gpu_node.runtime.base import WorkloadInvalid, WorkloadRuntime
from services.gpu_node.runtime.podman import GpuAttach, PodmanConfig, PodmanRuntime

from .utils import make_workload


def test_validate_accepts_factory_workload() -> None:
    make_workload().validate()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lease_id": -1}, "lease_id"),
        ({"lease_id": 2**64}, "lease_id"),
        ({"gpu_uuids": ("GPU-a",)}, "pair up"),
        ({"gpu_indices": (0, 0), "gpu_uuids": ("GPU-a", "GPU-b")}, "duplicates"),
        ({"image": "Bad Image"}, "image"),
        ({"ssh_public_key": "not a key"}, "ssh_public_key"),
        ({"ssh_public_key": "ssh-ed25519 AAAA\nssh-rsa BBBB"}, "ssh_public_key"),
        ({"env": {"BAD-NAME": "x"}}, "env name"),
        ({"ports": (8080, 8080)}, "duplicates"),
        ({"ports": (2222,)}, "reserved"),
        ({"ports": (70000,)}, "out of range"),
        ({"memory_mib": 1}, "minimum"),
        # Whole-string rules: `$` would let a final newline through, and the runtime fail later.
        ({"image": "localhost/gridlease-sshd:1\n"}, "image"),
        ({"image": "Docker.io/Library/Ubuntu:22.04"}, "lowercase"),
        ({"env": {"MODEL\n": "x"}}, "env name"),
        ({"ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBadKeyBadKeyBadKey x"}, "parse"),
    ],
)
def test_validate_rejects_broken_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(WorkloadInvalid, match=field):
        make_workload(**overrides).validate()


def test_podman_runtime_satisfies_protocol() -> None:
    runtime = PodmanRuntime(PodmanConfig(gpu_attach=GpuAttach.SIMULATED))
    assert isinstance(runtime, WorkloadRuntime)
