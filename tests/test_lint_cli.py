"""flask flows lint through the app's own CLI runner."""
from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lint"


def test_lint_a_registered_flow_is_clean_and_exits_zero(app):
    result = app.test_cli_runner().invoke(args=["flows", "lint", "member_check"])
    assert result.exit_code == 0, result.output
    first_line = result.output.splitlines()[0]
    # Clean, or informational notes only (e.g. data the linter could not read as a literal).
    assert first_line == "member_check: clean" or first_line.endswith(" info"), result.output
    assert "error" not in result.output and "warning" not in result.output


def test_lint_without_arguments_covers_every_registered_flow(app):
    result = app.test_cli_runner().invoke(args=["flows", "lint"])
    assert result.exit_code == 0, result.output
    for flow in app.extensions["flows"]:
        assert f"{flow.name}:" in result.output


def test_lint_the_seed_snippet_fails_with_fixes_in_text(app):
    result = app.test_cli_runner().invoke(args=["flows", "lint", str(FIXTURES / "seed_snippet.json")])
    assert result.exit_code == 1
    assert "[component.unknown-property]" in result.output
    assert "fix: " in result.output
    assert "Traceback" not in result.output


def test_lint_json_format_is_machine_readable(app):
    result = app.test_cli_runner().invoke(
        args=["flows", "lint", "--format", "json", str(FIXTURES / "seed_snippet.json"), "member_check"])
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert out["ok"] is False
    seed, member = out["results"]
    assert {"path", "rule", "severity", "message", "fix"} <= set(seed["findings"][0])
    assert "top.version-unpublishable" in {f["rule"] for f in seed["findings"]}
    assert member["target"] == "member_check"
    assert all(f["severity"] == "info" for f in member["findings"])


def test_warnings_fail_only_with_strict(app, tmp_path):
    doc = json.loads((FIXTURES / "valid_flow.json").read_text())
    doc["version"] = "7.1"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["flows", "lint", str(path)]).exit_code == 0
    strict = runner.invoke(args=["flows", "lint", "--strict", str(path)])
    assert strict.exit_code == 1 and "top.version-old" in strict.output


def test_unknown_target_and_broken_json_get_clear_answers(app, tmp_path):
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["flows", "lint", "no_such_flow"])
    assert unknown.exit_code == 2 and "neither a registered flow nor a file" in unknown.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": "7.3",')
    result = runner.invoke(args=["flows", "lint", str(broken)])
    assert result.exit_code == 1 and "[json.invalid]" in result.output
