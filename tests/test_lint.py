"""The Flow JSON linter: one valid Flow, one mutation per rule, the seed snippet, every shipped flow."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

from devtools.lint import RULES, lint, lint_flow, lint_text

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lint"
sys.path.insert(0, str(FIXTURES))
BASE = json.loads((FIXTURES / "valid_flow.json").read_text())


def s(d, i):
    return d["screens"][i]


def kids(d, i):
    return d["screens"][i]["layout"]["children"]


def footer0(d):
    return kids(d, 0)[6]


def extra_terminal_screens(d, n):
    for k in range(n):
        sid = "EXTRA_" + "ABCDEFGHIJKLMNOP"[k]
        d["screens"].append({"id": sid, "terminal": True,
                             "layout": {"type": "SingleColumnLayout", "children": [
            {"type": "Footer", "label": "Done", "on-click-action": {"name": "complete", "payload": {}}}]}})
        d["routing_model"][sid] = []
        d["routing_model"]["DETAILS"].append(sid)


# (rule id, mutation of a copy of the valid Flow, where the finding must point)
CASES = [
    ("top.version-missing", lambda d: d.pop("version"), "$.version"),
    ("top.version-unpublishable", lambda d: d.update(version="3.0"), "$.version"),
    ("top.version-old", lambda d: d.update(version="7.1"), "$.version"),
    ("top.unknown-key", lambda d: d.update(endpoint_uri="https://x"), "$.endpoint_uri"),
    ("top.data-channel-uri", lambda d: d.update(data_channel_uri="https://x"), "$.data_channel_uri"),
    ("top.data-api-version-missing", lambda d: d.pop("data_api_version"), "$.data_api_version"),
    ("top.data-api-version-invalid", lambda d: d.update(data_api_version="5.0"), "$.data_api_version"),
    ("top.routing-model-missing", lambda d: d.pop("routing_model"), "$.routing_model"),
    ("top.screens-missing", lambda d: d.update(screens=[]), "$.screens"),
    ("routing.unknown-screen", lambda d: d["routing_model"].update(DONE=["NOWHERE"]), "$.routing_model.DONE"),
    ("routing.missing-screen", lambda d: d["routing_model"].pop("DONE"), "$.routing_model"),
    ("routing.self-loop", lambda d: d["routing_model"]["SLOT"].append("SLOT"), "$.routing_model.SLOT"),
    ("routing.cycle", lambda d: d["routing_model"].update(DONE=["DETAILS"]), "$.routing_model"),
    ("routing.no-entry", lambda d: d["routing_model"].update(DONE=["DETAILS"]), "$.routing_model"),
    ("routing.dead-end", lambda d: d["routing_model"].update(SLOT=[]), "$.screens[1]"),
    ("routing.too-many-branches", lambda d: extra_terminal_screens(d, 9), "$.routing_model"),
    ("screen.id-pattern", lambda d: s(d, 2).update(id="DONE2"), "$.screens[2].id"),
    ("screen.id-duplicate", lambda d: s(d, 1).update(id="DETAILS"), "$.screens[1].id"),
    ("screen.id-reserved", lambda d: s(d, 2).update(id="SUCCESS"), "$.screens[2].id"),
    ("screen.unknown-key", lambda d: s(d, 0).update(on_load=True), "$.screens[0].on_load"),
    ("screen.layout", lambda d: s(d, 0)["layout"].update(type="Column"), "$.screens[0].layout"),
    ("screen.no-terminal", lambda d: s(d, 2).update(terminal=False), "$.screens"),
    ("screen.terminal-footer", lambda d: kids(d, 2).pop(), "$.screens[2].layout"),
    ("screen.footer-count", lambda d: kids(d, 0).append(copy.deepcopy(footer0(d))), "$.screens[0].layout"),
    ("screen.component-limit", lambda d: kids(d, 0).extend(
        [{"type": "EmbeddedLink", "text": "More",
          "on-click-action": {"name": "open_url", "url": "https://x"}}] * 3),
     "$.screens[0].layout"),
    ("screen.too-many-components", lambda d: kids(d, 0).extend([{"type": "TextBody", "text": "x"}] * 45),
     "$.screens[0].layout"),
    ("screen.outside-form",
     lambda d: kids(d, 1).append({"type": "TextInput", "name": "note", "label": "Note"}),
     "$.screens[1].layout.children[1]"),
    ("screen.form-required", lambda d: d.update(version="3.0"), "$.screens[0].layout.children[2]"),
    ("screen.success-not-terminal", lambda d: s(d, 0).update(success=True), "$.screens[0].success"),
    ("data.not-schema", lambda d: s(d, 0)["data"].update(is_loading=False), "$.screens[0].data.is_loading"),
    ("data.missing-type",
     lambda d: s(d, 0)["data"]["name_error"].pop("type"), "$.screens[0].data.name_error"),
    ("data.bad-type",
     lambda d: s(d, 0)["data"]["name_error"].update(type="text"), "$.screens[0].data.name_error"),
    ("data.missing-example", lambda d: s(d, 0)["data"]["show_hint"].pop("__example__"),
     "$.screens[0].data.show_hint"),
    ("data.array-items", lambda d: s(d, 0)["data"]["plans"].pop("items"), "$.screens[0].data.plans"),
    ("data.reserved-error-message", lambda d: s(d, 0)["data"].update(
        error_message={"type": "string", "__example__": ""}), "$.screens[0].data.error_message"),
    ("component.unknown-type",
     lambda d: kids(d, 0)[0].update(type="Heading"), "$.screens[0].layout.children[0].type"),
    ("component.unknown-property",
     lambda d: kids(d, 0)[2].update({"on-change-action": {"name": "data_exchange"}}),
     "$.screens[0].layout.children[2].on-change-action"),
    ("component.unknown-property", lambda d: footer0(d).update(visible=True),
     "$.screens[0].layout.children[6].visible"),
    ("component.realtime-validation",
     lambda d: kids(d, 0)[2].update({"on-blur-action": {"name": "data_exchange"}}),
     "$.screens[0].layout.children[2].on-blur-action"),
    ("component.missing-property", lambda d: footer0(d).pop("label"), "$.screens[0].layout.children[6]"),
    ("component.version", lambda d: (d.update(version="6.2"), kids(d, 0).insert(0, {
        "type": "ChipsSelector", "name": "tags", "label": "Tags", "data-source": "${data.plans}"})),
     "$.screens[0].layout.children[0].type"),
    ("component.property-version",
     lambda d: d.update(version="6.1"), "$.screens[0].layout.children[2].pattern"),
    ("component.inside-form", lambda d: kids(d, 1)[0]["children"][0].update({"init-value": "2026-01-01"}),
     "$.screens[1].layout.children[0].children[0].init-value"),
    ("component.duplicate-name", lambda d: kids(d, 0)[3].update(name="full_name"), "$.screens[0]"),
    ("component.empty-text",
     lambda d: kids(d, 0)[0].update(text="  "), "$.screens[0].layout.children[0].text"),
    ("component.pattern-helper", lambda d: kids(d, 0)[2].pop("helper-text"),
     "$.screens[0].layout.children[2].pattern"),
    ("action.missing-name", lambda d: footer0(d).update({"on-click-action": {"payload": {}}}),
     "$.screens[0].layout.children[6].on-click-action"),
    ("action.unknown", lambda d: footer0(d)["on-click-action"].update(name="submit"),
     "$.screens[0].layout.children[6].on-click-action.name"),
    ("action.not-allowed", lambda d: kids(d, 0)[3]["on-select-action"].update(name="navigate"),
     "$.screens[0].layout.children[3].on-select-action.name"),
    ("action.complete-outside-footer", lambda d: kids(d, 0)[4]["on-click-action"].update(name="complete"),
     "$.screens[0].layout.children[4].on-click-action.name"),
    ("action.version",
     lambda d: d.update(version="5.1"), "$.screens[0].layout.children[4].on-click-action.name"),
    ("action.navigate-target",
     lambda d: kids(d, 1)[0]["children"][1]["on-click-action"]["next"].update(name="NOPE"),
     "$.screens[1].layout.children[0].children[1].on-click-action.next"),
    ("action.navigate-not-routed",
     lambda d: kids(d, 1)[0]["children"][1]["on-click-action"]["next"].update(name="DETAILS"),
     "$.screens[1].layout.children[0].children[1].on-click-action.next"),
    ("action.payload-literal",
     lambda d: footer0(d)["on-click-action"]["payload"].update(full_name="full_name"),
     "$.screens[0].layout.children[6].on-click-action.payload.full_name"),
    ("ref.missing-dollar", lambda d: kids(d, 0)[0].update(text="{data.name_error}"),
     "$.screens[0].layout.children[0].text"),
    ("ref.data-undeclared",
     lambda d: kids(d, 0)[1].update(text="${data.nope}"), "$.screens[0].layout.children[1].text"),
    ("ref.form-unknown", lambda d: footer0(d)["on-click-action"]["payload"].update(x="${form.nope}"),
     "$.screens[0].layout.children[6].on-click-action.payload.x"),
    ("ref.screen-unknown", lambda d: kids(d, 2)[1].update(condition="${screen.NOPE.form.terms}"),
     "$.screens[2].layout.children[1].condition"),
    ("ref.version", lambda d: d.update(version="3.1"), "$.screens[2].layout.children[1].condition"),
    ("expr.needs-backticks", lambda d: kids(d, 0)[5].update(visible="${form.full_name} != ''"),
     "$.screens[0].layout.children[5].visible"),
    ("expr.version", lambda d: d.update(version="5.1"), "$.screens[0].layout.children[5].visible"),
    ("expr.operand-type", lambda d: footer0(d).update(enabled="`!${data.name_error}`"),
     "$.screens[0].layout.children[6].enabled"),
    ("prop.not-boolean",
     lambda d: kids(d, 0)[1].update(visible="yes"), "$.screens[0].layout.children[1].visible"),
    ("prop.not-boolean", lambda d: kids(d, 0)[1].update(visible="${data.name_error}"),
     "$.screens[0].layout.children[1].visible"),
]


def test_the_valid_flow_has_no_findings_at_all():
    assert lint(copy.deepcopy(BASE)) == []


@pytest.mark.parametrize("rule, mutate, path", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_fires_on_its_mutation(rule, mutate, path):
    assert rule in RULES
    doc = copy.deepcopy(BASE)
    mutate(doc)
    found = lint(doc)
    hits = [f for f in found if f.rule == rule]
    assert hits, f"{rule} not reported; got {[(f.rule, f.path) for f in found]}"
    assert path in [f.path for f in hits]
    assert all(f.fix and f.severity in ("error", "warning", "info") for f in hits)


def test_every_rule_has_a_case_here_or_in_the_code_tests():
    from test_lint_limits import CASES as LIMIT_CASES  # Meta's limits have their own file

    covered = {c[0] for c in CASES} | {c[0] for c in LIMIT_CASES} | {"json.invalid", "top.too-many-screens"}
    assert set(RULES) - covered == {r for r in RULES if r.startswith("code.")}


def test_near_misses_stay_clean():
    doc = copy.deepcopy(BASE)
    # The base already has a Footer in each branch of an If (one Footer) and a global ${screen.X} ref.
    footer0(doc)["enabled"] = "`${data.show_hint} && ${form.terms}`"  # booleans: a valid operand pair
    kids(doc, 0)[1]["text"] = "Hint: ${data.name_error}"  # static text around a binding, no operators
    kids(doc, 0)[4]["on-select-action"] = {"name": "update_data", "payload": {"show_hint": "${form.terms}"}}
    assert lint(doc) == []


def test_not_json_and_too_many_screens():
    assert [f.rule for f in lint_text("{")] == ["json.invalid"]
    doc = copy.deepcopy(BASE)
    doc["screens"] += [copy.deepcopy(s(doc, 2)) | {"id": "X_" + "ABCDEFGHIJ"[i // 10] + "ABCDEFGHIJ"[i % 10]}
                       for i in range(98)]
    assert "top.too-many-screens" in {f.rule for f in lint(doc)}


# --- the blog snippet: each of its eight defects (protocol doc 6.8) ------------------------------

SEED_DEFECTS = {
    1: ("top.version-unpublishable", "$.version"),
    2: ("top.data-api-version-missing", "$.data_api_version"),
    3: ("data.not-schema", "$.screens[0].data.is_loading"),
    4: ("component.unknown-property", "$.screens[0].layout.children[1].on-change-action"),
    5: ("ref.missing-dollar", "$.screens[0].layout.children[2].text"),
    6: ("prop.not-boolean", "$.screens[0].layout.children[2].visible"),
    7: ("expr.needs-backticks", "$.screens[0].layout.children[3].enabled"),
    8: ("component.realtime-validation", "$.screens[0].layout.children[1].on-change-action"),
}


@pytest.mark.parametrize("defect", sorted(SEED_DEFECTS))
def test_seed_snippet_defect_is_reported(defect):
    found = lint_text((FIXTURES / "seed_snippet.json").read_text())
    rule, path = SEED_DEFECTS[defect]
    assert (rule, path) in {(f.rule, f.path) for f in found}


def test_seed_snippet_extras_point_at_the_real_fix():
    found = {(f.rule, f.path) for f in lint_text((FIXTURES / "seed_snippet.json").read_text())}
    assert ("top.routing-model-missing", "$.routing_model") in found
    assert ("data.reserved-error-message", "$.screens[0].data.error_message") in found
    assert ("ref.data-undeclared", "$.screens[0].layout.children[3].enabled") in found  # data.member_id
    assert ("prop.not-boolean", "$.screens[0].layout.children[3].enabled") in found


# --- the code against its Flow JSON ---------------------------------------------------------------


def test_consistent_handlers_lint_clean():
    import handler_flows

    assert lint_flow(handler_flows.good) == []


def test_handlers_that_disagree_with_the_json_are_reported():
    import handler_flows

    found = {(f.rule, f.message) for f in lint_flow(handler_flows.bad)}
    rules = {r for r, _ in found}
    assert {"code.unknown-screen", "code.undeclared-data", "code.transition", "code.init-not-entry",
            "code.unchecked", "code.handler-unknown-screen"} <= rules
    assert any("surprise" in m for r, m in found if r == "code.undeclared-data")
    assert any("NOWHERE" in m for r, m in found if r == "code.unknown-screen")
    assert any("DETAILS → DONE" in m for r, m in found if r == "code.transition")


def test_every_registered_flow_lints_clean(app):
    """CI gate: every flow in the registry, including ones added after this test was written."""
    flows = list(app.extensions["flows"])
    assert flows
    for flow in flows:
        found = [f for f in lint_flow(flow) if f.severity in ("error", "warning")]
        assert not found, f"{flow.name}:\n" + "\n".join(
            f"  {f.severity} {f.path} [{f.rule}] {f.message} — fix: {f.fix}" for f in found)


def test_the_protocol_docs_corrected_fragment_is_clean():
    assert lint_text((FIXTURES / "corrected_snippet.json").read_text()) == []
