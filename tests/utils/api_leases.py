"""Lease request bodies for API tests."""

from __future__ import annotations

from typing import Any

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0k7n5oQ0v1b5GqGf3n1m3yWq3m0w8n6mB7pQx1c2dE t@x"


def lease_body(machine_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "machine_id": machine_id,
        "gpus": 1,
        "duration_blocks": 100,
        "image": "docker.io/library/python:3.12",
        "command": ["python", "-m", "http.server", "8080"],
        "ports": [8080],
        "ssh_public_key": SSH_KEY,
        "env": {"MODE": "test"},
    }
    body.update(overrides)
    return body
