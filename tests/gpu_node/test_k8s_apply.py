"""The owned-field comparison that decides whether apply writes (no cluster needed)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes.client import ApiClient

from services.gpu_node.runtime.kubernetes.apply import owned_fields_differ
from services.gpu_node.runtime.kubernetes.builders import (
    BuildConfig,
    build_deployment,
    build_resource_quota,
)

from .utils import make_workload


def _server_copy() -> tuple[Any, dict[str, Any]]:
    """A desired Deployment and what an API server would hand back for it (defaults added)."""
    desired = build_deployment(make_workload(), BuildConfig())
    served: dict[str, Any] = copy.deepcopy(ApiClient().sanitize_for_serialization(desired))
    served["metadata"]["uid"] = "0b9f"
    served["metadata"]["resourceVersion"] = "812"
    served["metadata"]["labels"]["app.kubernetes.io/part-of"] = "someone-else"
    served["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    served["spec"]["revisionHistoryLimit"] = 10
    container = served["spec"]["template"]["spec"]["containers"][0]
    container["terminationMessagePath"] = "/dev/termination-log"
    container["imagePullPolicy"] = "IfNotPresent"
    served["status"] = {"replicas": 1}
    return desired, served


def test_owned_fields_differ_ignores_server_defaults_and_foreign_labels() -> None:
    desired, served = _server_copy()
    assert owned_fields_differ(desired, served, ("spec",)) is False


def test_owned_fields_differ_sees_changed_image() -> None:
    desired, served = _server_copy()
    served["spec"]["template"]["spec"]["containers"][0]["image"] = "localhost/other:2"
    assert owned_fields_differ(desired, served, ("spec",)) is True


def test_owned_fields_differ_sees_changed_lease_label() -> None:
    desired, served = _server_copy()
    served["metadata"]["labels"]["gridlease/lease-id"] = "43"
    assert owned_fields_differ(desired, served, ("spec",)) is True


def test_owned_fields_differ_sees_extra_list_entry() -> None:
    # Lists are compared whole: a port the server holds but we no longer want is a difference.
    desired, served = _server_copy()
    ports = served["spec"]["template"]["spec"]["containers"][0]["ports"]
    ports.append({"containerPort": 9999, "name": "stale", "protocol": "TCP"})
    assert owned_fields_differ(desired, served, ("spec",)) is True


def test_owned_fields_differ_ignores_unowned_body() -> None:
    desired, served = _server_copy()
    served["spec"]["replicas"] = 3
    assert owned_fields_differ(desired, served, ()) is False
    assert owned_fields_differ(desired, served, ("spec",)) is True


def _big_served() -> tuple[Any, dict[str, Any]]:
    """A Deployment asking 1 TiB and 1,000 CPUs, and the server's copy spelling them canonically."""
    desired = build_deployment(
        make_workload(memory_mib=1024 * 1024, cpu_millicores=1_000_000), BuildConfig()
    )
    served: dict[str, Any] = copy.deepcopy(ApiClient().sanitize_for_serialization(desired))
    resources = served["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["memory"] == "1024Gi" and resources["limits"]["cpu"] == "1000"
    for part in ("limits", "requests"):
        resources[part].update({"memory": "1Ti", "cpu": "1k"})
    return desired, served


def test_owned_fields_differ_compares_quantities_by_value() -> None:
    desired, served = _big_served()
    assert owned_fields_differ(desired, served, ("spec",)) is False


def test_owned_fields_differ_sees_a_quantity_that_really_changed() -> None:
    desired, served = _big_served()
    container = served["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["limits"]["memory"] = "2Ti"
    assert owned_fields_differ(desired, served, ("spec",)) is True


@pytest.mark.parametrize(
    ("ours", "servers", "differ"),
    [("1024Gi", "1Ti", False), ("1000", "1k", False), ("1500m", "1.5", False), ("1", "2", True)],
)
def test_owned_fields_differ_quota_hard_by_value(ours: str, servers: str, differ: bool) -> None:
    desired = build_resource_quota(make_workload(), BuildConfig())
    desired.spec.hard["limits.memory"] = ours
    served: dict[str, Any] = copy.deepcopy(ApiClient().sanitize_for_serialization(desired))
    served["spec"]["hard"]["limits.memory"] = servers
    assert owned_fields_differ(desired, served, ("spec",)) is differ


def test_owned_fields_differ_env_text_is_not_a_quantity() -> None:
    # Only resource maps compare by value: an env value "1k" is not "1000".
    desired = build_deployment(make_workload(env={"N": "1000"}), BuildConfig())
    served: dict[str, Any] = copy.deepcopy(ApiClient().sanitize_for_serialization(desired))
    for env in served["spec"]["template"]["spec"]["containers"][0]["env"]:
        if env["name"] == "N":
            env["value"] = "1k"
    assert owned_fields_differ(desired, served, ("spec",)) is True
