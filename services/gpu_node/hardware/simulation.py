"""SIMULATED GPUs for machines without an NVIDIA driver, chosen explicitly (`--simulate-gpus`).

Our C stand-in for libnvidia-ml.so.1 (nvml_sim/libnvidia-ml-sim.c) is compiled with the system
`cc` into a cache outside the clone and loaded by full path before nvmlInit. Its soname is
libnvidia-ml.so.1, and the dynamic loader answers a later dlopen of that soname (pynvml's
`CDLL("libnvidia-ml.so.1")`) with the library already loaded, so the unmodified bindings run
against it. A child process gets the same by LD_LIBRARY_PATH=`library.parent`.

Faults are fixed at nvmlInit (`SimSpec`), except through a fault file: with
GRIDLEASE_SIM_FAULT_FILE naming a file in the environment of the process that loads the
stand-in, `write_fault_file` injects lost boards, uncorrectable ECC errors, failed row
remapping and XIDs into a process that is already running (the stand-in reads the file again
whenever it changes; see the C source).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path

from services.gpu_node.hardware.errors import SimulationError

__all__ = [
    "FAULT_FILE_ENV",
    "PROFILES",
    "SimSpec",
    "SimVariant",
    "build_sim_library",
    "enable_simulation",
    "parse_faults",
    "parse_xids",
    "sim_cache_dir",
    "sim_library_path",
    "simulation_env",
    "write_fault_file",
]

# Must match PROFILES in libnvidia-ml-sim.c.
PROFILES = ("h100", "a100", "l40s", "t4", "rtx4090")
MIG_CAPABLE = frozenset({"h100", "a100"})
# Hardware faults the stand-in can inject, each naming board positions (see the C source).
FAULTS = ("absent", "lost", "mig", "ecc", "remap")
# Faults a fault file can inject into a running process: the others change enumeration.
RUNTIME_FAULTS = ("lost", "ecc", "remap")
# Must match the profiles' ecc / row_remap flags in libnvidia-ml-sim.c.
ECC_CAPABLE = frozenset({"h100", "a100", "l40s", "t4"})
REMAP_CAPABLE = frozenset({"h100", "a100"})
_CAPABLE = {
    "mig": ("MIG mode", MIG_CAPABLE),
    "ecc": ("ECC", ECC_CAPABLE),
    "remap": ("row remapping", REMAP_CAPABLE),
}
FAULT_FILE_ENV = "GRIDLEASE_SIM_FAULT_FILE"
UNSUPPORTABLE_FIELDS = (
    "utilization",
    "temperature",
    "power",
    "power_limit",
    "mig",
    "compute_capability",
    "ecc",
    "remapped_rows",
)
# Matched whole with fullmatch: `$` would accept a trailing newline.
_PART = re.compile(r"([a-z0-9]+):([1-9][0-9]*)")
_FAULT = re.compile(r"([a-z]+)=([0-9]+(?:,[0-9]+)*)")
_XID = re.compile(r"xid=([0-9]+:[1-9][0-9]*(?:,[0-9]+:[1-9][0-9]*)*)")
MAX_SIM_GPUS = 64
MAX_SIM_XIDS = 64  # MAX_XIDS in the C source: the variable's and the fault file's together


class SimVariant(Enum):
    """Builds of the stand-in; each lives in its own cache directory. The value is the compiler
    flag that makes the variant ("" for none). Not a tuple of flags: Python 3.11.2 (Debian
    bookworm's, the images') turns a member whose value is an empty tuple into `object()`."""

    FULL = ""
    # Lacks nvmlDeviceGetMigMode, like a driver too old for the bindings.
    NO_MIG_MODE = "-DSIM_OMIT_MIG_MODE"

    @property
    def flags(self) -> list[str]:
        return [self.value] if self.value else []


@dataclass(frozen=True)
class SimSpec:
    """Which GPUs to simulate, e.g. `SimSpec.parse("h100:8")` or `"a100:2,t4:1"`, and which
    hardware faults to inject (board positions count from 0 over `groups` in order):

    absent   boards gone from the bus; later boards move down one NVML index
    lost     boards enumerated but answering NVML_ERROR_GPU_IS_LOST to every query
    mig      boards in MIG mode (MIG-capable profiles only)
    ecc      boards with an uncorrectable ECC error (volatile count 1; profiles with ECC)
    remap    boards whose row remapping failed (h100, a100)
    xid      XID errors as (position, xid) pairs, delivered once to each NVML event set
    """

    groups: tuple[tuple[str, int], ...]
    seed: str = ""
    unsupported: tuple[str, ...] = ()
    utilization_pct: int = 0
    absent: tuple[int, ...] = ()
    lost: tuple[int, ...] = ()
    mig: tuple[int, ...] = ()
    xid: tuple[tuple[int, int], ...] = ()
    ecc: tuple[int, ...] = ()
    remap: tuple[int, ...] = ()

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        seed: str = "",
        unsupported: Iterable[str] = (),
        utilization_pct: int = 0,
        faults: str = "",
    ) -> SimSpec:
        """`faults` is `parse_faults` text, e.g. "lost=3" or "absent=7;mig=0,1;xid=2:79"."""
        groups: list[tuple[str, int]] = []
        for part in text.split(","):
            match = _PART.fullmatch(part.strip().lower())
            if not match or match.group(1) not in PROFILES:
                raise SimulationError(
                    f"bad simulated GPU spec {part!r}: expected PROFILE:COUNT with PROFILE one "
                    f"of {', '.join(PROFILES)} (e.g. h100:8)"
                )
            groups.append((match.group(1), int(match.group(2))))
        if sum(n for _, n in groups) > MAX_SIM_GPUS:
            raise SimulationError(f"at most {MAX_SIM_GPUS} simulated GPUs")
        fields = tuple(unsupported)
        for field in fields:
            if field not in UNSUPPORTABLE_FIELDS:
                raise SimulationError(f"unknown field {field!r} for GRIDLEASE_SIM_UNSUPPORTED")
        if not 0 <= utilization_pct <= 100:
            raise SimulationError("simulated utilisation must be 0..100")
        chosen = parse_faults(faults)
        profiles = [profile for profile, count in groups for _ in range(count)]
        for kind, positions in chosen.items():
            for position in positions:
                if position >= len(profiles):
                    raise SimulationError(
                        f"{kind}={position}: only {len(profiles)} simulated GPUs (positions "
                        f"0..{len(profiles) - 1})"
                    )
                if kind in _CAPABLE and profiles[position] not in _CAPABLE[kind][1]:
                    what, capable = _CAPABLE[kind]
                    raise SimulationError(
                        f"{kind}={position}: {profiles[position]} has no {what} (only "
                        f"{', '.join(sorted(capable))})"
                    )
        xids = parse_xids(faults)
        for position, _ in xids:
            if position >= len(profiles):
                raise SimulationError(
                    f"xid={position}:...: only {len(profiles)} simulated GPUs (positions "
                    f"0..{len(profiles) - 1})"
                )
        return cls(
            tuple(groups),
            seed,
            fields,
            utilization_pct,
            absent=chosen.get("absent", ()),
            lost=chosen.get("lost", ()),
            mig=chosen.get("mig", ()),
            xid=xids,
            ecc=chosen.get("ecc", ()),
            remap=chosen.get("remap", ()),
        )

    def text(self) -> str:
        return ",".join(f"{profile}:{count}" for profile, count in self.groups)


def parse_faults(text: str) -> dict[str, tuple[int, ...]]:
    """Fault text to positions: `lost=3;absent=5,6` (or space-separated) gives
    {"lost": (3,), "absent": (5, 6)}; SimulationError names a malformed part."""
    found: dict[str, tuple[int, ...]] = {}
    for part in re.split(r"[;\s]+", text.strip()):
        if not part or _XID.fullmatch(part):
            continue
        match = _FAULT.fullmatch(part)
        if not match or match.group(1) not in FAULTS:
            raise SimulationError(
                f"bad simulated fault {part!r}: expected KIND=POSITION[,POSITION...] with KIND "
                f"one of {', '.join(FAULTS)} (e.g. lost=3), or xid=POSITION:XID[,...] "
                "(e.g. xid=2:79)"
            )
        if match.group(1) in found:
            raise SimulationError(f"simulated fault {match.group(1)!r} given twice")
        found[match.group(1)] = tuple(sorted({int(n) for n in match.group(2).split(",")}))
    return found


def parse_xids(text: str) -> tuple[tuple[int, int], ...]:
    """The `xid=POSITION:XID[,...]` part of fault text as (position, xid) pairs, in order
    ("xid=1:79,1:48;lost=3" gives ((1, 79), (1, 48))); other parts are parse_faults'."""
    parts = [p for p in re.split(r"[;\s]+", text.strip()) if p.startswith("xid=")]
    if len(parts) > 1:
        raise SimulationError("simulated fault 'xid' given twice")
    pairs: list[tuple[int, int]] = []
    for part in parts:
        match = _XID.fullmatch(part)
        if not match:
            raise SimulationError(
                f"bad simulated XID {part!r}: expected xid=POSITION:XID[,POSITION:XID...] "
                "(e.g. xid=2:79)"
            )
        for pair in match.group(1).split(","):
            position, xid = pair.split(":")
            pairs.append((int(position), int(xid)))
    return tuple(pairs)


