"""The GPU node agent's reconcile loop against the Kubernetes test cluster, without a chain: the
agent's real observe/plan/executor, NodeStore, DesiredWorkloads and KubernetesRuntime, with the
chain replaced by an in-memory ledger of leases (the chain is not what these tests are about; the
agent process test in test_gpu_node_backend.py uses the real dev chain).

Also the agent's RBAC (deploy/helm/gridlease/files/gpu-node-rbac.yaml) installed under names of
one's own, and a service-account token bound to it. Used by tests/k8s and
bench/k8s_reconcile_bench.py."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from services.common import MachineResources, spec_hash
from services.common._chain import ChainLease
from services.devstack.cluster import DevCluster
from services.gpu_node import labels
from services.gpu_node.desired import DesiredWorkloads
from services.gpu_node.gpus import GpuSet, build_gpu_set
from services.gpu_node.hardware.model import GpuDevice, Inventory
from services.gpu_node.reconcile.executor import Executor, Outcome
from services.gpu_node.reconcile.observe import observe
from services.gpu_node.reconcile.plan import plan
from services.gpu_node.runtime.kubernetes.apply import KubeApis
from services.gpu_node.runtime.kubernetes.builders import BuildConfig
from services.gpu_node.runtime.kubernetes.client import CountingApiClient
from services.gpu_node.runtime.kubernetes.runtime import KubernetesRuntime
from services.gpu_node.store import NodeStore

REPO = Path(__file__).resolve().parents[2]
RBAC_FILE = REPO / "deploy" / "helm" / "gridlease" / "files" / "gpu-node-rbac.yaml"
RBAC_NAMESPACE, RBAC_NAME = "gridlease-system", "gridlease-gpu-node"
SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA/YoadV/E3/AmhRVgdn0qULqXkEtLwBNRdNViOJa+1j "
    "test@gridlease"
)
IMAGE = "localhost/gridlease-sshd:1"
# A machine whose share per GPU is 1 CPU and 4 GiB (of 8 GPUs).
HOST = MachineResources(cpu_millicores=8000, memory_mib=32768)
START_WINDOW = 10**6


def spec(**fields: Any) -> dict[str, Any]:
    """A valid workload spec (as a customer signs it); keyword arguments replace fields."""
    return {
        "version": 1,
        "image": IMAGE,
        "ssh_public_key": SSH_KEY,
        "ports": [8080],
        "cpu_millicores": 500,
        "memory_mib": 512,
        **fields,
    }


def new_machine_id() -> str:
    """A random hex machine id (64 digits), as the agent derives from its machine key."""
    return secrets.token_hex(32)


def gpu_set(store: NodeStore, machine: str, count: int) -> GpuSet:
    """`count` SIMULATED H100s of `machine` on slots 0.. (recorded in `store`)."""
    gpus = tuple(
        GpuDevice(i, f"GPU-{machine[:8]}-{i}", "NVIDIA H100 80GB HBM3", 80 << 30,
                  f"0000:{i:02x}:00.0", "9.0", False, 700.0, 0, 0, 30, 70.0)
        for i in range(count)
    )  # fmt: skip
    return build_gpu_set(Inventory("550", "12.4", gpus, simulated=True), store,
                         "NVIDIA H100 80GB HBM3")  # fmt: skip


class Ledger:
    """The chain, as far as the node's reconcile reads and writes it: one machine's leases.
    Implements what observe() reads of a ChainClient and the executor's LeaseOps."""

    def __init__(self, machine_id: bytes) -> None:
        self.machine_id = machine_id
        self.block = 100
        self.leases: dict[int, ChainLease] = {}
        self.started: list[int] = []

    # -- ChainClient reads (observe) --
    def finalized_head(self) -> str:
        return f"0x{self.block:064x}"

    def best_head(self) -> str:
        """No forks here: the best block is the finalized one (as on Chopsticks)."""
        return self.finalized_head()

    def block_number(self, block_hash: str | None = None) -> int:
        return self.block

    def machine_leases(self, machine_id: bytes, block_hash: str | None = None) -> list[int]:
        return sorted(self.leases) if machine_id == self.machine_id else []

    def lease(self, lease_id: int, block_hash: str | None = None) -> ChainLease | None:
        return self.leases.get(lease_id)

    def machine(self, machine_id: bytes | None = None, block_hash: str | None = None) -> None:
        return None

    # -- LeaseOps (executor) --
    def start_lease(self, lease_id: int) -> None:
        lease = self.leases[lease_id]
        self.leases[lease_id] = dataclasses.replace(lease, state="Running", started_at=self.block)
        self.started.append(lease_id)

    def claim_payment(self, lease_id: int) -> int:
        return 0

    def cancel_lease(self, lease_id: int) -> None:
        self.leases.pop(lease_id, None)

    def update_gpus(self, gpus_present: int) -> int:
        return 0

    def create(self, lease_id: int, gpu_slots: Iterable[int], document: Mapping[str, Any]) -> None:
        mask = sum(1 << slot for slot in gpu_slots)
        self.leases[lease_id] = ChainLease(
            lease_id, self.machine_id, "5Customer", mask.bit_count(), mask, 1, 10**6,
            spec_hash(dict(document)), "Pending", self.block, 0, self.block + 10**6, self.block, 0,
        )  # fmt: skip

    def end(self, lease_id: int) -> None:
        self.leases.pop(lease_id)


