"""Lookups against a real loopback business API and the real Redis: budget, cache, stale,
breaker, failure shapes, counters."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from metrics import Metrics

from conftest import wait_for
from validation import lookup_cache
from flows.budget import Deadline
from validation.lookups import LookupSpec, Lookups
from standins.business import BusinessStandIn


@pytest.fixture
def api():
    with BusinessStandIn(auth="Bearer biz-token") as standin:
        yield standin


def make(redis_client, api, **overrides):
    spec = dict(name="members", url=f"{api.url}/members", auth="Bearer biz-token", timeout=1.0,
                ttl=300, negative_ttl=30, stale_max_age=3600, breaker_failures=3, breaker_seconds=30)
    spec.update(overrides)
    return Lookups([LookupSpec(**spec)], redis_client, metrics=Metrics(redis_client))["members"]


def test_found_and_not_found_and_the_auth_header(redis_client, api):
    lookup = make(redis_client, api)
    found = lookup.fetch("MEM123", flow="f")
    assert found.found and found.record["name"] == "Ana Silva" and found.outcome == "miss"
    assert lookup.fetch("NOPE", flow="f").not_found
    assert api.requests[0].headers["Authorization"] == "Bearer biz-token"
    assert make(redis_client, api, auth="Bearer wrong", name="members").fetch("VIP999").unavailable


def test_a_url_template_puts_the_value_where_it_says(redis_client, api):
    lookup = make(redis_client, api, url=f"{api.url}/members?key={{value}}")
    assert lookup.fetch("VIP999").record["name"] == "Victor Ito"
    assert api.requests[-1].path == "/members"  # the value went in the query, not the path
    assert lookup.fetch("a/../b").not_found  # escaped: cannot walk the API's paths


def test_a_cached_answer_costs_no_call(redis_client, api):
    lookup = make(redis_client, api)
    assert lookup.fetch("MEM123").outcome == "miss"
    assert lookup.fetch("NOPE").outcome == "miss"
    again, missing = lookup.fetch("MEM123"), lookup.fetch("NOPE")
    assert (again.outcome, again.found, missing.outcome, missing.not_found) == ("hit", True, "hit", True)
    assert api.calls("members") == 2
    assert lookup.fetch("MEM123", fresh=True).outcome == "miss"  # a final re-check skips the cache
    assert api.calls("members") == 3


def test_negative_answers_expire_on_their_own_ttl(redis_client, api):
    lookup = make(redis_client, api, ttl=300, negative_ttl=0)
    lookup.fetch("MEM123"), lookup.fetch("NOPE")
    assert lookup.fetch("MEM123").outcome == "hit"
    assert lookup.fetch("NOPE").outcome == "miss"  # negative TTL 0: never fresh


def test_a_hanging_api_is_cut_at_the_deadline(redis_client, api):
    lookup = make(redis_client, api, timeout=5.0)
    api.behave("hang")
    started = time.monotonic()
    result = lookup.fetch("MEM123", deadline=Deadline(0.4))
    elapsed = time.monotonic() - started
    assert result.unavailable and result.outcome == "timeout"
    assert elapsed < 0.4 + 0.25, elapsed


def test_a_body_that_trickles_in_is_cut_at_the_deadline(redis_client, api):
    lookup = make(redis_client, api, timeout=5.0)
    api.behave("drip", delay=0.1)  # each byte well inside any per-read timeout
    started = time.monotonic()
    result = lookup.fetch("MEM123", deadline=Deadline(0.5))
    assert result.outcome == "timeout" and time.monotonic() - started < 0.5 + 0.25


def test_the_lookups_own_timeout_applies_inside_a_longer_deadline(redis_client, api):
    lookup = make(redis_client, api, timeout=0.3)
    api.behave("slow", delay=2.0)
    started = time.monotonic()
    assert lookup.fetch("MEM123", deadline=Deadline(3.0)).outcome == "timeout"
    assert time.monotonic() - started < 0.3 + 0.25


def test_no_budget_left_means_no_call(redis_client, api):
    lookup = make(redis_client, api)
    assert lookup.fetch("MEM123", deadline=Deadline(0.0)).outcome == "timeout"
    assert api.calls() == 0


@pytest.mark.parametrize("mode", ["500", "garbage", "huge", "list"])
def test_bad_answers_are_errors_not_records(redis_client, api, mode):
    lookup = make(redis_client, api, max_body_bytes=64 * 1024)
    api.behave(mode)
    result = lookup.fetch("MEM123")
    assert result.unavailable and result.outcome == "error"


def test_a_stale_answer_is_served_when_the_api_fails(redis_client, api):
    lookup = make(redis_client, api, ttl=0, negative_ttl=0, stale_max_age=3600)
    assert lookup.fetch("MEM123").outcome == "miss"
    api.behave("500")
    stale = lookup.fetch("MEM123")
    assert stale.outcome == "stale" and stale.found and stale.record["name"] == "Ana Silva"
    too_old = make(redis_client, api, ttl=0, negative_ttl=0, stale_max_age=0)
    assert too_old.fetch("MEM123").outcome == "error"  # max age 0: nothing stale is servable


def test_the_breaker_opens_after_n_failures_and_closes_after_a_good_probe(redis_client, api):
    lookup = make(redis_client, api, breaker_failures=3, breaker_seconds=0.5)
    api.behave("500")
    assert [lookup.fetch(f"X{i}").outcome for i in range(3)] == ["error"] * 3
    assert lookup.breaker.state() == "open"
    skipped = lookup.fetch("MEM123")
    assert skipped.outcome == "breaker_open" and skipped.unavailable
    assert api.calls() == 3  # the open breaker made no call
    # Shared through Redis: a second process's Lookup (another instance) sees it open too.
    assert make(redis_client, api, breaker_failures=3,
                breaker_seconds=0.5).fetch("VIP999").outcome == "breaker_open"
    api.behave("ok")
    wait_for(lambda: lookup.breaker.state() == "half_open", timeout=3, message="breaker to half-open")
    assert lookup.fetch("MEM123").outcome == "miss"
    assert lookup.breaker.state() == "closed"


def test_a_failed_probe_reopens_the_breaker_at_once(redis_client, api):
    lookup = make(redis_client, api, breaker_failures=2, breaker_seconds=0.5)
    api.behave("500")
    lookup.fetch("A"), lookup.fetch("B")
    wait_for(lambda: lookup.breaker.state() == "half_open", timeout=3, message="breaker to half-open")
    assert lookup.fetch("C").outcome == "error"  # the probe
    assert lookup.breaker.state() == "open"
    assert lookup.fetch("D").outcome == "breaker_open"


def test_only_one_probe_at_a_time_when_half_open(redis_client, api):
    lookup = make(redis_client, api, breaker_failures=1, breaker_seconds=0.5)
    api.behave("500")
    lookup.fetch("A")
    wait_for(lambda: lookup.breaker.state() == "half_open", timeout=3, message="breaker to half-open")
    assert lookup.breaker.allow() is True
    assert lookup.breaker.allow() is False  # the probe is out; everyone else still skips


def test_every_outcome_is_counted_per_flow_and_lookup(redis_client, api):
    lookup = make(redis_client, api, breaker_failures=1, ttl=0, negative_ttl=0)
    lookup.fetch("MEM123", flow="member_check")                # miss
    api.behave("500")
    lookup.fetch("MEM123", flow="member_check")                # stale (opens the breaker)
    lookup.fetch("NOPE", flow="member_check")                  # breaker_open
    lookup.fetch("NOPE", flow="other", deadline=Deadline(0))   # breaker_open for another flow
    flows = Metrics(redis_client).snapshot(days=1)["flows"]
    mine = flows["member_check"]["today"]["lookups"]["members"]
    assert (mine["miss"], mine["stale"], mine["breaker_open"]) == (1, 1, 1)
    assert flows["other"]["today"]["lookups"]["members"] == {"breaker_open": 1}
    latency = flows["member_check"]["lookup_latency"]["members"]
    assert latency["requests"] == 3 and latency["errors"] == 1  # breaker_open; stale was answered


def test_values_never_appear_in_redis_key_names(redis_client, api):
    make(redis_client, api).fetch("MEM123")
    assert not [k for k in redis_client.keys("*") if b"MEM123" in k]


def test_settings_come_from_the_environment_with_the_base_url_as_default():
    import config
    from flows import loader
    from validation.lookups import specs_from_config

    declared = loader.lookups_of(loader.flows_in("examples"))

    env = {"MEMBER_API_URL": "https://crm.example/members/{value}", "MEMBER_API_AUTH": "Bearer s3",
           "MEMBER_API_POLICY": " OPEN ", "MEMBER_API_TIMEOUT": "0.5", "LOOKUP_CACHE_TTL": "60",
           "INVENTORY_API_CACHE_TTL": "0", "LOOKUP_BREAKER_FAILURES": "7"}
    specs = {s.name: s for s in specs_from_config(config.load(env), declared, "https://api.example/v1/")}
    members, inventory = specs["members"], specs["inventory"]
    assert (members.url, members.auth, members.policy, members.timeout) == (
        "https://crm.example/members/{value}", "Bearer s3", "open", 0.5)
    assert (members.ttl, inventory.ttl, inventory.breaker_failures) == (60, 0, 7)
    assert inventory.url == "https://api.example/v1/inventory?key={value}"
    assert specs_from_config(config.load(env), declared, None)[-1].url == ""  # no URL: the caller decides
    assert (inventory.policy, specs["coverage"].policy, inventory.timeout) == ("closed", "open", 1.0)


def test_an_unknown_policy_refuses_to_start(app_config):
    from app import create_app
    from config import ConfigError

    with pytest.raises(ConfigError, match="CALENDAR_API_POLICY='maybe' is not a policy"):
        create_app({**app_config, "CALENDAR_API_POLICY": "maybe"})



class _KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, header and body in one write: what a business API behind a
    load balancer sends (werkzeug's server closes each connection, so it never shows the race)."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(0.02)  # calls overlap
        body = b'{"name": "Ana Silva", "tier": "Gold", "status": "active"}'
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))

    def log_message(self, *args):
        pass


def test_more_lookups_at_once_than_pooled_connections_all_succeed(redis_client):
    """Once a body is in, urllib3 hands its connection back to the pool, which closes it when full
    (or gives it to another thread): the body reader must not touch that socket again. It did:
    with more gunicorn threads than pooled connections, lookups failed with EBADF, and five such
    failures opened the breaker for everyone."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = dict(name="members", url=f"http://127.0.0.1:{server.server_port}/members", auth=None,
                    timeout=5.0, ttl=300, negative_ttl=30, stale_max_age=3600, breaker_failures=10**6,
                    breaker_seconds=30)
        lookup = Lookups([LookupSpec(**spec)], redis_client, pool_size=2,
                         metrics=Metrics(redis_client))["members"]
        with ThreadPoolExecutor(40) as pool:
            outcomes = list(pool.map(lambda i: lookup.fetch(f"M{i}", fresh=True).outcome, range(400)))
    finally:
        server.shutdown()
        server.server_close()
    assert outcomes.count("miss") == 400, {o: outcomes.count(o) for o in set(outcomes)}


