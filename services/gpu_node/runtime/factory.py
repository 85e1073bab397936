"""The runtime a node's settings ask for."""

from __future__ import annotations

from services.common import ConfigError
from services.gpu_node.runtime.base import WorkloadRuntime
from services.gpu_node.runtime.images import ensure_sshd_image
from services.gpu_node.runtime.podman import GpuAttach, PodmanConfig, PodmanRuntime
from services.gpu_node.runtime.podman_cli import PodmanCli

__all__ = ["make_runtime"]


def make_runtime(
    kind: str,
    *,
    simulated: bool,
    publish_host: str,
    node: str,
    kube_context: str | None = None,
    kube_node_name: str | None = None,
    kube_runtime_class: str = "nvidia",
) -> WorkloadRuntime:
    """`node` (the hex machine id) scopes the workloads this node sees to its own.

    Kubernetes: `kube_node_name` is the node that is this machine (required: pods are pinned to
    it); `kube_runtime_class` the RuntimeClass of lease pods ("": none, the node's default runtime,
    as on a node with SIMULATED GPUs, which has no NVIDIA runtime handler). SIMULATED GPUs work
    there too: the pods ask the scheduler for the node's advertised `nvidia.com/gpu` (a fake
    node's in tests) and every object is labelled simulated. ConfigError when the runtime is
    unknown or cannot start."""
    if kind == "podman":
        podman = PodmanCli()
        if not podman.available():
            raise ConfigError("runtime podman: the podman binary is not installed")
        # The lease image is built locally (no registry); make sure it is there before leases.
        ensure_sshd_image(podman)
        # Simulated GPUs have no devices to attach; real ones come through CDI.
        attach = GpuAttach.SIMULATED if simulated else GpuAttach.CDI
        config = PodmanConfig(
            gpu_attach=attach,
            publish_host=publish_host,
            name_prefix=f"gridlease-{node[:12]}-lease-",
            node=node,
        )
        return PodmanRuntime(config, podman)
    if kind == "kubernetes":
        from services.gpu_node.runtime.kubernetes.builders import BuildConfig
        from services.gpu_node.runtime.kubernetes.runtime import KubernetesRuntime

        if not kube_node_name:
            raise ConfigError(
                "runtime kubernetes needs kube_node_name (GRIDLEASE_NODE_KUBE_NODE_NAME; the "
                "DaemonSet sets it from spec.nodeName)"
            )
        build = BuildConfig(
            machine=node,
            node_name=kube_node_name,
            runtime_class_name=kube_runtime_class or None,
            simulated=simulated,
        )
        return KubernetesRuntime.connect(build, kube_context)
    raise ConfigError(f"unknown runtime {kind!r}")
