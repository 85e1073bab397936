"""The lease's namespace, named from the machine and the lease id and labelled with both, so a
restarted node finds it again and no other machine's agent takes it for its own.

Pod Security: `baseline`, the strictest level the lease image runs under, not `restricted`.
sshd's privilege separation needs SETUID, SETGID and SYS_CHROOT (the Podman backend adds the same
three, images.SSHD_CAPABILITIES) and runs as root; `restricted` allows adding only
NET_BIND_SERVICE and requires runAsNonRoot. Running sshd as a non-root user would pass
`restricted`, but then the customer logs in without root inside their container (no apt-get, no
driver tools), which is the product.
`baseline` still forbids privileged pods, host namespaces, hostPath and capabilities outside the
default set; `audit`/`warn` at restricted report how far a workload is from it.
"""

from __future__ import annotations

from kubernetes.client import V1Namespace, V1ObjectMeta

from services.gpu_node import labels
from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.kubernetes.builders.common import (
    BuildConfig,
    namespace_name,
    object_labels,
)

__all__ = ["build_namespace"]

PSA = "pod-security.kubernetes.io"


def build_namespace(workload: LeaseWorkload, config: BuildConfig) -> V1Namespace:
    return V1Namespace(
        api_version="v1",
        kind="Namespace",
        metadata=V1ObjectMeta(
            name=namespace_name(config, workload.lease_id),
            labels={
                **object_labels(workload, config),
                f"{PSA}/enforce": config.pod_security_level,
                f"{PSA}/enforce-version": "latest",
                f"{PSA}/audit": "restricted",
                f"{PSA}/warn": "restricted",
            },
            annotations={labels.MACHINE_ID: config.machine.lower().removeprefix("0x")},
        ),
    )
