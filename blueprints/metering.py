"""Meters the Flow endpoint: latency, action and status of every request, and what the engine did.

Hooked on the endpoint blueprint (before/after request), so 4xx answers and 413s raised inside the
view are measured too. All writes for one request go out in one pipelined round trip; a Redis
failure costs the metric, never the reply.
"""
from __future__ import annotations

import logging
import time

from flask import current_app, g, request
from redis.exceptions import RedisError
from flows.redact import redis_unavailable

log = logging.getLogger("flowgate.metrics")

UNKNOWN_FLOW = "_unknown"
# Error keys a client may report (protocol doc 2.1); anything else is counted as "other" so a
# hostile client cannot grow the label set.
CLIENT_ERRORS = {
    "invalid-screen-transition", "payload-schema-error", "response-decryption-error",
    "business-decryption-error", "public-key-missing", "public-key-signiture-verification",
    "timeout_error", "no_http_response_error", "unexpected_http_status_code", "missing_capability",
    "cannot_be_served",
}
ENGINE_ERRORS = ("handler_error", "reply_too_large", "unknown_screen", "storage_unavailable")


def start_clock():
    g.metering_started = time.perf_counter()


def record(response):
    started = g.pop("metering_started", None)
    if started is None:
        return response
    seconds = time.perf_counter() - started
    ext = current_app.extensions
    name = (request.view_args or {}).get("flow_name")
    flow = name if name and ext["flows"].get(name) is not None else UNKNOWN_FLOW
    req, outcome = g.pop("flow_request", None), g.pop("flow_outcome", None)
    try:
        with ext["metrics"].batch() as m:
            m.endpoint(flow, req.action if req else "unknown", seconds, response.status_code)
            if req is not None and outcome is not None:
                _outcome(m, flow, req, outcome)
    except RedisError as exc:
        redis_unavailable(log, "metrics", exc, "request not counted")
    return response


def _outcome(m, flow: str, req, outcome) -> None:
    if req.flow_token:
        m.session(req.flow_token)
    if req.action == "INIT" and outcome.status == 200:
        m.count(flow, "opened")
    event = outcome.event
    if event in ("screen", "default") and outcome.screen and outcome.screen != req.screen:
        # A move to another screen (or the first one): a same-screen reply is a retry, not progress.
        m.count(flow, "screen", label=outcome.screen)
    elif event == "finish":
        m.count(flow, "completed")
    elif event == "ack":
        key = req.error_key
        m.count(flow, "failed", label=f"client:{key if key in CLIENT_ERRORS else 'other'}")
    elif event == "refused":
        m.count(flow, "refused")
    elif event in ENGINE_ERRORS:
        m.count(flow, "endpoint_error", label=event)
    for kind in outcome.drift:  # flows.drift: Meta runs another Flow JSON (`flask flows status`)
        m.count(flow, "drift", label=kind)