def _commands(redis_client, command: str) -> int:
    return redis_client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


def test_a_fresh_answer_is_served_from_memory_for_at_most_a_second(redis_client, api):
    lookup = make(redis_client, api)
    assert lookup.fetch("MEM123").outcome == "miss"
    gets = _commands(redis_client, "get")
    assert lookup.fetch("MEM123").outcome == "hit"
    assert _commands(redis_client, "get") == gets  # this process wrote it a moment ago: no round trip
    another = make(redis_client, api)  # another process: no memory of it, reads Redis
    assert another.fetch("MEM123").outcome == "hit" and _commands(redis_client, "get") == gets + 1
    wait_for(lambda: lookup.fetch("MEM123") and _commands(redis_client, "get") > gets + 1,
             timeout=lookup_cache.LOCAL_SECONDS + 2, message="the memory tier to hand back to Redis")
    assert api.calls("members") == 1


def test_memory_never_serves_what_redis_no_longer_calls_fresh(redis_client, api):
    lookup = make(redis_client, api, ttl=300, negative_ttl=0)
    lookup.fetch("NOPE")
    assert lookup.fetch("NOPE").outcome == "miss"  # a negative TTL of 0: the copy in memory is not fresh
    changed = lookup.fetch("MEM123")
    changed.record["name"] = "changed by a handler"
    assert lookup.fetch("MEM123").record["name"] == "Ana Silva"  # each hit gets its own copy
    assert lookup.fetch("MEM123", fresh=True).outcome == "miss"  # fresh=True skips memory too
    assert api.calls("members") == 4  # NOPE twice, MEM123 once, and the fresh one



def test_a_closed_breaker_is_read_with_the_cache_and_runs_no_script(redis_client, api):
    lookup = make(redis_client, api)
    scripts = _commands(redis_client, "evalsha") + _commands(redis_client, "eval")
    assert lookup.fetch("MEM123").outcome == "miss"
    assert lookup.fetch("NOPE", fresh=True).not_found
    assert _commands(redis_client, "evalsha") + _commands(redis_client, "eval") == scripts
    assert _commands(redis_client, "hget") >= 2  # the breaker's state was read, each time
