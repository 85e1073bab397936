"""The GPU node agent's Kubernetes backend on a real control plane (tests/k8s/conftest.py: API
server with RBAC and Pod Security, scheduler, controller manager, KWOK with two fake GPU nodes).

The agent's own code does the work: observe, plan, executor, NodeStore, DesiredWorkloads and
KubernetesRuntime (gpu_node_harness.LeaseNode), authenticated with a service-account token bound
to the ClusterRole of deploy/helm/gridlease/files/gpu-node-rbac.yaml, never as admin. The chain
is an in-memory ledger here, except in the last test, where the agent process runs against the
dev chain. The admin client only looks, or plays the person editing objects by hand."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from services.common import ConfigError, keypair_from_secret, machine_id_for
from services.common.grpc_gen.gridlease.v1 import node_pb2
from services.devstack.cluster import DEFAULT_GPU_NODES, GPU_RESOURCE, DevCluster
from services.gpu_node import labels
from services.gpu_node.reconcile.plan import ApplyWorkload, DeleteWorkload, StartLease
from services.gpu_node.runtime.base import WorkloadPhase
from services.gpu_node.runtime.factory import make_runtime
from services.gpu_node.runtime.kubernetes.apply import (
    KINDS,
    RESOURCE_QUOTA,
    KubeApis,
    Outcome,
    apply_lease,
    apply_namespace,
    apply_object,
)
from services.gpu_node.runtime.kubernetes.builders import (
    NETWORK_POLICY_NAME,
    QUOTA_NAME,
    SSH_SECRET_NAME,
    WORKLOAD_NAME,
    build_namespace,
    namespace_name,
)
from services.gpu_node.runtime.kubernetes.client import CountingApiClient
from services.gpu_node.runtime.kubernetes.runtime import KubernetesRuntime
from services.gpu_node.service import lease_status
from tests.k8s.gpu_node_harness import (
    SSH_KEY,
    AgentAccess,
    LeaseNode,
    delete_machine_namespaces,
    machine_namespaces,
    new_machine_id,
    spec,
    token_kubeconfig,
)
from tests.k8s.kube import wait_for
from tests.utils.devchain import DevChain
from tests.utils.gpu_node_chain import count_events, create_lease, dev_key, submission
from tests.utils.gpu_node_process import NodeProcess
from tests.utils.gpu_node_process import wait_for as node_wait_for
from tests.utils.ports import free_port

H100, A100 = DEFAULT_GPU_NODES


@pytest.fixture
def nodes(
    k8s_api: Any, agent_client: Callable[[], CountingApiClient], tmp_path: Path
) -> Iterator[Callable[..., LeaseNode]]:
    """Makes agents of new machines (`nodes(node_name)`); their namespaces go at the end."""
    made: list[LeaseNode] = []

    def make(node_name: str, gpus: int = 8) -> LeaseNode:
        machine = new_machine_id()
        data_dir = tmp_path / machine[:8]
        data_dir.mkdir()
        node = LeaseNode(agent_client(), machine, node_name, data_dir, gpus)
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()
        delete_machine_namespaces(k8s_api, node.machine)


def converge(node: LeaseNode, done: Callable[[], Any], what: str) -> Any:
    """Runs the node's reconcile until `done()` is truthy; returns its value."""

    def step() -> Any:
        node.reconcile()
        return done()

    return wait_for(what, step)


def running(node: LeaseNode, lease_id: int) -> bool:
    return lease_id in node.ledger.started


def lease_pods(admin: Any, node: LeaseNode, lease_id: int) -> list[Any]:
    ns = namespace_name(node.config, lease_id)
    return list(client.CoreV1Api(admin).list_namespaced_pod(ns).items)


def forbidden(call: Callable[[], Any]) -> ApiException:
    """Runs `call`, which the API server must refuse: 403 Forbidden (RBAC, Pod Security)."""
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403, err.value
    return err.value


def denied_by_policy(call: Callable[[], Any]) -> None:
    """Runs `call`, which the agent's ValidatingAdmissionPolicy must deny (422 Invalid)."""
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 422, err.value
    assert "ValidatingAdmissionPolicy" in str(err.value.body), err.value.body


