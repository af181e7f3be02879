"""A closed-loop HTTP/1.1 load generator cheap enough to share 2 cores with the server it measures.

Requests are built once as raw bytes; each client process drives a few keep-alive connections with
one request in flight each (no pipelining, as Meta's client does), and parses only the status line
and Content-Length of each reply. No HTTP library sits in the hot loop, so the client's CPU per
request stays small and is itself measured (os.times in each process) and reported.

Timing: all processes start at the same CLOCK_MONOTONIC instant (system-wide on Linux), ignore a
warm-up, then record latencies for ``duration`` seconds.
"""
from __future__ import annotations

import multiprocessing
import os
import selectors
import socket
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field


def build_post(path: str, body: bytes, headers: dict | None = None, host: str = "127.0.0.1") -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class LoadResult:
    duration: float  # seconds of the measured window
    latencies: array = field(default_factory=lambda: array("d"))  # seconds, measured window only
    statuses: Counter = field(default_factory=Counter)
    client_cpu: float = 0.0  # CPU seconds all client processes spent in the measured window
    reconnects: int = 0  # connections the server closed (worker recycling) and we reopened
    refused: int = 0  # connect attempts refused while reopening (nobody listening)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.completed / self.duration

    def merge(self, other: "LoadResult") -> None:
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)
        self.client_cpu += other.client_cpu
        self.reconnects += other.reconnects
        self.refused += other.refused


class _Conn:
    __slots__ = ("sock", "buf", "sent_at", "next")

    def __init__(self, port: int, first: int, result: "LoadResult | None" = None):
        # A refused connect is a finding, not a crash: with reuse_port each gunicorn worker owns
        # its listening socket, so recycling every worker at once leaves nobody listening.
        for attempt in range(200):
            try:
                self.sock = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                if result is None or attempt == 199:
                    raise
                result.refused += 1
                time.sleep(0.005)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf, self.sent_at, self.next = b"", 0.0, first


def _reply_complete(buf: bytes):
    """(status, total length, close?) once a whole reply is buffered, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].lower()
    at = head.find(b"content-length:")
    length = 0
    if at >= 0:
        stop = head.find(b"\r\n", at)
        length = int(head[at + 15:stop if stop > 0 else len(head)])
    total = end + 4 + length
    if len(buf) < total:
        return None
    return int(buf[9:12]), total, b"connection: close" in head


def _client(*args):
    out = args[-1]
    try:
        _drive(*args)
    except OSError as exc:  # the parent reports it instead of waiting for a result forever
        out.put(exc)


def _drive(port, requests, conns, offset, start_at, warmup, duration, step, out):
    """One client process: ``conns`` connections, round-robin over the pre-built ``requests``
    (with ``step`` > 1 each connection takes every step-th request from its own start, so no two
    connections of the run send the same one: ``offset`` is then this process's first index)."""
    sel = selectors.DefaultSelector()
    n = len(requests)
    pool = [_Conn(port, (offset + i * (7 if step == 1 else 1)) % n) for i in range(conns)]
    measure_from, measure_to = start_at + warmup, start_at + warmup + duration
    result = LoadResult(duration=duration)
    cpu_from = None
    while time.monotonic() < start_at:
        time.sleep(0.001)

    def send(c: _Conn):
        c.sent_at = time.monotonic()
        try:
            c.sock.sendall(requests[c.next])  # a few KB: the socket buffer takes it whole
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while idle: the next read sees it, reconnects and resends
        c.next = (c.next + step) % n

    for c in pool:
        sel.register(c.sock, selectors.EVENT_READ, c)
        send(c)
    open_conns = len(pool)
    while open_conns and time.monotonic() < measure_to + 30:  # a hung server ends the run too
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            try:
                chunk = c.sock.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                chunk = b""
            now = time.monotonic()
            if cpu_from is None and now >= measure_from:
                cpu_from = sum(os.times()[:2])
            if not chunk:  # closed between requests (worker recycled): reopen, resend the same one
                sel.unregister(c.sock)
                c.sock.close()
                fresh = _Conn(port, (c.next - step) % n, result)
                sel.register(fresh.sock, selectors.EVENT_READ, fresh)
                send(fresh)
                fresh.sent_at = c.sent_at  # the latency counts from the first attempt
                result.reconnects += 1
                continue
            c.buf += chunk
            done = _reply_complete(c.buf)
            if done is None:
                continue
            status, total, close = done
            c.buf = c.buf[total:]
            if measure_from <= now < measure_to:
                result.latencies.append(now - c.sent_at)
                result.statuses[status] += 1
            if now >= measure_to:
                sel.unregister(c.sock)
                c.sock.close()
                open_conns -= 1
                continue
            if close:
                sel.unregister(c.sock)
                c.sock.close()
                c2 = _Conn(port, c.next, result)
                sel.register(c2.sock, selectors.EVENT_READ, c2)
                c, result.reconnects = c2, result.reconnects + 1
            send(c)
    result.client_cpu = sum(os.times()[:2]) - (cpu_from if cpu_from is not None else 0.0)
    out.put(result)


def run_load(port: int, requests: list[bytes], *, processes: int = 2, conns: int = 4,
             warmup: float = 1.0, duration: float = 5.0, on_window=None,
             distinct: bool = False) -> LoadResult:
    """Drive ``processes × conns`` connections; ``on_window(start, end)`` (monotonic times) lets
    the caller sample server CPU over exactly the measured window. ``distinct``: no request is
    sent twice while fewer than ``len(requests)`` have been sent (every lookup a cache miss)."""
    step = processes * conns if distinct else 1
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.monotonic() + 0.3
    procs = [ctx.Process(target=_client,
                         args=(port, requests, conns, p * (conns if distinct else 101), start_at, warmup,
                                                   duration, step, out))
             for p in range(processes)]
    for p in procs:
        p.start()
    window = on_window(start_at + warmup, start_at + warmup + duration) if on_window else None
    total = LoadResult(duration=duration)
    failures = []
    for _ in procs:
        part = out.get(timeout=warmup + duration + 60)
        if isinstance(part, Exception):
            failures.append(part)
        else:
            total.merge(part)
    for p in procs:
        p.join()
    if failures:
        raise RuntimeError(f"load generator failed: {failures[0]!r}")
    total.window = window
    return total
