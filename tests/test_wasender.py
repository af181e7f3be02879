"""WASenderApi client and the shared token bucket, against a loopback stand-in and real Redis."""
import multiprocessing
import time

import pytest
import redis as redis_lib

from messaging.ratelimit import TokenBucket, parse_rate
from messaging.wasender import WASenderClient, WASenderError, signature_ok
from standins.wasender import API_KEY, WASenderStandIn


def make_client(standin, redis_client, per_second=100.0):
    return WASenderClient(f"{standin.url}/api", API_KEY, redis_client, per_second, timeout=2)


@pytest.mark.parametrize("text, per_second", [("1/min", 1 / 60), ("1/5s", 0.2), ("256/min", 256 / 60),
                                               ("2/s", 2.0), ("10 / hour", 10 / 3600)])
def test_parse_rate(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


def test_parse_rate_rejects_garbage():
    with pytest.raises(ValueError):
        parse_rate("fast")


def test_send_when_connected(wasender, redis_client):
    msg_id = make_client(wasender, redis_client).send("15550001111", "hello")
    assert msg_id == "1000"
    assert wasender.sent() == [{"to": "+15550001111", "text": "hello"}]


def test_not_connected_sends_nothing(redis_client):
    with WASenderStandIn(status="need_scan") as standin:
        with pytest.raises(WASenderError) as info:
            make_client(standin, redis_client).send("15550001111", "hello")
        assert info.value.kind == "not_connected" and standin.sent() == []


@pytest.mark.parametrize("reported", ["CONNECTED", "Connected ", "connected"])
def test_session_status_is_compared_whatever_its_case(redis_client, reported):
    with WASenderStandIn(status=reported) as standin:
        client = make_client(standin, redis_client)
        assert client.status(fresh=True) == "connected"
        assert client.send("15550001111", "hello") and len(standin.sent()) == 1


def test_status_is_cached_for_all_clients(wasender, redis_client):
    a, b = make_client(wasender, redis_client), make_client(wasender, redis_client)
    assert a.status() == "connected" and b.status() == "connected"
    assert len(wasender.matching("GET", "/api/status")) == 1


def test_429_retry_after_holds_every_client_off(wasender, redis_client):
    client = make_client(wasender, redis_client, per_second=1.0)
    wasender.rate_limit_next(retry_after=30)
    with pytest.raises(WASenderError) as info:
        client.send("15550001111", "one")
    assert info.value.kind == "rate_limited" and info.value.retry_after == 30
    # Another worker's client now waits locally instead of calling and getting another 429.
    with pytest.raises(WASenderError) as info:
        make_client(wasender, redis_client, per_second=1.0).send("15550001111", "two")
    assert info.value.kind == "rate_limited" and 29 <= info.value.retry_after <= 31
    assert len(wasender.sent()) == 1


def test_server_error_is_retryable_and_auth_error_permanent(wasender, redis_client):
    wasender.fail_next(502, {"message": "bad gateway"})
    with pytest.raises(WASenderError) as info:
        make_client(wasender, redis_client).send("1555", "x")
    assert info.value.kind == "retryable"
    bad = WASenderClient(f"{wasender.url}/api", "wrong-key", redis_client, 100.0)
    bad.record_status("connected")
    with pytest.raises(WASenderError) as info:
        bad.send("1555", "x")
    assert info.value.kind == "permanent" and info.value.status == 401


def test_webhook_signature_compare():
    assert signature_ok("s3cret", "s3cret")
    assert not signature_ok("s3cret", "s3cre")
    assert not signature_ok("s3cret", None)
    assert not signature_ok(None, "anything")


def _take_for(url, key, per_second, seconds, queue):
    client = redis_lib.Redis.from_url(url)
    bucket = TokenBucket(client, key, per_second)
    granted = []
    end = time.time() + seconds
    while time.time() < end:
        ok, wait = bucket.take()
        if ok:
            granted.append(time.time())
        else:
            time.sleep(min(wait, 0.05))
    queue.put(granted)


def test_token_bucket_holds_the_rate_across_two_processes(redis_url):
    # 5 tokens/s for 2 s from two processes: at most 1 (the initial token) + 10 refills in all.
    queue = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(
        target=_take_for, args=(redis_url, "fg:test:bucket", 5.0, 2.0, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    grants = sorted(queue.get(timeout=10) + queue.get(timeout=10))
    for p in procs:
        p.join(timeout=5)
    assert 9 <= len(grants) <= 11


# --- the session status, whatever its case ---------------------------------------------------------
# WASender's docs show `connected`; its official Python SDK (0.3.5) models the session.status
# webhook's values as `CONNECTED`. An uppercase status must not hold every send back.

def test_an_uppercase_session_status_webhook_does_not_block_sends(wasender, redis_client, app_config):
    from app import create_app
    from conftest import LiveServer

    app = create_app({**app_config, "WASENDER_API_BASE": f"{wasender.url}/api", "WASENDER_API_KEY": API_KEY,
                      "WASENDER_WEBHOOK_SECRET": "ws-secret", "WASENDER_RATE": "100/s"})
    with LiveServer(app) as server:
        import requests

        resp = requests.post(f"{server.url}/webhooks/wasender", timeout=5,
                             headers={"X-Webhook-Signature": "ws-secret"},
                             json={"event": "session.status", "data": {"status": "CONNECTED"}})
        assert resp.status_code == 200
        assert app.extensions["wasender"].send("15550001111", "hello") == "1000"
    assert wasender.matching("GET", "/api/status") == []  # the webhook's status was fresh enough
    assert [m["text"] for m in wasender.sent()] == ["hello"]


def test_an_uppercase_polled_status_counts_as_connected(redis_client):
    with WASenderStandIn(status="CONNECTED") as standin:
        assert make_client(standin, redis_client).send("15550001111", "hi") == "1000"
    with WASenderStandIn(status="NEED_SCAN") as standin:
        redis_client.delete("fg:wasender:status")
        with pytest.raises(WASenderError) as info:
            make_client(standin, redis_client).send("15550001111", "hi")
        assert info.value.kind == "not_connected"


# --- the trial plan's daily cap ---------------------------------------------------------------------
# Trial: 1 message a minute *and* 50 a day (WASender's rate-limit page). The cap is shared in Redis.

def test_the_daily_cap_is_shared_by_every_client_and_says_when_to_come_back(wasender, redis_client):
    first = WASenderClient(f"{wasender.url}/api", API_KEY, redis_client, 1e6, timeout=2, daily_cap=3)
    second = WASenderClient(f"{wasender.url}/api", API_KEY, redis_client, 1e6, timeout=2, daily_cap=3)
    for client, text in ((first, "1"), (second, "2"), (first, "3")):
        client.send("15550001111", text)
    with pytest.raises(WASenderError) as info:
        second.send("15550001111", "4")
    assert info.value.kind == "rate_limited" and 86000 < info.value.retry_after <= 86400
    assert [m["text"] for m in wasender.sent()] == ["1", "2", "3"]


def test_the_daily_cap_is_a_rolling_day(redis_client):
    from messaging.ratelimit import DailyCap

    cap = DailyCap(redis_client, "fg:test:daily", 2)
    day = 24 * 3600
    assert cap.take(now=1000.0)[0] and cap.take(now=2000.0)[0]
    granted, wait = cap.take(now=1000.0 + day - 1)
    assert not granted and wait == pytest.approx(1.0)
    assert cap.take(now=1000.0 + day + 1)[0]  # the first send is a day old: its slot is free again
    assert DailyCap(redis_client, "fg:test:nocap", 0).take()[0]  # 0: no cap (paid plans)


def test_the_daily_cap_comes_from_config(app_config):
    from app import create_app

    assert create_app(app_config).extensions["wasender"].daily.cap == 50  # the trial's, by default
    assert create_app({**app_config, "WASENDER_DAILY_CAP": 0}).extensions["wasender"].daily.cap == 0


def test_the_wasender_stand_in_takes_phone_numbers_only(wasender, redis_client):
    with pytest.raises(WASenderError) as info:
        make_client(wasender, redis_client).send("US.13491208655302741918", "hi")
    assert info.value.kind == "permanent"
