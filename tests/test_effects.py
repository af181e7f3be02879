"""Exactly-once effects on a real Redis: done is done, failures release, dead attempts are not repeated.
(A real worker SIGKILLed around each send path: test_kill_mid_send.py.)"""
from __future__ import annotations

import json
import time

import pytest
import requests

from app import create_app
from conftest import wait_for
from messaging import fallback
from messaging.graph import RETRYABLE, GraphError
from messaging.outbound import Outbound
from messaging.router import Refused
from standins.graph import ACCESS_TOKEN
from workers.effects import RESEND, SKIP, EffectBusy, Effects, deliver_once, nothing_sent


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


def test_a_record_of_the_former_once_module_counts_as_done(effects, redis_client):
    # messaging/once.py kept a JSON string under the same key (30 days): after an upgrade the
    # effect it recorded must not go out again.
    redis_client.set("fg:effect:stop-15550001234", json.dumps({"channel": "cloud", "message_id": "w0"}))
    calls = []
    outcome = effects.once("stop-15550001234", lambda: calls.append(1) or {})
    assert (outcome.state, outcome.result, calls) == ("done", {"channel": "cloud", "message_id": "w0"}, [])
    assert effects.state("stop-15550001234")["state"] == "done"


def test_safe_to_retry_may_be_a_predicate(effects):
    with pytest.raises(Boom):
        effects.once("confirm:g", _raise(Boom()), safe_to_retry=lambda exc: isinstance(exc, Boom))
    assert effects.state("confirm:g") == {}
    with pytest.raises(ValueError):
        effects.once("confirm:h", _raise(ValueError()), safe_to_retry=lambda exc: False)
    assert effects.state("confirm:h")["state"] == "running"  # ambiguous until its lease ends


def test_only_a_read_timeout_leaves_a_send_ambiguous():
    def raised_in(handled: Exception) -> GraphError:
        try:
            raise handled
        except requests.RequestException:  # as the transports raise their own error
            try:
                raise GraphError(RETRYABLE, 0, None, "timeout") from None
            except GraphError as exc:
                return exc

    assert not nothing_sent(raised_in(requests.ReadTimeout()))
    assert nothing_sent(raised_in(requests.ConnectTimeout()))
    assert nothing_sent(raised_in(requests.ConnectionError()))
    assert nothing_sent(GraphError(RETRYABLE, 500, 131000, "Something went wrong"))
    assert nothing_sent(Refused("user opted out"))
    assert not nothing_sent(KeyError("a bug"))


def test_a_message_whose_answer_never_came_is_not_sent_again(app_config, graph, redis_client):
    """A live worker's read timeout is the mid-send gap too: the request left, no answer came
    (the Graph client waits 10 s). At most once: recorded as unknown_outcome, never resent."""
    app = create_app({**app_config, "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
                      "WHATSAPP_PHONE_NUMBER_ID": "100200300", "FOLLOWUP_CHANNEL": "cloud",
                      "EFFECT_LEASE_SECONDS": 1})
    app.extensions["contacts"].inbound("15550001234")  # the window is open
    app.extensions["sessions"].issue("fg_slow", "member_check", "15550001234")
    graph.hold(lambda body: body.get("biz_opaque_callback_data") == "handoff-fg_slow", 12)
    out = Outbound(to="15550001234", text="A person will answer you here.", key="handoff-fg_slow")
    with app.app_context():
        with pytest.raises(GraphError):
            deliver_once(out, token="fg_slow")  # RQ would retry the job
        outcome = wait_for(lambda: _deliver(out), timeout=5, message="the lease to end")
        assert outcome.state == "lost"
        assert deliver_once(out, token="fg_slow").state == "unknown"
    assert len(graph.sent_messages()) == 1
    (case,) = fallback.pending(redis_client)
    assert ((case["reason"], case["flow_token"], case["detail"])
            == ("unknown_outcome", "fg_slow", "handoff-fg_slow"))
    assert "fallback_unknown_outcome" in [e["event"] for e in app.extensions["sessions"].timeline("fg_slow")]


def _deliver(out):
    try:
        return deliver_once(out, token="fg_slow")
    except EffectBusy:
        time.sleep(0.1)
        return None


def _raise(exc):
    def action():
        raise exc
    return action
