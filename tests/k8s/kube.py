"""Small helpers for tests against the Kubernetes test cluster: bounded waits and namespaces."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from services.devstack.cluster import RealNodeSpec

__all__ = [
    "REAL_NODE",
    "create_namespace",
    "describe_namespace",
    "processes_mentioning",
    "wait_for",
]

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


def describe_namespace(core: Any, namespace: str) -> str:
    """What `kubectl describe pods` and `kubectl get events` would show of `namespace`, through
    the API: each pod's phase, conditions and container states, the last lines of each
    container's log, and the namespace's events (oldest first). For failure messages: it never
    raises (an unreadable part says why instead)."""
    lines: list[str] = []
    try:
        pods = core.list_namespaced_pod(namespace).items
    except ApiException as e:
        return f"pods of {namespace}: {e.status} {e.reason}"
    for pod in pods:
        status = pod.status
        lines.append(f"pod {pod.metadata.name}: {status.phase} on {pod.spec.node_name}")
        for c in status.conditions or []:
            lines.append(f"  {c.type}={c.status} {c.reason or ''} {c.message or ''}".rstrip())
        for cs in status.container_statuses or []:
            lines.append(f"  container {cs.name}: ready={cs.ready} restarts={cs.restart_count}")
            lines.append(f"    state: {cs.state}")
            if cs.last_state and (cs.last_state.terminated or cs.last_state.waiting):
                lines.append(f"    last state: {cs.last_state}")
            for previous in (False, True):
                try:
                    log = core.read_namespaced_pod_log(
                        pod.metadata.name, namespace, container=cs.name, tail_lines=20,
                        previous=previous,
                    )  # fmt: skip
                except ApiException as e:
                    log = f"({e.status} {e.reason})"
                if log or not previous:
                    lines.append(f"    log{' (previous)' if previous else ''}: {log!r}")
    try:
        events = core.list_namespaced_event(namespace).items
    except ApiException as e:
        return "\n".join([*lines, f"events: {e.status} {e.reason}"])
    events.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
    for event in events:
        obj = event.involved_object
        lines.append(
            f"event {obj.kind}/{obj.name}: {event.type} {event.reason}: {event.message}"
            f" (x{event.count or 1})"
        )
    return "\n".join(lines) or f"nothing in {namespace}"