# -- a lease, end to end ---------------------------------------------------------------------------
def test_lease_becomes_pinned_isolated_objects_and_a_running_pod(
    k8s_api: Any, nodes: Callable[..., LeaseNode]
) -> None:
    node = nodes(H100.name)
    document = spec()
    node.lease(7, [0, 1], document)
    converge(node, lambda: running(node, 7), "the lease started")
    ns = namespace_name(node.config, 7)
    core, apps = client.CoreV1Api(k8s_api), client.AppsV1Api(k8s_api)
    net = client.NetworkingV1Api(k8s_api)

    namespace = core.read_namespace(ns)
    ns_labels = namespace.metadata.labels
    assert ns_labels[labels.LEASE_ID] == "7"
    assert ns_labels[labels.NODE] == labels.kube_node_value(node.machine)
    assert ns_labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert namespace.metadata.annotations[labels.MACHINE_ID] == node.machine

    deployment = apps.read_namespaced_deployment(WORKLOAD_NAME, ns)
    pod_spec = deployment.spec.template.spec
    required = pod_spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    [term] = required.node_selector_terms
    assert [(r.key, r.values) for r in term.match_fields] == [("metadata.name", [H100.name])]
    assert pod_spec.containers[0].resources.limits[GPU_RESOURCE] == "2"
    assert pod_spec.runtime_class_name == "nvidia"

    service = core.read_namespaced_service(WORKLOAD_NAME, ns)
    assert service.spec.type == "NodePort"
    node_ports = {p.port: p.node_port for p in service.spec.ports}
    assert set(node_ports) == {2222, 8080} and all(node_ports.values())
    # The API server chose them; the store keeps them for the lease's life.
    assert node.store.recorded_host_ports(7) == node_ports

    secret = core.read_namespaced_secret(SSH_SECRET_NAME, ns)
    assert base64.b64decode(secret.data["authorized_key"]).decode() == SSH_KEY + "\n"
    policy = net.read_namespaced_network_policy(NETWORK_POLICY_NAME, ns)
    assert policy.spec.policy_types == ["Ingress", "Egress"]
    quota = core.read_namespaced_resource_quota(QUOTA_NAME, ns)
    assert quota.spec.hard[f"requests.{GPU_RESOURCE}"] == "2"
    for obj in (deployment, service, secret, policy, quota):
        assert obj.metadata.labels[labels.NODE] == labels.kube_node_value(node.machine)

    [pod] = lease_pods(k8s_api, node, 7)
    assert (pod.spec.node_name, pod.status.phase) == (H100.name, "Running")
    assert pod.metadata.labels[labels.NODE] == labels.kube_node_value(node.machine)

    # What the node answers GetLeaseStatus with (and the API shows the customer).
    reply = lease_status(7, node.store, node.runtime, "203.0.113.7")
    assert reply.status == node_pb2.WORKLOAD_STATUS_RUNNING
    assert (reply.host, reply.ssh_port) == ("203.0.113.7", node_ports[2222])
    assert [(p.container_port, p.host_port) for p in reply.ports] == [(8080, node_ports[8080])]
    assert node.ledger.started == [7]


def test_two_machines_keep_to_their_own_leases_and_nodes(
    k8s_api: Any, nodes: Callable[..., LeaseNode]
) -> None:
    one, two = nodes(H100.name), nodes(A100.name)
    # The same lease id on both machines (two chains' worth of ids never collide, but the
    # namespaces must not depend on that), and the same ports asked for.
    for node in (one, two):
        node.lease(7, [0], spec())
    converge(one, lambda: running(one, 7), "machine one's lease started")
    converge(two, lambda: running(two, 7), "machine two's lease started")
    for node, target in ((one, H100), (two, A100)):
        [pod] = lease_pods(k8s_api, node, 7)
        assert pod.spec.node_name == target.name
        assert [w.lease_id for w in node.runtime.list()] == [7]
    assert namespace_name(one.config, 7) != namespace_name(two.config, 7)
    assert set(one.store.recorded_host_ports(7).values()).isdisjoint(
        two.store.recorded_host_ports(7).values()
    )

    # Machine one's lease ends: its agent removes its namespace, and nothing of machine two's.
    one.ledger.end(7)
    converge(
        one, lambda: not machine_namespaces(k8s_api, one.machine), "machine one's lease removed"
    )
    assert [ns.metadata.name for ns in machine_namespaces(k8s_api, two.machine)] == [
        namespace_name(two.config, 7)
    ]
    # Machine two's agent, with one's lease gone and its own running, has nothing to do.
    assert two.reconcile() == []
    [pod] = lease_pods(k8s_api, two, 7)
    assert pod.status.phase == "Running"


