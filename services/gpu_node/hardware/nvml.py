"""Read the GPUs through NVML (nvidia-ml-py) into a raw capture, mapping NVML's errors to ours.

Every call goes through the real bindings; with simulation enabled (see `simulation.py`) the
library behind them is our stand-in, so this module has one code path for both.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pynvml

from services.gpu_node.hardware.errors import NvmlError, NvmlFunctionMissing, NvmlUnavailable
from services.gpu_node.hardware.model import Inventory, parse_inventory

__all__ = ["capture", "loaded_library_is_simulated", "nvml_session", "read_inventory"]

T = TypeVar("T")
log = logging.getLogger(__name__)

NO_DRIVER_HINT = (
    "Install the NVIDIA driver, or start the node with simulated GPUs "
    "(--simulate-gpus h100:8) for development."
)


@contextmanager
def nvml_session() -> Iterator[None]:
    """nvmlInit ... nvmlShutdown, with a missing driver reported as NvmlUnavailable."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound as exc:
        raise NvmlUnavailable(
            f"No NVIDIA driver: libnvidia-ml.so.1 could not be loaded. {NO_DRIVER_HINT}"
        ) from exc
    except pynvml.NVMLError_DriverNotLoaded as exc:
        raise NvmlUnavailable(
            f"NVIDIA driver library found but its kernel module is not loaded. {NO_DRIVER_HINT}"
        ) from exc
    except pynvml.NVMLError_FunctionNotFound as exc:
        raise NvmlFunctionMissing("nvmlInitWithFlags") from exc
    except pynvml.NVMLError as exc:
        raise NvmlError(f"nvmlInit failed: {exc}") from exc
    try:
        yield
    finally:
        pynvml.nvmlShutdown()


def _call(name: str, fn: Callable[..., T], *args: Any, optional: bool = False) -> T | None:
    """Call one binding; NOT_SUPPORTED gives None for optional fields, other errors raise."""
    try:
        return fn(*args)
    except pynvml.NVMLError_FunctionNotFound as exc:
        raise NvmlFunctionMissing(name) from exc
    except pynvml.NVMLError_NotSupported as exc:
        if optional:
            return None
        raise NvmlError(f"{name} is not supported on this GPU, and the node needs it") from exc
    except pynvml.NVMLError as exc:
        raise NvmlError(f"{name} failed: {exc}") from exc


def _required(name: str, fn: Callable[..., T], *args: Any) -> T:
    value = _call(name, fn, *args)
    assert value is not None  # _call returns None only for optional fields
    return value