def sim_cache_dir() -> Path:
    """Where the compiled stand-ins are: GRIDLEASE_NVML_SIM_DIR (the GPU node image ships them
    there, built by deploy/images/build-images.sh: it has no compiler and a read-only root),
    else the user's cache."""
    shipped = os.environ.get("GRIDLEASE_NVML_SIM_DIR")
    if shipped:
        return Path(shipped)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gridlease" / "nvml-sim"


def _source() -> bytes:
    return (resources.files("services.gpu_node") / "nvml_sim" / "libnvidia-ml-sim.c").read_bytes()


def sim_library_path(variant: SimVariant = SimVariant.FULL) -> Path:
    """Where the stand-in of this source and variant is (or will be) compiled to."""
    key = hashlib.sha256(_source() + "\0".join(variant.flags).encode()).hexdigest()[:16]
    return sim_cache_dir() / f"{variant.name.lower()}-{key}" / "libnvidia-ml.so.1"


def build_sim_library(variant: SimVariant = SimVariant.FULL) -> Path:
    """Compile the stand-in (once per source and variant) and return its path."""
    source = _source()
    flags = variant.flags
    library = sim_library_path(variant)
    out_dir = library.parent
    if library.exists():
        return library
    compiler = shutil.which("cc")
    if compiler is None:
        raise SimulationError("simulated GPUs need a C compiler: apt-get install -y gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / "libnvidia-ml-sim.c"
    src.write_bytes(source)
    partial = out_dir / "libnvidia-ml.so.1.partial"
    proc = subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-O2",
            "-fvisibility=hidden",
            "-pthread",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,-soname,libnvidia-ml.so.1",
            *flags,
            "-o",
            str(partial),
            str(src),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SimulationError(f"compiling the simulated NVML failed: {proc.stderr.strip()}")
    # Rename last, so a concurrent or interrupted build never leaves a half-written library.
    partial.replace(library)
    return library


def simulation_env(spec: SimSpec) -> dict[str, str]:
    """The environment the stand-in reads at nvmlInit."""
    return {
        "GRIDLEASE_SIM_GPUS": spec.text(),
        "GRIDLEASE_SIM_SEED": spec.seed,
        "GRIDLEASE_SIM_UNSUPPORTED": ",".join(spec.unsupported),
        "GRIDLEASE_SIM_UTILIZATION": str(spec.utilization_pct),
        # Always set, empty included, so a fault of an earlier configuration does not linger.
        "GRIDLEASE_SIM_ABSENT": ",".join(map(str, spec.absent)),
        "GRIDLEASE_SIM_LOST": ",".join(map(str, spec.lost)),
        "GRIDLEASE_SIM_MIG": ",".join(map(str, spec.mig)),
        "GRIDLEASE_SIM_XID": ",".join(f"{position}:{xid}" for position, xid in spec.xid),
        "GRIDLEASE_SIM_ECC": ",".join(map(str, spec.ecc)),
        "GRIDLEASE_SIM_REMAP": ",".join(map(str, spec.remap)),
    }


def write_fault_file(path: Path, spec: SimSpec, faults: str) -> None:
    """Inject `faults` ("lost=3;ecc=1;remap=0;xid=2:79,2:13") into the processes whose stand-in
    reads `path` (GRIDLEASE_SIM_FAULT_FILE), replacing the file's earlier faults.

    Checked against `spec` as `SimSpec.parse` checks faults; only kinds in RUNTIME_FAULTS and
    xid (absent and mig change enumeration, fixed at nvmlInit). XIDs are events: keep the
    earlier ones in front and append (each is delivered once, by its place in the list). The
    file is replaced atomically, so a reader never sees half of it. SimulationError names a
    bad part.
    """
    SimSpec.parse(spec.text(), faults=faults)
    if len(spec.xid) + len(parse_xids(faults)) > MAX_SIM_XIDS:
        raise SimulationError(f"at most {MAX_SIM_XIDS} simulated XIDs in all")
    fixed = sorted(set(parse_faults(faults)) - set(RUNTIME_FAULTS))
    if fixed:
        raise SimulationError(
            f"{', '.join(fixed)} cannot change at run time (only {', '.join(RUNTIME_FAULTS)} "
            "and xid)"
        )
    partial = path.with_name(path.name + ".partial")
    partial.write_text(faults.strip() + "\n")
    partial.replace(path)


def enable_simulation(spec: SimSpec, variant: SimVariant = SimVariant.FULL) -> Path:
    """Make this process's NVML the simulated one, configured by `spec`.

    Must run before any nvmlInit; a process that already loaded the real library keeps it
    (the loader would hand that one to pynvml), so that case is refused.
    """
    library = build_sim_library(variant)
    # os.environ writes through to the C environment, where the stand-in's getenv reads it.
    os.environ.update(simulation_env(spec))
    ctypes.CDLL(str(library))  # stays mapped for the life of the process
    resolved = ctypes.CDLL("libnvidia-ml.so.1")
    if not hasattr(resolved, "gridlease_nvml_sim"):
        raise SimulationError(
            "this process already loaded NVIDIA's libnvidia-ml.so.1; simulation must be "
            "enabled before the first NVML call"
        )
    marker = resolved.gridlease_nvml_sim
    marker.restype = ctypes.c_char_p
    loaded_variant = marker().decode()
    if loaded_variant != variant.name.lower():
        raise SimulationError(
            f"this process already loaded the {loaded_variant!r} build of the simulated NVML; "
            f"the {variant.name.lower()!r} build needs a new process"
        )
    return library