def test_lease_over_asking_gpus_stays_pending_with_the_schedulers_reason(
    k8s_api: Any, nodes: Callable[..., LeaseNode]
) -> None:
    # The node advertises 4 GPUs; the machine (8 slots on chain) leased 3 of them, then 2 more:
    # the chain allowed it, the node cannot hold it.
    node = nodes(A100.name)
    node.lease(1, [0, 1, 2], spec())
    converge(node, lambda: running(node, 1), "the fitting lease started")
    node.lease(2, [3, 4], spec())

    def unschedulable() -> Any:
        status = node.runtime.status(2)
        return status if status.message.startswith("unschedulable") else None

    status = converge(node, unschedulable, "the scheduler's reason")
    assert status.phase is WorkloadPhase.PENDING and status.blocked
    assert f"Insufficient {GPU_RESOURCE}" in status.message
    for _ in range(3):
        assert not any(isinstance(o.action, StartLease) for o in node.reconcile())
    assert node.ledger.started == [1]
    reply = lease_status(2, node.store, node.runtime, "203.0.113.7")
    assert reply.status == node_pb2.WORKLOAD_STATUS_PENDING
    assert f"Insufficient {GPU_RESOURCE}" in reply.message
    [pod] = lease_pods(k8s_api, node, 2)
    assert pod.spec.node_name is None


def test_privileged_and_host_network_pods_refused_in_a_lease_namespace(
    k8s_api: Any, nodes: Callable[..., LeaseNode]
) -> None:
    node = nodes(H100.name)
    node.lease(3, [0], spec())
    converge(node, lambda: running(node, 3), "the lease started")
    core = client.CoreV1Api(k8s_api)
    ns = namespace_name(node.config, 3)

    def pod(name: str, privileged: bool = False, host_network: bool = False) -> client.V1Pod:
        container = client.V1Container(
            name="c",
            image="docker.io/library/busybox:1.36",
            security_context=client.V1SecurityContext(privileged=privileged),
        )
        return client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(containers=[container], host_network=host_network),
        )

    for bad in (pod("privileged", privileged=True), pod("host-net", host_network=True)):
        refused = forbidden(lambda bad=bad: core.create_namespaced_pod(ns, bad))
        assert "violates PodSecurity" in str(refused.body)


def test_objects_deleted_or_edited_by_hand_are_put_back(
    k8s_api: Any, nodes: Callable[..., LeaseNode]
) -> None:
    node = nodes(H100.name)
    node.lease(4, [0], spec())
    converge(node, lambda: running(node, 4), "the lease started")
    ns = namespace_name(node.config, 4)
    core, apps = client.CoreV1Api(k8s_api), client.AppsV1Api(k8s_api)
    net = client.NetworkingV1Api(k8s_api)
    ports = node.store.recorded_host_ports(4)

    # Someone deletes the Service, the Secret and the NetworkPolicy, opens the namespace to
    # privileged pods and points the Deployment at another image.
    core.delete_namespaced_service(WORKLOAD_NAME, ns)
    core.delete_namespaced_secret(SSH_SECRET_NAME, ns)
    net.delete_namespaced_network_policy(NETWORK_POLICY_NAME, ns)
    core.patch_namespace(
        ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    )
    apps.patch_namespaced_deployment(
        WORKLOAD_NAME, ns,
        {"spec": {"template": {"spec": {"containers": [
            {"name": "gridlease-workload", "image": "docker.io/library/evil:1"}]}}}},
    )  # fmt: skip
    [status] = node.runtime.list()
    assert set(status.drift) >= {
        "namespace changed", "service missing", "secret missing", "network_policy missing",
        "deployment changed",
    }  # fmt: skip

    outcomes = node.reconcile()
    assert [type(o.action) for o in outcomes] == [ApplyWorkload]
    assert node.runtime.list()[0].drift == ()
    deployment = apps.read_namespaced_deployment(WORKLOAD_NAME, ns)
    assert deployment.spec.template.spec.containers[0].image == spec()["image"]
    enforce = core.read_namespace(ns).metadata.labels["pod-security.kubernetes.io/enforce"]
    assert enforce == "baseline"
    net.read_namespaced_network_policy(NETWORK_POLICY_NAME, ns)
    core.read_namespaced_secret(SSH_SECRET_NAME, ns)
    service = core.read_namespaced_service(WORKLOAD_NAME, ns)
    # The re-created Service asked for the recorded node ports: the customer's SSH port stays.
    assert {p.port: p.node_port for p in service.spec.ports} == ports
    converge(node, lambda: node.runtime.status(4).phase is WorkloadPhase.RUNNING, "running again")
    # Back in line: applying the lease again writes nothing.
    outcomes = apply_lease(node.runtime.apis, node.desired.build(4, spec(), (0,)), node.config)
    assert set(outcomes.values()) == {Outcome.UNCHANGED}


