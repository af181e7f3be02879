"""The playground through the test client: each step really goes through the encrypted
endpoint of a live server on loopback, and the metrics see it like any other request."""
from __future__ import annotations

import html as html_lib
import json
import re
from datetime import date, timedelta

import pytest

from app import create_app
from conftest import LiveServer
from devtools import preview
from metrics.snapshot import snapshot


@pytest.fixture
def app(app_config):
    return create_app({**app_config, "APP_ENV": "development"})


@pytest.fixture
def pg(app):
    with LiveServer(app) as server:
        app.config["PLAYGROUND_URL"] = server.url  # the loopback address it would bind in `make run`
        yield app.test_client()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def submit(pg, fields: dict):
    html = pg.get("/playground/member_check").get_data(as_text=True)
    data = {"csrf": csrf_of(html), "action_id": "footer", **{f"f.{k}": v for k, v in fields.items()}}
    resp = pg.post("/playground/member_check/action", data=data)
    assert resp.status_code == 303
    return pg.get("/playground/member_check").get_data(as_text=True)


def test_invalid_then_valid_id_then_completion(pg, redis_client):
    first = pg.get("/playground/member_check")
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert 'data-screen="MEMBER_LOOKUP"' in html and "Check your membership" in html
    assert "INIT</strong> → HTTP 200" in html

    html = submit(pg, {"member_id": "NOPE42"})
    assert 'id="err-member_id"' in html and "We couldn&#39;t find that member ID" in html
    assert 'id="pg-snackbar"' in html and "Check your card" in html
    assert 'value="NOPE42"' in html  # init-value bound to ${data.member_id_value}

    html = submit(pg, {"member_id": "mem123"})
    assert 'data-screen="CONFIRM"' in html and "Ana Silva" in html and "Gold" in html

    html = submit(pg, {})
    assert 'id="pg-done"' in html
    params = html_lib.unescape(re.search(r'<pre id="pg-params">(.*?)</pre>', html, re.S).group(1))
    assert json.loads(params) == {"flow_token": json.loads(params)["flow_token"], "member_id": "MEM123",
                                  "member_name": "Ana Silva"}
    assert re.search(r'class="latency">[\d.]+ ms', html)

    funnel = snapshot(redis_client)["flows"]["member_check"]["period"]
    assert funnel["counters"]["completed"] == 1
    assert funnel["screens"] == {"MEMBER_LOOKUP": 1, "CONFIRM": 1}


def test_restart_gives_a_new_token(pg):
    html = pg.get("/playground/member_check").get_data(as_text=True)
    token = re.search(r"token <code>([^<]+)</code>", html).group(1)
    pg.post("/playground/member_check/restart", data={"csrf": csrf_of(html)})
    again = pg.get("/playground/member_check").get_data(as_text=True)
    assert re.search(r"token <code>([^<]+)</code>", again).group(1) != token


def test_bad_input_gets_clear_answers(pg):
    html = pg.get("/playground/member_check").get_data(as_text=True)
    assert pg.get("/playground/nope").status_code == 404
    assert pg.post("/playground/member_check/action", data={"action_id": "footer"}).status_code == 403
    bad = pg.post("/playground/member_check/action", data={"csrf": csrf_of(html), "action_id": "select:x"})
    assert bad.status_code == 400


def test_a_spoofed_host_header_cannot_aim_the_playground_elsewhere(pg):
    # From a non-loopback client, Host naming some other local port is ignored: the configured
    # loopback URL is used and the flow still plays.
    resp = pg.get("/playground/member_check", headers={"Host": "127.0.0.1:1"},
                  environ_base={"REMOTE_ADDR": "203.0.113.9"})
    html = resp.get_data(as_text=True)
    assert "127.0.0.1:1/" not in html and 'data-screen="MEMBER_LOOKUP"' in html


def test_non_loopback_playground_url_refuses_to_start(app_config):
    with pytest.raises(RuntimeError, match="PLAYGROUND_URL"):
        create_app({**app_config, "PLAYGROUND_URL": "http://example.com:5000"})


def test_preview_draws_bindings_visibility_branches_and_placeholders():
    flow_json = {"screens": [{"id": "A", "title": "${data.title}", "layout": {"children": [
        {"type": "TextBody", "text": "${data.name}"},
        {"type": "TextBody", "text": "hidden", "visible": "${data.hide_me}"},
        {"type": "If", "condition": "${data.vip}", "then": [{"type": "TextCaption", "text": "VIP"}],
         "else": [{"type": "TextCaption", "text": "regular"}]},
        {"type": "Form", "name": "f", "error-messages": "${data.errors}", "children": [
            {"type": "RadioButtonsGroup", "name": "plan", "label": "Plan", "data-source": "${data.plans}",
             "on-select-action": {"name": "data_exchange", "payload": {"plan": "${form.plan}"}}},
            {"type": "OptIn", "name": "terms", "label": "I agree"},
        ]},
        {"type": "Image", "src": "x"},
        {"type": "Footer", "label": "Go", "enabled": "${data.ready}",
         "on-click-action": {"name": "complete", "payload": {}}},
    ]}}]}
    data = {"title": "Hello", "name": "Ana", "hide_me": False, "vip": True, "ready": False,
            "plans": [{"id": "b", "title": "Basic"}], "errors": {"plan": "Pick one"}}
    v = preview.view(flow_json, "A", data, {})
    kinds = [c["kind"] for c in v["components"]]
    assert v["title"] == "Hello"
    assert kinds == ["TextBody", "TextCaption", "RadioButtonsGroup", "OptIn", "placeholder", "Footer"]
    assert v["components"][1]["text"] == "VIP"
    radio = v["components"][2]
    assert radio["options"][0]["title"] == "Basic" and radio["error"] == "Pick one"
    assert radio["select_action"] == "data_exchange"
    assert v["components"][-1]["enabled"] is False
    assert "Image" in v["components"][4]["text"]


def act(pg, flow: str, action_id: str, fields: dict) -> str:
    html = pg.get(f"/playground/{flow}").get_data(as_text=True)
    data = {"csrf": csrf_of(html), "action_id": action_id, **{f"f.{k}": v for k, v in fields.items()}}
    assert pg.post(f"/playground/{flow}/action", data=data).status_code == 303
    return pg.get(f"/playground/{flow}").get_data(as_text=True)


def test_a_same_screen_reply_keeps_what_the_user_typed(pg):
    """appointment: the endpoint refreshes BOOK with the free times; the day picked stays, so the
    time picked next is sent with it (it used to go out as "date": "" and come back "Pick a day")."""
    day = date.today() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    html = act(pg, "appointment", "select:date", {"date": day.isoformat()})
    assert 'id="f-slot"' in html and f'value="{day.isoformat()}"' in html
    html = act(pg, "appointment", "select:slot", {"date": day.isoformat(), "slot": "09:00"})
    assert "is held for you" in html and 'id="err-date"' not in html
    # a new screen starts blank, as on the phone
    html = act(pg, "appointment", "footer", {"date": day.isoformat(), "slot": "09:00"})
    assert 'data-screen="CONFIRM"' in html


def test_field_errors_keep_the_valid_fields_too(pg):
    act(pg, "service_area", "footer", {"postal_code": "94105"})
    html = act(pg, "service_area", "footer",
               {"name": "Ana Silva", "email": "ana@example", "phone": "+14155550100"})
    assert 'data-screen="DETAILS"' in html and 'id="err-email"' in html
    assert 'value="Ana Silva"' in html and 'value="+14155550100"' in html and 'value="ana@example"' in html
