"""The agent's Kubernetes connection never waits without end (a real socket that accepts and
never answers stands in for a hung API server)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import urllib3
from kubernetes.client import Configuration, CoreV1Api

from services.gpu_node.runtime.kubernetes import client as kube_client


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_a_hung_api_server_fails_the_request_instead_of_waiting_forever(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_client, "DEFAULT_REQUEST_TIMEOUT_S", (1.0, 1.0))
    configuration = Configuration()
    configuration.host = f"http://127.0.0.1:{silent_server}"
    configuration.retries = 0
    api = CoreV1Api(kube_client.CountingApiClient(configuration))
    failures: list[BaseException] = []

    def call() -> None:
        try:
            api.list_namespace()
        except BaseException as exc:  # noqa: BLE001 - inspected below
            failures.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(timeout=60)  # a bound for the test itself, not a speed claim
    assert not caller.is_alive(), "the request is still waiting on a server that never answers"
    assert len(failures) == 1 and isinstance(failures[0], urllib3.exceptions.HTTPError)
    assert api.api_client.calls["GET"] == 1
