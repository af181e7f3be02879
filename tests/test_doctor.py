"""flask doctor (preflight/) against real Redis, the loopback Graph and WASender stand-ins answering
in Meta's and WASender's documented shapes (docs/meta-facts.md), and a live app as the public URL.

The in-process runs call ``preflight.run`` with an environment dict, building the app the way the
CLI does; the CLI itself runs as a real process (``flask --app app doctor``, ``python -m cli.doctor``).
"""
from __future__ import annotations

import json
import subprocess
from urllib.parse import parse_qs

import pytest
import redis as redis_lib

import preflight
from app import create_app
from conftest import APP_SECRET, ROOT, RedisServer, free_port, project_env, venv_bin
from flows import keys
from standins.graph import ACCESS_TOKEN, flow_template
from standins.wasender import API_KEY as WASENDER_KEY, WASenderStandIn

PHONE_ID = "106540352242922"
WABA_ID = "102290129340398"
APP_ID = "670843887433847"
FLOWS = ("member_check", "service_area", "coupon_checkout", "stock_order", "appointment")


@pytest.fixture
def env(app_config, graph, wasender, live_server, keypair, tmp_path):
    """A production configuration that works: Meta's side set up as the README asks."""
    graph.add_phone_number(PHONE_ID)
    graph.public_keys[PHONE_ID] = keypair[1]
    graph.add_app(APP_ID, APP_SECRET, callback_url=f"{live_server.url}/webhooks/whatsapp")
    graph.subscribe(WABA_ID, APP_ID)
    graph.templates[WABA_ID] = [flow_template("resume_member", "en_US")]
    return {
        "APP_ENV": "production", "REDIS_URL": app_config["REDIS_URL"],
        "FLOW_PRIVATE_KEY": keys.one_line(keypair[0]), "WHATSAPP_APP_SECRET": APP_SECRET,
        "SECRET_KEY": "k" * 64, "WHATSAPP_VERIFY_TOKEN": "verify-me", "API_TOKEN": "api-token",
        "DASHBOARD_PASSWORD": "dash-pass", "WHATSAPP_API_BASE": graph.url,
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
        "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID, "WHATSAPP_APP_ID": APP_ID,
        "FOLLOWUP_CHANNEL": "hybrid", "WASENDER_API_BASE": f"{wasender.url}/api",
        "WASENDER_API_KEY": WASENDER_KEY,
        "FLOW_TEMPLATES": "member_check=resume_member:en_US", "PUBLIC_BASE_URL": live_server.url,
        "DEMO_FLOWS": "true", "LOOKUP_BASE_URL": app_config["LOOKUP_BASE_URL"],
        "FLOWGATE_INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": app_config["DATABASE_URL"],  # the records store, migrated by the app's start
    }


def run(env: dict, offline: bool = False, **changes) -> preflight.Report:
    """``changes``: a value replaces the setting, None removes it."""
    environ = {k: v for k, v in {**env, **changes}.items() if v is not None}
    return preflight.run(environ, offline=offline, build_app=create_app)


def by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def failures(report) -> dict:
    return {c.name: c for c in report.checks if c.status == "fail"}


def doctor(env: dict, *args, module: bool = False) -> subprocess.CompletedProcess:
    command = ([venv_bin("python"), "-m", "cli.doctor"] if module
               else [venv_bin("flask"), "--app", "app", "doctor"])
    return subprocess.run([*command, *args], cwd=ROOT, env=project_env(**env), capture_output=True,
                          text=True, timeout=120)


# --- the whole command -----------------------------------------------------------------------------


