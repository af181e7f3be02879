"""Exactly-once effects on a real Redis: done is done, failures release, dead attempts are not repeated."""
from __future__ import annotations

import pytest

from conftest import wait_for
from workers.effects import RESEND, SKIP, EffectBusy, Effects


class Boom(Exception):
    pass


@pytest.fixture
def effects(redis_client):
    return Effects(redis_client, lease_seconds=0.3)


def test_second_run_gets_the_recorded_result(effects):
    calls = []
    first = effects.once("confirm:a", lambda: calls.append(1) or {"wamid": "w1"})
    second = effects.once("confirm:a", lambda: calls.append(2) or {"wamid": "w2"})
    assert calls == [1]
    assert (first.state, second.state) == ("performed", "done")
    assert second.result == {"wamid": "w1"}


def test_a_known_failure_releases_the_effect_for_a_retry(effects):
    def fail():
        raise Boom()

    with pytest.raises(Boom):
        effects.once("confirm:b", fail, safe_to_retry=(Boom,))
    assert effects.state("confirm:b") == {}
    assert effects.once("confirm:b", lambda: {"ok": 1}).state == "performed"


def test_a_live_attempt_makes_others_wait(effects, redis_client):
    inner = {}

    def nested():
        with pytest.raises(EffectBusy) as info:
            effects.once("confirm:c", lambda: {"second": True})
        inner["retry_after"] = info.value.retry_after
        return {"first": True}

    assert effects.once("confirm:c", nested).result == {"first": True}
    assert 0 < inner["retry_after"] <= 1.0


def test_an_attempt_that_died_is_not_repeated_by_default(effects):
    def die():
        raise KeyboardInterrupt  # stands for the process vanishing mid-send: not a known failure

    with pytest.raises(KeyboardInterrupt):
        effects.once("confirm:d", die)
    with pytest.raises(EffectBusy):  # lease still alive
        effects.once("confirm:d", lambda: {"again": True})
    calls = []
    outcome = wait_for(lambda: _try(effects, "confirm:d", calls, SKIP), timeout=5, message="lease expiry")
    assert outcome.state == "lost" and calls == []
    assert effects.once("confirm:d", lambda: calls.append(1) or {}).state == "unknown"
    assert calls == []


def test_resend_policy_takes_over_a_dead_attempt(effects):
    with pytest.raises(KeyboardInterrupt):
        effects.once("forward:e", _raise_interrupt, when_lost=RESEND)
    calls = []
    outcome = wait_for(lambda: _try(effects, "forward:e", calls, RESEND), timeout=5, message="lease expiry")
    assert outcome.state == "performed" and calls == [1]
    assert effects.state("forward:e")["attempts_lost"] == "1"


def test_records_are_kept_past_metas_retry_window(effects, redis_client):
    effects.once("confirm:f", lambda: {})
    assert redis_client.ttl("fg:effect:confirm:f") > 7 * 24 * 3600


def _raise_interrupt():
    raise KeyboardInterrupt


def _try(effects, key, calls, policy):
    try:
        return effects.once(key, lambda: calls.append(1) or {"sent": True}, when_lost=policy)
    except EffectBusy:
        return None
