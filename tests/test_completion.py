"""The completion job, run in-process on a real Redis against the Graph stand-in; the API and CLI
that read submissions; the forward to the business's system. (Real worker processes: test_workers.py.)"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from app import create_app
from stores.contacts import Contacts
from records.submissions import submission_id
from messaging import fallback
from messaging.graph import GraphError
from standins.graph import ACCESS_TOKEN, graph_error
from standins.meta_webhooks import USER, completion, new_wamid, status, text_message
from standins.receiver import ReceiverStandIn
from workers import completion as completion_jobs
from workers import inbound as inbound_jobs
from workers import sending
from workers.queues import LOW

API_TOKEN = "api-token-xyz"
FORWARD_SECRET = "forward-secret-123"


@pytest.fixture
def receiver():
    with ReceiverStandIn() as standin:
        yield standin


@pytest.fixture
def app(app_config, graph, receiver):
    return create_app({**app_config, "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
                       "WHATSAPP_PHONE_NUMBER_ID": "999000111", "FOLLOWUP_CHANNEL": "cloud",
                       "API_TOKEN": API_TOKEN, "COMPLETION_FORWARD_URL": receiver.endpoint,
                       "COMPLETION_FORWARD_SECRET": FORWARD_SECRET})


def run(app, message):
    with app.app_context():
        return completion_jobs.process_completion(message, "106540352242922")


def sent_flow(app, token: str) -> str:
    """A member_check Flow sent to USER the way `flask flows send` sends it (workers.sending,
    through the router), inside the window USER's last message opened; returns its wamid."""
    with app.app_context():
        app.extensions["contacts"].inbound(USER, new_wamid(), time.time(), "text")
        app.extensions["sessions"].issue(token, "member_check", USER)
        assert sending.deliver_flow(token) == "sent"
        return app.extensions["sessions"].get(token)["wamid"]


def test_completion_closes_the_session_stores_and_confirms(app, graph, flow_client):
    client = flow_client()
    assert client.init("fg_tok1").screen == "MEMBER_LOOKUP"
    message = completion(token="fg_tok1", values={"member_id": "MEM123"})
    result = run(app, message)
    assert result["confirmation"] == "sent"
    (sent,) = graph.sent_messages()
    assert graph.requests[0].path == "/v23.0/106540352242922/messages"  # from the number written to
    assert sent["to"] == USER and sent["text"]["body"] == app.config["CONFIRMATION_TEXT"]
    sessions = app.extensions["sessions"]
    assert sessions.get("fg_tok1")["state"] == "completed"
    assert [e["event"] for e in sessions.timeline("fg_tok1")][-2:] == ["completed", "confirmation_sent"]
    # The endpoint now refuses the token (427), as the protocol asks.
    assert client.exchange("fg_tok1", "MEMBER_LOOKUP", {"member_id": "MEM123"}).status == 427
    with app.app_context():
        doc = app.test_client().get(f"/api/submissions/{result['submission']}",
                                    headers={"Authorization": f"Bearer {API_TOKEN}"}).json
    assert doc["response"] == {"member_id": "MEM123", "flow_token": "fg_tok1"}
    assert doc["flow"] == "member_check" and doc["session_known"] is True
    assert Contacts(app.extensions["redis"]).window_open(USER, now=1749416383 + 3600)


def test_the_same_completion_run_twice_confirms_once(app, graph):
    message = completion(token="fg_twice")
    first, second = run(app, message), run(app, message)
    assert (first["confirmation"], second["confirmation"]) == ("sent", "already_done")
    assert len(graph.sent_messages()) == 1


def test_unknown_token_is_stored_confirmed_and_then_refused(app, graph, flow_client):
    result = run(app, completion(token="fg_from_another_tool"))
    assert result["confirmation"] == "sent" and len(graph.sent_messages()) == 1
    assert app.extensions["sessions"].get("fg_from_another_tool")["state"] == "completed"
    assert flow_client().init("fg_from_another_tool").status == 427


def test_missing_token_falls_back_to_the_flow_messages_wamid(app, graph):
    flow_wamid = sent_flow(app, "fg_ctx")
    result = run(app, completion(token=None, context_id=flow_wamid))
    assert result["flow_token"] == "fg_ctx"
    assert app.extensions["sessions"].get("fg_ctx")["state"] == "completed"
    doc = app.extensions["records"].submissions.get(result["submission"])
    assert doc["correlated_by"] == "context"


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]"])
def test_malformed_response_json_is_stored_not_confirmed(app, graph, raw):
    result = run(app, completion(response_json=raw))
    assert result["problem"] in ("response_json is not JSON", "response_json is not an object")
    with app.test_client() as c:
        doc = c.get(f"/api/submissions/{result['submission']}",
                    headers={"Authorization": f"Bearer {API_TOKEN}"}).json
    assert doc["raw"] == raw and doc["response"] is None
    assert graph.sent_messages() == []


