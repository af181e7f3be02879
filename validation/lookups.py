"""Lookups: validation that asks the business's own APIs, always within the request's deadline.

    result = ctx.lookup("members", "MEM123")  # flows.registry.Context: the deadline and flow are its own

``GET <url>/<value>`` (or the URL with ``{value}`` replaced, e.g. ``…/members?id={value}``): a
JSON object with 200 is *found* (the object is the record), 404 is *not
found*; anything else (other statuses, non-JSON, a body over the size limit, a timeout, a refused
connection) is a failure. The order of things:

1. a fresh cached answer is served without a call (``hit``);
2. an open circuit breaker skips the call (``breaker_open``);
3. the call gets ``min(own timeout, what is left of the deadline)``, never more (``miss``);
4. on failure a cached answer younger than the stale max age is served (``stale``); otherwise
   the result is *unavailable* and the caller applies the lookup's policy (closed or open).

Every outcome is counted per flow and lookup (flows/lookup_cache.py). Redis trouble costs the cache
and the breaker, never the answer.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import quote

import requests
import urllib3.exceptions
from redis.exceptions import RedisError
from requests.adapters import HTTPAdapter

from validation import lookup_cache
from validation.breaker import Breaker
from flows.budget import Deadline
from flows.registry import POLICIES
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.lookups")

# Time kept back from the deadline for everything after the lookup (building, encrypting and
# sending the reply; under load, waiting for the GIL): measured, 50 ms was not enough at p99.
RESERVE_SECONDS = 0.1
MIN_CALL_SECONDS = 0.02
# What requests sent on every call, kept so a business API sees the same request as before.
DEFAULT_HEADERS = {"User-Agent": requests.utils.default_user_agent(), "Accept-Encoding": "gzip, deflate"}


@dataclass(frozen=True)
class LookupSpec:
    name: str
    url: str
    auth: str | None = None  # the whole Authorization header value
    policy: str = "closed"
    timeout: float = 1.0
    ttl: int = 300
    negative_ttl: int = 30
    stale_max_age: int = 3600
    breaker_failures: int = 5
    breaker_seconds: float = 30
    max_body_bytes: int = 64 * 1024


@dataclass(frozen=True)
class LookupResult:
    status: str  # "found" | "not_found" | "unavailable"
    record: dict | None = None
    outcome: str = "miss"  # hit | miss | stale | timeout | error | breaker_open

    @property
    def found(self) -> bool:
        return self.status == "found"

    @property
    def not_found(self) -> bool:
        return self.status == "not_found"

    @property
    def unavailable(self) -> bool:
        return self.status == "unavailable"


class _Failure(Exception):
    def __init__(self, outcome: str, reason: str):
        super().__init__(reason)
        self.outcome = outcome  # "timeout" | "error"


class Lookup:
    def __init__(self, spec: LookupSpec, redis, http: requests.Session, metrics,
                 pool: urllib3.PoolManager | None = None):
        if spec.policy not in POLICIES:
            raise ValueError(f"lookup {spec.name}: policy must be one of {POLICIES}")
        self.spec = spec
        self.name = spec.name
        self.policy = spec.policy
        self.redis = redis
        self.http, self.pool = http, pool
        self.metrics = metrics  # the app's metrics writer, passed in: the domain imports no metrics
        self.cache = lookup_cache.AnswerCache(redis, spec.name, spec.ttl, spec.negative_ttl,
                                              spec.stale_max_age)
        self.breaker = Breaker(redis, spec.name, spec.breaker_failures, spec.breaker_seconds)

    def fetch(self, value: str, *, deadline: Deadline | None = None, flow: str = "-",
              fresh: bool = False, before_call=None) -> LookupResult:
        """The answer for ``value``; ``fresh=True`` skips the cache (a final re-check).
        ``before_call`` runs before the API is called (not for a cached answer) and may raise."""
        deadline = deadline or Deadline(self.spec.timeout + RESERVE_SECONDS)
        started = time.perf_counter()
        result = self._fetch(value, deadline, fresh, before_call)
        # Every outcome and its latency go to the shared metrics (dashboard, /metrics).
        self._quietly(self.metrics.lookup, flow, self.name, result.outcome, time.perf_counter() - started)
        if result.outcome not in ("hit", "miss"):
            log.info("lookup=%s flow=%s outcome=%s status=%s", self.name, flow, result.outcome,
                     result.status)
        return result

    def _fetch(self, value: str, deadline: Deadline, fresh: bool, before_call) -> LookupResult:
        cached = None if fresh else self.cache.remembered(value)
        if cached is not None:
            return LookupResult(cached.status, cached.record, "hit")
        cached, closed = self._quietly(self._read_redis, value, fresh, default=(None, False))
        if cached is not None and self.cache.is_fresh(cached):
            return LookupResult(cached.status, cached.record, "hit")
        if before_call is not None:
            before_call()
        if not closed and self._quietly(self.breaker.allow, self.spec.timeout, default=True) is False:
            return self._fallback(cached, "breaker_open")
        budget = min(self.spec.timeout, deadline.remaining() - RESERVE_SECONDS)
        if budget < MIN_CALL_SECONDS:
            return self._fallback(cached, "timeout")
        try:
            status, record = self._call(value, budget)
        except _Failure as failure:
            log.warning("lookup=%s call failed: %s", self.name, failure)
            self._quietly(self.breaker.failure)
            return self._fallback(cached, failure.outcome)
        self._quietly(self._succeeded, value, status, record)
        return LookupResult(status, record, "miss")

    def _succeeded(self, value: str, status: str, record: dict | None) -> None:
        """The breaker's reset and the answer's caching: one round trip, not two."""
        pipe = self.redis.pipeline(transaction=False)
        self.breaker.success(pipe)
        self.cache.put(value, status, record, pipe)
        for result in pipe.execute(raise_on_error=False):
            if isinstance(result, Exception):
                raise result

    def _read_redis(self, value: str, fresh: bool):
        """The cached answer (unless ``fresh``) and whether the breaker is closed: one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        if not fresh:
            self.cache.queue_get(pipe, value)
        self.breaker.queue_closed(pipe)
        answers = pipe.execute()
        cached = None if fresh else self.cache.parse(value, answers[0])
        return cached, self.breaker.closed(answers[-1])

    def _fallback(self, cached, outcome: str) -> LookupResult:
        if cached is not None and self.cache.is_servable_stale(cached):
            return LookupResult(cached.status, cached.record, "stale")
        return LookupResult("unavailable", None, outcome)

    def _call(self, value: str, budget: float) -> tuple[str, dict | None]:
        if value in ("", ".", ".."):  # would name the collection (or its parent), not a record
            return "not_found", None
        quoted = quote(value, safe="")
        url = (self.spec.url.replace("{value}", quoted) if "{value}" in self.spec.url
               else f"{self.spec.url.rstrip('/')}/{quoted}")
        headers = {"Accept": "application/json", **DEFAULT_HEADERS}
        if self.spec.auth:
            headers["Authorization"] = self.spec.auth
        started = time.monotonic()
        status, raw, close = self._get(url, headers, budget)
        try:
            body = self._read(raw, started + budget)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            late = time.monotonic() - started >= budget * 0.95
            raise _Failure("timeout" if late else "error", type(exc).__name__) from None
        finally:
            close()
        if status == 404:
            return "not_found", None
        if status != 200:
            raise _Failure("error", f"HTTP {status}")
        try:
            record = json.loads(body)
        except (ValueError, RecursionError):
            raise _Failure("error", "body is not JSON") from None
        if not isinstance(record, dict):
            raise _Failure("error", "body is not a JSON object")
        return "found", record

    def _get(self, url: str, headers: dict, budget: float):
        """Send the GET: (status, urllib3 response, how to close it). http(s) goes straight through
        urllib3's pool (requests' Session costs ~0.5 ms of CPU a call on top: bench/breakdown.py);
        other schemes (the demo backend's in-process ``demo://``) through the mounted requests
        transport. The timeouts bound the connect and the wait for the headers; _read bounds the body."""
        if self.pool is not None and url.startswith(("http://", "https://")):
            try:
                raw = self.pool.request("GET", url, headers=headers, preload_content=False, redirect=False,
                                        retries=False, timeout=urllib3.Timeout(connect=budget, read=budget))
            except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError by descent
                raise _Failure("error", type(exc).__name__) from None
            except urllib3.exceptions.TimeoutError:
                raise _Failure("timeout", f"no answer within {budget:.2f}s") from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _Failure("error", type(exc).__name__) from None

            def close():  # what requests' Response.close does
                raw.close()
                raw.release_conn()

            return raw.status, raw, close
        try:
            resp = self.http.get(url, headers=headers, timeout=(budget, budget), stream=True,
                                 allow_redirects=False)
        except requests.Timeout:
            raise _Failure("timeout", f"no answer within {budget:.2f}s") from None
        except requests.RequestException as exc:
            raise _Failure("error", type(exc).__name__) from None
        return resp.status_code, resp.raw, resp.close

    def _read(self, raw, until: float) -> bytes:
        """The body, at most ``max_body_bytes``, finished by ``until``: each wait for bytes is
        limited to the time left (a body that trickles in cannot stretch the budget)."""
        limit = self.spec.max_body_bytes
        declared = raw.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Failure("error", f"body of {declared} bytes is over the limit")
        chunks, size = [], 0
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise _Failure("timeout", "body still arriving at the deadline")
            # Looked up each time: once the whole body is in, urllib3 hands the connection back
            # to the pool, where another thread may be using its socket (or the pool, when full,
            # has closed it). Only a connection this response still holds gets the timeout.
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = raw.read1(16 * 1024, decode_content=True)  # one wait on the socket at most
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise _Failure("error", "body over the limit")
            chunks.append(chunk)

    @staticmethod
    def _quietly(call, *args, default=None):
        try:
            return call(*args)
        except RedisError as exc:
            redis_unavailable(log, "lookup bookkeeping", exc, "skipped")
            return default


