"""The desired workload of a lease: its accepted spec, on the boards of its chain GPU slots, within
its share of the machine, on the host ports allocated to it.

- GPUs: the chain assigns slots (bits of the lease's `gpu_mask`); GpuSet maps them to boards
  by UUID. A slot this machine cannot run now is WorkloadInvalid, never another board.
- CPU and memory: a lease of g of the machine's n offered GPUs gets at most g/n of the host's
  CPU and memory (services.common.lease_share), whatever its spec asks; a spec asking less gets
  what it asks. Limits never go below the runtime's minimums (a machine with many GPUs and a
  small CPU would otherwise hand out limits sshd cannot start with).
- Ports: allocated once per lease in the store, so a workload re-created after a crash or a
  node restart keeps its SSH port. On Kubernetes (no `port_range`) the API server allocates each
  node port once; the executor records it, and the workload then asks for the recorded ones.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common import MachineResources, get_logger, lease_share
from services.gpu_node.gpus import GpuSet
from services.gpu_node.runtime.base import (
    MIN_CPU_MILLICORES,
    MIN_MEMORY_MIB,
    LeaseWorkload,
    WorkloadInvalid,
)
from services.gpu_node.runtime.images import SSHD_CONTAINER_PORT
from services.gpu_node.spec import WorkloadSpec, to_workload
from services.gpu_node.store import NodeStore

__all__ = ["DesiredWorkloads", "bound_to_share", "host_resources", "tcp_port_free"]

log = get_logger(__name__)


def host_resources(meminfo: Path = Path("/proc/meminfo")) -> MachineResources:
    """CPU (millicores of the CPUs this process may run on) and memory (MiB) of this host."""
    cpus = len(os.sched_getaffinity(0))
    memory_kib = 0
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
            break
    return MachineResources(cpu_millicores=cpus * 1000, memory_mib=memory_kib // 1024)


def bound_to_share(workload: LeaseWorkload, share: MachineResources) -> LeaseWorkload:
    """`workload` with CPU and memory limits at most `share` (and at least the minimums)."""
    cpu = max(MIN_CPU_MILLICORES, min(workload.cpu_millicores, share.cpu_millicores))
    memory = max(MIN_MEMORY_MIB, min(workload.memory_mib, share.memory_mib))
    if (cpu, memory) != (workload.cpu_millicores, workload.memory_mib):
        log.info(
            "node.workload_bounded",
            extra={
                "lease_id": workload.lease_id,
                "cpu_millicores": [workload.cpu_millicores, cpu],
                "memory_mib": [workload.memory_mib, memory],
            },
        )
    return dataclasses.replace(workload, cpu_millicores=cpu, memory_mib=memory)


def tcp_port_free(host: str) -> Callable[[int], bool]:
    """A check that `host:port` can be bound now (nothing else listens there)."""

    def free(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
        return True

    return free


@dataclass(frozen=True)
class DesiredWorkloads:
    """Builds LeaseWorkloads for the executor.

    `gpus` returns the machine's current GpuSet; `machine` is the host's CPU and memory;
    `port_range` (inclusive) is where lease host ports come from, None when the runtime
    allocates them (Kubernetes: only recorded ports are asked for); `port_free` says whether
    another process holds a port (always True on Kubernetes, where the cluster checks) and
    `ports_published` which ports the container runtime already publishes (read only when a
    port must be allocated).
    """

    store: NodeStore
    gpus: Callable[[], GpuSet]
    machine: MachineResources
    port_range: tuple[int, int] | None
    port_free: Callable[[int], bool]
    ports_published: Callable[[], frozenset[int]] = frozenset

    def build(
        self, lease_id: int, document: Mapping[str, Any], slots: Sequence[int]
    ) -> LeaseWorkload:
        """The lease's workload; WorkloadInvalid when its slots are not all usable here,
        PortsExhausted when no host port is left."""
        spec = WorkloadSpec.model_validate(dict(document))
        gpu_set = self.gpus()
        try:
            uuids = gpu_set.uuids(slots)
        except KeyError as exc:
            raise WorkloadInvalid(
                f"lease {lease_id} holds GPU slots {list(slots)}, usable here: "
                f"{sorted(gpu_set.slots)}"
            ) from exc
        base = to_workload(spec, lease_id, ())
        share = lease_share(self.machine, len(slots), gpu_set.count)
        published = functools.cache(self.ports_published)

        def free(port: int) -> bool:
            return port not in published() and self.port_free(port)

        wanted = (SSHD_CONTAINER_PORT, *base.ports)
        if self.port_range is None:
            recorded = self.store.recorded_host_ports(lease_id)
            ports: Mapping[int, int] = {p: recorded[p] for p in wanted if p in recorded}
        else:
            ports = self.store.host_ports(lease_id, wanted, self.port_range, free)
        placed = dataclasses.replace(
            base, gpu_indices=tuple(slots), gpu_uuids=uuids, host_ports=dict(ports)
        )
        return bound_to_share(placed, share)
