"""The podman command line, with the global flags these hosts need, and JSON output parsed."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_GLOBAL_ARGS", "PodmanCli", "PodmanError"]

# runc with cgroupfs: crun refuses hybrid cgroups and there is no systemd to manage cgroups on
# the hosts we test on (see shared/research/containers.md). A containers.conf could carry the
# same; flags keep the node independent of host-wide files.
DEFAULT_GLOBAL_ARGS: tuple[str, ...] = ("--runtime", "runc", "--cgroup-manager", "cgroupfs")


class PodmanError(RuntimeError):
    """podman exited non-zero; carries the command and its stderr."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"podman {' '.join(args)} failed (exit {returncode}): {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class PodmanCli:
    binary: str = "podman"
    global_args: tuple[str, ...] = DEFAULT_GLOBAL_ARGS
    timeout_s: float = 300.0

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *self.global_args, *args],
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )

    def run_checked(self, args: Sequence[str]) -> str:
        proc = self.run(args)
        if proc.returncode != 0:
            raise PodmanError(args, proc.returncode, proc.stderr)
        return proc.stdout

    def run_json(self, args: Sequence[str]) -> Any:
        out = self.run_checked(args)
        return json.loads(out) if out.strip() else []

    def image_label(self, image: str, label: str) -> str | None:
        """The value of `label` on `image`, or None when the image or label is absent."""
        proc = self.run(["image", "inspect", image])
        if proc.returncode != 0:
            return None
        info = json.loads(proc.stdout)
        labels = (info[0].get("Config") or {}).get("Labels") or {}
        value = labels.get(label)
        return str(value) if value is not None else None
