"""The whole product on loopback for end-to-end tests: the app under LiveServer, real
``flask worker`` processes built from the same config, and helpers that post signed webhooks of
both channels through the real routes (shared by test_recovery.py and test_conversation.py)."""
from __future__ import annotations

import requests
from rq.registry import ScheduledJobRegistry

from app import create_app
from conftest import APP_SECRET, LiveServer
from devtools.simulator import FlowClient
from procs import Workers
from standins.graph import ACCESS_TOKEN
from standins.meta_webhooks import body_of, messages_change, signed_headers
from standins.wasender import API_KEY
from workers.queues import QUEUES, queue

PHONE = "15550001234"
API = "test-api-token"
WASENDER_SECRET = "ws-secret"


def stack_config(app_config: dict, graph, wasender, **overrides) -> dict:
    """Hybrid routing to the loopback Graph and WASender stand-ins, with seconds-long ladders."""
    return {**app_config, "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": "100200300", "WASENDER_API_BASE": f"{wasender.url}/api",
            "WASENDER_API_KEY": API_KEY, "WASENDER_RATE": "100/s", "WASENDER_WEBHOOK_SECRET": WASENDER_SECRET,
            "API_TOKEN": API, "FOLLOWUP_CHANNEL": "hybrid", "RECOVERY_STEPS": "2s,4s,6s",
            "RECOVERY_GIVE_UP_AFTER": "1s", "JOB_RETRY_BACKOFF": (1, 1), "JOB_MAX_RETRIES": 2,
            **overrides}


class Stack:
    """The app in this process (HTTP on loopback) plus real workers built from the same config."""

    def __init__(self, cfg, keypair, workers: int = 1, public: bool = False):
        self.app = create_app(cfg)
        self.server = LiveServer(self.app)
        if public:  # the app's own URL is its public one (media links), known once it listens
            cfg = {**cfg, "PUBLIC_BASE_URL": self.server.url}
            self.app.config["PUBLIC_BASE_URL"] = self.server.url
            self.app.extensions["media"].base_url = self.server.url
        self.cfg = cfg
        self.workers = Workers(cfg, workers)
        self.keypair = keypair

    def __enter__(self):
        self.server.__enter__()
        self.workers.__enter__()
        return self

    def __exit__(self, *exc):
        self.workers.__exit__(*exc)
        self.server.__exit__(*exc)

    @property
    def sessions(self):
        return self.app.extensions["sessions"]

    @property
    def redis(self):
        return self.app.extensions["redis"]

    def send(self, flow="member_check", phone=PHONE) -> str:
        resp = requests.post(f"{self.server.url}/api/flows/{flow}/send", json={"to": phone},
                             headers={"Authorization": f"Bearer {API}"}, timeout=5)
        assert resp.status_code == 202, resp.text
        return resp.json()["flow_token"]

    def client(self, flow="member_check") -> FlowClient:
        return FlowClient(f"{self.server.url}/flows/{flow}", self.keypair[1], APP_SECRET)

    def scheduled(self) -> int:
        return sum(ScheduledJobRegistry(queue=queue(self.redis, n)).count for n in QUEUES)

    # --- webhooks, signed, through the real routes ----------------------------------------------
    def whatsapp(self, *messages, statuses=(), contacts=None) -> dict:
        """POST /webhooks/whatsapp with X-Hub-Signature-256, as Meta does."""
        raw = body_of(messages_change(list(messages), list(statuses), contacts))
        resp = requests.post(f"{self.server.url}/webhooks/whatsapp", data=raw,
                             headers=signed_headers(raw, APP_SECRET), timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wasender(self, event: dict, secret: str | None = WASENDER_SECRET) -> requests.Response:
        """POST /webhooks/wasender with X-Webhook-Signature (the shared secret itself)."""
        headers = {"X-Webhook-Signature": secret} if secret is not None else {}
        return requests.post(f"{self.server.url}/webhooks/wasender", json=event, headers=headers, timeout=5)


def chain(sessions, origin: str) -> list[str]:
    """The tokens of a recovery chain, oldest first (each replaced by the next)."""
    tokens = [origin]
    while (sessions.get(tokens[-1]) or {}).get("replaced_by"):
        tokens.append(sessions.get(tokens[-1])["replaced_by"])
    return tokens


def buttons(body: dict) -> list[str]:
    return [b["reply"]["id"] for b in body["interactive"]["action"]["buttons"]]


def flow_tokens(graph) -> list[str]:
    """The flow_token of every Flow the Graph stand-in accepted (interactive or template)."""
    out = []
    for body in graph.sent_messages():
        if body.get("type") == "interactive" and body["interactive"]["type"] == "flow":
            out.append(body["interactive"]["action"]["parameters"]["flow_token"])
        elif body.get("type") == "template":
            out.append(body["template"]["components"][0]["parameters"][0]["action"]["flow_token"])
    return out
