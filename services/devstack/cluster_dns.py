"""Cluster DNS for the test cluster's real node, as a kubeadm cluster has it: CoreDNS (built by
deploy/testcluster/build.sh with only the plugins used here) serving `cluster.local` from the API
server and forwarding other names to this machine's resolvers, behind the Service
`kube-system/kube-dns` at a fixed service IP (cluster.py's DNS_SERVICE_IP), which the kubelet
gives pods as their nameserver.

CoreDNS runs as a host process on the node's address and a free port (not 53, so it never meets
another resolver or a second cluster); the Service has no selector, and an EndpointSlice written
here points it there, so kube-proxy carries pods' queries to port 53 of the Service IP over. Pure
builders: cluster.py writes and creates what they return."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

__all__ = [
    "CLUSTER_DOMAIN",
    "COREDNS_USER",
    "corefile",
    "dns_objects",
]

CLUSTER_DOMAIN = "cluster.local"
# The user name in CoreDNS's client certificate, bound to its ClusterRole below.
COREDNS_USER = "system:coredns"
_MANAGED_BY = "gridlease-devcluster"


def corefile(node_ip: str, port: int, health_port: int, ready_port: int, kubeconfig: Path) -> str:
    """CoreDNS's configuration: answer on `node_ip:port` (UDP and TCP); `cluster.local` and the
    reverse zones from the API server (as `kubeconfig`'s user), everything else forwarded to the
    resolvers of /etc/resolv.conf; /health on 127.0.0.1:`health_port`, /ready (200 once the
    Kubernetes plugin has synced) on 127.0.0.1:`ready_port`."""
    ipaddress.ip_address(node_ip)  # ValueError on anything else
    return f""".:{port} {{
    bind {node_ip}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    forward . /etc/resolv.conf
    cache 30
    loadbalance
}}
"""


def dns_objects(node_ip: str, port: int, service_ip: str) -> list[tuple[str, dict[str, Any]]]:
    """(API path to POST to, object) for: CoreDNS's ClusterRole (what kubeadm grants it: read
    endpoints, EndpointSlices, services, pods, namespaces) and its binding to `COREDNS_USER`; the
    Service `kube-system/kube-dns` (`service_ip`, port 53 UDP and TCP, no selector) and its
    EndpointSlice pointing at `node_ip:port`."""
    role = "system:coredns"
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    return [
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": role},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints", "services", "pods", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": role},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": COREDNS_USER}
                ],
            },
        ),
        (
            "/api/v1/namespaces/kube-system/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kube-dns",
                    "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns"},
                },
                "spec": {
                    "clusterIP": service_ip,
                    "ports": [
                        {"name": name, "protocol": proto, "port": 53, "targetPort": port}
                        for name, proto in ports
                    ],
                },
            },
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "kube-dns-coredns",
                    "namespace": "kube-system",
                    "labels": {
                        "kubernetes.io/service-name": "kube-dns",
                        "endpointslice.kubernetes.io/managed-by": _MANAGED_BY,
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [node_ip], "conditions": {"ready": True}}],
                "ports": [{"name": name, "protocol": proto, "port": port} for name, proto in ports],
            },
        ),
    ]
