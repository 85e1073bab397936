"""Free loopback ports for test processes (the OS picks them). The helper lives in
services.devstack.processes, which the services' own process handling (the dev cluster) uses."""

from __future__ import annotations

from services.devstack.processes import free_port, free_ports

__all__ = ["free_port", "free_ports"]
