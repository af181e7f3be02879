"""Offline linter for Flow JSON (protocol doc sections 5.1 and 6).

    findings = lint(definition)          # a Flow JSON document (dict)
    findings = lint_flow(flow)           # a registered Flow: its JSON and its handlers

Rules read the tables in ``components.py`` and Meta's limits in ``limits.py``; each finding carries a
JSON path, a rule id, a severity and a one-line fix (``findings.RULES``).
"""
from __future__ import annotations

import json

from devtools.lint.code import check_code
from devtools.lint.findings import ERROR, INFO, RULES, WARNING, Finding, finding, has_errors
from devtools.lint.model import Doc
from devtools.lint.refs import check_references
from devtools.lint.rules_components import check_components
from devtools.lint.rules_limits import check_limits
from devtools.lint.rules_screens import check_screens
from devtools.lint.rules_top import check_routing, check_top

__all__ = ["lint", "lint_flow", "lint_text", "Finding", "RULES", "ERROR", "WARNING", "INFO", "has_errors"]
_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


def lint(definition, *, uses_endpoint: bool = False) -> list[Finding]:
    """``uses_endpoint``: the code answers INIT, so the Flow talks to an endpoint even without
    data_exchange."""
    if not isinstance(definition, dict):
        return [finding("$", "json.invalid", "the Flow JSON is not an object")]
    doc = Doc(definition)
    endpoint = uses_endpoint or doc.uses_endpoint
    found = [*check_top(doc, endpoint), *check_routing(doc), *check_screens(doc),
             *check_components(doc), *check_references(doc), *check_limits(doc)]
    return _sorted(found)


def lint_flow(flow) -> list[Finding]:
    definition = flow.definition
    found = lint(definition, uses_endpoint=bool(flow.handlers))
    if isinstance(definition, dict):
        found += check_code(Doc(definition), flow)
    return _sorted(found)


def lint_text(text: str) -> list[Finding]:
    try:
        definition = json.loads(text)
    except ValueError as exc:
        return [finding("$", "json.invalid", f"not JSON: {exc}")]
    return lint(definition)


def _sorted(found: list[Finding]) -> list[Finding]:
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda f: (_ORDER.get(f.severity, 3)))
