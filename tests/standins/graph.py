"""A loopback Graph API: messages, the business encryption key, the WABA's webhooks and templates,
and the Flows API (graph_flows.py), with Meta's error shapes."""
from __future__ import annotations

import itertools
import json
import random
import re
import threading
import time

import requests
from flask import Response, request

from standins import StandIn
from standins.graph_flows import DEFAULT_FIELDS as FLOW_FIELDS, MetaFlows

ACCESS_TOKEN = "test-graph-token"
BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
FLOW_CTA_MAX = 20  # whatsapp-api-js, pywa, Sinch
# What the Cloud API takes by link (its "supported media types"): type → (MIME types, max bytes).
MEDIA_LIMITS = {
    "image": (("image/jpeg", "image/png"), 5 * 1024 * 1024),
    "document": (("application/pdf", "text/plain", "application/msword",
                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                 100 * 1024 * 1024),
}


def fetch_media(link: str, kind: str, limits) -> tuple[int, dict] | None:
    """Download the link as Meta does (only loopback links exist in tests) and refuse what the
    Cloud API refuses: unreachable → 131052, wrong type or too large → 131053."""
    types, max_bytes = limits
    try:
        with requests.get(link, timeout=5, stream=True) as resp:
            if resp.status_code != 200:
                return 400, graph_error(131052, "Media download error",
                                        f"Media URL answered HTTP {resp.status_code}")
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type not in types:
                return 400, graph_error(131053, "Media upload error",
                                        f"Unsupported {kind} type {content_type or 'unknown'}")
            size = 0
            for chunk in resp.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    return 400, graph_error(131053, "Media upload error",
                                            f"{kind} exceeds the {max_bytes}-byte limit")
    except requests.RequestException:
        return 400, graph_error(131052, "Media download error", "Media URL could not be fetched")
    return None


def graph_error(code: int, message: str = "error", details: str = "", kind: str = "OAuthException") -> dict:
    """The body Meta returns: {"error": {"message", "type", "code", "error_data", "fbtrace_id"}}."""
    return {"error": {"message": message, "type": kind, "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": details or message},
                      "fbtrace_id": "AbCdEf123"}}


def no_such_object(node_id: str) -> tuple[int, dict]:
    """What Graph answers for an id that does not exist or that the token may not see."""
    body = graph_error(100, f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be "
                            "loaded due to missing permissions, or does not support this operation.",
                       kind="GraphMethodException")
    body["error"]["error_subcode"] = 33
    return 400, body


def flow_template(name: str, language: str = "en_US", status: str = "APPROVED", flow_id: str = "1234567890",
                  button: str = "FLOW") -> dict:
    """A message template as GET /<WABA_ID>/message_templates lists it (docs/meta-facts.md)."""
    buttons = ([{"type": "FLOW", "text": "Continue", "flow_id": flow_id, "flow_action": "NAVIGATE",
                 "navigate_screen": "START"}] if button == "FLOW"
               else [{"type": "QUICK_REPLY", "text": "Continue"}])
    return {"name": name, "parameter_format": "POSITIONAL", "language": language, "status": status,
            "category": "MARKETING", "id": f"{abs(hash((name, language))) % 10**15}",
            "components": [{"type": "BODY", "text": "You started a form with us. Tap below to finish it."},
                           {"type": "BUTTONS", "buttons": buttons}]}


def _fields(default: tuple) -> tuple:
    """The ``fields`` query parameter as Graph reads it, or the node's default fields."""
    asked = request.args.get("fields")
    return tuple(f.strip() for f in asked.split(",") if f.strip()) if asked else default


