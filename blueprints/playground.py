"""GET /playground/<flow_name>: play a Flow in the browser, through the real encrypted endpoint.

Every action goes the way WhatsApp's would: ``devtools.simulator.FlowClient`` encrypts the request
with this app's public key, signs it with the app secret, POSTs it to this app's own endpoint on
loopback, and decrypts the reply. The page shows the next screen (drawn by ``devtools.preview``),
field errors and the snackbar, or the final SUCCESS params, and a panel with every decrypted
exchange and its latency. Per-browser state lives in Redis (key in the Flask session), so the
page works without JavaScript and across web processes.
"""
from __future__ import annotations

import json
import secrets
from urllib.parse import urlparse

import requests
from redis.exceptions import RedisError
from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for

from blueprints import auth
from config import ConfigError
from blueprints.dashboard import page_context, redis_down
from devtools import preview
from devtools.player import resolve
from flows.sessions import new_token
from devtools.simulator import FlowClient

bp = Blueprint("playground", __name__, template_folder="templates")
bp.register_error_handler(RedisError, redis_down)
LOOPBACK = ("127.0.0.1", "::1")
STATE_TTL = 2 * 3600
HISTORY = 12


def init_app(app) -> None:
    if urlparse(app.config["PLAYGROUND_URL"]).hostname not in LOOPBACK:
        raise ConfigError("PLAYGROUND_URL must point at 127.0.0.1 or [::1] (it reaches this app's own "
                          "endpoint; unset, it is http://127.0.0.1:$PORT)")


@bp.before_request
def require_login():
    return auth.gate()


