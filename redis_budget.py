"""How long an HTTP request may wait for Redis: the budget every Redis call of a request obeys.

While a request is served (``open_request``, registered by ``storage.init_app``), each wait for
Redis (connect, send, reply) is at most ``REDIS_REQUEST_TIMEOUT_SECONDS`` and ends by the
request's deadline (``within``: the Flow endpoint's; ``LATE_CALL_SECONDS`` past it at most), and
after one timeout, or a refused connection, the request stops asking (``RedisSkipped``, at once).
The process remembers a timeout too: for ``COOL_DOWN_SECONDS`` its other requests skip that Redis
at once, then one request asks again. A hung Redis (process stopped, socket open) thus costs one
short wait now and then instead of redis-py's socket timeout times its retries for every call (a
signed INIT took 45 s). Workers and CLI commands have no budget and keep the client's timeouts.

The bounding lives in the connection class (``storage.client_for`` picks it by URL scheme), so
every caller — sessions, lookups' cache, RQ's enqueue, metrics — is bounded without knowing it.
"""
from __future__ import annotations

import logging
import socket
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from redis.utils import SENTINEL

log = logging.getLogger("flowgate.redis")

# A call at or past the deadline still gets this long: a healthy Redis answers in a millisecond,
# so a session's write after a lookup that took the whole budget is kept, and a hung one costs
# this once (the request then stops asking). The reply is late by at most about this much.
LATE_CALL_SECONDS = 0.05
DEFAULT_REQUEST_TIMEOUT = 1.0  # config.py's REDIS_REQUEST_TIMEOUT_SECONDS, outside an app
# After a timeout, how long this process's requests skip that Redis before one asks again.
COOL_DOWN_SECONDS = 2.0


class RedisSkipped(RedisError):
    """Not sent: Redis did not answer earlier in this request (or a moment ago in this process).
    A RedisError, so every caller that serves without Redis does so at once instead of waiting
    again; redis-py does not retry it."""


class _Breaker:
    """One per Redis server and process: open after a timeout, then half-open (one request asks,
    the others keep skipping) until a reply closes it."""

    def __init__(self):
        self.until = 0.0  # 0: closed

    def check(self, budget: "Budget") -> None:
        until = self.until
        if not until or budget.probing:
            return
        now = time.monotonic()
        if now < until:
            raise RedisSkipped("skipped: Redis did not answer a moment ago")
        self.until = now + budget.per_call + 1.0  # this request asks; the others wait for its answer
        budget.probing = True
        log.info("asking Redis again after a timeout")

    def opened(self) -> None:
        if not self.until:
            log.warning("Redis did not answer in time: requests skip it for %.0f s", COOL_DOWN_SECONDS)
        self.until = time.monotonic() + COOL_DOWN_SECONDS

    def closed(self) -> None:
        if self.until:
            self.until = 0.0
            log.info("Redis answers again")


# Per process by nature (what this process has seen of that server), like redis-py's own pools;
# keyed by address, so every client of one server shares it and no other server is affected.
_breakers: dict[str, _Breaker] = {}


@dataclass
class Budget:
    """How long one request may still wait for Redis."""

    per_call: float
    deadline: object = None  # anything with remaining() (flows.budget.Deadline), or None
    reserve: float = 0.0  # kept back from the deadline for the work after the call
    parent: "Budget | None" = None
    tripped: bool = False
    probing: bool = False  # this request asks a Redis the process had stopped asking

    def limit(self, own: float | None, breaker: _Breaker) -> float:
        """The timeout one wait may use: its own, capped; RedisSkipped when Redis is given up."""
        if self.tripped:
            raise RedisSkipped("skipped: Redis did not answer earlier in this request")
        breaker.check(self)
        left = self.per_call
        if self.deadline is not None:
            left = min(left, max(self.deadline.remaining() - self.reserve, LATE_CALL_SECONDS))
        return left if own is None else min(own, left)

    def trip(self) -> None:
        """Redis timed out: the rest of the request (outer budgets included) does without it."""
        budget = self
        while budget is not None:
            budget.tripped = True
            budget = budget.parent


