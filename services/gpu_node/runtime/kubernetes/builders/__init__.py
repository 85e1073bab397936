"""One module per object kind; each returns the desired `kubernetes.client` object, no I/O.

Builders assume a validated LeaseWorkload (`LeaseWorkload.validate()` runs before building).
"""

from services.gpu_node.runtime.kubernetes.builders.common import (
    NETWORK_POLICY_NAME,
    OBJECT_NAMES,
    QUOTA_NAME,
    SSH_SECRET_NAME,
    WORKLOAD_NAME,
    BuildConfig,
    namespace_name,
    object_labels,
    selector_labels,
)
from services.gpu_node.runtime.kubernetes.builders.deployment import build_deployment
from services.gpu_node.runtime.kubernetes.builders.namespace import build_namespace
from services.gpu_node.runtime.kubernetes.builders.network_policy import build_network_policy
from services.gpu_node.runtime.kubernetes.builders.resource_quota import build_resource_quota
from services.gpu_node.runtime.kubernetes.builders.secret import build_ssh_secret
from services.gpu_node.runtime.kubernetes.builders.service import build_service

__all__ = [
    "NETWORK_POLICY_NAME",
    "OBJECT_NAMES",
    "QUOTA_NAME",
    "SSH_SECRET_NAME",
    "WORKLOAD_NAME",
    "BuildConfig",
    "build_deployment",
    "build_namespace",
    "build_network_policy",
    "build_resource_quota",
    "build_service",
    "build_ssh_secret",
    "namespace_name",
    "object_labels",
    "selector_labels",
]
