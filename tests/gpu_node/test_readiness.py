"""The SSH readiness probe: only an SSH banner counts, not an open port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from services.gpu_node.runtime.readiness import ssh_banner_ok


@pytest.fixture
def server() -> Iterator[tuple[socket.socket, list[bytes]]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    greetings: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                if greetings:
                    conn.sendall(greetings.pop(0))

    threading.Thread(target=serve, daemon=True).start()
    yield sock, greetings
    sock.close()


def test_ssh_banner_ok_accepts_an_ssh_banner(server: tuple[socket.socket, list[bytes]]) -> None:
    sock, greetings = server
    greetings.append(b"SSH-2.0-OpenSSH_9.2\r\n")
    assert ssh_banner_ok(f"127.0.0.1:{sock.getsockname()[1]}")


def test_ssh_banner_ok_refuses_open_port_without_banner(
    server: tuple[socket.socket, list[bytes]],
) -> None:
    sock, greetings = server
    greetings.append(b"HTTP/1.1 200 OK\r\n")
    assert not ssh_banner_ok(f"0.0.0.0:{sock.getsockname()[1]}")


def test_ssh_banner_ok_refuses_closed_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not ssh_banner_ok(f"127.0.0.1:{port}", timeout=0.5)
