"""Workload runtimes: the interface and its Podman and Kubernetes backends."""