def test_permanent_error_is_recorded_not_retried(app, graph):
    graph.fail_next(400, graph_error(131026, "Message undeliverable"))
    message = completion(token="fg_perm")
    result = run(app, message)
    assert result["confirmation"] == "permanent"
    timeline = [e["event"] for e in app.extensions["sessions"].timeline("fg_perm")]
    assert "confirmation_failed" in timeline and "fallback_permanent" in timeline
    (case,) = fallback.pending(app.extensions["redis"])
    assert (case["reason"], case["code"], case["flow_token"]) == ("permanent", 131026, "fg_perm")
    assert run(app, message)["confirmation"] == "already_done"  # a re-run does not try again
    assert len(graph.sent_messages()) == 1


def test_outside_the_window_needs_a_template(app, graph):
    graph.fail_next(400, graph_error(131047, "Re-engagement message"))
    assert run(app, completion(token="fg_window"))["confirmation"] == "needs_template"
    assert fallback.pending(app.extensions["redis"])[0]["reason"] == "needs_template"


def test_retryable_error_raises_for_rq_and_releases_the_effect(app, graph):
    # A 130429 also holds every send from the number for Retry-After (messaging/ratelimit.py); RQ
    # retries after it, this test at once: 1 s is within what a send waits for its turn.
    graph.fail_next(429, graph_error(130429), headers={"Retry-After": "1"})
    message = completion(token="fg_retry")
    with pytest.raises(GraphError) as info:
        run(app, message)
    assert info.value.retry_after == 1.0
    assert run(app, message)["confirmation"] == "sent"  # the retry sends; nothing was recorded before
    assert len(graph.sent_messages()) == 2  # the refused attempt and the accepted one