class Lookups:
    """Name → Lookup, sharing one pooled HTTP session."""

    # As many kept-alive connections as gunicorn threads may wait at once (urllib3 opens them
    # only when needed); fewer means a new TCP connection for every call beyond them.
    def __init__(self, specs, redis, pool_size: int = 64, *, metrics):
        self.http = requests.Session()
        self.http.trust_env = False  # no proxy or netrc surprises: the URL is the whole story
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        # The same pool sizes and CA bundle as that adapter; http(s) lookups go through it.
        self.pool = urllib3.PoolManager(num_pools=8, maxsize=pool_size, retries=False,
                                        ca_certs=requests.certs.where())
        self._lookups = {spec.name: Lookup(spec, redis, self.http, metrics, self.pool) for spec in specs}

    def __getitem__(self, name: str) -> Lookup:
        return self._lookups[name]

    def __contains__(self, name: str) -> bool:
        return name in self._lookups

    def names(self) -> list[str]:
        return sorted(self._lookups)


def specs_from_config(cfg: dict, declared, base: str | None) -> list[LookupSpec]:
    """One spec per declared lookup (flows.registry.Lookup): its own URL, else ``base`` + its
    path (the value in the query string, so no access log shows it), else none (url "": the
    caller decides)."""
    base = base.rstrip("/") if base else None
    specs = []
    for lookup in declared:
        name, prefix, path, policy = lookup.name, lookup.settings, lookup.path, lookup.policy
        specs.append(LookupSpec(
            name=name,
            url=cfg.get(f"{prefix}_URL") or (f"{base}{path}?key={{value}}" if base else ""),
            auth=cfg.get(f"{prefix}_AUTH"),
            policy=cfg.get(f"{prefix}_POLICY") or policy,
            timeout=cfg.get(f"{prefix}_TIMEOUT") or cfg["LOOKUP_TIMEOUT_SECONDS"],
            ttl=cfg.get(f"{prefix}_CACHE_TTL") if cfg.get(f"{prefix}_CACHE_TTL") is not None
            else cfg["LOOKUP_CACHE_TTL"],
            negative_ttl=cfg["LOOKUP_NEGATIVE_TTL"],
            stale_max_age=cfg["LOOKUP_STALE_MAX_AGE"],
            breaker_failures=cfg["LOOKUP_BREAKER_FAILURES"],
            breaker_seconds=cfg["LOOKUP_BREAKER_SECONDS"],
            max_body_bytes=cfg["LOOKUP_MAX_BODY_BYTES"],
        ))
    return specs
