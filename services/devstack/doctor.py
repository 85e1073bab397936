"""`gridlease doctor`: what is installed, what is built and cached, whether each cached build
matches this checkout, and what a cold `dev up` would still build.

Each cache is judged the way its builder keys it:
- runtime wasm: cargo's own freshness, approximated by time: the dev chain's wasm
  (<cache>/dev-wasm-target, chain/scripts/build.sh) is newer than every chain source and
  Cargo.lock;
- dev chain spec (<cache>/devchain/gridlease-dev.json): newer than the wasm it was written from;
- Chopsticks (<cache>/chopsticks): its package-lock.json equals chain/devchain's (the `cmp` of
  chain/scripts/setup-toolchain.sh), and sqlite3's native module is built (chain/dev-chain);
- SSH workload image: the rootfs tar named by ImageRecipe().digest() (services.gpu_node.runtime
  .images) exists;
- NVML stand-in: the library named by sha256(source + flags) (services.gpu_node.hardware
  .simulation.build_sim_library) exists;
- test-cluster binaries and Helm: their build scripts' own `--check` (a stamp keyed by
  versions.env and go.mod/go.sum; helm's reported version).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.devstack.processes import REPO

__all__ = [
    "Cache",
    "Tool",
    "caches",
    "cold_start_caches",
    "dev_wasm",
    "main_report",
    "register",
    "tools",
]

# (name, command printing the version, what needs it)
_TOOLS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("podman", ("podman", "--version"), "lease containers (dev up)"),
    ("runc", ("runc", "--version"), "podman's OCI runtime"),
    ("crun", ("crun", "--version"), "podman's OCI runtime (alternative to runc)"),
    ("ssh", ("ssh", "-V"), "logging in to leases"),
    ("ssh-keygen", ("ssh-keygen", "-?"), "making an SSH key for leases"),
    ("gcc", ("gcc", "--version"), "the NVML stand-in, sqlite3 for Chopsticks"),
    ("go", ("go", "version"), "test-cluster binaries and Helm"),
    ("cargo", ("cargo", "--version"), "the chain runtime"),
    ("rustup", ("rustup", "--version"), "the wasm target (optional: Debian's rustc works)"),
    ("node", ("node", "--version"), "Chopsticks (the cache brings its own Node 22)"),
    ("npm", ("npm", "--version"), "installing Chopsticks once"),
    ("debootstrap", ("debootstrap", "--version"), "building the SSH workload image once"),
    ("prometheus", ("prometheus", "--version"), "the dashboards' tests"),
)


@dataclass(frozen=True)
class Tool:
    name: str
    path: str | None
    version: str | None
    needed_for: str


@dataclass(frozen=True)
class Cache:
    name: str
    path: str
    state: str  # "matches checkout" | "stale" | "missing"
    detail: str
    cold_start: bool  # does `dev up` need it
    build_time: str  # roughly, when missing or stale


def _version(cmd: tuple[str, ...]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0][:80] if lines else None


def tools() -> list[Tool]:
    found = []
    for name, cmd, needed in _TOOLS:
        path = shutil.which(name)
        found.append(Tool(name, path, _version(cmd) if path else None, needed))
    return found


def cache_root() -> Path:
    return Path(os.environ.get("GRIDLEASE_CACHE") or Path.home() / ".cache" / "gridlease")


def _xdg_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gridlease"


def _newest_source(paths: list[Path]) -> float:
    newest = 0.0
    for root in paths:
        files = [root] if root.is_file() else root.rglob("*")
        for f in files:
            if f.is_file() and (f.suffix in (".rs", ".toml", ".lock") or f.name == "Cargo.lock"):
                newest = max(newest, f.stat().st_mtime)
    return newest


def dev_wasm(cache: Path | None = None) -> Path:
    """The dev chain's runtime wasm that chain/scripts/build.sh writes (DEV_WASM of
    chain/scripts/env.sh), under `cache` (default: $GRIDLEASE_CACHE or ~/.cache/gridlease)."""
    root = cache or Path(os.environ.get("GRIDLEASE_CACHE") or Path.home() / ".cache" / "gridlease")
    return root / "dev-wasm-target" / "wasm32v1-none" / "release" / "gridlease_runtime.wasm"


def _chain_caches(root: Path) -> list[Cache]:
    # chain/scripts/build.sh: the wasm only, no native runtime.
    target = root / "dev-wasm-target"
    wasms = [w for w in [dev_wasm(root)] if w.exists()]
    sources = _newest_source([
        REPO / "chain" / "runtime", REPO / "chain" / "pallets", REPO / "chain" / "Cargo.lock",
    ])  # fmt: skip
    out = []
    if not wasms:
        out.append(Cache(
            "runtime wasm", str(target), "missing", "not built", True,
            "about 4-5 min on 2 cores (~250 crates)",
        ))  # fmt: skip
        wasm_time = None
    else:
        wasm = wasms[-1]
        wasm_time = wasm.stat().st_mtime
        fresh = wasm_time >= sources
        out.append(Cache(
            "runtime wasm", str(wasm), "matches checkout" if fresh else "stale",
            "newer than chain sources" if fresh else "chain sources changed since the build",
            True, "minutes (incremental)",
        ))  # fmt: skip
    spec = root / "devchain" / "gridlease-dev.json"
    if not spec.exists():
        out.append(Cache("dev chain spec", str(spec), "missing", "not written", True, "seconds"))
    else:
        # By content, not by time: a build that rewrites the same wasm leaves the spec current.
        fresh = wasm_time is not None and _spec_holds(spec, wasms[-1])
        out.append(Cache(
            "dev chain spec", str(spec), "matches checkout" if fresh else "stale",
            "genesis code is the built wasm" if fresh else "genesis code differs (or no wasm)",
            True, "seconds after the wasm",
        ))  # fmt: skip
    chop = root / "chopsticks"
    lock = REPO / "chain" / "devchain" / "package-lock.json"
    cached_lock = chop / "package-lock.json"
    if not (chop / "node_modules").is_dir():
        out.append(Cache("Chopsticks", str(chop), "missing", "npm ci not run", True, "1-2 min"))
    else:
        same = (
            cached_lock.exists() and lock.exists() and cached_lock.read_bytes() == lock.read_bytes()
        )
        out.append(Cache(
            "Chopsticks", str(chop), "matches checkout" if same else "stale",
            "package-lock.json as in chain/devchain" if same else "package-lock.json differs",
            True, "1-2 min",
        ))  # fmt: skip
        binding = chop / "node_modules" / "sqlite3" / "build" / "Release" / "node_sqlite3.node"
        out.append(Cache(
            "sqlite3 for Chopsticks", str(binding),
            "matches checkout" if binding.exists() else "missing",
            "built" if binding.exists() else "built on the first dev-chain start", True, "~3 min",
        ))  # fmt: skip
    return out


def _spec_holds(spec: Path, wasm: Path) -> bool:
    """Whether the raw chain spec's genesis code (storage key `:code`) is exactly `wasm`."""
    try:
        code = json.loads(spec.read_text())["genesis"]["raw"]["top"].get("0x3a636f6465")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(code) and bytes.fromhex(str(code).removeprefix("0x")) == wasm.read_bytes()