def _device(handle: Any) -> dict[str, Any]:
    memory = _required("nvmlDeviceGetMemoryInfo", pynvml.nvmlDeviceGetMemoryInfo, handle)
    pci = _required("nvmlDeviceGetPciInfo_v3", pynvml.nvmlDeviceGetPciInfo_v3, handle)
    cc = _call(
        "nvmlDeviceGetCudaComputeCapability",
        pynvml.nvmlDeviceGetCudaComputeCapability,
        handle,
        optional=True,
    )
    util = _call(
        "nvmlDeviceGetUtilizationRates",
        pynvml.nvmlDeviceGetUtilizationRates,
        handle,
        optional=True,
    )
    # Boards without row remapping (before Ampere's HBM boards) answer NOT_SUPPORTED.
    remapped = _call(
        "nvmlDeviceGetRemappedRows", pynvml.nvmlDeviceGetRemappedRows, handle, optional=True
    )
    return {
        "nvmlDeviceGetName": _required("nvmlDeviceGetName", pynvml.nvmlDeviceGetName, handle),
        "nvmlDeviceGetUUID": _required("nvmlDeviceGetUUID", pynvml.nvmlDeviceGetUUID, handle),
        "nvmlDeviceGetMemoryInfo": {
            "total": memory.total,
            "free": memory.free,
            "used": memory.used,
        },
        "nvmlDeviceGetPciInfo_v3": {
            "busId": pci.busId.decode() if isinstance(pci.busId, bytes) else pci.busId,
            "pciDeviceId": pci.pciDeviceId,
            "pciSubSystemId": pci.pciSubSystemId,
        },
        "nvmlDeviceGetCudaComputeCapability": None if cc is None else list(cc),
        "nvmlDeviceGetUtilizationRates": (
            None if util is None else {"gpu": util.gpu, "memory": util.memory}
        ),
        # The unversioned call: nvmlDeviceGetTemperatureV only exists in recent drivers.
        "nvmlDeviceGetTemperature": _call(
            "nvmlDeviceGetTemperature",
            pynvml.nvmlDeviceGetTemperature,
            handle,
            pynvml.NVML_TEMPERATURE_GPU,
            optional=True,
        ),
        "nvmlDeviceGetPowerUsage": _call(
            "nvmlDeviceGetPowerUsage", pynvml.nvmlDeviceGetPowerUsage, handle, optional=True
        ),
        "nvmlDeviceGetEnforcedPowerLimit": _call(
            "nvmlDeviceGetEnforcedPowerLimit",
            pynvml.nvmlDeviceGetEnforcedPowerLimit,
            handle,
            optional=True,
        ),
        "nvmlDeviceGetMigMode": _call(
            "nvmlDeviceGetMigMode", pynvml.nvmlDeviceGetMigMode, handle, optional=True
        ),
        # Uncorrectable errors in the volatile counter (since the driver last loaded or the
        # GPU was reset); NOT_SUPPORTED where ECC is off or absent.
        "nvmlDeviceGetTotalEccErrors": _call(
            "nvmlDeviceGetTotalEccErrors",
            pynvml.nvmlDeviceGetTotalEccErrors,
            handle,
            pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            pynvml.NVML_VOLATILE_ECC,
            optional=True,
        ),
        "nvmlDeviceGetRemappedRows": (
            None
            if remapped is None
            else dict(
                zip(("corrRows", "uncRows", "isPending", "failureOccurred"), remapped, strict=True)
            )
        ),
    }


def _device_or_error(index: int) -> dict[str, Any]:
    """One GPU's raw reading, or `{"nvmlError": reason}` when NVML cannot read that GPU.

    Any NVML error on one device (GPU_IS_LOST, UNKNOWN, a required field NOT_SUPPORTED, ...)
    makes only that device unusable; the machine's other GPUs are still read. A function the
    driver lacks is the driver's fault, not the board's, so NvmlFunctionMissing still raises.
    """
    try:
        handle = _required(
            "nvmlDeviceGetHandleByIndex_v2", pynvml.nvmlDeviceGetHandleByIndex, index
        )
        return _device(handle)
    except NvmlFunctionMissing:
        raise
    except NvmlError as exc:
        log.warning("NVML cannot read GPU %d: %s", index, exc)
        return {"nvmlError": str(exc)}


def loaded_library_is_simulated() -> bool:
    """Whether the libnvidia-ml.so.1 this process resolves is our simulated stand-in.

    dlopen of the same soname returns the handle already loaded, so this sees exactly the
    library pynvml uses. Call it inside an nvml_session (the library is loaded then).
    """
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return hasattr(lib, "gridlease_nvml_sim")


def capture() -> dict[str, Any]:
    """One raw reading of the driver and every GPU, in the format `parse_inventory` reads."""
    with nvml_session():
        count = _required("nvmlDeviceGetCount_v2", pynvml.nvmlDeviceGetCount)
        return {
            "nvmlSystemGetDriverVersion": _required(
                "nvmlSystemGetDriverVersion", pynvml.nvmlSystemGetDriverVersion
            ),
            "nvmlSystemGetCudaDriverVersion_v2": _required(
                "nvmlSystemGetCudaDriverVersion_v2", pynvml.nvmlSystemGetCudaDriverVersion_v2
            ),
            "simulated": loaded_library_is_simulated(),
            "devices": [_device_or_error(i) for i in range(count)],
        }


def read_inventory() -> Inventory:
    return parse_inventory(capture())
