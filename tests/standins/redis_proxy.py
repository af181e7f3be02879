"""A TCP relay on 127.0.0.1 in front of the real redis-server, able to hold one command.

A worker pointed at it (``REDIS_URL``) works as usual until ``hold(pattern)``: from then on a command
whose bytes contain ``pattern`` (e.g. the key of an effect record) is not passed on, nor anything after
it on that connection, so that client waits for an answer that never comes (and a retry on a new
connection is held the same way); ``held`` is set. A worker SIGKILLed then died *before* that command
ran, which is how the tests stop a job just before it claims a send, at an exact point, without touching
the code under test.
"""
from __future__ import annotations

import socket
import threading


class RedisProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held = threading.Event()
        self._pattern: bytes | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def hold(self, pattern: bytes) -> threading.Event:
        with self._lock:
            self._pattern = pattern
        return self.held

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._closed = True
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        tail = b""  # the end of the previous chunk: a pattern may straddle two reads
        try:
            while chunk := source.recv(65536):
                if from_client and self._should_hold(tail + chunk):
                    self.held.set()
                    source.recv(1)  # forward nothing more; returns once the client is gone
                    break
                tail = chunk[-256:]
                sink.sendall(chunk)
        except OSError:
            pass
        _close(source)
        _close(sink)

    def _should_hold(self, data: bytes) -> bool:
        with self._lock:
            return self._pattern is not None and self._pattern in data


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
