"""Default deny both ways, then: ingress to the lease's own ports, egress to the internet and DNS.

Egress excludes private, link-local (cloud metadata at 169.254.169.254) and carrier-grade NAT
ranges, so a lease cannot reach the provider's network, the cluster or other leases.
"""

from __future__ import annotations

from kubernetes.client import (
    V1IPBlock,
    V1LabelSelector,
    V1NetworkPolicy,
    V1NetworkPolicyEgressRule,
    V1NetworkPolicyIngressRule,
    V1NetworkPolicyPeer,
    V1NetworkPolicyPort,
    V1NetworkPolicySpec,
)

from services.gpu_node.runtime.base import LeaseWorkload
from services.gpu_node.runtime.images import SSHD_CONTAINER_PORT
from services.gpu_node.runtime.kubernetes.builders.common import (
    NETWORK_POLICY_NAME,
    BuildConfig,
    lease_metadata,
)

__all__ = ["BLOCKED_EGRESS_CIDRS", "build_network_policy"]

BLOCKED_EGRESS_CIDRS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
)


def _dns_rule() -> V1NetworkPolicyEgressRule:
    return V1NetworkPolicyEgressRule(
        to=[
            V1NetworkPolicyPeer(
                namespace_selector=V1LabelSelector(
                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                ),
                pod_selector=V1LabelSelector(match_labels={"k8s-app": "kube-dns"}),
            )
        ],
        ports=[
            V1NetworkPolicyPort(protocol="UDP", port=53),
            V1NetworkPolicyPort(protocol="TCP", port=53),
        ],
    )


def build_network_policy(workload: LeaseWorkload, config: BuildConfig) -> V1NetworkPolicy:
    exposed = [SSHD_CONTAINER_PORT, *workload.ports]
    return V1NetworkPolicy(
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        metadata=lease_metadata(workload, config, NETWORK_POLICY_NAME),
        spec=V1NetworkPolicySpec(
            # Empty selector: every pod of the lease namespace.
            pod_selector=V1LabelSelector(),
            policy_types=["Ingress", "Egress"],
            ingress=[
                V1NetworkPolicyIngressRule(
                    _from=[V1NetworkPolicyPeer(ip_block=V1IPBlock(cidr="0.0.0.0/0"))],
                    ports=[V1NetworkPolicyPort(protocol="TCP", port=p) for p in exposed],
                ),
                # Pods of the same lease may talk to each other on any port.
                V1NetworkPolicyIngressRule(
                    _from=[V1NetworkPolicyPeer(pod_selector=V1LabelSelector())]
                ),
            ],
            egress=[
                V1NetworkPolicyEgressRule(
                    to=[
                        V1NetworkPolicyPeer(
                            ip_block=V1IPBlock(cidr="0.0.0.0/0", _except=list(BLOCKED_EGRESS_CIDRS))
                        )
                    ]
                ),
                _dns_rule(),
                V1NetworkPolicyEgressRule(to=[V1NetworkPolicyPeer(pod_selector=V1LabelSelector())]),
            ],
        ),
    )
