"""Apply the builders' objects to a cluster, writing only on a difference; read them back by label.

Writing (`apply_lease`): each object is read by name. Absent: it is created. Present: the fields
we own (our labels and annotations, plus the kind's body such as `spec` or `data`) are compared
with what the server holds, ignoring what the server adds (defaults, status, other managers'
labels); only on a difference is it patched. Resource quantities are compared by value: the
server rewrites them in its canonical form (`1024Gi` comes back as `1Ti`, `1000` CPUs as `1k`), so
comparing their text would patch again at every reconcile. Both writes are server-side apply
under one field manager, so the server records exactly which fields are ours and drops those a
later desired object omits.

Reading (`read_machine`, `read_lease`): every object carries, in the `gridlease/applied`
annotation, the owned fields as last applied (as kubectl's last-applied-configuration does). A
reader that does not know the desired workload (the runtime's `list`, which only finds leases by
label) compares each object with that record and reports a hand-made change or a missing object
as drift, which the reconcile loop repairs by applying the lease again. `read_machine` reads one
machine's leases with one LIST per kind, across namespaces (label selector: machine; field
selector: the kind's fixed name, which also lets the ClusterRole grant these reads by name), plus
one LIST of pods only while some Deployment is not ready: a reconcile of converged leases costs a
fixed six requests whatever their number.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    CoreV1Api,
    NetworkingV1Api,
    V1Namespace,
    V1ObjectMeta,
)
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from services.gpu_node import labels
from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.kubernetes.builders import (
    NETWORK_POLICY_NAME,
    QUOTA_NAME,
    SSH_SECRET_NAME,
    WORKLOAD_NAME,
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
    "APPLIED",
    "DEPLOYMENT",
    "FIELD_MANAGER",
    "KINDS",
    "NAMESPACE_BODY",
    "NETWORK_POLICY",
    "RESOURCE_QUOTA",
    "SECRET",
    "SERVICE",
    "Kind",
    "KubeApis",
    "LeaseObjects",
    "Outcome",
    "apply_lease",
    "apply_namespace",
    "apply_object",
    "applied_record",
    "delete_lease",
    "deployment_ready",
    "drifted",
    "owned_fields_differ",
    "read_lease",
    "read_machine",
    "stamped",
]

FIELD_MANAGER = "gridlease-gpu-node"
APPLY_PATCH = "application/apply-patch+yaml"
# Annotation holding the owned fields of an object as last applied (compact, sorted JSON).
APPLIED = f"{labels.PREFIX}applied"
# Only its serializer is used (no requests), to compare objects as the API server spells them.
_SERIALIZER = ApiClient()
_SSA: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY_PATCH}


class Outcome(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class KubeApis:
    core: CoreV1Api
    apps: AppsV1Api
    networking: NetworkingV1Api

    @classmethod
    def from_client(cls, client: ApiClient) -> KubeApis:
        """The three API groups the agent uses, over one `kubernetes.client.ApiClient`."""
        return cls(CoreV1Api(client), AppsV1Api(client), NetworkingV1Api(client))


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


def _owned(obj: dict[str, Any], body_fields: Collection[str]) -> dict[str, Any]:
    """The owned part of an object (as a dict): labels, annotations but APPLIED, body fields."""
    meta = obj.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != APPLIED}
    owned = {"labels": meta.get("labels") or {}, "annotations": annotations}
    owned.update({field: obj.get(field) for field in body_fields if obj.get(field) is not None})
    return owned


def _differ(want: dict[str, Any], have: dict[str, Any], body_fields: Collection[str]) -> bool:
    want_meta, have_meta = want.get("metadata") or {}, have.get("metadata") or {}
    for key in ("labels", "annotations"):
        if not _contains(want_meta.get(key) or {}, have_meta.get(key) or {}):
            return True
    return any(not _contains(want.get(f), have.get(f)) for f in body_fields)


def owned_fields_differ(desired: Any, existing: Any, body_fields: Collection[str]) -> bool:
    """Compare the fields we own: our labels/annotations and the named top-level fields.
    `desired`/`existing`: `kubernetes.client` objects or their dicts (as the server spells them)."""
    return _differ(_as_dict(desired), _as_dict(existing), body_fields)


def applied_record(desired: Any, body_fields: Collection[str]) -> str:
    """The APPLIED annotation's value for `desired`: its owned fields as compact sorted JSON."""
    return json.dumps(_owned(_as_dict(desired), body_fields), sort_keys=True, separators=(",", ":"))


