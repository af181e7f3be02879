"""GET /dashboard (+ login, metrics.json, requeue) and GET /metrics: thin views over ``metrics``.

The page is server-rendered and works without JavaScript; every figure comes from Redis, so any
web process shows the same numbers.
"""
from __future__ import annotations

import logging

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request,
                   stream_with_context, url_for)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from werkzeug.exceptions import TooManyRequests

import storage
from blueprints import auth, charts, params
from blueprints.submissions import filters as submission_filters
from config import is_development
from dashboard import activity
from workers import jobs
from dashboard.prometheus import build_registry
from flows.redact import redis_unavailable
from metrics.snapshot import top_validation_errors
from records import export
from workers import deadletters

bp = Blueprint("dashboard", __name__, template_folder="templates")
log = logging.getLogger("flowgate.dashboard")
PUBLIC = ("dashboard.login",)


@bp.before_request
def require_login():
    if request.endpoint in PUBLIC:
        if auth.mode(current_app.config) == "closed":
            abort(404)
        return None
    return auth.gate(login_redirect=request.endpoint == "dashboard.index")


def redis_down(exc: RedisError):
    """Both pages read everything from Redis: without it they say so instead of a bare 500."""
    redis_unavailable(log, "dashboard", exc, "answering 503")
    return "Redis is unavailable; the dashboard will be back when it is.\n", 503, \
        {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "10"}


bp.register_error_handler(RedisError, redis_down)


def _redis():
    return current_app.extensions["redis"]


def _days() -> int:
    return params.int_arg("days", 7, 1, 35)


def _snapshot(days: int) -> dict:
    names = current_app.extensions["flows"].names()
    return current_app.extensions["metrics"].snapshot(days=days, flows=names)


@bp.get("/dashboard")
def index():
    redis, registry, days = _redis(), current_app.extensions["flows"], _days()
    snap = _snapshot(days)
    funnels = [{"name": name, "title": getattr(registry.get(name), "title", name),
                **charts.funnel(registry.get(name), data["period"])}
               for name, data in snap["flows"].items()]
    return render_template(
        "dashboard/index.html", snap=snap, days=days, funnels=funnels, latency=charts.latency(snap),
        validation=top_validation_errors(snap),
        sessions=activity.recent_sessions(redis, records=current_app.extensions["records"]),
        queues=jobs.queue_figures(redis), failed=jobs.failed_jobs(redis),
        wasender=activity.wasender_status(redis), redis_memory=storage.memory(redis),
        dead=deadletters.overview(redis), on_meta=_on_meta(snap),
        outbox=activity.console_outbox(redis) if is_development(current_app.config) else None,
        requeued=request.args.get("requeued", "")[:128], missing=request.args.get("missing", "")[:128],
        replayed=request.args.get("replayed", "")[:200], **page_context(),
    )


UNWELL = ("THROTTLED", "BLOCKED", "DEPRECATED")


def _on_meta(snap: dict) -> list[dict]:
    """Each served flow as Meta last showed it (cached by `flask flows status` and deploys, updated
    by `flows` status webhooks: the page never calls Meta) and the drift we counted; the flows Meta
    throttles or blocks first."""
    cached = current_app.extensions["meta_status"].all()
    rows = []
    for name in current_app.extensions["flows"].names():
        doc = cached.get(name) or {}
        meta, ours = doc.get("metrics") or {}, doc.get("ours") or {}
        drift = (snap["flows"].get(name) or {}).get("period", {}).get("labels", {}).get("drift", {})
        rows.append({"flow": name, "flow_id": doc.get("flow_id"), "status": doc.get("status"),
                     "bad": doc.get("status") in UNWELL, "health": doc.get("can_send_message"),
                     "validation": len(doc.get("validation_errors") or []), "window": doc.get("window"),
                     "meta": meta, "ours": ours, "drift": sum(drift.values()),
                     "preview_url": doc.get("preview_url"),
                     "checked_at": charts.when(doc.get("checked_at")) if doc.get("checked_at") else None})
    return sorted(rows, key=lambda r: (not r["bad"], r["flow"]))


@bp.get("/dashboard/metrics.json")
def metrics_json():
    redis = _redis()
    snap = _snapshot(_days())
    snap["validation_top"] = top_validation_errors(snap)
    snap["queues"] = jobs.queue_figures(redis)
    snap["wasender_status"] = activity.wasender_status(redis)
    snap["redis_memory"] = storage.memory(redis).as_dict()
    dead = deadletters.overview(redis, limit=0)
    snap["dead_letters"] = {k: dead[k] for k in ("pending", "failed_jobs", "evicted")}
    return snap


@bp.get("/dashboard/submissions.csv")
def submissions_csv():
    """Every submission as CSV (filters as in the API: flow, since, until, user), streamed. The
    first chunk is read before the answer starts, so a database outage is a 503, not a cut file."""
    chunks = export.rows(current_app.extensions["records"].submissions, submission_filters())
    first = next(chunks)
    return Response(stream_with_context(_chained(first, chunks)), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="submissions.csv"'})


def _chained(first: str, rest):
    yield first
    yield from rest


@bp.post("/dashboard/jobs/<queue_name>/<job_id>/requeue")
def requeue(queue_name: str, job_id: str):
    auth.check_csrf()
    try:
        jobs.requeue(_redis(), queue_name, job_id)
    except jobs.NotRequeued:
        return redirect(url_for("dashboard.index", missing=job_id[:128]) + "#jobs", 303)
    log.info("dashboard requeued job %s on %s", job_id, queue_name)
    return redirect(url_for("dashboard.index", requeued=job_id) + "#jobs", 303)


@bp.post("/dashboard/deadletters/<item_id>/replay")
def replay_dead_letter(item_id: str):
    """Replay one dead letter (parsed again, enqueued once) or requeue one failed webhook job."""
    auth.check_csrf()
    ext = current_app.extensions
    result = deadletters.replay(_redis(), current_app.config, ext["wasender"], item_id[:128])
    log.info("dashboard replay of %s: %s", result.id[:64], result.state)
    return redirect(url_for("dashboard.index", replayed=f"{result.id[:64]}: {result.state}")
                    + "#deadletters", 303)


@bp.route("/dashboard/login", methods=["GET", "POST"])
def login():
    if auth.mode(current_app.config) == "open":
        return redirect(url_for("dashboard.index"), 303)
    target = auth.safe_next(request.values.get("next"))
    error, status, headers = None, 200, {}
    if request.method == "POST":
        auth.check_csrf()
        try:
            if auth.check_password(request.form.get("password")):
                auth.log_in()
                return redirect(target, 303)
            error, status = "Wrong password.", 401
        except TooManyRequests as exc:  # the same throttle as basic auth (blueprints/auth.py)
            error, status = "Too many attempts; wait a few minutes.", 429
            headers = {"Retry-After": str(exc.retry_after)}
    return render_template("dashboard/login.html", next=target, error=error,
                           **page_context()), status, headers


@bp.post("/dashboard/logout")
def logout():
    auth.check_csrf()
    auth.log_out()
    return redirect(url_for("dashboard.login"), 303)


@bp.get("/metrics")
def prometheus():
    registry = current_app.extensions.get("metrics_registry")
    if registry is None:
        registry = current_app.extensions["metrics_registry"] = build_registry(_redis())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def page_context() -> dict:
    """What the base template needs on every page."""
    cfg = current_app.config
    return {"open_warning": auth.mode(cfg) == "open", "csrf": auth.csrf_token(),
            "logged_in": auth.mode(cfg) == "password", "development": is_development(cfg)}
