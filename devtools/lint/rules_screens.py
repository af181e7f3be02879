"""Screens (6.3), their data schema (6.4) and the per-screen limits (5.1)."""
from __future__ import annotations

import re
from collections import Counter

from devtools.lint import components as T
from devtools.lint.findings import finding
from devtools.lint.model import Doc, ScreenView

_ID = re.compile(T.SCREEN_ID_PATTERN)


def check_screens(doc: Doc):
    seen: set[str] = set()
    for screen in doc.screens:
        yield from _identity(screen, seen)
        yield from _keys(doc, screen)
        yield from _footers_and_limits(screen)
        yield from _forms(doc, screen)
        yield from check_data(screen)
    if doc.screens and not any(s.terminal for s in doc.screens):
        yield finding("$.screens", "screen.no-terminal", "no screen is terminal")


def _identity(screen: ScreenView, seen: set):
    path = f"{screen.path}.id"
    sid = screen.id
    if sid is None:
        yield finding(path, "screen.id-pattern", "screen without an id")
        return
    if not _ID.match(sid):
        yield finding(path, "screen.id-pattern", f"screen id {sid!r} has characters other than letters and _")
    if sid in T.RESERVED_SCREEN_IDS:
        yield finding(path, "screen.id-reserved", f"{sid} is a reserved screen id")
    if sid in seen:
        yield finding(path, "screen.id-duplicate", f"screen id {sid} is used twice")
    seen.add(sid)


def _keys(doc: Doc, screen: ScreenView):
    for key in screen.raw:
        if key not in T.SCREEN_KEYS:
            yield finding(f"{screen.path}.{key}", "screen.unknown-key", f"unknown screen property {key!r}")
        elif not T.at_least(doc.version, T.SCREEN_KEY_VERSIONS.get(key)):
            yield finding(f"{screen.path}.{key}", "component.property-version",
                          f"{key} needs Flow JSON {T.SCREEN_KEY_VERSIONS[key]}+")
    if "success" in screen.raw and not screen.terminal:
        yield finding(f"{screen.path}.success", "screen.success-not-terminal",
                      "success on a non-terminal screen")
    layout = screen.raw.get("layout")
    if not isinstance(layout, dict) or layout.get("type") != T.LAYOUT_TYPE \
            or not isinstance(layout.get("children"), list):
        yield finding(f"{screen.path}.layout", "screen.layout",
                      "layout must be a SingleColumnLayout with a children array")


def _footers_and_limits(screen: ScreenView):
    # A Footer inside If counts once per branch: the user only ever sees one branch.
    per_branch = Counter(n.branch for n in screen.nodes if n.type == "Footer")
    top = per_branch.pop("", 0)
    most = top + max(per_branch.values(), default=0)
    if most > 1:
        yield finding(f"{screen.path}.layout", "screen.footer-count", f"{most} Footers on {screen.id}")
    if screen.terminal and top == 0 and not per_branch:
        yield finding(f"{screen.path}.layout", "screen.terminal-footer",
                      f"terminal screen {screen.id} has no Footer")
    counts = Counter(n.type for n in screen.nodes)
    for kind, count in counts.items():
        spec = T.COMPONENTS.get(kind)
        if spec and spec.per_screen and kind != "Footer" and count > spec.per_screen:
            yield finding(f"{screen.path}.layout", "screen.component-limit",
                          f"{count} {kind} on {screen.id} (limit {spec.per_screen})")
    if len(screen.nodes) > T.MAX_COMPONENTS_PER_SCREEN:
        yield finding(f"{screen.path}.layout", "screen.too-many-components",
                      f"{len(screen.nodes)} components (limit {T.MAX_COMPONENTS_PER_SCREEN})")


def _forms(doc: Doc, screen: ScreenView):
    form_needed = not T.at_least(doc.version, T.FORM_OPTIONAL_VERSION)
    for node in screen.nodes:
        if node.type in T.INPUT_TYPES and not node.in_form:
            if screen.has_form:
                yield finding(node.path, "screen.outside-form", f"{node.type} outside the screen's Form")
            elif form_needed:
                yield finding(node.path, "screen.form-required",
                              f"{node.type} outside a Form needs Flow JSON {T.FORM_OPTIONAL_VERSION}+")


def check_data(screen: ScreenView):
    raw = screen.raw.get("data")
    if raw is None:
        return
    path = f"{screen.path}.data"
    if not isinstance(raw, dict):
        yield finding(path, "data.not-schema", "data must be an object of field declarations")
        return
    for key, decl in raw.items():
        here = f"{path}.{key}"
        if key == "error_message":
            yield finding(here, "data.reserved-error-message",
                          "error_message in screen data collides with the endpoint's snackbar text")
        if not isinstance(decl, dict):
            yield finding(here, "data.not-schema",
                          f"{key} holds a value ({decl!r}), not a declaration with type and __example__")
            continue
        kind = decl.get("type")
        if kind is None:
            yield finding(here, "data.missing-type", f"{key} has no type")
        elif kind not in T.DATA_TYPES:
            yield finding(here, "data.bad-type", f"{key} has type {kind!r}")
        if "__example__" not in decl:
            yield finding(here, "data.missing-example", f"{key} has no __example__")
        if kind == "array" and not isinstance(decl.get("items"), dict):
            yield finding(here, "data.array-items", f"array {key} has no items")
