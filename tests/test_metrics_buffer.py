"""Web processes add metrics up in memory and write them once a second (metrics/buffer.py)."""
from __future__ import annotations

import redis as redis_lib

from conftest import APP_SECRET, RedisServer, served_settings, wait_for
from devtools.simulator import FlowClient
from metrics import Metrics
from metrics.buffer import Buffer
from metrics.store import LATENCY_TOTAL_KEY, total_key
from procs import Gunicorn

NOW = 1_790_000_000.0


def _pings(redis_client) -> int:
    return int(redis_client.hget(LATENCY_TOTAL_KEY, "e|member_check|ping|s200") or 0)


def test_buffered_counts_add_up_and_go_out_in_one_write(redis_client):
    metrics = Metrics(redis_client)
    metrics.buffer = Buffer(redis_client, seconds=3600)  # no thread: flushed by hand below
    for _ in range(50):
        with metrics.batch(now=NOW) as m:
            m.endpoint("member_check", "ping", 0.004, 200)
            m.count("member_check", "screen", label="CONFIRM")
        metrics.session("tok-a")
    assert _pings(redis_client) == 0  # nothing written yet
    before = redis_client.info("stats")["total_commands_processed"]
    assert metrics.buffer.flush()
    assert _pings(redis_client) == 50
    assert redis_client.hget(total_key("member_check"), "c|screen|CONFIRM") == b"50"
    assert redis_client.zscore("fg:m:recent", "tok-a") is not None
    # 50 requests' worth of writes: a handful of commands, not 50 x 14 (+1 for INFO itself).
    assert redis_client.info("stats")["total_commands_processed"] - before < 20


def test_a_failed_flush_keeps_the_counts_for_the_next_one(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    client = redis_lib.Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        buffer = Buffer(client, seconds=3600)
        metrics = Metrics(client)
        metrics.buffer = buffer
        metrics.endpoint("member_check", "ping", 0.004, 200)
        server.stop()
        assert buffer.flush() is False  # Redis down: kept, not lost and not raised
        metrics.endpoint("member_check", "ping", 0.004, 200)
        server.start()
        assert buffer.flush() is True
        assert _pings(client) == 2
    finally:
        client.close()
        server.stop()


def test_gunicorn_workers_write_within_the_flush_period_and_on_a_graceful_stop(redis_url, redis_client,
                                                                               keypair):
    # A period far longer than the test: what arrives before the stop came from the stop's flush.
    slow = Gunicorn(APP_ENV="production", REDIS_URL=redis_url, WEB_CONCURRENCY=2, METRICS_FLUSH_SECONDS=3600,
                    FLOW_PRIVATE_KEY=keypair[0], WHATSAPP_APP_SECRET=APP_SECRET, **served_settings())
    with slow:
        client = FlowClient(f"{slow.url}/flows/member_check", keypair[1], APP_SECRET)
        for _ in range(10):
            assert client.ping().body == {"data": {"status": "active"}}
        assert _pings(redis_client) == 0
    assert slow.proc.returncode == 0, slow.output
    assert _pings(redis_client) == 10, slow.output

    fast = Gunicorn(APP_ENV="production", REDIS_URL=redis_url, WEB_CONCURRENCY=2, METRICS_FLUSH_SECONDS=0.2,
                    FLOW_PRIVATE_KEY=keypair[0], WHATSAPP_APP_SECRET=APP_SECRET, **served_settings())
    with fast:
        client = FlowClient(f"{fast.url}/flows/member_check", keypair[1], APP_SECRET)
        for _ in range(5):
            client.ping()
        wait_for(lambda: _pings(redis_client) == 15, timeout=10, message="the periodic flush")
