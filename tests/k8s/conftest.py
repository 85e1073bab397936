"""The Kubernetes test cluster (services.devstack.cluster) for the tests under tests/k8s: one real
control plane per session (etcd, kube-apiserver with RBAC, controller manager, scheduler, KWOK
with two fake GPU nodes) and one real node (kubelet on containerd, `REAL_NODE`), an admin
`kubernetes` client, and per-test namespaces.

The binaries must be built first (deploy/testcluster/build.sh; scripts/test.sh does it in its
"kubernetes test cluster" phase): a cold build takes far longer than a test's timeout. The real
node needs root and Debian's containerd, runc, CNI plugins and busybox-static (the "system
packages" phase installs them)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from services.devstack.cluster import DevCluster, ensure_binaries
from services.gpu_node.runtime.kubernetes.client import CountingApiClient
from tests.k8s.gpu_node_harness import (
    AgentAccess,
    install_rbac,
    service_account_token,
    uninstall_rbac,
)
from tests.k8s.kube import REAL_NODE, create_namespace, processes_mentioning


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """The running cluster; stopped at the end of the session, and checked to leave no process
    behind."""
    cluster = DevCluster(
        tmp_path_factory.mktemp("k8s"),
        bin_dir=ensure_binaries(build=False),
        say=lambda _: None,
        with_kubelet=True,
        real_node=REAL_NODE,
    )
    cluster.up()
    processes = cluster.state.load()
    yield cluster
    cluster.down()
    leftovers = [name for name, proc in processes.items() if proc.alive()]
    assert not leftovers, f"cluster processes still running after down(): {leftovers}"
    # Nor anything they started (containerd's shims name the node's socket under the root).
    assert processes_mentioning(str(cluster.root)) == []


@pytest.fixture(scope="session")
def k8s_api(k8s_cluster: DevCluster) -> Iterator[Any]:
    """A `kubernetes.client.ApiClient` authenticated as the cluster admin."""
    api = k8s_cluster.api_client()
    yield api
    api.close()


@pytest.fixture
def ns_prefix(request: pytest.FixtureRequest) -> str:
    """A namespace-name prefix of this test's own (from its name, plus a random part); every
    namespace whose name starts with it is deleted after the test."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    name = name.removeprefix("test-")[:30].strip("-")
    return f"t-{name}-{secrets.token_hex(3)}"


@pytest.fixture
def k8s_namespace(k8s_api: Any, ns_prefix: str) -> Iterator[Callable[[str], str]]:
    """Creates namespaces `<ns_prefix>-<suffix>` (waiting for their default service account) and
    returns their names; deletes every namespace with the test's prefix afterwards."""
    core = client.CoreV1Api(k8s_api)

    def make(suffix: str = "ns") -> str:
        return create_namespace(core, f"{ns_prefix}-{suffix}")

    yield make
    for ns in core.list_namespace().items:
        if ns.metadata.name.startswith(ns_prefix):
            core.delete_namespace(ns.metadata.name)


@pytest.fixture(scope="module")
def agent_access(k8s_cluster: DevCluster, k8s_api: Any) -> Iterator[AgentAccess]:
    """The GPU node agent's RBAC file installed under names of this module's own, and a token
    of its service account."""
    suffix = secrets.token_hex(3)
    namespace = create_namespace(client.CoreV1Api(k8s_api), f"t-gpu-node-agent-{suffix}")
    name = f"gridlease-gpu-node-{suffix}"
    install_rbac(k8s_api, namespace, name)
    yield AgentAccess(namespace, name, service_account_token(k8s_api, namespace, name))
    uninstall_rbac(k8s_api, name)
    client.CoreV1Api(k8s_api).delete_namespace(namespace)


@pytest.fixture
def agent_client(
    k8s_cluster: DevCluster, agent_access: AgentAccess
) -> Iterator[Callable[[], CountingApiClient]]:
    """Makes API clients authenticated as the agent's service account, counting requests."""
    made: list[CountingApiClient] = []

    def make() -> CountingApiClient:
        plain = k8s_cluster.token_client(agent_access.token)
        counting = CountingApiClient(plain.configuration)
        plain.close()
        made.append(counting)
        return counting

    yield make
    for api in made:
        api.close()
