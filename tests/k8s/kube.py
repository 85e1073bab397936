"""Small helpers for tests against the Kubernetes test cluster: bounded waits and namespaces."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from services.devstack.cluster import RealNodeSpec

__all__ = ["REAL_NODE", "create_namespace", "processes_mentioning", "wait_for"]

# The session cluster's kubelet node: 2 GPUs advertised as an extended resource (none is really
# there), with a model no fake node has, so selecting on it picks this node.
REAL_NODE = RealNodeSpec(name="real-0", gpus=2, product="NVIDIA-L40S", memory_mib=46068)

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Calls `probe` every 0.25 s until it returns something other than None/False, and returns
    that. `TimeoutError` naming `what` (and the last value seen) after `timeout` seconds: a
    bound against hanging, not a measurement."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(0.25)
    raise TimeoutError(f"{what}: not after {timeout:.0f} s (last: {last!r})")


def create_namespace(core: Any, name: str, labels: dict[str, str] | None = None) -> str:
    """Creates namespace `name` and waits until its `default` service account exists (pods are
    refused before that). Returns the name."""
    body = client.V1Namespace(
        metadata=client.V1ObjectMeta(name=name, labels={"gridlease.test": "true", **(labels or {})})
    )
    core.create_namespace(body)

    def default_sa() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    wait_for(f"service account default in {name}", default_sa)
    return name


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live (non-zombie) processes that contain `text`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(cmdline)
    return found