def test_forward_is_signed_and_sent_once(app, receiver, redis_client):
    result = run(app, completion(token="fg_fwd"))
    jobs = Queue(LOW, connection=redis_client, serializer=JSONSerializer).get_jobs()
    # The post-completion hooks ran in the completion job: the forward is its only follow-up.
    assert [j.func_name for j in jobs] == ["workers.completion.forward_submission"]
    with app.app_context():
        assert completion_jobs.forward_submission(*jobs[0].args) == "forwarded"
        assert completion_jobs.forward_submission(*jobs[0].args) == "already_done"
    (request,) = receiver.requests
    expected = "sha256=" + hmac.new(FORWARD_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Flowgate-Signature-256"] == expected
    assert request.headers["Idempotency-Key"] == result["submission"]
    assert request.json()["response"]["flow_token"] == "fg_fwd"


def test_forward_failure_raises_for_a_retry_then_succeeds(app, receiver):
    result = run(app, completion(token="fg_fwd2"))
    receiver.fail_next(503, headers={"Retry-After": "2"})
    with app.app_context():
        with pytest.raises(completion_jobs.ForwardFailed) as info:
            completion_jobs.forward_submission(result["submission"])
        assert info.value.retry_after == 2.0
        assert completion_jobs.forward_submission(result["submission"]) == "forwarded"
    assert len(receiver.requests) == 2


def test_forward_rejected_with_4xx_is_not_retried(app, receiver):
    result = run(app, completion(token="fg_fwd3"))
    receiver.fail_next(422)
    with app.app_context():
        assert completion_jobs.forward_submission(result["submission"]) == "rejected"
        assert completion_jobs.forward_submission(result["submission"]) == "already_done"
    assert len(receiver.requests) == 1


def broken_hook(sid: str, token: str | None) -> None:
    """A post-completion hook with a bug (registered by the test below)."""
    raise RuntimeError("stand-in hook failure")


def test_post_completion_hooks_run_in_the_completion_job_once(app, redis_client):
    # The re-check hook (validation, issue 3) has work: a value was accepted unverified.
    app.extensions["sessions"].visit("fg_hook", "service_area", "POSTCODE")
    app.extensions["sessions"].mark_unverified("fg_hook", "postal_code", "coverage", "10001", "service_area")
    message = completion(token="fg_hook")
    assert run(app, message)["confirmation"] == "sent"
    assert run(app, message)["confirmation"] == "already_done"  # a retried job runs the hooks again
    jobs = Queue(LOW, connection=redis_client, serializer=JSONSerializer).get_jobs()
    # The re-check's own job and the forward: no job for the hooks themselves.
    assert sorted((j.func_name, tuple(j.args)) for j in jobs) == [
        ("workers.completion.forward_submission", (submission_id(message["id"]),)),
        ("workers.recheck.recheck_unverified", ("fg_hook",))]


def test_a_failing_hook_is_retried_as_a_job_and_never_holds_the_confirmation_back(app, graph, redis_client,
                                                                                   monkeypatch):
    # Registering a dotted path is the hooks' whole interface (validation, issue 3, appends one).
    monkeypatch.setattr(completion_jobs, "POST_COMPLETION_HOOKS",
                        [f"{__name__}.broken_hook", *completion_jobs.POST_COMPLETION_HOOKS])
    app.extensions["sessions"].visit("fg_hook2", "service_area", "POSTCODE")
    app.extensions["sessions"].mark_unverified("fg_hook2", "postal_code", "coverage", "10001", "service_area")
    message = completion(token="fg_hook2")
    assert run(app, message)["confirmation"] == "sent"
    assert run(app, message)["confirmation"] == "already_done"
    assert len(graph.sent_messages()) == 1
    jobs = Queue(LOW, connection=redis_client, serializer=JSONSerializer).get_jobs()
    # The hooks after the broken one still ran (the re-check is queued); all of them are retried
    # by one post-completion job, enqueued once however often the completion ran.
    sid = submission_id(message["id"])
    assert sorted((j.func_name, tuple(j.args)) for j in jobs) == [
        ("workers.completion.after_completion", (sid, "fg_hook2")),
        ("workers.completion.forward_submission", (sid,)),
        ("workers.recheck.recheck_unverified", ("fg_hook2",))]
    with app.app_context(), pytest.raises(RuntimeError, match="stand-in hook failure"):
        completion_jobs.after_completion(sid, "fg_hook2")  # raised to RQ: retried with backoff


# --- other webhook jobs -----------------------------------------------------------------------------
def test_inbound_text_opens_the_window_and_is_kept_for_opt_out(app):
    with app.app_context():
        inbound_jobs.record_inbound(text_message("STOP", timestamp="1749416000"))
        inbound_jobs.record_inbound(text_message("older", timestamp="1749410000"))  # late redelivery
    contacts = Contacts(app.extensions["redis"])
    assert contacts.last_inbound_at(USER) == 1749416000.0
    assert [t["text"] for t in contacts.recent_texts(USER)] == ["older", "STOP"]


def test_failed_status_goes_to_the_fallback(app):
    flow_wamid = sent_flow(app, "fg_st")
    with app.app_context():
        assert inbound_jobs.record_status(status(flow_wamid, "failed", code=131047)) == "failed"
        assert inbound_jobs.record_status(status(new_wamid(), "delivered")) == "delivered"
    (case,) = fallback.pending(app.extensions["redis"])
    assert (case["reason"], case["code"], case["flow_token"], case["detail"]) == (
        "failed_status", 131047, "fg_st", "needs_template")


def test_a_failed_confirmation_status_names_its_effect(app):
    with app.app_context():
        inbound_jobs.record_status(status(new_wamid(), "failed", code=131026, callback="confirm:wamid.X"))
    assert fallback.pending(app.extensions["redis"])[0]["detail"] == "permanent confirm:wamid.X"


def test_missing_phone_number_id_is_a_permanent_failure_not_a_crash(app_config, graph):
    # Production refuses this configuration at start (test_production.py); development runs it.
    app = create_app({**app_config, "APP_ENV": "development", "FOLLOWUP_CHANNEL": "cloud",
                      "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN})
    with app.app_context():
        result = completion_jobs.process_completion(completion(token="fg_nophone"), None)
    assert result["confirmation"] == "permanent"
    assert graph.requests == []


def test_flow_events_are_recorded_for_the_dashboard(app):
    with app.app_context():
        inbound_jobs.record_flow_event({"event": "ENDPOINT_LATENCY", "flow_id": "9",
                                        "alert_state": "ACTIVATED",
                                        "p90_latency": 7000}, None, {"waba_id": "1", "time": 1})
    result = app.test_cli_runner().invoke(args=["messages", "events"])
    assert '"event": "ENDPOINT_LATENCY"' in result.output


# --- reading submissions ---------------------------------------------------------------------------
def test_api_requires_the_bearer_token(app):
    run(app, completion(token="fg_api"))
    c = app.test_client()
    assert c.get("/api/submissions").status_code == 401
    assert c.get("/api/submissions", headers={"Authorization": "Bearer wrong"}).status_code == 401
    listed = c.get("/api/submissions", headers={"Authorization": f"Bearer {API_TOKEN}"}).json
    assert listed["count"] == 1 and listed["submissions"][0]["flow_token"] == "fg_api"
    assert c.get("/api/submissions?limit=0",
                 headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 400
    missing = c.get("/api/submissions/sub_nope", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert missing.status_code == 404 and missing.json["error"] == "Not Found"


def test_api_is_off_without_a_token(app_config):
    assert create_app(app_config).test_client().get("/api/submissions").status_code == 403


def test_cli_lists_and_shows_submissions(app):
    result = run(app, completion(token="fg_cli", values={"member_id": "MEM123"}))
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["flows", "submissions"])
    assert listed.exit_code == 0 and result["submission"] in listed.output and "member_id" in listed.output
    assert USER not in listed.output  # masked in listings
    shown = runner.invoke(args=["flows", "submissions", result["submission"]])
    assert json.loads(shown.output)["response"]["member_id"] == "MEM123"
    assert runner.invoke(args=["flows", "submissions", "sub_nope"]).exit_code != 0
