"""A TCP proxy on loopback for fault tests: the client talks to the chain through it, and the
test cuts every connection (chain still up), stops listening (chain unreachable), swallows the
chain's replies (a hung chain), or cuts a connection at a chosen reply (the answer lost in
flight)."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.utils.ports import free_port

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forwards 127.0.0.1:port to upstream (host, port). Each connection gets two pump threads."""

    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        # While set, the chain's replies are swallowed: a hung chain (the connection stays
        # open, what the client sends still arrives).
        self.blackhole = False
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._cut_after: bytes | None = None
        self.cut_count = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                marker = self._cut_after
                # The client's frames are masked, so the marker is looked for in what the
                # chain sends back (unmasked). That reply is lost with the connection.
                if marker is not None and not upstream and marker in data:
                    self._cut_after = None
                    self.cut_count += 1
                    break
                if self.blackhole and not upstream:
                    continue
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut_all(self) -> int:
        """Closes every live connection (the listener stays): like a dropped network link.
        Returns how many were cut."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self.cut_count += len(pairs)
        return len(pairs)

    def cut_at_reply_containing(self, marker: bytes) -> None:
        """The next chain reply containing marker is dropped and its connection cut."""
        self._cut_after = marker

    def stop(self) -> None:
        """Stops listening and cuts everything: the chain is unreachable through the proxy."""
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone leaves it listening.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self.cut_all()
