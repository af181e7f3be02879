"""A Flow screen as plain view data: what a phone would show, for the HTML playground.

Reads the Flow JSON the way the WhatsApp client does: ``${data.x}`` / ``${form.x}`` bindings,
``visible`` / ``enabled``, ``init-value`` / ``error-message`` (and a Form's ``error-messages``),
``If`` / ``Switch`` branches, ``data-source`` lists, and the snackbar (``data.error_message``).
Components it does not draw come back as labelled placeholders. Nested backtick expressions
(Flow JSON 6.0+) are not evaluated: they are shown as true and flagged.
"""
from __future__ import annotations

from devtools.player import BINDING, resolve, screen_def, walk_components

TEXT = {"TextHeading", "TextSubheading", "TextBody", "TextCaption"}
INPUTS = {"TextInput", "TextArea", "Dropdown", "RadioButtonsGroup", "CheckboxGroup", "DatePicker", "OptIn"}
HTML_INPUT_TYPES = {"text": "text", "number": "number", "email": "email", "password": "password",
                    "passcode": "password", "phone": "tel"}


def _value(value, data: dict, form: dict):
    if isinstance(value, str) and value.startswith("`"):
        return value  # an expression: left as written
    return resolve(value, data, form)


def _flag(value, data: dict, form: dict, default: bool = True) -> tuple[bool, bool]:
    """(truth, evaluated) of visible/enabled/If conditions."""
    if value is None:
        return default, True
    if isinstance(value, bool):
        return value, True
    if isinstance(value, str):
        text, negate = value.strip(), False
        if text.startswith("!") and BINDING.match(text[1:]):
            text, negate = text[1:], True
        if BINDING.match(text):
            return bool(resolve(text, data, form)) != negate, True
    return default, False


def _text(value, data: dict, form: dict) -> str:
    value = _value(value, data, form)
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _options(comp: dict, data: dict, form: dict) -> list[dict]:
    source = _value(comp.get("data-source"), data, form)
    options = []
    for item in source if isinstance(source, list) else []:
        if isinstance(item, dict) and "id" in item:
            options.append({"id": str(item["id"]), "title": str(item.get("title", item["id"])),
                            "description": str(item.get("description", "")),
                            "enabled": item.get("enabled", True) is not False})
    return options


def view(flow_json: dict, screen_id: str, data: dict, form: dict | None = None) -> dict:
    """``{"id", "title", "terminal", "snackbar", "components": [...]}`` for one screen."""
    form = form or {}
    sdef = screen_def(flow_json, screen_id)
    children = (sdef.get("layout") or {}).get("children") or []
    return {
        "id": screen_id, "found": bool(sdef), "title": _text(sdef.get("title", screen_id), data, form),
        "terminal": bool(sdef.get("terminal")), "snackbar": str(data.get("error_message") or ""),
        "components": _components(children, data, form, {}),
    }


def _components(children, data: dict, form: dict, form_errors: dict) -> list[dict]:
    out = []
    for comp in children:
        kind = comp.get("type", "?")
        if kind == "Form":
            errors = _value(comp.get("error-messages"), data, form)
            out += _components(comp.get("children") or [], data, form,
                               errors if isinstance(errors, dict) else {})
            continue
        if kind == "If":
            truth, evaluated = _flag(comp.get("condition"), data, form, default=True)
            branch = comp.get("then") if truth else comp.get("else")
            if not evaluated:
                out.append({"kind": "note", "text": f"If condition not evaluated: {comp.get('condition')}"})
            out += _components(branch or [], data, form, form_errors)
            continue
        if kind == "Switch":
            key = _text(comp.get("value"), data, form)
            out += _components((comp.get("cases") or {}).get(key) or [], data, form, form_errors)
            continue
        visible, v_ok = _flag(comp.get("visible"), data, form)
        if not visible:
            continue
        item = {"kind": kind, "type": kind, "expression": not v_ok}
        if kind in TEXT:
            item["text"] = _text(comp.get("text"), data, form)
        elif kind in INPUTS:
            item.update(_input(comp, data, form, form_errors))
        elif kind == "Footer":
            enabled, e_ok = _flag(comp.get("enabled"), data, form)
            action = comp.get("on-click-action") or {}
            item.update(label=_text(comp.get("label"), data, form), enabled=enabled,
                        expression=not e_ok, action=action.get("name", ""), action_id="footer")
        else:
            item.update(kind="placeholder", text=f"{kind} (not drawn by the playground)")
        out.append(item)
    return out


def _input(comp: dict, data: dict, form: dict, form_errors: dict) -> dict:
    name = str(comp.get("name", ""))
    enabled, _ = _flag(comp.get("enabled"), data, form)
    if name in form:
        value = form[name]
    else:
        value = _value(comp.get("init-value"), data, form)
    error = _text(comp.get("error-message"), data, form) or str(form_errors.get(name, "") or "")
    select = comp.get("on-select-action") or {}
    click = comp.get("on-click-action") or {}
    item = {
        "name": name, "label": _text(comp.get("label"), data, form),
        "required": bool(comp.get("required")), "enabled": enabled, "error": error,
        "helper": _text(comp.get("helper-text"), data, form),
        "input_type": HTML_INPUT_TYPES.get(comp.get("input-type", "text"), "text"),
        "max_chars": comp.get("max-chars"), "options": _options(comp, data, form),
        "value": value if value is not None else "",
        "select_action": select.get("name", "") if select.get("name") == "data_exchange" else "",
        "click_action": click.get("name", ""),
    }
    if comp.get("type") == "CheckboxGroup":
        item["value"] = [str(v) for v in value] if isinstance(value, list) else []
    if comp.get("type") == "OptIn":
        item["value"] = value is True or value == "true"
    return item


def read_form(flow_json: dict, screen_id: str, values) -> dict:
    """The values a submitted HTML form carries for this screen's inputs (``values`` is a
    werkzeug MultiDict or any mapping with ``get``/``getlist``)."""
    sdef = screen_def(flow_json, screen_id)
    form = {}
    for comp in walk_components((sdef.get("layout") or {}).get("children")):
        kind, name = comp.get("type"), comp.get("name")
        if kind not in INPUTS or not name:
            continue
        field = f"f.{name}"
        if kind == "CheckboxGroup":
            form[name] = [str(v)[:200] for v in values.getlist(field)][:50]
        elif kind == "OptIn":
            form[name] = values.get(field) == "on"
        elif field in values:
            form[name] = str(values.get(field))[:2000]
    return form


def find_action(flow_json: dict, screen_id: str, action_id: str) -> dict | None:
    """The Flow JSON action behind a playground button: ``footer``, ``select:<name>``,
    ``click:<name>``."""
    sdef = screen_def(flow_json, screen_id)
    for comp in walk_components((sdef.get("layout") or {}).get("children")):
        if action_id == "footer" and comp.get("type") == "Footer":
            return comp.get("on-click-action")
        if action_id == f"select:{comp.get('name')}":
            return comp.get("on-select-action")
        if action_id == f"click:{comp.get('name')}":
            return comp.get("on-click-action")
    return None
