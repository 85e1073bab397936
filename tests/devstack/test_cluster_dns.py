"""The test cluster's DNS builders (services.devstack.cluster_dns): CoreDNS answers on the node's
address and port given, and the kube-dns Service reaches it through an EndpointSlice whose ports
match the Service's by name (kube-proxy pairs them by name; a mismatch silently drops queries).
That pods resolve names through them is tests/k8s/test_cluster.py's real-node test."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.devstack.cluster import DNS_SERVICE_IP, SERVICE_CIDR
from services.devstack.cluster_dns import COREDNS_USER, corefile, dns_objects


def test_corefile_binds_the_node_address_and_reads_the_api_server(tmp_path: Path) -> None:
    text = corefile("192.0.2.7", 41000, 41001, 41002, tmp_path / "coredns.kubeconfig")
    assert text.startswith(".:41000 {\n    bind 192.0.2.7\n")
    assert "health 127.0.0.1:41001" in text and "ready 127.0.0.1:41002" in text
    assert f"kubeconfig {tmp_path / 'coredns.kubeconfig'}" in text
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in text
    with pytest.raises(ValueError):
        corefile("192.0.2.7; forward . 8.8.8.8", 41000, 41001, 41002, tmp_path / "k")


def test_kube_dns_service_points_at_coredns_by_port_name() -> None:
    objects = {body["kind"]: body for _, body in dns_objects("192.0.2.7", 41000, "10.0.0.10")}
    service, slice_ = objects["Service"], objects["EndpointSlice"]
    assert service["spec"]["clusterIP"] == DNS_SERVICE_IP == "10.0.0.10"
    assert "selector" not in service["spec"]
    by_name = {p["name"]: p for p in service["spec"]["ports"]}
    assert {(n, p["protocol"], p["port"]) for n, p in by_name.items()} == {
        ("dns", "UDP", 53), ("dns-tcp", "TCP", 53)
    }
    for port in slice_["ports"]:
        assert by_name[port["name"]]["protocol"] == port["protocol"]
        assert port["port"] == 41000
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert slice_["endpoints"] == [{"addresses": ["192.0.2.7"], "conditions": {"ready": True}}]
    binding = objects["ClusterRoleBinding"]
    assert binding["subjects"][0]["name"] == COREDNS_USER
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    assert SERVICE_CIDR == "10.0.0.0/24"
