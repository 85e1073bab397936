"""The agent's connection to the cluster: a `kubernetes.client.ApiClient` that counts its requests.

Counting happens where every generated API method ends up (`ApiClient.call_api`), so the counts
are the real requests sent, by HTTP method: what tests and bench/k8s_reconcile_bench.py read to
show that a converged reconcile writes nothing.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.rest import RESTResponse

__all__ = ["DEFAULT_REQUEST_TIMEOUT_S", "READ_METHODS", "CountingApiClient", "load_configuration"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# (connect, read) seconds for every request that names none. The generated client waits forever
# by default: an API server that stops answering without closing the connection would hold the
# reconcile loop (and its lock) for good while the agent still reports healthy. With a bound,
# the request fails (urllib3's timeout error), the loop logs it and retries.
DEFAULT_REQUEST_TIMEOUT_S = (5.0, 30.0)


class CountingApiClient(ApiClient):
    """An ApiClient counting the requests it sends, by HTTP method (`calls`, e.g. {"GET": 6})."""

    def __init__(self, configuration: Configuration | None = None) -> None:
        super().__init__(configuration)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def call_api(
        self,
        method: Any,
        url: Any,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> RESTResponse:
        with self._lock:
            self.calls[str(method).upper()] += 1
        if _request_timeout is None:
            _request_timeout = DEFAULT_REQUEST_TIMEOUT_S
        return super().call_api(method, url, header_params, body, post_params, _request_timeout)

    def snapshot(self) -> Counter[str]:
        """A copy of the counts so far (subtract two snapshots to count one stretch)."""
        with self._lock:
            return Counter(self.calls)

    @staticmethod
    def writes(calls: Counter[str]) -> int:
        """How many of `calls` were writes (any method but GET/HEAD/OPTIONS)."""
        return sum(n for method, n in calls.items() if method not in READ_METHODS)


def load_configuration(context: str | None) -> Configuration:
    """The cluster connection: the pod's service account when running in a cluster (the
    DaemonSet), else the kubeconfig (KUBECONFIG or ~/.kube/config) at `context`.
    `kubernetes.config.ConfigException` when neither is there."""
    configuration = Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # unannotated
    except kube_config.ConfigException:
        # KUBECONFIG read now: the library reads it once, at import.
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]  # unannotated
            config_file=os.environ.get("KUBECONFIG") or None,
            context=context,
            client_configuration=configuration,
        )
    return configuration
