"""Open policy end to end: a value accepted unverified is re-checked later by a real forked RQ
worker (``flask worker --burst``), which records the verdict on the session."""
from __future__ import annotations

import subprocess

from rq.job import Job

from conftest import APP_SECRET, ROOT, project_env, served_settings, venv_bin
from standins.business import BusinessStandIn, lookup_config
from workers import recheck


def run_worker(redis_url, keypair, api) -> str:
    env = project_env(REDIS_URL=redis_url, APP_ENV="production", WHATSAPP_APP_SECRET=APP_SECRET,
                      FLOW_PRIVATE_KEY=keypair[0].replace("\n", "\\n"),
                      **{**served_settings(), **lookup_config(api)})
    proc = subprocess.run([venv_bin("flask"), "--app", "app", "worker", "--burst"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_nothing_unverified_means_no_job(app, redis_client):
    app.extensions["sessions"].visit("tok-r0", "service_area", "POSTCODE")
    assert recheck.schedule(redis_client, "tok-r0") is None
    assert redis_client.keys("rq:job:*") == []


def test_unverified_values_are_rechecked_by_a_worker(app, redis_client, redis_url, keypair):
    sessions = app.extensions["sessions"]
    sessions.visit("tok-r1", "service_area", "POSTCODE")
    sessions.mark_unverified("tok-r1", "postal_code", "coverage", "10001", "service_area")
    sessions.visit("tok-r2", "service_area", "POSTCODE")
    sessions.mark_unverified("tok-r2", "postal_code", "coverage", "90210", "service_area")
    with BusinessStandIn() as api:
        first = recheck.schedule(redis_client, "tok-r1")
        assert first is not None
        assert recheck.schedule(redis_client, "tok-r1") is None  # one re-check per token
        recheck.schedule(redis_client, "tok-r2")
        run_worker(redis_url, keypair, api)
        assert api.calls("coverage") == 2
    assert sessions.rechecked("tok-r1") == {"postal_code": "verified"}
    assert sessions.rechecked("tok-r2") == {"postal_code": "rejected"}
    assert sessions.unverified("tok-r1") == {}
    assert [e["event"] for e in sessions.timeline("tok-r2")][-1] == "recheck_rejected"
    job = Job.fetch(first.id, connection=redis_client, serializer=first.serializer)
    assert job.get_status() == "finished"
    # A value that turned out bad hands the session to the fallback (once); a good one does not.
    from workers.recovery import job_id as fallback_job_id

    fallback = Job.fetch(fallback_job_id("fb", "tok-r2"), connection=redis_client,
                         serializer=first.serializer)
    assert fallback.args == ["tok-r2", "invalid_after_completion"] and fallback.get_status() == "finished"
    assert not Job.exists(fallback_job_id("fb", "tok-r1"), connection=redis_client)


def test_a_recheck_that_still_cannot_answer_is_left_for_a_retry(app, redis_client, redis_url, keypair):
    sessions = app.extensions["sessions"]
    sessions.visit("tok-r3", "service_area", "POSTCODE")
    sessions.mark_unverified("tok-r3", "postal_code", "coverage", "10001", "service_area")
    with BusinessStandIn() as api:
        api.behave("500")
        job = recheck.schedule(redis_client, "tok-r3")
        run_worker(redis_url, keypair, api)
    job = Job.fetch(job.id, connection=redis_client, serializer=job.serializer)
    assert job.get_status() == "scheduled"  # failed once, retry scheduled by the retry policy
    assert sessions.unverified("tok-r3")["postal_code"]["value"] == "10001"
    assert sessions.rechecked("tok-r3") == {}
