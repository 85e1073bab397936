"""The workload: a one-replica Deployment holding the leased GPUs, pinned to the machine, locked
down.

Recreate, not RollingUpdate: a surge pod would ask for the same GPUs while the old pod holds them.
Requests equal limits, so the pod is Guaranteed QoS and is the last to be evicted.

Placement: the pod must run on this agent's machine, whose GPUs the chain leased. A required node
affinity on the node's *name* (`matchFields metadata.name`, as the DaemonSet controller pins its
pods) does it; the `kubernetes.io/hostname` label usually equals the name but need not. The
scheduler still places the pod, so a lease that does not fit stays Pending with its reason.

Which GPUs: the pod asks for `nvidia.com/gpu: <count of the lease's slots>`, not for boards. On
Kubernetes the NVIDIA device plugin hands out the boards of the node, which are exactly this
machine's, and never gives one board to two pods; the chain never leases more GPUs of a machine
than it has. So "no GPU in two leases" holds on the hardware without naming boards, though the
board a lease's pod gets need not be the one of its chain slot: the slot's UUID is kept in the
`gridlease/gpu-uuids` annotation for people, and the pod's real boards are known only to the
kubelet (its PodResources API), not to the API server.
"""

from __future__ import annotations

from kubernetes.client import (
    V1Affinity,
    V1Capabilities,
    V1Container,
    V1ContainerPort,
    V1Deployment,
    V1DeploymentSpec,
    V1DeploymentStrategy,
    V1EnvVar,
    V1LabelSelector,
    V1NodeAffinity,
    V1NodeSelector,
    V1NodeSelectorRequirement,
    V1NodeSelectorTerm,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1Probe,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretVolumeSource,
    V1SecurityContext,
    V1TCPSocketAction,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)

from services.gpu_node.runtime.base import LeaseWorkload, container_env
from services.gpu_node.runtime.images import SSHD_CAPABILITIES, SSHD_CONTAINER_PORT
from services.gpu_node.runtime.kubernetes.builders.common import (
    SSH_KEY_DIR,
    SSH_KEY_FILE,
    SSH_SECRET_NAME,
    WORKLOAD_NAME,
    BuildConfig,
    cpu_quantity,
    lease_metadata,
    memory_quantity,
    object_labels,
    selector_labels,
)

__all__ = ["build_deployment"]


def _resources(workload: LeaseWorkload, config: BuildConfig) -> V1ResourceRequirements:
    amounts = {
        "cpu": cpu_quantity(workload.cpu_millicores),
        "memory": memory_quantity(workload.memory_mib),
    }
    if workload.gpu_indices:
        amounts[config.gpu_resource] = str(len(workload.gpu_indices))
    return V1ResourceRequirements(limits=dict(amounts), requests=dict(amounts))


def _container(workload: LeaseWorkload, config: BuildConfig) -> V1Container:
    node_env = {
        "GRIDLEASE_LEASE_ID": str(workload.lease_id),
        "GRIDLEASE_SSH_AUTHORIZED_KEY_FILE": SSH_KEY_FILE,
    }
    # An empty value is left out: the API server stores `{"name": "X"}` for `value: ""` (the
    # same variable, set to ""), and writing "" would look like a change on every reconcile.
    env = [V1EnvVar(name=k, value=v or None) for k, v in container_env(workload, node_env)]
    ports = [V1ContainerPort(name="ssh", container_port=SSHD_CONTAINER_PORT, protocol="TCP")]
    ports += [
        V1ContainerPort(name=f"p{port}", container_port=port, protocol="TCP")
        for port in workload.ports
    ]
    return V1Container(
        name=WORKLOAD_NAME,
        image=workload.image,
        # The image's entrypoint starts sshd and runs the lease command beside it.
        args=list(workload.command) or None,
        env=env,
        ports=ports,
        resources=_resources(workload, config),
        volume_mounts=[V1VolumeMount(name="ssh-key", mount_path=SSH_KEY_DIR, read_only=True)],
        # Ready once sshd accepts connections: the agent starts the lease on chain only then.
        readiness_probe=V1Probe(
            tcp_socket=V1TCPSocketAction(port=SSHD_CONTAINER_PORT), period_seconds=2
        ),
        security_context=V1SecurityContext(
            privileged=False,
            allow_privilege_escalation=False,
            capabilities=V1Capabilities(drop=["ALL"], add=list(SSHD_CAPABILITIES)),
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
    )


def _pin_to_node(node_name: str) -> V1Affinity:
    term = V1NodeSelectorTerm(
        match_fields=[
            V1NodeSelectorRequirement(key="metadata.name", operator="In", values=[node_name])
        ]
    )
    return V1Affinity(
        node_affinity=V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=V1NodeSelector(
                node_selector_terms=[term]
            )
        )
    )


def build_deployment(workload: LeaseWorkload, config: BuildConfig) -> V1Deployment:
    selector = selector_labels(workload, config)
    return V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=lease_metadata(workload, config, WORKLOAD_NAME),
        spec=V1DeploymentSpec(
            replicas=1,
            strategy=V1DeploymentStrategy(type="Recreate"),
            selector=V1LabelSelector(match_labels=selector),
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=object_labels(workload, config)),
                spec=V1PodSpec(
                    affinity=_pin_to_node(config.node_name),
                    # GPU nodes are often tainted so that only GPU pods land there.
                    tolerations=[
                        V1Toleration(
                            key=config.gpu_resource, operator="Exists", effect="NoSchedule"
                        )
                    ],
                    runtime_class_name=config.runtime_class_name,
                    automount_service_account_token=False,
                    # No service env vars: they would leak the cluster's other services.
                    enable_service_links=False,
                    # hostNetwork/hostPID/hostIPC are left unset, which is false: the server
                    # drops an explicit false, so setting it would read as drift at every
                    # reconcile. Pod Security (baseline) refuses true in lease namespaces.
                    security_context=V1PodSecurityContext(
                        seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
                    ),
                    containers=[_container(workload, config)],
                    volumes=[
                        V1Volume(
                            name="ssh-key",
                            secret=V1SecretVolumeSource(
                                secret_name=SSH_SECRET_NAME, default_mode=0o400
                            ),
                        )
                    ],
                ),
            ),
        ),
    )
