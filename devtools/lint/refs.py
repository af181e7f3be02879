"""Dynamic references and expressions (6.5): ${data.x}, ${form.x}, ${screen.ID...}, backticks."""
from __future__ import annotations

import re

from devtools.lint import components as T
from devtools.lint.findings import finding
from devtools.lint.model import Doc, Node, ScreenView

REF = re.compile(r"\$\{([^}]*)\}")
# "{data.x}" or "{!data.x && ...}": a binding written without "$" is literal text.
NO_DOLLAR = re.compile(r"(?<!\$)\{\s*!?\s*(data|form)\.")
BARE_REF = re.compile(r"(?<![\w$.])(data|form)\.([A-Za-z0-9_]+)")
OPERATOR = re.compile(r"&&|\|\||==|!=|>=|<=|!\s*\$\{")
BOOL_OPERAND = re.compile(r"!\s*\$\{([^}]*)\}|\$\{([^}]*)\}\s*(?:&&|\|\|)|(?:&&|\|\|)\s*!?\s*\$\{([^}]*)\}")
# Properties whose value is an expression by definition (no backticks needed).
EXPRESSION_PROPS = {("If", "condition"), ("Switch", "value")}
NESTED = {"Form": ("children",), "If": ("then", "else"), "Switch": ("cases",)}


def check_references(doc: Doc):
    for screen in doc.screens:
        for node in screen.nodes:
            skip = NESTED.get(node.type, ())
            for prop, value in node.comp.items():
                if prop in skip or prop == "type":
                    continue
                here = f"{node.path}.{prop}"
                for path, text in _strings(value, here):
                    yield from _string(doc, screen, node, prop, path, text)
                if prop in T.BOOLEAN_PROPS:
                    yield from _boolean(doc, screen, here, prop, value)


def _strings(value, path):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _string(doc: Doc, screen: ScreenView, node: Node, prop: str, path: str, text: str):
    if NO_DOLLAR.search(text):
        yield finding(path, "ref.missing-dollar", f"{text!r} is literal text, not a binding (missing $)")
        for scope, name in BARE_REF.findall(text):
            yield from _resolve(doc, screen, path, f"{scope}.{name}", written_without_dollar=True)
    for ref in REF.findall(text):
        yield from _resolve(doc, screen, path, ref.strip())
    stripped = text.strip()
    is_expression = len(stripped) > 1 and stripped.startswith("`") and stripped.endswith("`")
    if is_expression and not T.at_least(doc.version, T.EXPRESSION_VERSION):
        yield finding(path, "expr.version", f"backtick expression needs Flow JSON {T.EXPRESSION_VERSION}+")
    looks_bound = "${" in text or NO_DOLLAR.search(text)
    if (not is_expression and (node.type, prop) not in EXPRESSION_PROPS and looks_bound
            and OPERATOR.search(text)):
        yield finding(path, "expr.needs-backticks", f"{text!r} uses operators outside a backtick expression")
    if is_expression or (node.type, prop) in EXPRESSION_PROPS:
        for groups in BOOL_OPERAND.findall(text):
            ref = next(g for g in groups if g).strip()
            kind = _ref_type(doc, screen, ref)
            if kind not in (None, "boolean"):
                yield finding(path, "expr.operand-type", f"${{{ref}}} is {kind}; !, && and || need booleans")


def _resolve(doc: Doc, screen: ScreenView, path: str, ref: str, written_without_dollar: bool = False):
    parts = ref.split(".")
    note = " (and it is written without $)" if written_without_dollar else ""
    if parts[0] == "screen":
        if not T.at_least(doc.version, T.GLOBAL_REF_VERSION):
            yield finding(path, "ref.version", f"${{{ref}}} needs Flow JSON {T.GLOBAL_REF_VERSION}+")
        target = doc.screen(parts[1]) if len(parts) > 1 else None
        if target is None:
            yield finding(path, "ref.screen-unknown",
                          f"${{{ref}}}: no screen {parts[1] if len(parts) > 1 else ''!r}")
            return
        screen, parts = target, parts[2:]
    if len(parts) < 2:
        return
    scope, name = parts[0], parts[1]
    if scope == "data" and name not in screen.data:
        yield finding(path, "ref.data-undeclared", f"data.{name} is not declared in {screen.id}'s data{note}")
    elif scope == "form" and name not in screen.input_names:
        yield finding(path, "ref.form-unknown", f"form.{name}: no input named {name!r} on {screen.id}{note}")


def _ref_type(doc: Doc, screen: ScreenView, ref: str) -> str | None:
    parts = ref.split(".")
    if parts[0] == "screen" and len(parts) > 1:
        screen = doc.screen(parts[1]) or screen
        parts = parts[2:]
    if len(parts) < 2:
        return None
    if parts[0] == "data":
        return screen.data_type(parts[1]) if len(parts) == 2 else None
    if parts[0] == "form":
        kind = next((n.type for n in screen.nodes if n.comp.get("name") == parts[1]), None)
        return {"OptIn": "boolean", "CheckboxGroup": "array", "ChipsSelector": "array"}.get(kind, "string")
    return None


def _boolean(doc: Doc, screen: ScreenView, path: str, prop: str, value):
    if isinstance(value, bool):
        return
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("`") and stripped.endswith("`") and len(stripped) > 1:
            return
        match = REF.fullmatch(stripped)
        if match:
            kind = _ref_type(doc, screen, match.group(1).strip())
            if kind in (None, "boolean"):
                return
            yield finding(path, "prop.not-boolean", f"{prop} is bound to a {kind}, it needs a boolean")
            return
    yield finding(path, "prop.not-boolean", f"{prop} must be a boolean, got {value!r}")
