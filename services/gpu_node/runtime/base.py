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

from services.common import (
    ENV_NAME_PATTERN,
    MIN_CPU_MILLICORES,
    MIN_MEMORY_MIB,
    RESERVED_CONTAINER_PORTS,
    check_image,
    check_ssh_public_key,
)

__all__ = [
    "MIN_CPU_MILLICORES",
    "MIN_MEMORY_MIB",
    "NODE_ENV_PREFIX",
    "LeaseWorkload",
    "WorkloadRuntimeError",
    "WorkloadInvalid",
    "WorkloadNotFound",
    "WorkloadPhase",
    "WorkloadRuntime",
    "WorkloadStatus",
    "container_env",
]

# Image references, SSH key lines, env names, reserved ports and the smallest limits a workload
# runs with (below them sshd alone does not start reliably) are the workload spec's rules, in
# services.common._workload: what the API accepts is exactly what runs here.
# Variables the node sets in every lease (lease id, SSH key); a spec's env never overrides them.
# NVIDIA_* is the container runtime's (NVIDIA_VISIBLE_DEVICES=all would expose every GPU).
NODE_ENV_PREFIX = "GRIDLEASE_"
_RESERVED_ENV_PREFIXES = (NODE_ENV_PREFIX, "NVIDIA_")


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
    # Container port -> host port it is published on, sshd's included; allocated once per lease
    # (NodeStore.host_ports) so a re-created workload keeps its ports. Ports left out are
    # published wherever the runtime chooses.
    host_ports: Mapping[int, int] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise WorkloadInvalid on the first broken rule; builders assume a valid workload."""
        if self.lease_id < 0 or self.lease_id >= 2**64:
            raise WorkloadInvalid("lease_id must be a u64")
        if len(self.gpu_indices) != len(self.gpu_uuids):
            raise WorkloadInvalid("gpu_indices and gpu_uuids must pair up")
        if len(set(self.gpu_indices)) != len(self.gpu_indices):
            raise WorkloadInvalid("gpu_indices has duplicates")
        try:
            check_image(self.image)
            # Runtimes strip the key line (a key read from a file ends in a newline).
            check_ssh_public_key(self.ssh_public_key.strip())
        except ValueError as exc:
            raise WorkloadInvalid(str(exc)) from exc
        for name in self.env:
            if re.fullmatch(ENV_NAME_PATTERN, name) is None:
                raise WorkloadInvalid(f"env name {name!r} is not a valid variable name")
        if len(set(self.ports)) != len(self.ports):
            raise WorkloadInvalid("ports has duplicates")
        for port in self.ports:
            if not 1 <= port <= 65535 or port in RESERVED_CONTAINER_PORTS:
                raise WorkloadInvalid(f"port {port} is out of range or reserved")
        if (
            self.cpu_millicores < MIN_CPU_MILLICORES
            or self.memory_mib < MIN_MEMORY_MIB
            or self.pids_limit < 64
        ):
            raise WorkloadInvalid("cpu, memory or pids limit is below the minimum")
        exposed = {*RESERVED_CONTAINER_PORTS, *self.ports}
        for container_port, host_port in self.host_ports.items():
            if container_port not in exposed or not 1 <= host_port <= 65535:
                raise WorkloadInvalid(f"host port {host_port} for {container_port} is invalid")
        if len(set(self.host_ports.values())) != len(self.host_ports):
            raise WorkloadInvalid("host_ports has duplicates")


def container_env(workload: LeaseWorkload, node_env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The container's environment: the spec's variables, then the node's own.

    Spec variables with a reserved prefix (GRIDLEASE_*, NVIDIA_*; any case) are dropped rather
    than relied on to lose: whether the first or the last of two equal names wins differs
    between runtimes, and the node's values (lease id, SSH key, visible GPUs) must hold.
    """
    own = [
        (name, value)
        for name, value in sorted(workload.env.items())
        if not name.upper().startswith(_RESERVED_ENV_PREFIXES)
    ]
    return own + sorted(node_env.items())


@dataclass(frozen=True)
class WorkloadStatus:
    """What the runtime reports about one lease's workload."""

    lease_id: int
    phase: WorkloadPhase
    # container port -> "host:port" where it is reachable (SSH included, under 2222).
    endpoints: Mapping[int, str] = field(default_factory=dict)
    gpu_uuids: tuple[str, ...] = ()
    message: str = ""
    # What differs from the workload as last applied, e.g. ("service missing", "secret
    # changed"): the reconcile loop applies the lease again. Empty when the runtime keeps no
    # such record (Podman replaces a container whose hash differs at apply) or nothing differs.
    drift: tuple[str, ...] = ()
    # PENDING and waiting on something outside the runtime (Kubernetes: no node can hold the
    # pod; an image that cannot be pulled): it will not come up soon, so not worth watching
    # closely. `message` says what.
    blocked: bool = False


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
