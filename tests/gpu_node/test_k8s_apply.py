"""The owned-field comparison that decides whether apply writes, the applied record that reveals
drift, and the status read from live objects (no cluster needed: objects as a server returns them).
The same code against a real API server: tests/k8s/test_gpu_node_backend.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    V1ContainerState,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1DeploymentCondition,
    V1DeploymentStatus,
    V1Pod,
    V1PodCondition,
    V1PodStatus,
)

from services.gpu_node.runtime.base import WorkloadPhase
from services.gpu_node.runtime.kubernetes.apply import (
    APPLIED,
    DEPLOYMENT,
    drifted,
    owned_fields_differ,
    stamped,
)
from services.gpu_node.runtime.kubernetes.builders import (
    BuildConfig,
    build_deployment,
    build_network_policy,
    build_resource_quota,
)
from services.gpu_node.runtime.kubernetes.runtime import deployment_phase, pending_reason

from .utils import make_workload

CONFIG = BuildConfig(machine="ab" * 32, node_name="gpu-h100-0")


def _server_copy() -> tuple[Any, dict[str, Any]]:
    """A desired Deployment and what an API server would hand back for it (defaults added)."""
    desired = build_deployment(make_workload(), CONFIG)
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
        make_workload(memory_mib=1024 * 1024, cpu_millicores=1_000_000), CONFIG
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
    desired = build_resource_quota(make_workload(), CONFIG)
    desired.spec.hard["limits.memory"] = ours
    served: dict[str, Any] = copy.deepcopy(ApiClient().sanitize_for_serialization(desired))
    served["spec"]["hard"]["limits.memory"] = servers
    assert owned_fields_differ(desired, served, ("spec",)) is differ


def test_owned_fields_differ_env_text_is_not_a_quantity() -> None:
    # Only resource maps compare by value: an env value "1k" is not "1000".
    desired = build_deployment(make_workload(env={"N": "1000"}), CONFIG)
    served: dict[str, Any] = copy.deepcopy(ApiClient().sanitize_for_serialization(desired))
    for env in served["spec"]["template"]["spec"]["containers"][0]["env"]:
        if env["name"] == "N":
            env["value"] = "1k"
    assert owned_fields_differ(desired, served, ("spec",)) is True


def _applied_and_served(desired: Any) -> dict[str, Any]:
    """What the server holds after applying `desired`: its stamped body plus server fields."""
    served = copy.deepcopy(stamped(desired, DEPLOYMENT.body_fields))
    served["metadata"]["uid"] = "0b9f"
    served["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    served["spec"]["revisionHistoryLimit"] = 10
    served["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    served["status"] = {"replicas": 1}
    return served


def test_drifted_false_for_an_object_as_applied_with_server_defaults() -> None:
    served = _applied_and_served(build_deployment(make_workload(), CONFIG))
    assert APPLIED in served["metadata"]["annotations"]
    assert drifted(served, DEPLOYMENT.body_fields) is False


def test_drifted_sees_an_image_edited_by_hand() -> None:
    served = _applied_and_served(build_deployment(make_workload(), CONFIG))
    served["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/evil:1"
    assert drifted(served, DEPLOYMENT.body_fields) is True


def test_drifted_sees_a_removed_label_and_a_missing_record() -> None:
    served = _applied_and_served(build_deployment(make_workload(), CONFIG))
    del served["metadata"]["labels"]["gridlease/node"]
    assert drifted(served, DEPLOYMENT.body_fields) is True
    plain = ApiClient().sanitize_for_serialization(build_network_policy(make_workload(), CONFIG))
    assert drifted(plain, ("spec",)) is True  # never applied by us: no record


def test_stamped_record_excludes_itself() -> None:
    body = stamped(build_deployment(make_workload(), CONFIG), DEPLOYMENT.body_fields)
    assert APPLIED not in body["metadata"]["annotations"][APPLIED]


def _deployment(ready: int = 0, conditions: list[V1DeploymentCondition] | None = None) -> Any:
    deployment = build_deployment(make_workload(), CONFIG)
    deployment.metadata.generation = 2
    deployment.status = V1DeploymentStatus(
        ready_replicas=ready, observed_generation=2, conditions=conditions
    )
    return deployment


def _pod(scheduled: tuple[str, str] | None = None, waiting: tuple[str, str] | None = None) -> Any:
    conditions = (
        [V1PodCondition(type="PodScheduled", status="False", reason="Unschedulable",
                        message=scheduled[1])]
        if scheduled
        else None
    )  # fmt: skip
    statuses = (
        [V1ContainerStatus(
            name="gridlease-workload", image="i", image_id="", ready=False, restart_count=0,
            state=V1ContainerState(
                waiting=V1ContainerStateWaiting(reason=waiting[0], message=waiting[1])),
        )]
        if waiting
        else None
    )  # fmt: skip
    return V1Pod(status=V1PodStatus(conditions=conditions, container_statuses=statuses))


def test_deployment_phase_running_only_when_ready_at_its_generation() -> None:
    assert deployment_phase(_deployment(ready=1)) == (WorkloadPhase.RUNNING, "")
    stale = _deployment(ready=1)
    stale.metadata.generation = 3  # edited, the controller has not caught up: the old pod
    assert deployment_phase(stale, [])[0] is WorkloadPhase.PENDING


def test_deployment_phase_pending_says_why_the_pod_does_not_fit() -> None:
    message = "0/3 nodes are available: 1 Insufficient nvidia.com/gpu."
    phase, why = deployment_phase(_deployment(), [_pod(scheduled=("False", message))])
    assert (phase, why) == (WorkloadPhase.PENDING, f"unschedulable: {message}")


def test_pending_reason_reports_a_waiting_container() -> None:
    pod = _pod(waiting=("ImagePullBackOff", "pull access denied"))
    assert pending_reason([pod]) == "ImagePullBackOff: pull access denied"
    assert pending_reason([]) == "starting: no pod yet"


def test_deployment_phase_failed_keeps_the_schedulers_reason() -> None:
    timed_out = V1DeploymentCondition(
        type="Progressing", status="False", reason="ProgressDeadlineExceeded", message="timed out"
    )
    message = "0/3 nodes are available: 1 Insufficient nvidia.com/gpu."
    phase, why = deployment_phase(_deployment(conditions=[timed_out]), [_pod(("False", message))])
    assert (phase, why) == (WorkloadPhase.FAILED, f"unschedulable: {message}")
    assert deployment_phase(_deployment(conditions=[timed_out]), None) == (
        WorkloadPhase.FAILED,
        "timed out",
    )