def test_a_working_production_setup_passes_every_check(env, graph, wasender):
    result = doctor(env)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [line for line in lines if line.startswith("✗")], result.stdout
    # the only warning: a loopback stand-in for the public URL is http, not https
    assert [line.split(":")[0] for line in lines if line.startswith("⚠")] == ["⚠ PUBLIC_BASE_URL"]
    for name in ("FLOW_PRIVATE_KEY", "redis", "redis-policy", "redis-memory", "app", "meta-phone-number",
                 "meta-key", "webhook-subscription", "webhook-fields", "template member_check", "wasender",
                 *(f"endpoint {f}" for f in FLOWS)):
        assert any(line.startswith(f"✓ {name}:") for line in lines), (name, result.stdout)
    # the key is read with both fields named (a VALID key otherwise comes back as its status alone)
    [read] = graph.matching("GET", f"/{PHONE_ID}/whatsapp_business_encryption")
    assert parse_qs(read.query)["fields"] == ["business_public_key,business_public_key_signature_status"]
    assert len(wasender.matching("GET", "/api/status")) == 1
    assert ACCESS_TOKEN not in result.stdout and APP_SECRET not in result.stdout


def test_json_report(env):
    result = doctor(env, "--json", "--offline", module=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["mode"] == "offline" and report["production"] is True
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["redis-policy"] == "ok" and statuses["app"] == "ok" and statuses["meta"] == "skip"
    assert set(report["checks"][0]) == {"name", "status", "summary", "fix"}


def test_a_broken_setting_is_one_line_with_its_fix_and_exit_1(env):
    result = doctor({**env, "FLOW_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\\nnot a key"}, "--offline",
                    module=True)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert (len(failed) == 1 and failed[0].startswith("✗ FLOW_PRIVATE_KEY:")
            and "flask keys generate" in failed[0])
    assert "Traceback" not in result.stdout + result.stderr


def test_warnings_do_not_fail(env):
    result = doctor({**env, "DASHBOARD_PASSWORD": ""}, "--offline")
    assert result.returncode == 0
    assert any(line.startswith("⚠ DASHBOARD_PASSWORD: not set") for line in result.stdout.splitlines())


def test_offline_calls_neither_meta_nor_wasender(env, graph, wasender):
    report = run(env, offline=True)
    assert not report.failed, failures(report)
    assert graph.requests == [] and wasender.requests == []
    checks = by_name(report)
    assert checks["redis"].status == "ok" and checks["app"].status == "ok"
    assert {checks[n].status for n in ("meta", "wasender", "public-endpoint")} == {"skip"}


# --- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, name, words", [
    ({"SECRET_KEY": None}, "SECRET_KEY", "openssl rand"),
    ({"WHATSAPP_APP_SECRET": None}, "WHATSAPP_APP_SECRET", "App Secret"),
    ({"FLOW_PRIVATE_KEY": None}, "FLOW_PRIVATE_KEY", "flask keys generate"),
    ({"FLOW_PRIVATE_KEY": None, "FLOW_PRIVATE_KEY_PATH": "/nonexistent/key.pem"},
     "FLOW_PRIVATE_KEY_PATH", "PEM"),
    ({"REDIS_URL": None}, "REDIS_URL", "heroku-redis"),
    ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL", "add-on"),
    ({"FLOW_SESSION_LIFETIME": "3 days"}, "FLOW_SESSION_LIFETIME", "a number"),
    ({"RECOVERY_STEPS": "15m,6h,soon"}, "RECOVERY_STEPS", "15m,6h,23h"),
    ({"RECOVERY_STEPS": "6h,15m"}, "RECOVERY_STEPS", "increasing"),
    ({"RECOVERY_GIVE_UP_AFTER": "a day"}, "RECOVERY_GIVE_UP_AFTER", "24h"),
    ({"QUIET_HOURS": "late"}, "QUIET_HOURS", "21:00-08:00"),
    ({"DEFAULT_TIMEZONE": "Mars/Olympus"}, "DEFAULT_TIMEZONE", "IANA"),
    ({"WASENDER_RATE": "fast"}, "WASENDER_RATE", "1/min"),
    ({"FLOW_TOKEN_POLICY": "lenient"}, "FLOW_TOKEN_POLICY", "open or strict"),
    ({"FLOW_TEMPLATES": "member_check="}, "FLOW_TEMPLATES", "template_name:language"),
    ({"PUBLIC_BASE_URL": "flowgate.example.com"}, "PUBLIC_BASE_URL", "https://"),
    ({"COMPLETION_FORWARD_URL": "ftp://crm.example.com/in"}, "COMPLETION_FORWARD_URL", "https://"),
    ({"FOLLOWUP_CHANNEL": "sms"}, "FOLLOWUP_CHANNEL", "cloud"),
    ({"FOLLOWUP_CHANNEL": "cloud", "WHATSAPP_ACCESS_TOKEN": None}, "WHATSAPP_ACCESS_TOKEN",
     "system-user token"),
    ({"WASENDER_API_KEY": None}, "WASENDER_API_KEY", "WASender session"),
])
def test_each_missing_or_unreadable_setting_is_named_with_its_fix(env, changes, name, words):
    report = run(env, offline=True, **changes)
    failed = failures(report)
    assert list(failed) == [name], [(c.name, c.summary) for c in failed.values()]
    assert words in failed[name].fix + failed[name].summary
    assert by_name(report)["app"].status == "skip"  # not started on settings known to be wrong