def test_converged_reconcile_makes_no_writes_in_six_requests(
    nodes: Callable[..., LeaseNode],
) -> None:
    node = nodes(H100.name)
    for lease_id in range(5):
        node.lease(lease_id, [lease_id], spec())
    converge(node, lambda: len(node.ledger.started) == 5, "five leases started")
    before = node.api.snapshot()
    assert node.reconcile() == []
    calls = node.api.snapshot() - before
    # One LIST of namespaces and one per kind, whatever the number of leases.
    assert calls == {"GET": 1 + len(KINDS)}
    assert CountingApiClient.writes(calls) == 0


def test_restarted_agent_completes_a_half_applied_lease_without_duplicates(
    k8s_api: Any, nodes: Callable[..., LeaseNode], agent_client: Callable[[], CountingApiClient]
) -> None:
    node = nodes(H100.name)
    document = spec()
    node.lease(5, [0, 1], document)
    # The agent was killed mid-apply: the namespace and the quota exist, nothing else.
    workload = node.desired.build(5, document, (0, 1))
    apis = KubeApis.from_client(node.api)
    apply_namespace(apis, build_namespace(workload, node.config))
    apply_object(apis, RESOURCE_QUOTA, RESOURCE_QUOTA.build(workload, node.config))

    again = node.restarted(agent_client())
    [status] = again.runtime.list()
    assert "deployment missing" in status.drift
    converge(again, lambda: running(again, 5), "the restarted agent started the lease")
    ns = namespace_name(node.config, 5)
    for kind, listing in (
        ("deployments", client.AppsV1Api(k8s_api).list_namespaced_deployment(ns)),
        ("services", client.CoreV1Api(k8s_api).list_namespaced_service(ns)),
        ("quotas", client.CoreV1Api(k8s_api).list_namespaced_resource_quota(ns)),
    ):
        assert len(listing.items) == 1, kind
    assert len(lease_pods(k8s_api, again, 5)) == 1
    assert [n.metadata.name for n in machine_namespaces(k8s_api, node.machine)] == [ns]

    # A third instance (another restart) finds everything in place and writes nothing.
    third = again.restarted(agent_client())
    assert third.reconcile() == []
    assert CountingApiClient.writes(third.api.snapshot()) == 0
    assert node.ledger.started == [5]


def test_ending_a_lease_deletes_everything_it_created(
    k8s_api: Any, nodes: Callable[..., LeaseNode]
) -> None:
    node = nodes(A100.name)
    node.lease(6, [0], spec())
    converge(node, lambda: running(node, 6), "the lease started")
    ns = namespace_name(node.config, 6)
    node.ledger.end(6)
    outcomes = node.reconcile()
    assert DeleteWorkload in [type(o.action) for o in outcomes]
    core = client.CoreV1Api(k8s_api)

    def gone() -> bool:
        try:
            core.read_namespace(ns)
        except ApiException as e:
            return e.status == 404
        return False

    converge(node, gone, "the lease namespace deleted")
    assert node.runtime.list() == []
    selector = labels.machine_selector(labels.kube_node_value(node.machine))
    for listing in (
        core.list_pod_for_all_namespaces(label_selector=selector),
        core.list_service_for_all_namespaces(label_selector=selector),
        core.list_secret_for_all_namespaces(label_selector=selector),
        client.AppsV1Api(k8s_api).list_deployment_for_all_namespaces(label_selector=selector),
    ):
        assert listing.items == []


