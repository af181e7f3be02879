"""A real worker SIGKILLed in the middle of every send path, and just before it (workers/effects.py).

For each path — the confirmation, the first Flow message, a recovery step, the fallback message,
a conversation reply, the receipt, and the two forwards to the business — a real ``flask worker``
(process group: worker and scheduler, as Heroku kills a dyno) runs the job until:

- ``during``: the Graph stand-in has the message and holds the request open (the business's
  receiver, for a forward); the worker is SIGKILLed before any answer;
- ``before``: the job's first command on the effect's record reaches the Redis relay
  (tests/standins/redis_proxy.py), which holds it; the worker is SIGKILLed before it ran.

Then a replacement worker starts and RQ recovers the abandoned job, as fast as configuration
makes it (RQ_HEARTBEAT_GRACE etc., README "Workers"; a retry interval of 0 needs no scheduler,
whose dead holder's lock RQ keeps for 61 s). A message to the user must then have gone out at
most once, the ambiguous case recorded (``unknown`` effect, ``unknown_outcome`` in the fallback
list and on the timeline); a forward is sent again with the same Idempotency-Key; and a kill
before the send ends with exactly one send.
"""
from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from conftest import wait_for
from records.submissions import submission_id
from flows.webhook import digest
from messaging import fallback
from procs import Workers
from stack import PHONE, Stack, chain, stack_config
from standins.media_host import MediaHostStandIn
from standins.meta_webhooks import completion, text_message
from standins.receiver import ReceiverStandIn
from standins.redis_proxy import RedisProxy
from workers.effects import Effects
from workers.recovery import job_id

# Recovery after a SIGKILL in seconds: abandoned 1 + 4 s after the last heartbeat, found by the
# replacement's maintenance within a second, retried at once. The lease (2 s) is over by then,
# so the retry meets the record as the dead attempt left it.
FAST = {"RQ_MAINTENANCE_INTERVAL": 1, "RQ_JOB_MONITORING_INTERVAL": 1, "RQ_WORKER_TTL": 16,
        "RQ_HEARTBEAT_GRACE": 4, "EFFECT_LEASE_SECONDS": 2, "JOB_RETRY_BACKOFF": (0,), "JOB_MAX_RETRIES": 2}
HELD = 8  # seconds the stand-in keeps the request open: the kill lands inside it


@pytest.fixture
def business():
    with ReceiverStandIn() as receiver:
        yield receiver


@pytest.fixture
def host():
    with MediaHostStandIn() as h:
        yield h


@pytest.fixture
def proxy(redis_server):
    with RedisProxy(redis_server.port) as relay:
        yield relay


@dataclass
class Path:
    prefix: str  # of the effect's key, and of the message's biz_opaque_callback_data
    run: Callable  # (stack, graph) → (flow token or None, id of the job that sends)
    forward: bool = False  # a POST to the business (RESEND) rather than a message to the user
    steps: str = "1s,1h"  # RECOVERY_STEPS: step1 a second after the Flow is opened


# --- the scenarios: each returns once the job that sends is queued or scheduled --------------------
def completed(stack, graph):
    message = completion(token="fg_kill_confirm")
    stack.whatsapp(message)
    return "fg_kill_confirm", f"completion-{digest(message['id'])}"


def completed_now(stack, graph):
    message = completion(token="fg_kill_receipt")
    message["timestamp"] = str(int(time.time()))  # the 24-hour window is open
    stack.whatsapp(message)
    return "fg_kill_receipt", message["id"]


def flow_sent(stack, graph):
    stack.app.extensions["contacts"].inbound(PHONE)
    token = stack.send()
    return token, job_id("send", token)


def opened(stack, graph):
    token, _ = flow_sent(stack, graph)
    wait_for(lambda: sent(graph, "send-"), message="the Flow message")
    assert stack.client().init(token).screen == "MEMBER_LOOKUP"  # the ladder starts: step1 in 1 s
    return token


def step_due(stack, graph):
    token = opened(stack, graph)
    return token, job_id("rec", token, "step1")


def client_error(stack, graph):
    token = opened(stack, graph)
    stack.client().error(token, "MEMBER_LOOKUP", "invalid-screen-transition")
    return token, job_id("fb", token)


def replied(stack, graph):
    token = opened(stack, graph)
    wait_for(lambda: stack.sessions.get(token).get("conversation"), timeout=15, message="the first step sent")
    message = text_message("who is this?", user=PHONE)
    stack.whatsapp(message)
    return token, f"inbound-{digest(message['id'])}"


def receipt(stack, graph):
    token, wamid = completed_now(stack, graph)
    return token, f"receipt-{submission_id(wamid)}"


def completion_forward(stack, graph):
    token, wamid = completed_now(stack, graph)
    return token, f"forward-{submission_id(wamid)}"


PATHS = {
    "confirmation": Path("confirm:", completed),
    "flow message": Path("send-", flow_sent),
    "recovery step": Path("rec-", step_due),
    "fallback": Path("fb-", client_error, steps="1h"),  # no step in its way
    "conversation reply": Path("handoff-", replied),
    "receipt": Path("receipt:", receipt),
    "hand-over forward": Path("handoff-fwd-", replied, forward=True),
    "completion forward": Path("forward:", completion_forward, forward=True),
}


