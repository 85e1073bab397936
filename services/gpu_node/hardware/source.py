"""Where the node's inventory comes from: the real driver, or simulated GPUs asked for by name.

There is no fallback between the two. Without a driver and without `--simulate-gpus` the node
stops; a simulated library found where a real one was expected is refused too.
"""

from __future__ import annotations

from collections.abc import Callable

from services.gpu_node.hardware.errors import NvmlError
from services.gpu_node.hardware.model import Inventory
from services.gpu_node.hardware.nvml import read_inventory
from services.gpu_node.hardware.simulation import SimSpec, enable_simulation

__all__ = ["open_inventory"]


def open_inventory(simulate: SimSpec | None) -> Callable[[], Inventory]:
    """Prepare NVML (simulated only if `simulate` is given), read once, return the reader.

    The first read happens here so a machine without a driver fails at startup, with
    NvmlUnavailable's message, rather than at the first scrape or lease.
    """
    if simulate is not None:
        enable_simulation(simulate)

    def read() -> Inventory:
        inventory = read_inventory()
        if inventory.simulated and simulate is None:
            raise NvmlError(
                "libnvidia-ml.so.1 here is Gridlease's SIMULATED stand-in (LD_LIBRARY_PATH?); "
                "remove it, or ask for simulation explicitly with --simulate-gpus"
            )
        return inventory

    read()
    return read