class GraphStandIn(StandIn):
    def __init__(self, access_token: str = ACCESS_TOKEN):
        self.access_token = access_token
        self.public_keys: dict[str, str] = {}  # phone number id → uploaded PEM
        self.media_limits = dict(MEDIA_LIMITS)  # a test may lower a limit to see the refusal
        self._ids = itertools.count(1)
        self._chaos: tuple[random.Random, float, float] | None = None
        self._chaos_lock = threading.Lock()
        self.answers: list[tuple[object, int]] = []  # (Recorded, status) of every messages POST
        # Templates that behave like authentication templates: 131062 when sent to a BSUID.
        self.bsuid_refused_templates: set[str] = set()
        # What flask doctor reads (docs/meta-facts.md); a test fills in the account it needs.
        self.key_status: dict[str, str] = {}  # phone number id → business_public_key_signature_status
        self.phone_numbers: dict[str, dict] = {}  # phone number id → its node (GET /<PHONE_NUMBER_ID>)
        self.subscribed_apps: dict[str, list[dict]] = {}  # WABA id → GET /<WABA_ID>/subscribed_apps rows
        self.templates: dict[str, list[dict]] = {}  # WABA id → message templates
        self.apps: dict[str, str] = {}  # app id → app secret: GET /<APP_ID>/subscriptions takes ID|SECRET
        self.app_subscriptions: dict[str, list[dict]] = {}  # app id → its webhook subscriptions
        self._holds: list[tuple[object, float, threading.Event]] = []
        self.meta_flows = MetaFlows(self)  # the Flows API (standins/graph_flows.py)
        super().__init__()

    def add_phone_number(self, phone_id: str, display: str = "+1 555-010-0199", name: str = "Flowgate Demo",
                         quality: str = "GREEN") -> None:
        self.phone_numbers[phone_id] = {"verified_name": name, "code_verification_status": "VERIFIED",
                                        "display_phone_number": display, "quality_rating": quality,
                                        "platform_type": "CLOUD_API", "throughput": {"level": "STANDARD"},
                                        "id": phone_id}

    def add_app(self, app_id: str, secret: str, name: str = "Flowgate", callback_url: str = "",
                fields=("messages", "flows")) -> None:
        """A Meta app with a whatsapp_business_account webhook (fields as Graph lists them)."""
        self.apps[app_id] = secret
        self.app_subscriptions[app_id] = [{
            "object": "whatsapp_business_account", "callback_url": callback_url, "active": True,
            "fields": [{"name": f, "version": "v23.0"} for f in fields]}]
        self._app_names = {**getattr(self, "_app_names", {}), app_id: name}

    def subscribe(self, waba_id: str, app_id: str) -> None:
        name = getattr(self, "_app_names", {}).get(app_id, "App")
        self.subscribed_apps.setdefault(waba_id, []).append({"whatsapp_business_api_data": {
            "link": f"https://www.facebook.com/games/?app_id={app_id}", "name": name, "id": app_id}})

    def hold(self, match, seconds: float) -> threading.Event:
        """Keep the next message send whose JSON body ``match``es open for ``seconds`` before
        answering it as usual (Meta accepts it, slowly): a kill in that time lands mid-send. The
        event is set once the request has arrived (it is recorded, so it counts as sent)."""
        arrived = threading.Event()
        with self._lock:
            self._holds.append((match, seconds, arrived))
        return arrived

    def _held(self, body: dict) -> None:
        with self._lock:
            found = next((h for h in self._holds if h[0](body)), None)
            if found:
                self._holds.remove(found)
        if found:
            found[2].set()
            time.sleep(found[1])

    def chaos(self, seed: int, retryable: float = 0.30, permanent: float = 0.05,
              latency: tuple[float, float] = (0.0, 0.0)) -> None:
        """Fail that share of message sends at random: retryable ones as Meta answers them (131000
        with a 500, 130429 with a 429 and Retry-After: 1), permanent ones as 131026 (undeliverable);
        every send takes ``latency`` seconds (uniform), as a real API does. The sequence of draws
        is fixed by ``seed``; which request gets which draw depends on arrival order."""
        self._chaos = (random.Random(seed), retryable, permanent)
        self._latency = latency

    def _draw(self):
        if self._chaos is None:
            return None
        rng, retryable, permanent = self._chaos
        with self._chaos_lock:
            roll, pick, wait = rng.random(), rng.random(), rng.uniform(*self._latency)
        time.sleep(wait)
        if roll < permanent:
            return 400, graph_error(131026, "Message undeliverable"), {}
        if roll < permanent + retryable:
            if pick < 0.5:
                return 500, graph_error(131000, "Something went wrong"), {}
            return 429, graph_error(130429, "Rate limit hit"), {"Retry-After": "1"}
        return None

    def accepted(self) -> list[dict]:
        """Bodies of the message sends answered 200 (what reached the user)."""
        with self._lock:
            return [r.json() for r, status in self.answers if status == 200]

    def routes(self) -> None:
        app = self.app

        def answer(success_body, recorded=None):
            recorded = recorded or self.record(request)
            if request.headers.get("Authorization") != f"Bearer {self.access_token}":
                return _json(401, graph_error(190, "Invalid OAuth access token"))
            scripted = self.scripted()
            if scripted is not None:
                if scripted.delay:
                    time.sleep(scripted.delay)
                return _json(scripted.status, scripted.body, scripted.headers)
            result = success_body()
            if isinstance(result, tuple):  # (status, error body): what Meta answers to this request
                return _json(*result)
            return _json(200, result)

        @app.post("/<version>/<phone_id>/messages")
        def messages(version, phone_id):
            def ok():
                body = request.get_json(silent=True) or {}
                # The user: "to" (a phone number) or "recipient" (a BSUID or parent BSUID); with
                # both, "to" wins (Meta's "Business-scoped user IDs" page).
                to, recipient = str(body.get("to") or ""), str(body.get("recipient") or "")
                if not to and not recipient:
                    return 400, graph_error(131008, "Required parameter is missing", "to or recipient")
                if recipient and not to and not BSUID.match(recipient):
                    return 400, graph_error(131009, "Parameter value is not valid",
                                            "recipient is not a BSUID")
                kind = body.get("type")
                cta = ((((body.get("interactive") or {}).get("action") or {}).get("parameters") or {})
                       .get("flow_cta")) if kind == "interactive" else None
                if cta is not None and not 1 <= len(cta) <= FLOW_CTA_MAX:
                    return 400, graph_error(131009, "Parameter value is not valid",
                                            f"flow_cta must be at most {FLOW_CTA_MAX} characters")
                template = (body.get("template") or {}).get("name") if kind == "template" else None
                if recipient and not to and template in self.bsuid_refused_templates:
                    # One-tap / zero-tap / copy-code authentication templates need a phone number.
                    return 400, graph_error(131062, "Business-scoped User ID (BSUID) recipients are not "
                                                    "supported for this message.")
                if kind in MEDIA_LIMITS and isinstance(body.get(kind), dict) and body[kind].get("link"):
                    refused = fetch_media(body[kind]["link"], kind, self.media_limits[kind])
                    if refused:
                        return refused
                contact = {"input": to or recipient}
                if to:
                    contact["wa_id"] = "".join(ch for ch in to if ch.isdigit())
                if recipient:
                    contact["user_id"] = recipient
                return {"messaging_product": "whatsapp", "contacts": [contact],
                        "messages": [{"id": f"wamid.standin{next(self._ids)}"}]}
            entry = self.record(request)
            self._held(request.get_json(silent=True) or {})
            drawn = (self._draw() if request.headers.get("Authorization") == f"Bearer {self.access_token}"
                     else None)
            response = _json(*drawn) if drawn is not None else answer(ok, entry)
            with self._lock:
                self.answers.append((entry, response.status_code))
            return response

        @app.post("/<version>/<phone_id>/whatsapp_business_encryption")
        def upload_key(version, phone_id):
            def ok():
                pem = request.form.get("business_public_key") or (
                    request.get_json(silent=True) or {}).get("business_public_key")
                if not pem:
                    return graph_error(100, "business_public_key is required")
                self.public_keys[phone_id] = pem
                return {"success": True}
            return answer(ok)

        @app.get("/<version>/<phone_id>/whatsapp_business_encryption")
        def read_key(version, phone_id):
            def ok():
                pem = self.public_keys.get(phone_id)
                if pem is None:
                    return {"data": []}
                status = self.key_status.get(phone_id, "VALID")
                row = {"business_public_key": pem, "business_public_key_signature_status": status}
                if request.args.get("fields"):
                    return {"data": [{k: v for k, v in row.items() if k in _fields(())}]}
                # Meta's reference: a VALID key comes back as its status alone unless the fields
                # are asked for by name (docs/meta-facts.md).
                return {"data": [row if status != "VALID"
                                 else {"business_public_key_signature_status": status}]}
            return answer(ok)

        self.meta_flows.routes(app, answer)

        @app.get("/<version>/<node_id>")
        def read_node(version, node_id):
            def ok():
                flow = self.meta_flows.flows.get(node_id)
                if flow is not None:
                    return self.meta_flows.node(flow, _fields(FLOW_FIELDS))
                node = self.phone_numbers.get(node_id)
                if node is None:
                    return no_such_object(node_id)
                return {k: v for k, v in node.items() if k in _fields(tuple(node)) or k == "id"}
            return answer(ok)

        @app.get("/<version>/<waba_id>/subscribed_apps")
        def list_subscribed_apps(version, waba_id):
            def ok():
                if waba_id not in self.subscribed_apps and waba_id not in self.templates:
                    return no_such_object(waba_id)
                return {"data": list(self.subscribed_apps.get(waba_id, []))}
            return answer(ok)

        @app.get("/<version>/<waba_id>/message_templates")
        def list_templates(version, waba_id):
            def ok():
                if waba_id not in self.templates and waba_id not in self.subscribed_apps:
                    return no_such_object(waba_id)
                name = request.args.get("name", "")
                # the name filter matches part of a name (pywa: "the name (or part of it)")
                rows = [t for t in self.templates.get(waba_id, []) if name.lower() in t["name"].lower()]
                fields = _fields(())
                if fields:
                    rows = [{k: v for k, v in t.items() if k in fields or k == "id"} for t in rows]
                return {"data": rows, "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}}
            return answer(ok)

        @app.get("/<version>/<app_id>/subscriptions")
        def app_subscriptions(version, app_id):
            # An app access token, APP_ID|APP_SECRET, not the system-user token.
            self.record(request)
            secret = self.apps.get(app_id)
            if secret is None or request.headers.get("Authorization") != f"Bearer {app_id}|{secret}":
                return _json(400, graph_error(190, "Invalid OAuth access token signature."))
            return _json(200, {"data": list(self.app_subscriptions.get(app_id, []))})

    def sent_messages(self) -> list[dict]:
        """The JSON bodies of every accepted POST .../messages, in order."""
        return [r.json() for r in self.matching("POST", "/messages")]


def _json(status: int, body, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})
