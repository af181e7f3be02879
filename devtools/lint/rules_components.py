"""Components and their actions (6.6, 6.7), read from the table in ``components.py``."""
from __future__ import annotations

from collections import Counter

from devtools.lint import components as T
from devtools.lint.findings import finding
from devtools.lint.model import Doc, Node, ScreenView


def check_components(doc: Doc):
    for screen in doc.screens:
        names = Counter(n.comp.get("name") for n in screen.nodes
                        if n.type in T.INPUT_TYPES and isinstance(n.comp.get("name"), str))
        for name, count in names.items():
            if count > 1:
                yield finding(screen.path, "component.duplicate-name",
                              f"input name {name!r} used {count} times")
        for node in screen.nodes:
            yield from _component(doc, screen, node)


def _component(doc: Doc, screen: ScreenView, node: Node):
    spec = T.COMPONENTS.get(node.type)
    if spec is None:
        yield finding(f"{node.path}.type", "component.unknown-type", f"unknown component type {node.type!r}")
        return
    if not T.at_least(doc.version, spec.since):
        yield finding(f"{node.path}.type", "component.version", f"{node.type} needs Flow JSON {spec.since}+")
    for prop in node.comp:
        here = f"{node.path}.{prop}"
        if prop not in spec.props:
            yield finding(here, "component.unknown-property", f"{node.type} has no property {prop!r}")
            if prop.startswith("on-") and not spec.events:
                yield finding(here, "component.realtime-validation",
                              f"{node.type} fires no action at all: the endpoint is never called while the "
                              "user types, so per-keystroke validation cannot work")
            continue
        gate = spec.prop_versions.get(prop)
        if not T.at_least(doc.version, gate):
            yield finding(here, "component.property-version",
                          f"{prop} on {node.type} needs Flow JSON {gate}+")
        if prop in spec.outside_form_only:
            if node.in_form:
                yield finding(here, "component.inside-form", f"{prop} is for components outside a Form")
            elif not T.at_least(doc.version, T.FORM_OPTIONAL_VERSION):
                yield finding(here, "component.property-version",
                              f"{prop} outside a Form needs Flow JSON 4.0+")
    for prop in spec.required:
        if prop not in node.comp:
            yield finding(node.path, "component.missing-property", f"{node.type} needs {prop!r}")
    text = node.comp.get("text")
    if "text" in spec.props and isinstance(text, str) and not text.strip():
        yield finding(f"{node.path}.text", "component.empty-text", f"{node.type} text is empty")
    if node.type == "TextInput" and "pattern" in node.comp and "helper-text" not in node.comp:
        yield finding(f"{node.path}.pattern", "component.pattern-helper", "pattern without helper-text")
    for event, accepted in spec.events.items():
        if event in node.comp:
            yield from _action(doc, screen, node, event, accepted)


def _action(doc: Doc, screen: ScreenView, node: Node, event: str, accepted: dict):
    path = f"{node.path}.{event}"
    action = node.comp[event]
    if not isinstance(action, dict) or not isinstance(action.get("name"), str):
        yield finding(path, "action.missing-name", f"{event} has no action name")
        return
    name = action["name"]
    if name not in T.ACTION_VERSIONS:
        yield finding(f"{path}.name", "action.unknown", f"unknown action {name!r}")
        return
    if name not in accepted:
        rule = "action.complete-outside-footer" if name == "complete" else "action.not-allowed"
        yield finding(f"{path}.name", rule,
                      f"{node.type} {event} accepts {', '.join(sorted(accepted))}, not {name}")
        return
    gate = max(filter(None, (T.ACTION_VERSIONS[name], accepted[name])), key=T.version_tuple, default=None)
    if not T.at_least(doc.version, gate):
        yield finding(f"{path}.name", "action.version", f"{name} on {node.type} needs Flow JSON {gate}+")
    if name == "navigate":
        yield from _navigate(doc, screen, path, action)
    payload = action.get("payload")
    if isinstance(payload, dict):
        for key, value in payload.items():
            if isinstance(value, str) and value in screen.input_names:
                yield finding(f"{path}.payload.{key}", "action.payload-literal",
                              f"payload sends the literal text {value!r}, not what the user typed")


def _navigate(doc: Doc, screen: ScreenView, path: str, action: dict):
    nxt = action.get("next")
    target = nxt.get("name") if isinstance(nxt, dict) and nxt.get("type") == "screen" else None
    if not isinstance(target, str) or target not in doc.screen_ids:
        yield finding(f"{path}.next", "action.navigate-target",
                      f"navigate goes to {target!r}, which is not a screen of this Flow")
        return
    routing = doc.routing
    if routing is not None and screen.id in routing and target not in (routing.get(screen.id) or []):
        yield finding(f"{path}.next", "action.navigate-not-routed",
                      f"routing_model has no edge {screen.id} → {target}")
