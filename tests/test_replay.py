"""Replays: what an attacker (or a confused proxy) captured, sent again.

- An endpoint request captured while the Flow was running, replayed byte for byte (same
  signature) after the session completed: 427, encrypted, for every step of the Flow.
- A webhook captured and replayed (same bytes, or the same message inside another envelope):
  acknowledged as a duplicate, no second job, no second confirmation — with a real worker.
"""
from __future__ import annotations

import pytest
import requests
from rq.registry import StartedJobRegistry

from app import create_app
from conftest import APP_SECRET, LiveServer, wait_for
from flows import crypto
from flows.signing import HEADER, sign
from procs import Workers
from standins.graph import ACCESS_TOKEN, GraphStandIn
from standins.meta_webhooks import body_of, completion, messages_change, signed_headers, status
from workers.queues import QUEUES, queue


def test_endpoint_requests_replayed_after_completion_get_427(flow_client):
    client = flow_client()
    token = "fg_replay_1"
    steps = [{"version": "3.0", "action": "INIT", "flow_token": token},
             {"version": "3.0", "action": "data_exchange", "screen": "MEMBER_LOOKUP", "flow_token": token,
              "data": {"member_id": "MEM123"}},
             {"version": "3.0", "action": "data_exchange", "screen": "CONFIRM", "flow_token": token,
              "data": {"member_id": "MEM123"}}]
    captured = []
    for payload in steps:
        raw, sealed = client.seal(payload)
        headers = {HEADER: sign(APP_SECRET, raw)}
        assert client.post(raw, headers).status_code == 200
        captured.append((raw, headers, sealed))
    last = crypto.decrypt_reply(client.post(*captured[-1][:2]).text, captured[-1][2].aes_key,
                                captured[-1][2].iv)
    assert "error_msg" in last  # the final step itself, replayed, is refused too
    for raw, headers, sealed in captured:
        resp = client.post(raw, headers)
        assert resp.status_code == 427
        assert "error_msg" in crypto.decrypt_reply(resp.text, sealed.aes_key, sealed.iv)


@pytest.fixture
def graph():
    with GraphStandIn() as standin:
        yield standin


def test_webhook_replayed_is_deduplicated_with_a_real_worker(app_config, graph, redis_client):
    cfg = {**app_config, "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
           "WHATSAPP_PHONE_NUMBER_ID": "100200300", "FOLLOWUP_CHANNEL": "cloud", "JOB_RETRY_BACKOFF": (1,),
           "JOB_MAX_RETRIES": 1}
    app = create_app(cfg)
    message = completion(token="fg_replay_2")
    raw = body_of(messages_change(messages=[message]))
    with LiveServer(app) as server, Workers(cfg, 1):
        url = f"{server.url}/webhooks/whatsapp"
        first = requests.post(url, data=raw, headers=signed_headers(raw, APP_SECRET), timeout=5)
        assert first.status_code == 200 and first.json()["enqueued"] == 1
        wait_for(lambda: len(graph.sent_messages()) == 1, timeout=20, message="the confirmation")
        wait_for(lambda: not any(StartedJobRegistry(queue=queue(redis_client, n)).count for n in QUEUES),
                 message="the worker to finish")
        # The captured bytes, replayed: acknowledged (Meta must stop retrying), nothing enqueued.
        for _ in range(3):
            again = requests.post(url, data=raw, headers=signed_headers(raw, APP_SECRET), timeout=5)
            assert again.status_code == 200
            assert (again.json()["enqueued"], again.json()["duplicates"]) == (0, 1)
        # The same message inside another envelope (Meta batches redeliveries differently).
        other = body_of(messages_change(messages=[message], statuses=[status("wamid.other", "read")]))
        mixed = requests.post(url, data=other, headers=signed_headers(other, APP_SECRET), timeout=5).json()
        assert (mixed["enqueued"], mixed["duplicates"]) == (1, 1)  # only the status is new
        # No second completion job: what may still be queued is the status job and the first
        # completion's own follow-ups (post-completion jobs), never the completion again.
        queued = [j for n in QUEUES for j in queue(redis_client, n).get_jobs()]
        assert not [j for j in queued if j.func_name == "workers.completion.process_completion"]
        wait_for(lambda: sum(queue(redis_client, n).count for n in QUEUES) == 0, message="queues drained")
        wait_for(lambda: not any(StartedJobRegistry(queue=queue(redis_client, n)).count for n in QUEUES),
                 message="the worker to finish")
    assert len(graph.sent_messages()) == 1  # one confirmation, however often the webhook came
    jobs = [k for k in redis_client.scan_iter("rq:job:completion-*")]
    assert len(jobs) == 1
