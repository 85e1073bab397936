"""Apply the builders' objects to a cluster: one function per kind, writing only on a difference.

Each apply GETs the object. Absent: it is created. Present: the fields we own (our labels and
annotations, plus the kind's body such as `spec` or `data`) are compared with what the server
holds, ignoring what the server adds (defaults, status, other managers' labels); only on a
difference is it patched. Resource quantities are compared by value: the server rewrites them
in its canonical form (`1024Gi` comes back as `1Ti`, `1000` CPUs as `1k`), so comparing their
text would patch again at every reconcile. Both writes are server-side apply under one field
manager, so the server records exactly which fields are ours and drops those a later desired
object omits.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    CoreV1Api,
    NetworkingV1Api,
    V1Deployment,
    V1Namespace,
    V1NetworkPolicy,
    V1ObjectMeta,
    V1ResourceQuota,
    V1Secret,
    V1Service,
)
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from services.gpu_node import labels
from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.kubernetes.builders import (
    BuildConfig,
    build_deployment,
    build_namespace,
    build_network_policy,
    build_resource_quota,
    build_service,
    build_ssh_secret,
    namespace_name,
)

__all__ = [
    "FIELD_MANAGER",
    "KubeApis",
    "Outcome",
    "apply_deployment",
    "apply_lease",
    "apply_namespace",
    "apply_network_policy",
    "apply_resource_quota",
    "apply_secret",
    "apply_service",
    "cleanup_orphans",
    "delete_lease",
    "owned_fields_differ",
]

FIELD_MANAGER = "gridlease-gpu-node"
APPLY_PATCH = "application/apply-patch+yaml"
# Only its serializer is used (no requests), to compare objects as the API server spells them.
_SERIALIZER = ApiClient()


class Outcome(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class KubeApis:
    core: CoreV1Api
    apps: AppsV1Api
    networking: NetworkingV1Api


def _as_dict(obj: Any) -> dict[str, Any]:
    value = _SERIALIZER.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]  # unannotated
    assert isinstance(value, dict)
    return value


# Maps whose values are resource quantities: a container's `resources.limits`/`requests` and a
# ResourceQuota's `spec.hard`. Only there is "1k" the same as "1000" (an env value is text).
QUANTITY_MAPS = frozenset({"limits", "requests", "hard"})


def _quantity(value: Any) -> Decimal | None:
    if not isinstance(value, str | int):
        return None
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]  # unannotated upstream
    except ValueError:
        return None


def _same_quantity(desired: Any, actual: Any) -> bool:
    if desired == actual:
        return True
    want, have = _quantity(desired), _quantity(actual)
    return want is not None and want == have


def _contains(desired: Any, actual: Any, *, quantities: bool = False) -> bool:
    """Whether `actual` holds everything `desired` sets (extra keys in `actual` are fine).
    `quantities`: the values of this map are resource quantities, compared by value."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            _same_quantity(value, actual.get(key))
            if quantities
            else _contains(value, actual.get(key), quantities=key in QUANTITY_MAPS)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(_contains(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return bool(desired == actual)


def owned_fields_differ(desired: Any, existing: Any, body_fields: Collection[str]) -> bool:
    """Compare the fields we own: our labels/annotations and the named top-level fields."""
    want, have = _as_dict(desired), _as_dict(existing)
    want_meta, have_meta = want.get("metadata", {}), have.get("metadata", {})
    for key in ("labels", "annotations"):
        if not _contains(want_meta.get(key) or {}, have_meta.get(key) or {}):
            return True
    return any(not _contains(want.get(f), have.get(f)) for f in body_fields)


def _apply(
    desired: Any,
    body_fields: Collection[str],
    read: Callable[[], Any],
    server_side_apply: Callable[[dict[str, Any]], Any],
) -> Outcome:
    try:
        existing = read()
    except ApiException as exc:
        if exc.status != 404:
            raise
        server_side_apply(_as_dict(desired))
        return Outcome.CREATED
    if not owned_fields_differ(desired, existing, body_fields):
        return Outcome.UNCHANGED
    server_side_apply(_as_dict(desired))
    return Outcome.UPDATED


_SSA: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY_PATCH}


def _name(meta: V1ObjectMeta | None) -> str:
    """metadata.name of an object to apply (the builders always set it); ValueError if unset."""
    if meta is None or meta.name is None:
        raise ValueError("object to apply has no metadata.name")
    return meta.name


def _namespaced_name(meta: V1ObjectMeta | None) -> tuple[str, str]:
    """(metadata.name, metadata.namespace) of a namespaced object to apply; ValueError if unset."""
    if meta is None or meta.namespace is None:
        raise ValueError("object to apply has no metadata.namespace")
    return _name(meta), meta.namespace


def apply_namespace(apis: KubeApis, desired: V1Namespace) -> Outcome:
    name = _name(desired.metadata)
    return _apply(
        desired,
        (),
        lambda: apis.core.read_namespace(name),
        lambda body: apis.core.patch_namespace(name, body, **_SSA),
    )


def apply_secret(apis: KubeApis, desired: V1Secret) -> Outcome:
    name, ns = _namespaced_name(desired.metadata)
    return _apply(
        desired,
        ("data", "type"),
        lambda: apis.core.read_namespaced_secret(name, ns),
        lambda body: apis.core.patch_namespaced_secret(name, ns, body, **_SSA),
    )


def apply_resource_quota(apis: KubeApis, desired: V1ResourceQuota) -> Outcome:
    name, ns = _namespaced_name(desired.metadata)
    return _apply(
        desired,
        ("spec",),
        lambda: apis.core.read_namespaced_resource_quota(name, ns),
        lambda body: apis.core.patch_namespaced_resource_quota(name, ns, body, **_SSA),
    )


def apply_network_policy(apis: KubeApis, desired: V1NetworkPolicy) -> Outcome:
    name, ns = _namespaced_name(desired.metadata)
    return _apply(
        desired,
        ("spec",),
        lambda: apis.networking.read_namespaced_network_policy(name, ns),
        lambda body: apis.networking.patch_namespaced_network_policy(name, ns, body, **_SSA),
    )


def apply_deployment(apis: KubeApis, desired: V1Deployment) -> Outcome:
    name, ns = _namespaced_name(desired.metadata)
    return _apply(
        desired,
        ("spec",),
        lambda: apis.apps.read_namespaced_deployment(name, ns),
        lambda body: apis.apps.patch_namespaced_deployment(name, ns, body, **_SSA),
    )


def apply_service(apis: KubeApis, desired: V1Service) -> Outcome:
    name, ns = _namespaced_name(desired.metadata)
    return _apply(
        desired,
        ("spec",),
        lambda: apis.core.read_namespaced_service(name, ns),
        lambda body: apis.core.patch_namespaced_service(name, ns, body, **_SSA),
    )


def apply_lease(apis: KubeApis, workload: LeaseWorkload, config: BuildConfig) -> dict[str, Outcome]:
    """Apply every object of a lease; isolation (quota, policy) lands before the workload."""
    workload.validate()
    return {
        "namespace": apply_namespace(apis, build_namespace(workload, config)),
        "resource_quota": apply_resource_quota(apis, build_resource_quota(workload, config)),
        "network_policy": apply_network_policy(apis, build_network_policy(workload)),
        "secret": apply_secret(apis, build_ssh_secret(workload)),
        "deployment": apply_deployment(apis, build_deployment(workload, config)),
        "service": apply_service(apis, build_service(workload)),
    }


def delete_lease(apis: KubeApis, lease_id: int) -> bool:
    """Delete the lease's namespace (and with it every object in it); False if already gone."""
    try:
        apis.core.delete_namespace(namespace_name(lease_id))
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def cleanup_orphans(apis: KubeApis, active_lease_ids: Collection[int]) -> list[int]:
    """Delete lease namespaces, found by label selector, whose lease is no longer active."""
    found = apis.core.list_namespace(label_selector=labels.managed_selector())
    deleted: list[int] = []
    for ns in found.items:
        ns_labels = ns.metadata.labels if ns.metadata is not None else None
        lease_label = (ns_labels or {}).get(labels.LEASE_ID, "")
        if not lease_label.isdigit() or int(lease_label) in active_lease_ids:
            continue
        if delete_lease(apis, int(lease_label)):
            deleted.append(int(lease_label))
    return deleted