def drifted(existing: Any, body_fields: Collection[str]) -> bool:
    """Whether `existing` (as read from the server) no longer holds what its APPLIED annotation
    records: a hand-made change of an owned field. An object without a readable record counts
    as drifted (applying it again writes one)."""
    have = _as_dict(existing)
    record = ((have.get("metadata") or {}).get("annotations") or {}).get(APPLIED)
    try:
        owned = json.loads(record) if record else None
    except ValueError:
        owned = None
    if not isinstance(owned, dict):
        return True
    want = {
        "metadata": {"labels": owned.get("labels"), "annotations": owned.get("annotations")},
        **{field: owned.get(field) for field in body_fields},
    }
    return _differ(want, have, [f for f in body_fields if owned.get(f) is not None])


def stamped(desired: Any, body_fields: Collection[str]) -> dict[str, Any]:
    """`desired` as the dict to apply: as the server spells it, with its APPLIED annotation."""
    body = _as_dict(desired)
    meta = body.setdefault("metadata", {})
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        APPLIED: applied_record(desired, body_fields),
    }
    return body


@dataclass(frozen=True)
class Kind:
    """One kind of object inside a lease namespace: its fixed name, the top-level fields the
    agent owns, its builder, and its calls (read one by name, list across namespaces, apply)."""

    key: str
    name: str
    body_fields: tuple[str, ...]
    build: Callable[[LeaseWorkload, BuildConfig], Any]
    read: Callable[[KubeApis, str, str], Any]
    list_all: Callable[[KubeApis, str, str], Any]
    patch: Callable[[KubeApis, str, str, dict[str, Any]], Any]


RESOURCE_QUOTA = Kind(
    "resource_quota",
    QUOTA_NAME,
    ("spec",),
    build_resource_quota,
    lambda a, name, ns: a.core.read_namespaced_resource_quota(name, ns),
    lambda a, ls, fs: a.core.list_resource_quota_for_all_namespaces(
        label_selector=ls, field_selector=fs
    ),
    lambda a, name, ns, body: a.core.patch_namespaced_resource_quota(name, ns, body, **_SSA),
)
NETWORK_POLICY = Kind(
    "network_policy",
    NETWORK_POLICY_NAME,
    ("spec",),
    build_network_policy,
    lambda a, name, ns: a.networking.read_namespaced_network_policy(name, ns),
    lambda a, ls, fs: a.networking.list_network_policy_for_all_namespaces(
        label_selector=ls, field_selector=fs
    ),
    lambda a, name, ns, body: a.networking.patch_namespaced_network_policy(name, ns, body, **_SSA),
)
SECRET = Kind(
    "secret",
    SSH_SECRET_NAME,
    ("data", "type"),
    build_ssh_secret,
    lambda a, name, ns: a.core.read_namespaced_secret(name, ns),
    lambda a, ls, fs: a.core.list_secret_for_all_namespaces(label_selector=ls, field_selector=fs),
    lambda a, name, ns, body: a.core.patch_namespaced_secret(name, ns, body, **_SSA),
)
DEPLOYMENT = Kind(
    "deployment",
    WORKLOAD_NAME,
    ("spec",),
    build_deployment,
    lambda a, name, ns: a.apps.read_namespaced_deployment(name, ns),
    lambda a, ls, fs: a.apps.list_deployment_for_all_namespaces(
        label_selector=ls, field_selector=fs
    ),
    lambda a, name, ns, body: a.apps.patch_namespaced_deployment(name, ns, body, **_SSA),
)
SERVICE = Kind(
    "service",
    WORKLOAD_NAME,
    ("spec",),
    build_service,
    lambda a, name, ns: a.core.read_namespaced_service(name, ns),
    lambda a, ls, fs: a.core.list_service_for_all_namespaces(label_selector=ls, field_selector=fs),
    lambda a, name, ns, body: a.core.patch_namespaced_service(name, ns, body, **_SSA),
)
# In the order of apply: isolation (quota, policy) lands before the workload, the Secret before
# the pod that mounts it, the Service last.
KINDS = (RESOURCE_QUOTA, NETWORK_POLICY, SECRET, DEPLOYMENT, SERVICE)
NAMESPACE_BODY: tuple[str, ...] = ()


