"""flask flows deploy against the Graph stand-in's Flows API (tests/standins/graph_flows.py), through
the app's own CLI: create, upload, publish, nothing written twice, Meta's validation errors, the
published Flow that cannot change and its clone, and the Flow ID sending uses."""
from __future__ import annotations

import json
import subprocess

import pytest

from app import create_app
from conftest import ROOT, project_env, served_settings, venv_bin
from flows import keys
from flows.loader import EXAMPLES, flows_in
from messaging.console import ConsoleChannel
from cli.flow_deploy import Report, clone_name
from messaging.flows_api import ValidationError, json_digest
from devtools.lint import lint
from standins.graph import ACCESS_TOKEN
from standins.graph_flows import validation_error

WABA_ID = "102290129340398"
BASE_URL = "https://flowgate-example.herokuapp.com"  # only ever written into Meta's records, never called
DEMO = flows_in(EXAMPLES)
NAMES = sorted(f.name for f in DEMO)


def meta_settings(graph) -> dict:
    return {"WHATSAPP_API_BASE": graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID, "PUBLIC_BASE_URL": BASE_URL}


@pytest.fixture
def meta(graph):
    graph.meta_flows.add_waba(WABA_ID)
    graph.meta_flows.page_size = 2  # five flows: the list comes in three pages
    return graph.meta_flows


@pytest.fixture
def deploy_app(app_config, graph, meta):
    return create_app({**app_config, **meta_settings(graph)})


def flask(app, *args):
    return app.test_cli_runner().invoke(args=["flows", *args])


def writes(graph) -> list:
    return [(r.method, r.path) for r in graph.requests if r.method in ("POST", "DELETE")]


def test_deploy_publish_creates_uploads_and_publishes_every_served_flow_and_a_rerun_writes_nothing(
        deploy_app, graph, meta):
    first = flask(deploy_app, "deploy", "--publish")
    assert first.exit_code == 0, first.output
    by_name = {f["name"]: f for f in meta.flows.values()}
    assert sorted(by_name) == NAMES
    for flow in DEMO:
        on_meta = by_name[flow.name]
        assert on_meta["status"] == "PUBLISHED"
        assert on_meta["endpoint_uri"] == f"{BASE_URL}/flows/{flow.name}"
        assert on_meta["categories"] == list(flow.categories)
        assert json_digest(on_meta["json"]) == json_digest(flow.json_path.read_bytes())
    assert len(writes(graph)) == 3 * len(DEMO)  # create, upload, publish: nothing else
    assert first.output.count("+ published") == len(DEMO)

    before, listed = len(writes(graph)), len(graph.matching("GET", f"/{WABA_ID}/flows"))
    second = flask(deploy_app, "deploy", "--publish")
    assert second.exit_code == 0, second.output
    assert writes(graph)[before:] == []
    assert len(graph.matching("GET", f"/{WABA_ID}/flows")) - listed == 3  # five flows, two a page
    assert second.output.count("nothing to change") == len(DEMO)
    assert "0 changes on Meta" in second.output


def test_a_rerun_with_the_remembered_ids_lost_finds_the_flows_by_name_and_writes_nothing(
        deploy_app, graph, meta, redis_client):
    assert flask(deploy_app, "deploy").exit_code == 0
    redis_client.delete(*redis_client.keys("fg:meta:*"))
    before = len(writes(graph))
    again = flask(deploy_app, "deploy")
    assert again.exit_code == 0, again.output
    assert writes(graph)[before:] == []
    assert deploy_app.extensions["flow_ids"].flow_id("member_check") == meta.by_name("member_check")["id"]


def test_only_what_differs_is_written(deploy_app, graph, meta):
    assert flask(deploy_app, "deploy").exit_code == 0
    flow = meta.by_name("member_check")
    flow["json"] = flow["json"].replace(b'"Member ID"', b'"Member number"')  # edited by hand in Flow Builder
    flow["endpoint_uri"] = "https://old-app.example.com/flows/member_check"
    before = len(writes(graph))
    result = flask(deploy_app, "deploy")
    assert result.exit_code == 0, result.output
    assert writes(graph)[before:] == [("POST", f"/v23.0/{flow['id']}"),
                                      ("POST", f"/v23.0/{flow['id']}/assets")]
    assert flow["endpoint_uri"] == f"{BASE_URL}/flows/member_check"
    assert b'"Member ID"' in flow["json"]


def test_metas_validation_errors_are_shown_with_their_path_and_nothing_is_published(deploy_app, graph, meta):
    meta.reject_next_upload(validation_error(
        "INVALID_PROPERTY_VALUE", "Invalid value found for property 'label'.",
        "screens [0]. layout.children [1].label", line=21, column=13))
    result = flask(deploy_app, "deploy", "member_check", "--publish")
    assert result.exit_code == 1, result.output
    assert ("INVALID_PROPERTY_VALUE at $.screens[0].layout.children[1].label (line 21, column 13): "
            "Invalid value found for property 'label'.") in result.output
    assert "not published: Meta reports validation errors" in result.output
    assert meta.by_name("member_check")["status"] == "DRAFT"
    assert graph.matching("POST", "/publish") == []


def test_metas_error_is_set_beside_our_finding_for_the_same_path():
    doc = json.loads((ROOT / "tests" / "fixtures" / "lint" / "valid_flow.json").read_text())
    doc["screens"][0]["title"] = "Tell us a little bit about yourself"  # our warning (unverified limit)
    report = Report("x", findings=lint(doc))
    error = ValidationError.parse(validation_error("INVALID_PROPERTY_VALUE", "too long", "screens[0].title"))
    assert [f.rule for f in report.ours_at(error)] == ["limit.screen-title"]
    schema = ValidationError.parse({"error": "INVALID_PROPERTY_KEY", "message":
                                    'The property "x" cannot be specified at '
                                    '"$root/screens/0/layout/children/2".'})
    assert schema.paths == ("$.screens[0].layout.children[2]",)


