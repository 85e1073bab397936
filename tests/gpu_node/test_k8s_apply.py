"""The owned-field comparison that decides whether apply writes (no cluster needed)."""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client import ApiClient

from services.gpu_node.runtime.kubernetes.apply import owned_fields_differ
from services.gpu_node.runtime.kubernetes.builders import BuildConfig, build_deployment

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