def _absent(exc: ApiException) -> bool:
    return bool(exc.status == 404)


def _write(
    desired: Any,
    body_fields: Collection[str],
    read: Callable[[], Any],
    server_side_apply: Callable[[dict[str, Any]], Any],
) -> Outcome:
    body = stamped(desired, body_fields)
    try:
        existing = read()
    except ApiException as exc:
        if not _absent(exc):
            raise
        server_side_apply(body)
        return Outcome.CREATED
    if not _differ(body, _as_dict(existing), body_fields):
        return Outcome.UNCHANGED
    server_side_apply(body)
    return Outcome.UPDATED


def _name(meta: V1ObjectMeta | None) -> str:
    """metadata.name of an object to apply (the builders always set it); ValueError if unset."""
    if meta is None or meta.name is None:
        raise ValueError("object to apply has no metadata.name")
    return meta.name


def apply_namespace(apis: KubeApis, desired: V1Namespace) -> Outcome:
    """Create or correct the lease namespace (labels and annotations only)."""
    name = _name(desired.metadata)
    return _write(
        desired,
        NAMESPACE_BODY,
        lambda: apis.core.read_namespace(name),
        lambda body: apis.core.patch_namespace(name, body, **_SSA),
    )


def apply_object(apis: KubeApis, kind: Kind, desired: Any) -> Outcome:
    """Create or correct one object of `kind` in its lease namespace; ValueError if `desired`
    names no namespace; ApiException on the server's refusal."""
    meta = desired.metadata
    if meta is None or meta.namespace is None:
        raise ValueError("object to apply has no metadata.namespace")
    name, ns = _name(meta), meta.namespace
    return _write(
        desired,
        kind.body_fields,
        lambda: kind.read(apis, name, ns),
        lambda body: kind.patch(apis, name, ns, body),
    )


def _node_port_refused(exc: ApiException) -> bool:
    # 422 Invalid naming spec.ports[i].nodePort: "provided port is already allocated", or no
    # longer in the cluster's service-node-port-range.
    return exc.status == 422 and "nodePort" in str(exc.body or "")


def apply_lease(apis: KubeApis, workload: LeaseWorkload, config: BuildConfig) -> dict[str, Outcome]:
    """Apply every object of a lease (namespace first), writing only what differs; returns each
    kind's Outcome by key. WorkloadInvalid for a workload breaking a rule, ApiException on a
    refusal (the next reconcile tries again).

    A recorded node port the server refuses (the lease's Service was deleted and another
    lease's Service took the port meanwhile) is dropped: the server allocates a new one, which
    the executor records. The customer's SSH port moves only then."""
    workload.validate()
    outcomes = {"namespace": apply_namespace(apis, build_namespace(workload, config))}
    for kind in KINDS:
        try:
            outcomes[kind.key] = apply_object(apis, kind, kind.build(workload, config))
        except ApiException as exc:
            if kind is not SERVICE or not workload.host_ports or not _node_port_refused(exc):
                raise
            fresh = dataclasses.replace(workload, host_ports={})
            outcomes[kind.key] = apply_object(apis, kind, kind.build(fresh, config))
    return outcomes


def delete_lease(apis: KubeApis, config: BuildConfig, lease_id: int) -> bool:
    """Delete the lease's namespace (and with it every object in it); False if it is already
    gone or going (being deleted)."""
    try:
        apis.core.delete_namespace(namespace_name(config, lease_id))
    except ApiException as exc:
        if exc.status in (404, 409):
            return False
        raise
    return True