def test_console_channel_needs_no_cloud_credentials_but_is_a_warning(env):
    report = run(env, offline=True, FOLLOWUP_CHANNEL="console", WHATSAPP_ACCESS_TOKEN=None,
                 WHATSAPP_PHONE_NUMBER_ID=None)
    assert not report.failed, failures(report)
    assert by_name(report)["FOLLOWUP_CHANNEL"].status == "warn"


def test_templates_and_flow_ids_may_only_name_served_flows(env):
    report = run(env, offline=True, FLOW_IDS="member_check=123,nope=456")
    assert list(failures(report)) == ["FLOW_IDS"] and "nope" in failures(report)["FLOW_IDS"].summary


def test_development_settings_only_warn(tmp_path):
    report = preflight.run({"APP_ENV": "development", "FLOWGATE_INSTANCE_DIR": str(tmp_path / "instance")},
                           offline=True, build_app=create_app)
    assert not report.failed and report.production is False
    assert by_name(report)["app"].status == "ok"


# --- Redis -----------------------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server, redis_lib.Redis(port=server.port)
    server.stop()


def test_an_evicting_redis_fails_with_the_command_that_fixes_it(env, own_redis):
    server, client = own_redis
    client.config_set("maxmemory-policy", "allkeys-lru")
    check = by_name(run(env, offline=True, REDIS_URL=server.url))["redis-policy"]
    assert check.status == "fail" and "allkeys-lru" in check.summary and "RQ loses jobs" in check.summary
    assert "heroku redis:maxmemory --policy noeviction" in check.fix


def test_redis_memory_warns_above_80_percent_and_fails_when_full(env, own_redis):
    server, client = own_redis
    used = client.info("memory")["used_memory"]
    client.config_set("maxmemory", int(used / 0.88))
    check = by_name(run(env, offline=True, REDIS_URL=server.url))["redis-memory"]
    assert check.status == "warn" and "above 80%" in check.summary, check
    client.config_set("maxmemory", int(used * 0.5))
    check = by_name(run(env, offline=True, REDIS_URL=server.url))["redis-memory"]
    assert check.status == "fail" and "refuses writes" in check.summary


def test_unreachable_redis(env):
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    check = by_name(run(env, offline=True, REDIS_URL=url))["redis"]
    assert check.status == "fail" and "cannot reach" in check.summary
    assert "hunter2" not in check.summary and ":***@" in check.summary


# --- Meta ------------------------------------------------------------------------------------------


def test_a_refused_token_fails_once_and_skips_what_depends_on_it(env):
    report = run(env, WHATSAPP_ACCESS_TOKEN="expired-token")
    failed = failures(report)
    assert "meta-phone-number" in failed and "code 190" in failed["meta-phone-number"].summary
    assert by_name(report)["meta-key"].status == "skip"


