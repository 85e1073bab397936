"""Errors of the hardware layer.

NvmlError                 an NVML call failed in a way the inventory cannot work around
 ├── NvmlUnavailable      no NVIDIA driver: the library or its kernel module is missing
 ├── NvmlFunctionMissing  the driver's library lacks a function the inventory calls
 └── SimulationError      simulated GPUs were asked for but cannot be set up
"""

from __future__ import annotations

__all__ = ["NvmlError", "NvmlFunctionMissing", "NvmlUnavailable", "SimulationError"]


class NvmlError(RuntimeError):
    """An NVML call failed; the message names the call and NVML's reason."""


class NvmlUnavailable(NvmlError):
    """There is no usable NVIDIA driver on this machine."""


class NvmlFunctionMissing(NvmlError):
    """libnvidia-ml.so.1 does not export a function the inventory needs (driver too old)."""

    def __init__(self, function: str) -> None:
        super().__init__(
            f"libnvidia-ml.so.1 has no {function}: the NVIDIA driver is older than this agent "
            "supports; upgrade the driver (R525 or newer)"
        )
        self.function = function


class SimulationError(NvmlError):
    """The simulated NVML library could not be built, loaded or configured."""