def _node_binary(root: Path) -> Cache:
    """The node (chain/scripts/build-node.sh): not needed by `dev up` (Chopsticks is the default
    dev chain), but by `dev up --chain node`, tests/chain_node and the three-validator e2e run."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or root / "cargo-target")
    binary = target / "debug" / "gridlease-node"
    build_time = "over an hour on 2 cores cold (about 1,000 crates); minutes after a change"
    if not binary.exists():
        return Cache("node (gridlease-node)", str(binary), "missing", "not built", False,
                     build_time)  # fmt: skip
    sources = _newest_source([REPO / "chain"])
    fresh = binary.stat().st_mtime >= sources
    return Cache(
        "node (gridlease-node)", str(binary), "matches checkout" if fresh else "stale",
        "newer than chain sources" if fresh else "chain sources changed since the build",
        False, build_time,
    )  # fmt: skip


def _sshd_image() -> Cache:
    from services.gpu_node.runtime.images import ImageRecipe

    tar = _xdg_cache() / "images" / f"gridlease-sshd-{ImageRecipe().digest()}.tar"
    if tar.exists():
        return Cache("SSH workload image", str(tar), "matches checkout", "recipe digest found",
                     True, "~1.5 min")  # fmt: skip
    others = sorted(tar.parent.glob("gridlease-sshd-*.tar")) if tar.parent.exists() else []
    state = "stale" if others else "missing"
    detail = "only other recipes' tars cached" if others else "not built"
    return Cache("SSH workload image", str(tar), state, detail, True, "~1.5 min")


def _nvml_sim() -> Cache:
    from services.gpu_node.hardware.simulation import sim_library_path

    lib = sim_library_path()
    if lib.exists():
        return Cache("NVML stand-in", str(lib), "matches checkout", "source hash found", True,
                     "seconds")  # fmt: skip
    others = list(lib.parent.parent.glob("full-*")) if lib.parent.parent.exists() else []
    state = "stale" if others else "missing"
    detail = "built from another source" if others else "not built"
    return Cache("NVML stand-in", str(lib), state, detail, True, "seconds")


def _script_check(name: str, script: Path, path: Path, build_time: str) -> Cache:
    try:
        proc = subprocess.run(
            ["bash", str(script), "--check"], capture_output=True, text=True, timeout=30,
            check=False, cwd=REPO,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Cache(name, str(path), "missing", f"cannot check: {exc}", False, build_time)
    said = (proc.stdout or proc.stderr).strip().splitlines()
    detail = said[-1][:80] if said else ""
    if proc.returncode == 0:
        return Cache(name, str(path), "matches checkout", detail, False, build_time)
    state = "stale" if path.exists() and any(path.iterdir()) else "missing"
    return Cache(name, str(path), state, detail or "a build is needed", False, build_time)


def cold_start_caches() -> list[Cache]:
    """The cached builds `dev up` needs, and whether each matches this checkout."""
    return [*_chain_caches(cache_root()), _sshd_image(), _nvml_sim()]


def caches() -> list[Cache]:
    root = cache_root()
    return [
        *cold_start_caches(),
        _node_binary(root),
        _script_check("test-cluster binaries", REPO / "deploy" / "testcluster" / "build.sh",
                      root / "k8s", "~10 min (k8s tests only)"),
        _script_check("Helm", REPO / "deploy" / "helm" / "build-helm.sh", root / "helm",
                      "~3 min (chart tests only)"),
    ]  # fmt: skip


def main_report() -> dict[str, object]:
    found = tools()
    cached = caches()
    return {
        "tools": [asdict(t) for t in found],
        "caches": [asdict(c) for c in cached],
        "cold_start_builds": [
            c.name for c in cached if c.cold_start and c.state != "matches checkout"
        ],
    }


def cmd_doctor(args: argparse.Namespace) -> int:
    report = main_report()
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return 0
    out = Console()
    t = Table(title="installed", title_justify="left")
    for col in ("tool", "version", "needed for"):
        t.add_column(col)
    for tool in report["tools"]:  # type: ignore[attr-defined]
        version = tool["version"] or ("found" if tool["path"] else "[red]missing[/red]")
        t.add_row(tool["name"], version, tool["needed_for"])
    out.print(t)
    c = Table(title=f"built and cached ({cache_root()})", title_justify="left")
    for col in ("build", "state", "detail", "dev up needs it", "builds in"):
        c.add_column(col)
    colour = {"matches checkout": "green", "stale": "yellow", "missing": "red"}
    for cache in report["caches"]:  # type: ignore[attr-defined]
        c.add_row(
            cache["name"],
            f"[{colour[cache['state']]}]{cache['state']}[/]",
            cache["detail"],
            "yes" if cache["cold_start"] else "no",
            cache["build_time"],
        )
    out.print(c)
    todo = report["cold_start_builds"]
    if todo:
        out.print(f"a cold `gridlease dev up` would still build: {', '.join(todo)}")  # type: ignore[arg-type]
    else:
        out.print("everything `gridlease dev up` needs is built and matches this checkout")
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    doctor = commands.add_parser(
        "doctor",
        help="what is installed and built, and what a cold start would still build",
        description="Checks the tools the stack uses, every cached build under "
        f"{cache_root()} and whether it matches this checkout, and lists what a cold "
        "`gridlease dev up` would still build. Builds nothing.",
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(func=cmd_doctor)
