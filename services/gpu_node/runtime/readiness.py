"""Is a workload's SSH endpoint serving yet? A container counts as up (and its lease is started
on chain, so pay accrues) only once sshd answers with its banner, not merely once the process
runs: otherwise the customer is sent to a port that resets the connection."""

from __future__ import annotations

import socket

__all__ = ["SSH_READY_GRACE_S", "ssh_banner_ok"]

# An image without sshd never sends a banner; after this long running, it counts as up anyway.
SSH_READY_GRACE_S = 20.0


def ssh_banner_ok(endpoint: str, timeout: float = 1.0) -> bool:
    """True if `host:port` accepts a connection and sends an SSH identification line."""
    host, _, port = endpoint.rpartition(":")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(8).startswith(b"SSH-")
    except (OSError, ValueError):
        return False