class LeaseNode:
    """One GPU machine's agent, minus gRPC and the chain: a store in `data_dir`, SIMULATED GPUs
    (`gpus` of them), and a KubernetesRuntime on `node_name` over `api` (its requests counted).
    `ledger`: the chain to share with an earlier instance (a restart); a new one by default.
    `runtime`: one made elsewhere (e.g. by the agent's factory, over `api`) instead of the
    default one (BuildConfig's defaults, SIMULATED)."""

    def __init__(
        self,
        api: CountingApiClient,
        machine: str,
        node_name: str,
        data_dir: Path,
        gpus: int = 8,
        ledger: Ledger | None = None,
        runtime: KubernetesRuntime | None = None,
    ) -> None:
        self.api, self.machine, self.node_name, self.data_dir = api, machine, node_name, data_dir
        self.gpus = gpus
        self.ledger = ledger or Ledger(bytes.fromhex(machine))
        self.store = NodeStore(data_dir / "node.db")
        slots = gpu_set(self.store, machine, gpus)
        config = BuildConfig(machine=machine, node_name=node_name, simulated=True)
        self.runtime = runtime or KubernetesRuntime(KubeApis.from_client(api), config)
        if (self.runtime.config.machine, self.runtime.config.node_name) != (machine, node_name):
            raise ValueError("runtime: built for another machine or node")
        self.desired = DesiredWorkloads(self.store, lambda: slots, HOST, None, lambda _: True)
        self.executor = Executor(self.runtime, self.ledger, self.store, self.desired)

    @property
    def config(self) -> BuildConfig:
        return self.runtime.config

    def restarted(self, api: CountingApiClient) -> LeaseNode:
        """The same machine's agent started again: same store and chain, a new runtime (same
        configuration) over `api`."""
        runtime = KubernetesRuntime(KubeApis.from_client(api), self.config, self.runtime.node_host)
        return LeaseNode(
            api, self.machine, self.node_name, self.data_dir, self.gpus, self.ledger, runtime
        )

    def lease(self, lease_id: int, gpu_slots: Iterable[int], document: Mapping[str, Any]) -> None:
        """A lease of this machine on the ledger whose spec the node accepted."""
        slots = list(gpu_slots)
        self.ledger.create(lease_id, slots, document)
        self.store.accept(lease_id, dict(document), spec_hash(dict(document)), "5Customer",
                          self.ledger.block)  # fmt: skip

    def reconcile(self) -> list[Outcome]:
        """One run of the agent's loop: observe (ledger, store, cluster), plan, execute."""
        observation = observe(
            self.ledger,  # reads like a ChainClient
            self.ledger.machine_id,
            self.store,
            self.runtime,
            start_window=START_WINDOW,
            claim_every=0,
        )
        return self.executor.run(plan(observation.view))

    def close(self) -> None:
        self.store.close()


# -- RBAC ------------------------------------------------------------------------------------------
def rbac_documents(namespace: str, name: str) -> list[dict[str, Any]]:
    """The agent's RBAC file with its service account in `namespace` and every object (and the
    policy's CEL) named `name`: as the Helm chart renders it."""
    text = RBAC_FILE.read_text().replace(RBAC_NAMESPACE, namespace).replace(RBAC_NAME, name)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def install_rbac(api: Any, namespace: str, name: str) -> None:
    """Creates the RBAC file's objects (as the admin `api`); the namespace must exist."""
    utils.create_from_yaml(api, yaml_objects=rbac_documents(namespace, name))


def uninstall_rbac(api: Any, name: str) -> None:
    """Deletes the cluster-wide objects install_rbac made (the namespace goes with the test)."""
    rbac = client.RbacAuthorizationV1Api(api)
    admission = client.AdmissionregistrationV1Api(api)
    for delete in (
        rbac.delete_cluster_role_binding,
        rbac.delete_cluster_role,
        admission.delete_validating_admission_policy_binding,
        admission.delete_validating_admission_policy,
    ):
        try:
            delete(name)
        except ApiException as e:
            if e.status != 404:
                raise


def service_account_token(api: Any, namespace: str, name: str, seconds: int = 7200) -> str:
    """A token of service account `name` from the TokenRequest API (as a pod's projected token)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    reply = client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
    return str(reply.status.token)


def machine_namespaces(admin: Any, machine: str) -> list[Any]:
    """Every namespace carrying machine `machine`'s NODE label (as the admin sees them)."""
    selector = labels.machine_selector(labels.kube_node_value(machine))
    return list(client.CoreV1Api(admin).list_namespace(label_selector=selector).items)


def delete_machine_namespaces(admin: Any, machine: str) -> None:
    for ns in machine_namespaces(admin, machine):
        try:
            client.CoreV1Api(admin).delete_namespace(ns.metadata.name)
        except ApiException as e:
            if e.status not in (404, 409):
                raise


@dataclasses.dataclass(frozen=True)
class AgentAccess:
    """The agent's service account (in `namespace`, bound to the ClusterRole `name`) and a token."""

    namespace: str
    name: str
    token: str


def token_kubeconfig(path: Path, cluster: DevCluster, token: str) -> Path:
    """A kubeconfig that authenticates with the agent's service-account token (not as admin)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": cluster.server,
                    "certificate-authority": str(cluster.pki_dir / "ca.crt"),
                },
            }
        ],
        "users": [{"name": "agent", "user": {"token": token}}],
        "contexts": [{"name": "agent", "context": {"cluster": "test", "user": "agent"}}],
        "current-context": "agent",
    }
    path.write_text(yaml.safe_dump(doc))
    return path
