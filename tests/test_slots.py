"""Slot holds: exactly one winner under concurrency, bookings are final, expired holds free."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import redis as redis_lib

from conftest import wait_for
from validation.slots import SlotHolds
from test_demo_flows import api, next_weekday, served  # noqa: F401  (fixtures)


def race(n, fn):
    barrier = threading.Barrier(n)

    def contender(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(contender, range(n)))


def test_many_concurrent_holders_exactly_one_wins(redis_url):
    def hold(i):
        client = redis_lib.Redis.from_url(redis_url)  # one connection each, as from many processes
        return SlotHolds(client, hold_seconds=60).hold("2030-01-07", "09:00", f"tok-{i}")

    results = race(32, hold)
    assert results.count(True) == 1
    winner = f"tok-{results.index(True)}"
    assert SlotHolds(redis_lib.Redis.from_url(redis_url), 60).owner("2030-01-07", "09:00") == (winner, None)


def test_concurrent_bookings_of_a_free_slot_book_it_once(redis_url):
    def book(i):
        return SlotHolds(redis_lib.Redis.from_url(redis_url), 60).book("2030-01-07", "10:00", f"tok-{i}")

    assert race(16, book).count(True) == 1


def test_hold_book_release_rules(redis_client):
    slots = SlotHolds(redis_client, hold_seconds=60)
    assert slots.hold("d", "09:00", "a") and slots.hold("d", "09:00", "a")  # re-hold extends
    assert not slots.hold("d", "09:00", "b")
    assert not slots.book("d", "09:00", "b")  # someone else's live hold
    assert not slots.release("d", "09:00", "b")  # only the holder releases
    assert slots.book("d", "09:00", "a") and slots.book("d", "09:00", "a")  # idempotent for the owner
    assert not slots.hold("d", "09:00", "b")  # booked slots cannot be held
    assert slots.unavailable("d", ["09:00", "09:30"], "b") == {"09:00"}


def test_an_expired_hold_frees_the_slot(redis_client):
    slots = SlotHolds(redis_client, hold_seconds=0.3)
    assert slots.hold("d", "11:00", "a")
    assert not slots.hold("d", "11:00", "b")
    wait_for(lambda: slots.hold("d", "11:00", "b"), timeout=3, message="the hold to expire")
    assert slots.owner("d", "11:00") == ("b", None)


def test_concurrent_users_of_the_endpoint_one_gets_the_slot(served):  # noqa: F811
    app, client = served()
    day = next_weekday(2)

    def pick(i):
        c = client("appointment")
        return c.exchange(f"tok-race-{i}", "BOOK", {"step": "time_chosen", "date": day, "slot": "15:00"})

    replies = race(12, pick)
    assert all(r.status == 200 and r.screen == "BOOK" for r in replies)
    held = [r for r in replies if r.data.get("show_hold")]
    refused = [r for r in replies if r.data.get("slot_error", "").startswith("Someone just took")]
    assert len(held) == 1 and len(refused) == 11


def test_through_the_endpoint_an_expired_hold_lets_the_next_user_in(served):  # noqa: F811
    app, client = served(SLOT_HOLD_SECONDS=0.3)
    c = client("appointment")
    day = next_weekday(3)
    pick = {"step": "time_chosen", "date": day, "slot": "11:30"}
    assert c.exchange("tok-x1", "BOOK", pick).data["show_hold"] is True
    assert c.exchange("tok-x2", "BOOK", pick).data["show_slot_error"] is True
    wait_for(lambda: c.exchange("tok-x2", "BOOK", pick).data["show_hold"], timeout=3,
             message="the first hold to expire")
    late = c.exchange("tok-x1", "CONFIRM", {"confirm": True})  # the first user comes back too late
    assert late.screen == "CONFIRM" and "just taken" in late.data["error_message"]
