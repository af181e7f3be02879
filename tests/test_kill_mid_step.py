"""A recovery step whose worker died mid-send, and which is superseded before its retry runs
(workers/recovery.py ``moot``, workers/effects.py ``settle_delivery``).

Found by tests/test_chaos.py: step1 reached the Graph API, then its worker lost Redis (or was
SIGKILLed) before recording the end; step2 went out; when the recovered step1 job ran again it was
"superseded" and returned without looking at its effect record, which stayed ``running`` for good:
a message that may have reached the user, recorded nowhere. The same gap opens whenever a step
becomes moot (completed, opted out) after an attempt died mid-send.

Here a real worker is SIGKILLed while the Graph stand-in holds step1's request, with step2 already
queued; the replacement sends step2 first, then RQ recovers step1.
"""
from __future__ import annotations

import signal
from contextlib import ExitStack

from rq.job import Job
from rq.serializers import JSONSerializer

from conftest import wait_for
from messaging import fallback
from procs import Workers
from stack import Stack, stack_config
from test_kill_mid_send import FAST, HELD, finished, opened, records, sent
from workers.recovery import job_id


def test_a_step_killed_mid_send_then_superseded_is_recorded_unknown(app_config, graph, wasender, keypair):
    cfg = stack_config(app_config, graph, wasender, RECOVERY_STEPS="1s,2s", **FAST)
    held = graph.hold(lambda body: str(body.get("biz_opaque_callback_data", "")).endswith("-step1"), HELD)
    with Stack(cfg, keypair, workers=0) as stack, ExitStack() as running:
        # One job at a time: the victim sits in step1 while step2 falls due (WORKER_THREADS would
        # run step2 beside it, and the kill would cut both).
        victim = running.enter_context(Workers({**cfg, "WORKER_THREADS": 1}))
        token = opened(stack, graph)
        step1, step2 = job_id("rec", token, "step1"), job_id("rec", token, "step2")
        wait_for(held.is_set, timeout=30, message="step1 at the Graph API")

        def step2_queued():  # moved by the victim's scheduler while the victim sits in step1
            job = Job.fetch_many([step2], connection=stack.redis, serializer=JSONSerializer)[0]
            return job is not None and job.get_status(refresh=True) == "queued"

        wait_for(step2_queued, timeout=HELD - 2, message="step2 queued")
        victim.stop(victim.procs[0], signal.SIGKILL)
        running.enter_context(Workers(cfg))  # the replacement: step2 now, step1 once RQ finds it abandoned
        wait_for(lambda: finished(stack.redis, step1), timeout=45, message="the recovered step1 job")

        result = Job.fetch(step1, connection=stack.redis, serializer=JSONSerializer).latest_result()
        key = f"rec-{token}-step1"
        record = records(stack.redis, "rec-")[key]
        cases = [c for c in fallback.pending(stack.redis) if c["reason"] == "unknown_outcome"]
        timeline = [(e["event"], e.get("detail", "")) for e in stack.sessions.timeline(token)]
    assert result.return_value == "superseded"
    assert [len(sent(graph, f"rec-{token}-{s}")) for s in ("step1", "step2")] == [1, 1]
    # Not sent again, and not left "running": the case is recorded like any send that died.
    assert record["state"] == "unknown"
    assert [(c["flow_token"], c["detail"]) for c in cases] == [(token, key)]
    assert ("fallback_unknown_outcome", key) in timeline
    assert ("recovery_skipped", "step1: superseded by step2") in timeline
