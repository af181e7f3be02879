"""The seam between the framework and a business's flows: a package of its own (FLOWS_PACKAGE),
flows that declare their lookups, recovery and hooks, replies checked against the Flow JSON.
The business package is written by the scaffold (``flask flows new``) into a temporary folder,
so nothing here is a framework file."""
from __future__ import annotations

import sys

import pytest

from app import create_app
from config import ConfigError
from conftest import APP_SECRET, ROOT, LiveServer, served_settings
from devtools.scaffold import scaffold
from devtools.simulator import FlowClient
from procs import Gunicorn
from standins.meta_webhooks import completion
from testkit import BusinessAPI
from workers import completion as completion_jobs

PACKAGE = "acme_flows"
EXTRA = '''

HOOK_KEY = "acme:completed"


@flow.on_complete
def remember(submission_id, flow_token):
    from flask import current_app
    current_app.extensions["redis"].rpush(HOOK_KEY, f"{submission_id}|{flow_token}")
'''
LEAKY = '''"""A flow whose first screen sends a key its Flow JSON does not declare."""
from pathlib import Path

from flows.protocol import Screen
from flows.registry import Flow

flow = Flow("leaky", Path(__file__).with_name("quote.json"), recovery="1h,23h", quiet_hours="21:00-08:00")


@flow.on_init
def start(ctx):
    return Screen("START", {"code_error": "", "code_value": "", "internal_price": 1299})
'''


@pytest.fixture(scope="module")
def business(tmp_path_factory):
    root = tmp_path_factory.mktemp("business")
    scaffold(root, PACKAGE, "quote", lookup="catalog")
    with open(root / PACKAGE / "quote.py", "a") as module:
        module.write(EXTRA)
    (root / PACKAGE / "leaky.py").write_text(LEAKY)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


@pytest.fixture
def catalog_api():
    api = BusinessAPI({"catalog": {"ABC123": {"price": 10}}}).start()
    yield api
    api.stop()


def settings(app_config, catalog_api, **overrides) -> dict:
    return {**app_config, "DEMO_FLOWS": False, "FLOWS_PACKAGE": PACKAGE, "LOOKUP_BASE_URL": None,
            "CATALOG_API_URL": catalog_api.url("catalog"), **overrides}


def test_gunicorn_serves_the_business_package_and_not_the_examples(business, catalog_api, redis_url, keypair):
    env = dict(APP_ENV="production", REDIS_URL=redis_url, FLOW_PRIVATE_KEY=keypair[0],
               WHATSAPP_APP_SECRET=APP_SECRET,
               SECRET_KEY="s" * 40, FOLLOWUP_CHANNEL="console", DEMO_FLOWS="false", FLOWS_PACKAGE=PACKAGE,
               CATALOG_API_URL=catalog_api.url("catalog"), PYTHONPATH=f"{ROOT}:{business}",
               DATABASE_URL=served_settings()["DATABASE_URL"])
    with Gunicorn(**env) as server:
        client = FlowClient(f"{server.url}/flows/quote", keypair[1], APP_SECRET)
        assert client.init("tok-s1").screen == "START"
        unknown = client.exchange("tok-s1", "START", {"code": "zz9"})
        assert (unknown.screen == "START"
                and unknown.body["data"]["code_error"] == "We couldn't find this code")
        done = client.exchange("tok-s1", "START", {"code": "abc123"})
        assert (done.screen == "SUCCESS"
                and done.body["data"]["extension_message_response"]["params"]["code"] == "ABC123")
        assert catalog_api.calls == [("catalog", "ZZ9"), ("catalog", "ABC123")]
        demo = FlowClient(f"{server.url}/flows/member_check", keypair[1], APP_SECRET).init("tok-s2")
        assert demo.status == 404  # the examples are not served without DEMO_FLOWS
    assert "Traceback" not in server.output


def test_a_declared_lookup_without_its_url_stops_start_up_in_one_line(business, redis_url, keypair):
    env = dict(APP_ENV="production", REDIS_URL=redis_url, FLOW_PRIVATE_KEY=keypair[0],
               WHATSAPP_APP_SECRET=APP_SECRET,
               SECRET_KEY="s" * 40, FOLLOWUP_CHANNEL="console", DEMO_FLOWS="false", FLOWS_PACKAGE=PACKAGE,
               PYTHONPATH=f"{ROOT}:{business}", DATABASE_URL=served_settings()["DATABASE_URL"])
    with pytest.raises(AssertionError) as refused:
        with Gunicorn(**env):
            pass
    lines = [line for line in str(refused.value).splitlines() if "CATALOG_API_URL" in line]
    assert lines and "flow quote looks up catalog, but CATALOG_API_URL is not set" in lines[0]
    assert "Traceback" not in str(refused.value)


def test_an_unknown_flows_package_stops_start_up(app_config):
    with pytest.raises(ConfigError, match="FLOWS_PACKAGE='no_such_flows': no such package"):
        create_app({**app_config, "FLOWS_PACKAGE": "no_such_flows"})


def test_declared_recovery_and_quiet_hours_are_the_flows_own(business, app_config, catalog_api):
    from flows.recovery import Ladder, QuietHours

    app = create_app(settings(app_config, catalog_api, RECOVERY_STEPS="15m,6h"))
    ladders, quiet = app.extensions["ladders"], app.extensions["recovery_settings"]["quiet"]
    assert ladders("leaky") == Ladder.from_spec("1h,23h") and ladders("quote") == Ladder.from_spec("15m,6h")
    assert quiet("leaky") == QuietHours.parse("21:00-08:00") and quiet("quote") is None


def test_a_bad_declaration_stops_start_up_in_one_line(business, app_config, catalog_api):
    scaffold(business, "acme_broken", "broken")
    with open(business / "acme_broken" / "broken.py", "a") as module:
        module.write('\nflow.recovery = "soon"\n')
    with pytest.raises(ConfigError, match="flow broken: its recovery or quiet_hours is not valid"):
        create_app(settings(app_config, catalog_api, FLOWS_PACKAGE="acme_broken"))


def test_a_reply_with_an_undeclared_key_is_replaced_when_checked(business, app_config, catalog_api,
                                                                 keypair, caplog):
    checked = create_app(settings(app_config, catalog_api, FLOW_REPLY_CHECK=True))
    with LiveServer(checked) as server:
        reply = FlowClient(f"{server.url}/flows/leaky", keypair[1], APP_SECRET).init("tok-s3")
    assert reply.screen == "START" and "internal_price" not in reply.body["data"]
    assert reply.body["data"]["error_message"].startswith("Something went wrong")
    assert "data key 'internal_price' is not declared in START's data" in caplog.text

    unchecked = create_app(settings(app_config, catalog_api, FLOW_REPLY_CHECK=False))
    with LiveServer(unchecked) as server:
        reply = FlowClient(f"{server.url}/flows/leaky", keypair[1], APP_SECRET).init("tok-s4")
    assert reply.body["data"]["internal_price"] == 1299  # production serves what the handler said


def test_a_flows_own_on_complete_hook_runs_after_the_global_ones(business, app_config, catalog_api,
                                                                 redis_client):
    app = create_app(settings(app_config, catalog_api))
    app.extensions["sessions"].visit("tok-s5", "quote", "START")
    with app.app_context():
        result = completion_jobs.process_completion(completion(token="tok-s5"), "106540352242922")
    assert redis_client.lrange("acme:completed", 0, -1) == [f"{result['submission']}|tok-s5".encode()]