def test_agent_role_is_enough_and_nothing_more(
    k8s_api: Any,
    nodes: Callable[..., LeaseNode],
    agent_client: Callable[[], CountingApiClient],
    k8s_namespace: Callable[[str], str],
) -> None:
    # Everything above ran as the agent's service account; here what lies outside its role.
    node = nodes(H100.name)
    node.lease(8, [0], spec())
    converge(node, lambda: running(node, 8), "the lease started")
    agent = agent_client()
    core, apps = client.CoreV1Api(agent), client.AppsV1Api(agent)
    other = k8s_namespace("other")
    client.CoreV1Api(k8s_api).create_namespaced_secret(
        other, client.V1Secret(metadata=client.V1ObjectMeta(name="db-password"),
                               string_data={"password": "hunter2"}),
    )  # fmt: skip

    forbidden(lambda: core.list_namespaced_secret("kube-system"))
    forbidden(lambda: core.read_namespaced_secret("db-password", other))
    forbidden(lambda: core.list_secret_for_all_namespaces())
    forbidden(lambda: apps.list_deployment_for_all_namespaces())
    forbidden(lambda: core.create_namespaced_secret(
        other, client.V1Secret(metadata=client.V1ObjectMeta(name=SSH_SECRET_NAME))))  # fmt: skip
    forbidden(lambda: core.delete_namespaced_pod("anything", other))
    # Namespace writes are the agent's only unnamed grant: the admission policy keeps them to
    # the namespaces it manages.
    denied_by_policy(lambda: core.delete_namespace(other))
    denied_by_policy(lambda: core.patch_namespace(
        "kube-system", {"metadata": {"labels": {"pod-security.kubernetes.io/enforce":
                                                "privileged"}}}))  # fmt: skip
    denied_by_policy(lambda: core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=f"{other}-unmanaged"))))  # fmt: skip
    ns = namespace_name(node.config, 8)
    denied_by_policy(lambda: core.patch_namespace(
        ns, {"metadata": {"labels": {labels.MANAGED_BY: None}}}))  # fmt: skip
    # And its own lease's Secret it may read (the one name it is granted).
    assert core.read_namespaced_secret(SSH_SECRET_NAME, ns).metadata.name == SSH_SECRET_NAME


