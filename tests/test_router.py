"""One place picks the channel of every message (messaging/router.py): the confirmation of a
completed Flow follows FOLLOWUP_CHANNEL exactly as a recovery step or a receipt does, and a user
who opted out gets none of them. Completions run in-process on a real Redis against the Graph and
WASender stand-ins (real HTTP on loopback)."""
from __future__ import annotations

import ast

import pytest

from app import create_app
from conftest import ROOT
from messaging.console import ConsoleChannel
from standins.graph import ACCESS_TOKEN, graph_error
from standins.meta_webhooks import USER, completion
from standins.wasender import API_KEY
from workers import completion as completion_jobs

CONFIRMATION = "Thanks, all received."


def make_app(app_config, graph, wasender, mode: str):
    return create_app({**app_config, "FOLLOWUP_CHANNEL": mode, "CONFIRMATION_TEXT": CONFIRMATION,
                       "WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
                       "WHATSAPP_PHONE_NUMBER_ID": "100200300", "WASENDER_API_BASE": f"{wasender.url}/api",
                       "WASENDER_API_KEY": API_KEY, "WASENDER_RATE": "100/s"})


def complete(app, token: str, message: dict | None = None) -> dict:
    with app.app_context():
        return completion_jobs.process_completion(message or completion(token=token), "100200300")


def carried_by(app, graph, wasender) -> list[str]:
    """Which channels carried the confirmation text: cloud (Graph), wasender, console."""
    found = ["cloud" for m in graph.accepted() if m.get("text", {}).get("body") == CONFIRMATION]
    found += ["wasender" for m in wasender.sent() if CONFIRMATION in str(m.get("text", ""))]
    found += ["console" for e in ConsoleChannel(app.extensions["redis"]).outbox()
              if e["body"].get("text", {}).get("body") == CONFIRMATION]
    return found


@pytest.mark.parametrize("mode, refused_by_cloud, channels", [
    ("cloud", False, ["cloud"]),
    ("console", False, ["console"]),
    ("wasender", False, ["wasender"]),  # "WASenderApi sends every message": the confirmation too
    ("hybrid", False, ["cloud"]),
    ("hybrid", True, ["wasender"]),  # the Cloud API cannot reach the user: WASenderApi does
])
def test_the_confirmation_goes_where_the_router_sends_every_message(app_config, graph, wasender, mode,
                                                                    refused_by_cloud, channels):
    app = make_app(app_config, graph, wasender, mode)
    if refused_by_cloud:
        graph.fail_next(400, graph_error(131026, "Message undeliverable"))
    result = complete(app, f"fg_{mode}")
    assert result["confirmation"] == "sent"
    assert carried_by(app, graph, wasender) == channels
    timeline = app.extensions["sessions"].timeline(f"fg_{mode}")
    (sent,) = [e for e in timeline if e["event"] == "confirmation_sent"]
    assert sent["detail"].startswith(channels[0])


def test_a_user_who_opted_out_gets_no_confirmation(app_config, graph, wasender):
    app = make_app(app_config, graph, wasender, "hybrid")
    app.extensions["contacts"].opt_out(USER, "cloud")
    message = completion(token="fg_stopped")
    result = complete(app, "fg_stopped", message)
    assert result["confirmation"] == "refused"
    assert carried_by(app, graph, wasender) == []
    events = [e["event"] for e in app.extensions["sessions"].timeline("fg_stopped")]
    assert "confirmation_refused" in events and "confirmation_sent" not in events
    assert complete(app, "fg_stopped", message)["confirmation"] == "already_done"  # not tried again


def test_only_the_router_hands_a_message_to_a_channel():
    """A channel's ``send(out, in_window)`` is called in messaging/router.py and nowhere else in
    the served code: a second place that picks a channel would have to call it."""
    callers = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests", "bench", "test-artifacts") or "__pycache__" in rel.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "send" and len(node.args) == 2 and not node.keywords):
                callers.append(f"{rel}:{node.lineno}")
    assert callers and all(c.startswith("messaging/router.py:") for c in callers), callers
