"""GPU inventory through NVML, and the explicitly chosen simulated NVML for GPU-less machines."""

from services.gpu_node.hardware.errors import (
    NvmlError,
    NvmlFunctionMissing,
    NvmlUnavailable,
    SimulationError,
)
from services.gpu_node.hardware.model import GpuDevice, Inventory, parse_inventory
from services.gpu_node.hardware.nvml import capture, read_inventory
from services.gpu_node.hardware.simulation import SimSpec, SimVariant, enable_simulation

__all__ = [
    "GpuDevice",
    "Inventory",
    "NvmlError",
    "NvmlFunctionMissing",
    "NvmlUnavailable",
    "SimSpec",
    "SimVariant",
    "SimulationError",
    "capture",
    "enable_simulation",
    "parse_inventory",
    "read_inventory",
]