def test_factory_builds_the_kubernetes_runtime_for_simulated_gpus(
    k8s_cluster: DevCluster, agent_access: AgentAccess, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # As the agent starts it: from a kubeconfig (the service account's token), SIMULATED GPUs,
    # checked against its node; a node that does not exist is a start-up error, not a lease
    # that stays Pending.
    kubeconfig = token_kubeconfig(tmp_path / "kubeconfig", k8s_cluster, agent_access.token)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    machine = new_machine_id()

    def make(node_name: str | None) -> Any:
        return make_runtime("kubernetes", simulated=True, publish_host="0.0.0.0", node=machine,
                            kube_node_name=node_name)  # fmt: skip

    runtime = make(H100.name)
    assert isinstance(runtime, KubernetesRuntime)
    assert runtime.config.simulated and runtime.config.node_name == H100.name
    assert runtime.check_node() == H100.gpus
    assert runtime.list() == []
    with pytest.raises(ConfigError, match="cannot read node 'no-such-node'"):
        make("no-such-node")
    with pytest.raises(ConfigError, match="kube_node_name"):
        make(None)


# -- the agent process, with the dev chain --------------------------------------------------------
def node_machine_id(node: NodeProcess) -> bytes:
    keypair = keypair_from_secret((node.data_dir / "machine.key").read_text())
    return machine_id_for(bytes(keypair.public_key))


@pytest.fixture
def agent_process(
    k8s_cluster: DevCluster,
    k8s_api: Any,
    agent_access: AgentAccess,
    dev_chain: DevChain,
    tmp_path: Path,
) -> Iterator[NodeProcess]:
    """`gridlease-node run` on the dev chain with the kubernetes runtime, as the agent's service
    account, pinned to the 4-GPU fake node while its machine registers 8 SIMULATED GPUs (so the
    chain grants leases the node cannot hold)."""
    kubeconfig = token_kubeconfig(tmp_path / "kubeconfig", k8s_cluster, agent_access.token)
    env = {
        "GRIDLEASE_NODE_CHAIN_URL": dev_chain.url,
        "GRIDLEASE_NODE_PROVIDER_SECRET": "//Alice",
        "GRIDLEASE_NODE_SIMULATE_GPUS": "h100:8",
        "GRIDLEASE_NODE_RUNTIME": "kubernetes",
        "GRIDLEASE_NODE_KUBE_NODE_NAME": A100.name,
        "GRIDLEASE_NODE_PUBLIC_HOST": "127.0.0.1",
        "GRIDLEASE_NODE_RECONCILE_INTERVAL_S": "1",
        "GRIDLEASE_NODE_HEARTBEAT_CHECK_S": "1",
        "KUBECONFIG": str(kubeconfig),
    }
    process = NodeProcess(tmp_path / "node", free_port(), free_port(), env).start()
    yield process
    process.stop()
    delete_machine_namespaces(k8s_api, node_machine_id(process).hex())


def test_agent_process_runs_a_chain_lease_as_a_pod_and_starts_it(
    k8s_api: Any, agent_process: NodeProcess, dev_chain: DevChain
) -> None:
    node = agent_process
    chain = dev_chain.client()
    machine_id = node_machine_id(node)
    bob = dev_key("Bob")
    document = spec(ports=[8080], memory_mib=256)
    fits, created = create_lease(chain, bob, machine_id, document, gpus=2)
    assert node.stub().SubmitWorkload(submission(fits, document, bob), timeout=30).accepted

    def started(lease_id: int) -> bool:
        lease = chain.lease(lease_id)
        return lease is not None and lease.state == "Running"

    node_wait_for(lambda: started(fits), what="the node to start the lease on chain")
    status = node.stub().GetLeaseStatus(node_pb2.GetLeaseStatusRequest(lease_id=fits))
    assert status.status == node_pb2.WORKLOAD_STATUS_RUNNING
    ns = f"gl-{labels.kube_node_value(machine_id.hex())}-{fits}"
    service = client.CoreV1Api(k8s_api).read_namespaced_service(WORKLOAD_NAME, ns)
    node_ports = {p.port: p.node_port for p in service.spec.ports}
    assert status.ssh_port == node_ports[2222]
    [pod] = client.CoreV1Api(k8s_api).list_namespaced_pod(ns).items
    assert (pod.spec.node_name, pod.status.phase) == (A100.name, "Running")

    # 2 + 4 GPUs on a node of 4: the chain grants it, the scheduler cannot place it. The node
    # says why and never starts it.
    too_big, _ = create_lease(chain, bob, machine_id, document, gpus=4)
    assert node.stub().SubmitWorkload(submission(too_big, document, bob), timeout=30).accepted

    def pending_reason() -> str | None:
        reply = node.stub().GetLeaseStatus(node_pb2.GetLeaseStatusRequest(lease_id=too_big))
        return reply.message if "Insufficient" in reply.message else None

    reason = node_wait_for(pending_reason, what="the scheduler's reason in GetLeaseStatus")
    assert reason.startswith("unschedulable:") and GPU_RESOURCE in reason
    lease = chain.lease(too_big)
    assert lease is not None and lease.state == "Pending"

    # kill -9 and start again: nothing duplicated, the running lease not started twice.
    node.kill()
    node.start()
    node_wait_for(
        lambda: node.metric("gridlease_node_reconcile_seconds_count") >= 2,
        what="two reconcile runs after the restart",
    )
    assert len(client.CoreV1Api(k8s_api).list_namespaced_pod(ns).items) == 1
    assert count_events(chain, "LeaseStarted", fits, created) == 1
    again = node.stub().GetLeaseStatus(node_pb2.GetLeaseStatusRequest(lease_id=fits))
    assert again.ssh_port == status.ssh_port

    chain.gpu_rental(bob, "terminate_lease", lease_id=fits)
    chain.gpu_rental(bob, "cancel_lease", lease_id=too_big)
    node_wait_for(
        lambda: not machine_namespaces(k8s_api, machine_id.hex()),
        what="the node to remove both lease namespaces",
    )
    chain.close()