def test_an_unknown_phone_number_id(env, graph):
    graph.phone_numbers.clear()
    check = failures(run(env))["meta-phone-number"]
    assert f"phone number id {PHONE_ID} cannot be read" in check.summary and "code 100" in check.summary


@pytest.mark.parametrize("setup, status, words", [
    ("none", "fail", "flask keys upload"),
    ("other", "fail", "421"),
    ("mismatch", "fail", "MISMATCH"),
])
def test_the_key_registered_at_meta(env, graph, other_keypair, setup, status, words):
    if setup == "none":
        graph.public_keys.clear()
    elif setup == "other":
        graph.public_keys[PHONE_ID] = other_keypair[1]
    else:
        graph.key_status[PHONE_ID] = "MISMATCH"
    check = by_name(run(env))["meta-key"]
    assert check.status == status and words in check.summary + check.fix, check


def test_the_previous_key_still_registered_is_a_warning(env, graph, keypair, other_keypair):
    report = run(env, FLOW_PRIVATE_KEY=keys.one_line(other_keypair[0]),
                 FLOW_PRIVATE_KEY_PREVIOUS=keys.one_line(keypair[0]))
    check = by_name(report)["meta-key"]
    assert check.status == "warn" and "previous key" in check.summary


def test_no_app_subscribed_to_the_waba(env, graph):
    graph.subscribed_apps[WABA_ID] = []
    check = failures(run(env))["webhook-subscription"]
    assert "no app is subscribed" in check.summary and f"/{WABA_ID}/subscribed_apps" in check.fix


def test_another_app_subscribed_but_not_ours(env, graph):
    graph.subscribed_apps[WABA_ID] = []
    graph.add_app("999", "x", name="Some CRM")
    graph.subscribe(WABA_ID, "999")
    check = failures(run(env))["webhook-subscription"]
    assert f"app {APP_ID} is not subscribed" in check.summary and "Some CRM" in check.summary


def test_an_override_sends_the_webhooks_elsewhere(env, graph):
    graph.subscribed_apps[WABA_ID][0]["override_callback_uri"] = "https://old.example.com/hook"
    check = failures(run(env))["webhook-subscription"]
    assert "https://old.example.com/hook" in check.summary


@pytest.mark.parametrize("fields, words", [(("messages",), "flows"), (("flows",), "no completion arrives")])
def test_webhook_fields_must_include_messages_and_flows(env, graph, live_server, fields, words):
    graph.add_app(APP_ID, APP_SECRET, callback_url=f"{live_server.url}/webhooks/whatsapp", fields=fields)
    check = failures(run(env))["webhook-fields"]
    assert words in check.summary and "Webhook fields" not in check.summary
    assert "subscribe the messages and flows fields" in check.fix


def test_webhook_fields_as_documented_strings_are_read_too(env, graph):
    graph.app_subscriptions[APP_ID][0]["fields"] = ["messages", "flows", "message_template_status_update"]
    assert by_name(run(env))["webhook-fields"].status == "ok"


def test_webhooks_going_to_another_url(env, graph):
    graph.app_subscriptions[APP_ID][0]["callback_url"] = "https://staging.example.com/webhooks/whatsapp"
    check = failures(run(env))["webhook-fields"]
    assert "staging.example.com" in check.summary


def test_a_wrong_app_secret_for_the_app_token(env, graph):
    graph.apps[APP_ID] = "the-real-secret"
    check = failures(run(env))["webhook-fields"]
    assert "app token" in check.summary and "App Secret" in check.fix


def test_without_the_app_id_the_fields_are_a_stated_blind_spot(env):
    report = run(env, WHATSAPP_APP_ID=None)
    check = by_name(report)["webhook-fields"]
    assert (check.status == "warn" and "lists apps, not fields" in check.summary
            and "WHATSAPP_APP_ID" in check.fix)
    assert not report.failed