_budget: ContextVar[Budget | None] = ContextVar("flowgate_redis_budget", default=None)


@contextmanager
def within(deadline, reserve: float = 0.0):
    """Bound the Redis calls made inside by ``deadline`` as well (the Flow endpoint's).

    No reserve by default: the time after a lookup is already kept back by the lookup
    (flows/lookups.py, RESERVE_SECONDS), and the session's write after it must still fit in."""
    parent = _budget.get()
    per_call = parent.per_call if parent is not None else DEFAULT_REQUEST_TIMEOUT
    token = _budget.set(Budget(per_call, deadline, reserve, parent,
                               tripped=parent is not None and parent.tripped,
                               probing=parent is not None and parent.probing))
    try:
        yield
    finally:
        _budget.reset(token)


class _Bounded:
    """A redis-py connection whose every wait asks the current request's Budget first.

    Three places wait on the socket: connecting (TCP, TLS handshake), sending, and reading a
    reply (the handshake's HELLO and health-check PINGs included, as they read through here).
    """

    @property
    def _breaker(self) -> _Breaker:
        breaker = self.__dict__.get("_flowgate_breaker")
        if breaker is None:  # one per server address, shared by every connection to it
            breaker = self.__dict__["_flowgate_breaker"] = _breakers.setdefault(
                self._host_error(), _Breaker())
        return breaker

    def _timed_out(self, budget: Budget | None) -> None:
        self._breaker.opened()
        if budget is not None:
            budget.trip()

    def _connect(self):
        budget = _budget.get()
        if budget is None:
            return super()._connect()
        saved = self.socket_connect_timeout, self.socket_timeout
        self.socket_connect_timeout = budget.limit(saved[0], self._breaker)
        self.socket_timeout = budget.limit(saved[1], self._breaker)  # a TLS handshake waits with it
        try:
            sock = super()._connect()
        except socket.timeout:
            self._timed_out(budget)
            raise
        except OSError:
            budget.trip()  # refused: Redis is down, asking again within this request cannot help
            raise
        finally:
            self.socket_connect_timeout, self.socket_timeout = saved
        sock.settimeout(saved[1])
        return sock

    def send_packed_command(self, command, check_health=True):
        budget = _budget.get()
        if budget is None:
            return super().send_packed_command(command, check_health)
        budget.limit(None, self._breaker)  # nothing is sent once the request is done with Redis
        if not self._sock:
            self.connect_check_health(check_health=False)
        if check_health:
            self.check_health()  # its PING goes through these same methods
        sock = self._sock
        sock.settimeout(budget.limit(self.socket_timeout, self._breaker))
        try:
            return super().send_packed_command(command, check_health=False)
        except RedisTimeout:
            self._timed_out(budget)
            raise
        finally:
            if self._sock is sock:
                sock.settimeout(self.socket_timeout)

    def read_response(self, disable_decoding=False, *, timeout=SENTINEL, disconnect_on_error=True,
                      push_request=False):
        budget = _budget.get()
        if budget is not None:
            try:
                timeout = budget.limit(self.socket_timeout if timeout is SENTINEL else timeout, self._breaker)
            except RedisSkipped:
                self.disconnect()  # a reply may still come: never hand it to the next user
                raise
        try:
            response = super().read_response(disable_decoding, timeout=timeout,
                                             disconnect_on_error=disconnect_on_error,
                                             push_request=push_request)
        except RedisTimeout:
            self._timed_out(budget)
            raise
        self._breaker.closed()
        return response


class BoundedConnection(_Bounded, redis.Connection):
    pass


class BoundedSSLConnection(_Bounded, redis.SSLConnection):
    pass


class BoundedUnixConnection(_Bounded, redis.UnixDomainSocketConnection):
    pass


CONNECTIONS = {"redis": BoundedConnection, "rediss": BoundedSSLConnection, "unix": BoundedUnixConnection}


def open_request(per_call: float):
    """A fresh budget for the request starting in this thread; returns the token for ``close``."""
    return _budget.set(Budget(per_call))


def close_request(token) -> None:
    _budget.reset(token)
