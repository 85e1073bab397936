"""The workload runtime interface: what the reconcile loop asks of Podman or Kubernetes.

Runtimes are level-triggered: `apply` makes the actual workload match the desired one (and does
nothing when it already does), `list` reports what actually runs, found by lease label so a
restarted node recovers its leases from the runtime itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

__all__ = [
    "LeaseWorkload",
    "WorkloadRuntimeError",
    "WorkloadInvalid",
    "WorkloadNotFound",
    "WorkloadPhase",
    "WorkloadRuntime",
    "WorkloadStatus",
]

# What we accept for env names and SSH keys: enough for real use, nothing a shell or YAML
# consumer could misread.
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) "
    r"[A-Za-z0-9+/=]+( [^\n\r]*)?$"
)
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$")
# Ports the node itself uses inside every lease (sshd); a lease cannot publish them again.
RESERVED_CONTAINER_PORTS = frozenset({2222})


class WorkloadRuntimeError(Exception):
    """Base of the errors a workload runtime raises."""


class WorkloadInvalid(WorkloadRuntimeError):
    """The desired workload breaks a rule; the message names the field."""


class WorkloadNotFound(WorkloadRuntimeError):
    """No workload of that lease exists in the runtime."""


class WorkloadPhase(Enum):
    PENDING = "pending"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class LeaseWorkload:
    """The desired workload of one lease, as the node derives it from the verified spec."""

    lease_id: int
    gpu_indices: tuple[int, ...]
    gpu_uuids: tuple[str, ...]
    image: str
    ssh_public_key: str
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()
    cpu_millicores: int = 1000
    memory_mib: int = 1024
    pids_limit: int = 4096

    def validate(self) -> None:
        """Raise WorkloadInvalid on the first broken rule; builders assume a valid workload."""
        if self.lease_id < 0 or self.lease_id >= 2**64:
            raise WorkloadInvalid("lease_id must be a u64")
        if len(self.gpu_indices) != len(self.gpu_uuids):
            raise WorkloadInvalid("gpu_indices and gpu_uuids must pair up")
        if len(set(self.gpu_indices)) != len(self.gpu_indices):
            raise WorkloadInvalid("gpu_indices has duplicates")
        if not _IMAGE.match(self.image):
            raise WorkloadInvalid("image is not a valid image reference")
        if not _SSH_KEY.match(self.ssh_public_key.strip()):
            raise WorkloadInvalid("ssh_public_key is not an OpenSSH public key line")
        for name in self.env:
            if not _ENV_NAME.match(name):
                raise WorkloadInvalid(f"env name {name!r} is not a valid variable name")
        if len(set(self.ports)) != len(self.ports):
            raise WorkloadInvalid("ports has duplicates")
        for port in self.ports:
            if not 1 <= port <= 65535 or port in RESERVED_CONTAINER_PORTS:
                raise WorkloadInvalid(f"port {port} is out of range or reserved")
        if self.cpu_millicores < 100 or self.memory_mib < 64 or self.pids_limit < 64:
            raise WorkloadInvalid("cpu, memory or pids limit is below the minimum")


@dataclass(frozen=True)
class WorkloadStatus:
    """What the runtime reports about one lease's workload."""

    lease_id: int
    phase: WorkloadPhase
    # container port -> "host:port" where it is reachable (SSH included, under 2222).
    endpoints: Mapping[int, str] = field(default_factory=dict)
    gpu_uuids: tuple[str, ...] = ()
    message: str = ""


@runtime_checkable
class WorkloadRuntime(Protocol):
    """A place where lease workloads run: one container or one namespace per lease."""

    def apply(self, workload: LeaseWorkload) -> WorkloadStatus:
        """Create the workload, or bring it in line with `workload`; idempotent."""
        ...

    def delete(self, lease_id: int) -> None:
        """Remove everything of the lease; deleting an absent lease is not an error."""
        ...

    def list(self) -> Sequence[WorkloadStatus]:
        """Every lease workload present in the runtime, found by its lease label."""
        ...

    def status(self, lease_id: int) -> WorkloadStatus:
        """The lease's workload; raises WorkloadNotFound when there is none."""
        ...