# -- reading back --------------------------------------------------------------------------------
@dataclass(frozen=True)
class LeaseObjects:
    """What the cluster holds of one lease of this machine.

    `objects`: the live objects found, by Kind.key (a missing kind is absent). `pods`: the
    lease's pods, or None when they were not read (the Deployment was ready)."""

    lease_id: int
    namespace: Any
    objects: Mapping[str, Any]
    pods: Sequence[Any] | None


def _lease_of(ns: Any, config: BuildConfig) -> int | None:
    """The lease id of a namespace of this machine; None for one that is not (or is going)."""
    meta = ns.metadata
    if meta is None or meta.deletion_timestamp is not None:
        return None
    value = (meta.labels or {}).get(labels.LEASE_ID, "")
    if not value.isdigit() or meta.name != namespace_name(config, int(value)):
        return None
    return int(value)


def _namespace_of(obj: Any) -> str:
    return str(obj.metadata.namespace) if obj.metadata is not None else ""


def deployment_ready(deployment: Any) -> bool:
    """One replica ready, of the Deployment's current generation."""
    status, meta = deployment.status, deployment.metadata
    if status is None or (status.ready_replicas or 0) < 1:
        return False
    generation = (meta.generation if meta is not None else None) or 0
    return (status.observed_generation or 0) >= generation


def read_machine(apis: KubeApis, config: BuildConfig) -> dict[int, LeaseObjects]:
    """Every lease of this machine in the cluster, by lease id: one LIST of namespaces, one per
    Kind, one of pods while a Deployment is not ready. Namespaces being deleted are left out."""
    selector = labels.machine_selector(config.node_label)
    leases: dict[str, int] = {}
    namespaces: dict[str, Any] = {}
    for ns in apis.core.list_namespace(label_selector=selector).items:
        lease_id = _lease_of(ns, config)
        if lease_id is not None:
            leases[namespace_name(config, lease_id)] = lease_id
            namespaces[namespace_name(config, lease_id)] = ns
    found: dict[str, dict[str, Any]] = {name: {} for name in leases}
    for kind in KINDS:
        for obj in kind.list_all(apis, selector, f"metadata.name={kind.name}").items:
            if _namespace_of(obj) in found:
                found[_namespace_of(obj)][kind.key] = obj
    pods: dict[str, list[Any]] | None = None
    if any(
        DEPLOYMENT.key in objs and not deployment_ready(objs[DEPLOYMENT.key])
        for objs in found.values()
    ):
        pods = {name: [] for name in leases}
        for pod in apis.core.list_pod_for_all_namespaces(label_selector=selector).items:
            if _namespace_of(pod) in pods:
                pods[_namespace_of(pod)].append(pod)
    return {
        lease_id: LeaseObjects(
            lease_id, namespaces[name], found[name], None if pods is None else pods[name]
        )
        for name, lease_id in leases.items()
    }


def read_lease(apis: KubeApis, config: BuildConfig, lease_id: int) -> LeaseObjects | None:
    """One lease of this machine, read by name (a GET per kind, and its pods when its
    Deployment is not ready); None when its namespace is absent, going, or not this machine's."""
    name = namespace_name(config, lease_id)
    try:
        ns = apis.core.read_namespace(name)
    except ApiException as exc:
        if _absent(exc):
            return None
        raise
    node = ((ns.metadata.labels if ns.metadata else None) or {}).get(labels.NODE)
    if _lease_of(ns, config) != lease_id or node != config.node_label:
        return None
    objects: dict[str, Any] = {}
    for kind in KINDS:
        try:
            objects[kind.key] = kind.read(apis, kind.name, name)
        except ApiException as exc:
            if not _absent(exc):
                raise
    deployment = objects.get(DEPLOYMENT.key)
    pods = None
    if deployment is not None and not deployment_ready(deployment):
        selector = labels.machine_selector(config.node_label)
        pods = list(apis.core.list_namespaced_pod(name, label_selector=selector).items)
    return LeaseObjects(lease_id, ns, objects, pods)
