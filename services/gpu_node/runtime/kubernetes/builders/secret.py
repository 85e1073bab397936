"""The customer's SSH public key as a Secret, mounted read-only into the workload."""

from __future__ import annotations

import base64

from kubernetes.client import V1Secret

from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.kubernetes.builders.common import (
    SSH_SECRET_KEY,
    SSH_SECRET_NAME,
    BuildConfig,
    lease_metadata,
)

__all__ = ["build_ssh_secret"]


def build_ssh_secret(workload: LeaseWorkload, config: BuildConfig) -> V1Secret:
    key = workload.ssh_public_key.strip() + "\n"
    return V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=lease_metadata(workload, config, SSH_SECRET_NAME),
        type="Opaque",
        # `data`, not `string_data`: the API returns `data`, so a re-apply compares like with like.
        data={SSH_SECRET_KEY: base64.b64encode(key.encode()).decode()},
    )
