"""A customer's SSH login to a lease, as tests make it: a new key, `ssh` with it (no prompts, no
known-hosts file), and a bounded retry while sshd or the path to it is not up yet. Needs
openssh-client."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

__all__ = ["new_ssh_key", "ssh", "ssh_when_ready"]


def new_ssh_key(path: Path) -> Path:
    """Writes a new ed25519 key pair at `path` (private) and `path`.pub; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def ssh(key: Path, endpoint: str, command: str) -> subprocess.CompletedProcess[str]:
    """`ssh -i key -p PORT root@HOST command` for `endpoint` "HOST:PORT"; exit status 255 when
    ssh itself failed (refused, unreachable, authentication)."""
    host, port = endpoint.rsplit(":", 1)
    return subprocess.run(
        [
            "ssh",
            "-i", str(key),
            "-p", port,
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=5",
            f"root@{host}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip


def ssh_when_ready(
    key: Path, endpoint: str, command: str, attempts: int = 30
) -> subprocess.CompletedProcess[str]:
    """`ssh`, retried (every 0.5 s, `attempts` times) while ssh itself fails (exit 255: sshd
    still making host keys, a NodePort rule not written yet). Returns the last attempt."""
    proc = ssh(key, endpoint, command)
    for _ in range(attempts - 1):
        if proc.returncode != 255:
            break
        time.sleep(0.5)
        proc = ssh(key, endpoint, command)
    return proc
