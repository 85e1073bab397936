"""The workload: a one-replica Deployment holding the leased GPUs, locked down.

Recreate, not RollingUpdate: a surge pod would ask for the same GPUs while the old pod holds them.
Requests equal limits, so the pod is Guaranteed QoS and is the last to be evicted.
"""

from __future__ import annotations

from kubernetes.client import (
    V1Capabilities,
    V1Container,
    V1ContainerPort,
    V1Deployment,
    V1DeploymentSpec,
    V1DeploymentStrategy,
    V1EnvVar,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretVolumeSource,
    V1SecurityContext,
    V1Volume,
    V1VolumeMount,
)

from services.gpu_node import labels
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
    env = [V1EnvVar(name=k, value=v) for k, v in container_env(workload, node_env)]
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
        security_context=V1SecurityContext(
            privileged=False,
            allow_privilege_escalation=False,
            capabilities=V1Capabilities(drop=["ALL"], add=list(SSHD_CAPABILITIES)),
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
    )


def build_deployment(workload: LeaseWorkload, config: BuildConfig) -> V1Deployment:
    selector = labels.lease_labels(workload.lease_id)
    return V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=lease_metadata(workload, WORKLOAD_NAME),
        spec=V1DeploymentSpec(
            replicas=1,
            strategy=V1DeploymentStrategy(type="Recreate"),
            selector=V1LabelSelector(match_labels=selector),
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=dict(selector)),
                spec=V1PodSpec(
                    runtime_class_name=config.runtime_class_name,
                    automount_service_account_token=False,
                    # No service env vars: they would leak the cluster's other services.
                    enable_service_links=False,
                    host_network=False,
                    host_pid=False,
                    host_ipc=False,
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
