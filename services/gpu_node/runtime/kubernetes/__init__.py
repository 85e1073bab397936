"""Kubernetes backend: one namespace per lease, built by pure builders and applied idempotently."""
