"""What the node knows about its GPUs, and how it is read from a raw NVML capture.

A raw capture is a JSON-able dict keyed by the NVML function that produced each value (see
`services.gpu_node.hardware.nvml.capture`); a field NVML answered NOT_SUPPORTED for is None. A
GPU that could not be read at all (NVML's GPU_IS_LOST, ...) is `{"nvmlError": "<reason>"}` in
`devices`: one broken board is a fact about that board, not a failed reading of the machine.
Keeping capture and parsing apart lets a capture from a real machine serve as a test fixture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FailedGpu", "GpuDevice", "Inventory", "parse_inventory"]


@dataclass(frozen=True)
class GpuDevice:
    """One GPU: identity and capacity (static) plus the live readings of one capture.

    `ecc_uncorrected` is NVML's volatile uncorrectable ECC count (errors since the driver
    loaded or the GPU was reset), `row_remap_failed` nvmlDeviceGetRemappedRows' failureOccurred;
    None where the board cannot tell (no ECC, no row remapping, or an older capture)."""

    index: int
    uuid: str
    name: str
    memory_total_bytes: int
    pci_bus_id: str
    compute_capability: str | None
    mig_enabled: bool | None
    power_limit_w: float | None
    utilization_pct: int | None
    memory_used_bytes: int | None
    temperature_c: int | None
    power_w: float | None
    ecc_uncorrected: int | None = None
    row_remap_failed: bool | None = None


@dataclass(frozen=True)
class FailedGpu:
    """A GPU NVML enumerates but cannot read: `index` is its NVML index, `error` NVML's reason
    (e.g. "GPU is lost"). Its UUID is unknown: that is one of the reads that failed."""

    index: int
    error: str


@dataclass(frozen=True)
class Inventory:
    """One reading of the machine. `gpus` are the GPUs that answered, `failed` those NVML
    enumerated but could not read; together they cover every NVML index once."""

    driver_version: str
    cuda_version: str
    gpus: tuple[GpuDevice, ...]
    simulated: bool
    failed: tuple[FailedGpu, ...] = ()

    def by_uuid(self, uuid: str) -> GpuDevice:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise KeyError(f"no GPU with UUID {uuid}")


def _cuda_version(raw: int) -> str:
    # NVML encodes CUDA 12.4 as 12040 (1000 * major + 10 * minor).
    return f"{raw // 1000}.{raw % 1000 // 10}"


def _milliwatts(value: Any) -> float | None:
    return None if value is None else int(value) / 1000.0


def _device(index: int, raw: Mapping[str, Any]) -> GpuDevice:
    memory = raw["nvmlDeviceGetMemoryInfo"]
    cc = raw.get("nvmlDeviceGetCudaComputeCapability")
    util = raw.get("nvmlDeviceGetUtilizationRates")
    mig = raw.get("nvmlDeviceGetMigMode")
    temperature = raw.get("nvmlDeviceGetTemperature")
    ecc = raw.get("nvmlDeviceGetTotalEccErrors")
    remapped = raw.get("nvmlDeviceGetRemappedRows")
    return GpuDevice(
        index=index,
        uuid=str(raw["nvmlDeviceGetUUID"]),
        name=str(raw["nvmlDeviceGetName"]),
        memory_total_bytes=int(memory["total"]),
        pci_bus_id=str(raw["nvmlDeviceGetPciInfo_v3"]["busId"]),
        compute_capability=None if cc is None else f"{int(cc[0])}.{int(cc[1])}",
        # MIG mode is [current, pending]; the current one decides what a lease can get now.
        mig_enabled=None if mig is None else bool(mig[0]),
        power_limit_w=_milliwatts(raw.get("nvmlDeviceGetEnforcedPowerLimit")),
        utilization_pct=None if util is None else int(util["gpu"]),
        memory_used_bytes=int(memory["used"]),
        temperature_c=None if temperature is None else int(temperature),
        power_w=_milliwatts(raw.get("nvmlDeviceGetPowerUsage")),
        ecc_uncorrected=None if ecc is None else int(ecc),
        row_remap_failed=None if remapped is None else bool(remapped["failureOccurred"]),
    )


def parse_inventory(raw: Mapping[str, Any]) -> Inventory:
    """Build an Inventory from a raw capture (live from NVML or loaded from a fixture)."""
    devices = raw["devices"]
    return Inventory(
        driver_version=str(raw["nvmlSystemGetDriverVersion"]),
        cuda_version=_cuda_version(int(raw["nvmlSystemGetCudaDriverVersion_v2"])),
        gpus=tuple(_device(i, d) for i, d in enumerate(devices) if "nvmlError" not in d),
        simulated=bool(raw.get("simulated", False)),
        failed=tuple(
            FailedGpu(i, str(d["nvmlError"])) for i, d in enumerate(devices) if "nvmlError" in d
        ),
    )
