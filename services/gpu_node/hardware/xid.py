"""XID errors through NVML's event API: a thread waits on an event set registered for
XID critical errors on every GPU and keeps, per GPU UUID, the last XID and a count per XID.

XIDs are events, not readings: NVML tells them once, to the event sets registered when they
happen, so the watcher runs for the life of the agent (nvmlInit is reference counted; its
session does not disturb the inventory's). A GPU whose driver cannot deliver XID events
(NOT_SUPPORTED) is left out and logged; a driver without the event API stops the watcher with
one log line, and the metrics then say nothing about XIDs rather than a false 0.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pynvml

from services.gpu_node.hardware.nvml import nvml_session

__all__ = ["GpuXids", "XidWatcher"]

log = logging.getLogger(__name__)


@dataclass
class GpuXids:
    """One GPU's XIDs since the watcher started: the last one (0: none) and a count per XID."""

    last: int = 0
    counts: Counter[int] = field(default_factory=Counter)


class XidWatcher:
    """Waits for XID events in a daemon thread (`start`/`stop`); `snapshot()` is what it saw.

    `watching()` is False until the event set is registered and after the watcher gave up, so
    callers can tell "no XID" from "XIDs unknown"."""

    def __init__(self, wait_ms: int = 1000) -> None:
        self._wait_ms = wait_ms
        self._lock = threading.Lock()
        self._gpus: dict[str, GpuXids] = {}
        self._watching = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registered = threading.Event()
        # Device handle (its address) -> UUID, from registration: a board that fell off the bus
        # (XID 79) may no longer answer nvmlDeviceGetUUID, and its XID must still count.
        self._uuid_of: dict[int | None, str] = {}

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the thread and wait (at most timeout_s) until its event set is registered."""
        self._thread = threading.Thread(target=self._run, name="xid-watcher", daemon=True)
        self._thread.start()
        self._registered.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._wait_ms / 1000 + 5)

    def watching(self) -> bool:
        with self._lock:
            return self._watching

    def snapshot(self) -> dict[str, GpuXids]:
        """Per GPU UUID watched: its XIDs so far (copies)."""
        with self._lock:
            return {
                uuid: GpuXids(gpu.last, Counter(gpu.counts)) for uuid, gpu in self._gpus.items()
            }

    def record(self, uuid: str, xid: int) -> None:
        with self._lock:
            gpu = self._gpus.setdefault(uuid, GpuXids())
            gpu.last = xid
            gpu.counts[xid] += 1
        log.warning("GPU %s: XID %d", uuid, xid)

    def _run(self) -> None:
        try:
            with nvml_session():
                event_set = pynvml.nvmlEventSetCreate()
                try:
                    self._register(event_set)
                    self._loop(event_set)
                finally:
                    pynvml.nvmlEventSetFree(event_set)
        except Exception as exc:  # noqa: BLE001 - the agent runs on without XIDs
            log.warning("XID watcher stopped; XID metrics are off: %s", exc)
        finally:
            with self._lock:
                self._watching = False
            self._registered.set()

    def _register(self, event_set: Any) -> None:
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                uuid = str(pynvml.nvmlDeviceGetUUID(handle))
                pynvml.nvmlDeviceRegisterEvents(
                    handle, pynvml.nvmlEventTypeXidCriticalError, event_set
                )
                self._uuid_of[_address(handle)] = uuid
            except pynvml.NVMLError_FunctionNotFound:
                raise
            except pynvml.NVMLError as exc:
                log.warning("GPU %d: no XID events (%s)", index, exc)
                continue
            with self._lock:
                self._gpus.setdefault(uuid, GpuXids())
        with self._lock:
            self._watching = True
        self._registered.set()

    def _loop(self, event_set: Any) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                data = pynvml.nvmlEventSetWait_v2(event_set, self._wait_ms)
                uuid = None
                if data.eventType & pynvml.nvmlEventTypeXidCriticalError:
                    uuid = self._uuid_of.get(_address(data.device))
                    if uuid is None:
                        uuid = str(pynvml.nvmlDeviceGetUUID(data.device))
            except pynvml.NVMLError_Timeout:
                failing = False
                continue
            except pynvml.NVMLError_FunctionNotFound:
                raise
            except pynvml.NVMLError as exc:
                # A GPU that fell off the bus may fail the wait; it is reported by the
                # inventory. Log the first of a run of failures, pause, go on.
                if not failing:
                    log.warning("XID wait failed: %s", exc)
                failing = True
                self._stop.wait(self._wait_ms / 1000)
                continue
            failing = False
            if uuid is not None:
                self.record(uuid, int(data.eventData))


def _address(handle: Any) -> int | None:
    """The address an NVML device handle points at: equal for equal devices."""
    return ctypes.cast(handle, ctypes.c_void_p).value