@pytest.mark.parametrize("templates, status, words", [
    ([], "fail", "is not in WABA"),
    ([flow_template("resume_member", "es")], "fail", "it exists in es"),
    ([flow_template("resume_member", status="PENDING")], "fail", "is PENDING"),
    ([flow_template("resume_member", status="REJECTED")], "fail", "is REJECTED"),
    ([flow_template("resume_member", button="QUICK_REPLY")], "fail", "no FLOW button"),
    ([flow_template("resume_member_old"), flow_template("resume_member")], "ok", "APPROVED"),
])
def test_flow_templates(env, graph, templates, status, words):
    graph.templates[WABA_ID] = templates
    check = by_name(run(env))["template member_check"]
    assert check.status == status and words in check.summary, check


def test_a_template_opening_another_flow_than_flow_ids_says(env, graph):
    check = by_name(run(env, FLOW_IDS="member_check=42"))["template member_check"]
    assert check.status == "warn" and "FLOW_IDS says 42" in check.summary


# --- WASender --------------------------------------------------------------------------------------


@pytest.mark.parametrize("session, status", [("CONNECTED", "ok"), ("connected", "ok"), ("need_scan", "fail"),
                                             ("logged_out", "fail")])
def test_the_wasender_session_must_be_connected(env, session, status):
    with WASenderStandIn(status=session) as standin:
        check = by_name(run(env, WASENDER_API_BASE=f"{standin.url}/api"))["wasender"]
    assert check.status == status, check
    if status == "fail":
        assert "QR code" in check.fix


def test_a_refused_wasender_key(env):
    check = failures(run(env, WASENDER_API_KEY="wrong"))["wasender"]
    assert "refused the API key" in check.summary


def test_wasender_is_not_asked_when_the_channel_is_cloud(env, wasender):
    assert by_name(run(env, FOLLOWUP_CHANNEL="cloud"))["wasender"].status == "skip"
    assert wasender.requests == []


# --- the public URL --------------------------------------------------------------------------------


def test_every_served_flow_answers_a_signed_ping_at_its_public_url(env, live_server):
    checks = by_name(run(env))
    for flow in FLOWS:
        assert checks[f"endpoint {flow}"].status == "ok", checks[f"endpoint {flow}"]
        assert f"{live_server.url}/flows/{flow}" in checks[f"endpoint {flow}"].summary


def test_an_endpoint_with_another_app_secret_gets_432(env, graph):
    graph.apps[APP_ID] = "another-secret"
    report = run(env, WHATSAPP_APP_SECRET="another-secret")
    check = failures(report)["endpoint member_check"]
    assert "432" in check.summary and "app secret" in check.fix


def test_an_endpoint_with_another_private_key_gets_421(env, graph, other_keypair):
    graph.public_keys[PHONE_ID] = other_keypair[1]  # Meta holds the key the doctor is given ...
    report = run(env, FLOW_PRIVATE_KEY=keys.one_line(other_keypair[0]))  # ... the public app another
    assert by_name(report)["meta-key"].status == "ok"
    assert "421" in failures(report)["endpoint member_check"].summary


def test_nothing_listening_at_the_public_url(env):
    check = failures(run(env, PUBLIC_BASE_URL=f"http://127.0.0.1:{free_port()}"))["endpoint member_check"]
    assert "did not answer" in check.summary and "connection refused" in check.fix


def test_the_records_database_is_checked_and_a_schema_behind_is_a_warning(env, tmp_path):
    """Before the release phase's migration the schema is behind: a warning naming the command
    (the doctor runs first in the release); an unreachable database is a failure."""
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    report = run(env, offline=True, DATABASE_URL=fresh)
    check = by_name(report)["records"]
    assert check.status == "warn" and "records migrate" in check.fix and "not created" in check.summary
    gone = run(env, offline=True, DATABASE_URL="postgresql://nobody@/db?host=/nonexistent&port=1")
    assert by_name(gone)["records"].status == "fail"
    assert by_name(run(env, offline=True, DATABASE_URL=None))["records"].status == "fail"