def test_a_published_flow_is_not_changed_but_cloned_on_request(deploy_app, graph, meta):
    assert flask(deploy_app, "deploy", "member_check", "--publish").exit_code == 0
    old = meta.by_name("member_check")
    ours = (ROOT / "examples" / "member_check.json").read_bytes()
    old["json"] = ours.replace(b'"Member ID"', b'"Member number"')  # the repository moved on since
    before = len(writes(graph))
    refused = flask(deploy_app, "deploy", "member_check", "--publish")
    assert refused.exit_code == 1, refused.output
    assert writes(graph)[before:] == []
    text = " ".join(refused.output.split())
    assert "is PUBLISHED on Meta and its Flow JSON differs" in text
    assert "a published Flow cannot be changed" in text and "clone_flow_id" in text
    assert "flask flows deploy member_check --clone --publish" in text

    cloned = flask(deploy_app, "deploy", "member_check", "--clone", "--publish")
    assert cloned.exit_code == 0, cloned.output
    clone = meta.by_name(clone_name("member_check", json_digest(ours), f"{BASE_URL}/flows/member_check"))
    assert clone["status"] == "PUBLISHED" and clone["json"] == ours
    create = [r for r in graph.matching("POST", f"/{WABA_ID}/flows") if r.json().get("clone_flow_id")]
    assert [r.json()["clone_flow_id"] for r in create] == [old["id"]]
    assert old["status"] == "PUBLISHED"  # messages already sent keep opening it
    assert deploy_app.extensions["flow_ids"].flow_id("member_check") == clone["id"]
    assert f"Flow {old['id']} (member_check) stays PUBLISHED" in cloned.output

    before = len(writes(graph))
    again = flask(deploy_app, "deploy", "member_check", "--clone", "--publish")
    assert again.exit_code == 0 and writes(graph)[before:] == [], again.output


def test_publish_refused_by_meta_is_said_in_its_words(deploy_app, graph, meta):
    meta.publish_refusal = "Missing Flows Signed Public Key"
    result = flask(deploy_app, "deploy", "member_check", "--publish")
    assert result.exit_code == 1
    assert "Meta refused to publish (error 139002)" in result.output
    assert "Missing Flows Signed Public Key" in result.output
    assert meta.by_name("member_check")["status"] == "DRAFT"


def test_missing_settings_are_named_and_unknown_flows_refused(app, deploy_app):
    result = flask(app, "deploy")
    assert result.exit_code == 1
    assert "WHATSAPP_BUSINESS_ACCOUNT_ID and WHATSAPP_ACCESS_TOKEN and PUBLIC_BASE_URL" in result.output
    unknown = flask(deploy_app, "deploy", "nope")
    assert unknown.exit_code == 2 and "not a served flow" in unknown.output


def test_a_bad_token_is_explained_not_dumped(app_config, graph, meta):
    bad = create_app({**app_config, **meta_settings(graph), "WHATSAPP_ACCESS_TOKEN": "wrong"})
    result = flask(bad, "deploy")
    assert result.exit_code == 1
    assert "WHATSAPP_ACCESS_TOKEN is invalid or expired" in result.output and "Traceback" not in result.output


def test_a_flow_is_sent_by_the_deployed_flow_id_and_flow_ids_still_overrides(deploy_app, graph,
                                                                             meta, app_config,
                                                                          redis_client):
    assert flask(deploy_app, "deploy", "member_check").exit_code == 0
    flow_id = meta.by_name("member_check")["id"]

    def sent_flow_id(**settings) -> str:
        redis_client.delete("fg:console:outbox")
        app = create_app({**app_config, **meta_settings(graph), **settings})
        assert flask(app, "send", "member_check", "+15550001234").exit_code == 0
        env = project_env(REDIS_URL=app_config["REDIS_URL"], APP_ENV="production", WHATSAPP_APP_SECRET="s",
                          FLOW_PRIVATE_KEY=keys.one_line(app_config["FLOW_PRIVATE_KEY"]),
                          **served_settings(), **meta_settings(graph), **settings)
        done = subprocess.run([venv_bin("flask"), "--app", "app", "worker", "--burst"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        (entry,) = ConsoleChannel(redis_client).outbox()
        return entry["body"]["interactive"]["action"]["parameters"].get("flow_id")

    assert sent_flow_id() == flow_id
    assert sent_flow_id(FLOW_IDS="member_check=999") == "999"


def test_the_real_command_deploys_and_publishes_from_a_fresh_setup(app_config, graph, meta, keypair):
    """`flask flows deploy --publish` as a process, settings pointed at the stand-in, twice."""
    env = project_env(APP_ENV="production", REDIS_URL=app_config["REDIS_URL"], WHATSAPP_APP_SECRET="s",
                      FLOW_PRIVATE_KEY=keys.one_line(keypair[0]), **served_settings(), **meta_settings(graph))

    def run():
        return subprocess.run([venv_bin("flask"), "--app", "app", "flows", "deploy", "--publish"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(f["name"] for f in meta.flows.values() if f["status"] == "PUBLISHED") == NAMES
    before = len(writes(graph))
    second = run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert writes(graph)[before:] == [] and "0 changes on Meta" in second.stdout