@bp.app_template_filter("pretty")
def pretty(value) -> str:
    """Readable JSON for the exchange panel (autoescaping still applies: it is not marked safe)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _flow(flow_name: str):
    flow = current_app.extensions["flows"].get(flow_name)
    if flow is None:
        abort(404, "unknown flow")
    return flow


def endpoint_base() -> str:
    """This app on loopback, as configured (PLAYGROUND_URL), never taken from the request: the
    Host header is the client's to choose, and would let it aim validly signed Flow requests at
    any local port."""
    return current_app.config["PLAYGROUND_URL"].rstrip("/")


def _client(flow_name: str) -> FlowClient:
    ext = current_app.extensions
    return FlowClient(f"{endpoint_base()}/flows/{flow_name}", ext["keyring"].public_pem,
                      current_app.config["WHATSAPP_APP_SECRET"], timeout=10.0)


def _key(flow_name: str) -> str | None:
    pid = session.get("playground")
    return f"fg:playground:{pid}:{flow_name}" if pid else None


def _load(flow_name: str) -> dict | None:
    key = _key(flow_name)
    raw = current_app.extensions["redis"].get(key) if key else None
    return json.loads(raw) if raw else None


def _save(flow_name: str, state: dict) -> None:
    if "playground" not in session:
        session["playground"] = secrets.token_urlsafe(16)
    current_app.extensions["redis"].set(_key(flow_name), json.dumps(state), ex=STATE_TTL)


def _exchange(state: dict, flow_name: str, action: str, call, form: dict | None = None) -> None:
    """Run one request through the real endpoint and fold the reply into the state.

    ``form``: what the user had entered on the screen that sent the request. Like the WhatsApp
    client, a reply that shows the same screen again (slots loaded, field errors) keeps it; only
    a new screen starts blank."""
    before = state.get("screen")
    try:
        reply = call(_client(flow_name))
    except requests.RequestException as exc:
        state["error"] = f"could not reach the endpoint: {type(exc).__name__}"
        return
    state["history"] = (state["history"] + [{
        "action": action, "status": reply.status, "ms": round(reply.latency * 1000, 1),
        "request": reply.request, "response": reply.body if reply.body is not None else reply.text[:500],
    }])[-HISTORY:]
    state["error"] = None
    state["form"] = dict(form or {}) if reply.screen in (None, before) else {}
    if reply.status != 200 or reply.body is None:
        state["closed"] = (reply.body or {}).get("error_msg") or f"HTTP {reply.status} from the endpoint"
    elif reply.screen == "SUCCESS":
        state["done"] = reply.data.get("extension_message_response", {}).get("params", {})
    elif reply.screen:
        if reply.screen != state.get("screen"):
            state["stack"] = (state.get("stack") or []) + ([state["screen"]] if state.get("screen") else [])
        state["screen"], state["data"] = reply.screen, reply.data
    else:  # ping/ack shapes have no screen: keep showing what we had
        pass


def _version(flow) -> str:
    """WhatsApp sends the Flow's data_api_version as the request's version."""
    return str(flow.definition.get("data_api_version") or "3.0")


def _start(flow) -> dict:
    state = {"token": new_token(), "screen": None, "data": {}, "form": {}, "history": [], "stack": [],
             "done": None, "closed": None, "error": None}
    _exchange(state, flow.name, "INIT", lambda c: c.init(state["token"], version=_version(flow)))
    if state["screen"] is None and not state["closed"] and not state["error"]:
        state["screen"] = flow.entry_screen
    _save(flow.name, state)
    return state


@bp.get("/playground")
def index():
    flows = list(current_app.extensions["flows"])
    return render_template("playground/index.html", flows=flows, **page_context())


@bp.get("/playground/<flow_name>")
def play(flow_name: str):
    flow = _flow(flow_name)
    state = _load(flow_name) or _start(flow)
    screen = preview.view(flow.definition, state["screen"], state["data"], state["form"]) \
        if state.get("screen") else None
    return render_template("playground/play.html", flow=flow, state=state, screen=screen,
                           endpoint=f"{endpoint_base()}/flows/{flow_name}", **page_context())


@bp.post("/playground/<flow_name>/action")
def act(flow_name: str):
    auth.check_csrf()
    flow = _flow(flow_name)
    state = _load(flow_name)
    if state is None or not state.get("screen"):
        return redirect(url_for("playground.play", flow_name=flow_name), 303)
    screen, data = state["screen"], state["data"]
    form = preview.read_form(flow.definition, screen, request.form)
    action_id = request.form.get("action_id", "footer")[:100]
    action = preview.find_action(flow.definition, screen, action_id)
    if action is None:
        abort(400, "this screen has no such action")
    payload = resolve(action.get("payload") or {}, data, form)
    name = action.get("name")
    if name == "data_exchange":
        _exchange(state, flow_name, "data_exchange",
                  lambda c: c.exchange(state["token"], screen, payload, version=_version(flow)), form)
    elif name == "navigate":
        target = (action.get("next") or {}).get("name")
        if not flow.has_screen(target):
            abort(400, "navigate to an unknown screen")
        state["stack"] = state["stack"] + [screen]
        state.update(screen=target, data=payload, form={})
    elif name == "complete":
        state["done"] = {"completed_in_client": True, **payload}
    elif name == "update_data":
        state.update(data={**data, **payload}, form=form)
    else:
        abort(400, f"action {str(name)[:40]!r} is not played here")
    _save(flow_name, state)
    return redirect(url_for("playground.play", flow_name=flow_name), 303)


@bp.post("/playground/<flow_name>/back")
def back(flow_name: str):
    auth.check_csrf()
    flow = _flow(flow_name)
    state = _load(flow_name)
    if state and state.get("stack"):
        sdef = preview.screen_def(flow.definition, state["screen"])
        if sdef.get("refresh_on_back"):
            leaving = state["screen"]
            state.update(screen=state["stack"][-1], stack=state["stack"][:-1])
            _exchange(state, flow_name, "BACK",
                      lambda c: c.back(state["token"], leaving, version=_version(flow)))
        else:
            state.update(screen=state["stack"][-1], stack=state["stack"][:-1], form={})
        _save(flow_name, state)
    return redirect(url_for("playground.play", flow_name=flow_name), 303)


@bp.post("/playground/<flow_name>/restart")
def restart(flow_name: str):
    auth.check_csrf()
    _start(_flow(flow_name))
    return redirect(url_for("playground.play", flow_name=flow_name), 303)