def sent(graph, prefix: str) -> list[dict]:
    """Messages that reached the Graph stand-in (held ones included) for effects with ``prefix``."""
    return [b for b in graph.sent_messages() if str(b.get("biz_opaque_callback_data", "")).startswith(prefix)]


def records(redis, prefix: str) -> dict:
    """effect key → its record, for every effect under ``prefix``."""
    keys = [k.decode()[len("fg:effect:"):] for k in redis.scan_iter(f"fg:effect:{prefix}*")]
    effects = Effects(redis, 2)
    return {k: effects.state(k) for k in keys if not k.endswith(":lease")}


def finished(redis, jid: str) -> bool:
    job = Job.fetch_many([jid], connection=redis, serializer=JSONSerializer)[0]
    return job is not None and job.get_status(refresh=True) == "finished"


@pytest.mark.parametrize("moment", ["during", "before"])
@pytest.mark.parametrize("name", list(PATHS))
def test_a_worker_killed_around_a_send(name, moment, app_config, graph, wasender, business, host,
                                       proxy, keypair):
    path = PATHS[name]
    cfg = stack_config(app_config, graph, wasender, RECOVERY_STEPS=path.steps, **FAST,
                       HANDOFF_FORWARD_URL=business.handoff if name == "hand-over forward" else None,
                       COMPLETION_FORWARD_URL=business.endpoint if name == "completion forward" else None,
                       RECEIPT_IMAGE_URL=host.link("card.png") if name == "receipt" else None)
    if moment == "during" and path.forward:
        business.fail_next(200, delay=HELD)  # the receiver takes it, slowly
        arrived = lambda: bool(business.requests)  # noqa: E731
    elif moment == "during":
        event = graph.hold(lambda body: str(body.get("biz_opaque_callback_data", "")).startswith(path.prefix),
                           HELD)
        arrived = event.is_set
    else:
        arrived = proxy.hold(f"fg:effect:{path.prefix}".encode()).is_set
    with Stack(cfg, keypair, workers=0) as stack, ExitStack() as running:
        # One job at a time in the victim, so the kill lands in this path's send and nowhere else
        # (with WORKER_THREADS it would cut every job in flight: tests/test_chaos.py covers that).
        victim = running.enter_context(Workers({**cfg, "REDIS_URL": proxy.url, "WORKER_THREADS": 1}))
        token, jid = path.run(stack, graph)
        wait_for(arrived, timeout=30, message=f"the {name} job to reach the send")
        victim.stop(victim.procs[0], signal.SIGKILL)  # worker and scheduler, as a dyno dies
        assert Job.fetch(jid, connection=stack.redis, serializer=JSONSerializer).get_status() == "started"
        running.enter_context(Workers(cfg))  # the replacement dyno, straight to Redis
        wait_for(lambda: finished(stack.redis, jid), timeout=45, message=f"the recovered {name} job")

        (record,) = records(stack.redis, path.prefix).values()
        cases = [c for c in fallback.pending(stack.redis) if c["reason"] == "unknown_outcome"]
        timeline = [e["event"] for e in stack.sessions.timeline(token)]
        if path.forward:
            posts = business.matching("POST", "/handoff" if name == "hand-over forward" else "/submissions")
            keys = {p.headers.get("Idempotency-Key") for p in posts}
            # At least once, and every copy names the same effect, so the receiver keeps one.
            assert len(posts) == (2 if moment == "during" else 1) and len(keys) == 1 and None not in keys
            assert record["state"] == "done" and cases == []
        elif moment == "during":
            assert len(sent(graph, path.prefix)) == 1, "the message must not be sent again"
            assert record["state"] == "unknown"
            (case,) = cases
            assert case["flow_token"] == (stack.sessions.get(token).get("origin") or token)
            assert "fallback_unknown_outcome" in timeline
        else:
            assert len(sent(graph, path.prefix)) == 1, "killed before the send: sent once after recovery"
            assert record["state"] == "done" and cases == []
            assert "fallback_unknown_outcome" not in timeline
        if name == "recovery step":
            # The chain's bookkeeping follows what is known: a new token only once it surely went out.
            assert len(chain(stack.sessions, token)) == (1 if moment == "during" else 2)


def test_a_confirmation_whose_answer_never_came_is_not_sent_again(app_config, graph, wasender, keypair):
    """The same gap seen from a live worker: Meta has the request but the answer does not come
    within the Graph client's 10 s. Retrying would be a second message; the retry finds the effect
    ambiguous once its lease is over and records it instead."""
    cfg = stack_config(app_config, graph, wasender, EFFECT_LEASE_SECONDS=2, JOB_RETRY_BACKOFF=(1,),
                       JOB_MAX_RETRIES=3)
    graph.hold(lambda body: str(body.get("biz_opaque_callback_data", "")).startswith("confirm:"), 12)
    with Stack(cfg, keypair) as stack:
        message = completion(token="fg_timeout")
        stack.whatsapp(message)
        jid = f"completion-{digest(message['id'])}"
        wait_for(lambda: finished(stack.redis, jid), timeout=40, message="the retried completion job")
        assert len(sent(graph, "confirm:")) == 1, "a timed-out confirmation must not be sent again"
        (record,) = records(stack.redis, "confirm:").values()
        (case,) = fallback.pending(stack.redis)
    assert record["state"] == "unknown"
    assert (case["reason"], case["flow_token"]) == ("unknown_outcome", "fg_timeout")
