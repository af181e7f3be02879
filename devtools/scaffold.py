"""``flask flows new NAME``: a working flow to start from, in the business's own package.

Three files: ``NAME.json`` (one screen with one field, lint-clean at the current Flow JSON
version), ``NAME.py`` (the handlers: the field checked, and looked up in the business's API with
``--lookup``), and ``tests/test_NAME.py`` (plays the flow through the encrypted protocol against a
real Redis, with the test kit). Existing files are never overwritten.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from devtools.lint.components import RECOMMENDED

NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def flow_json() -> dict:
    return {
        "version": RECOMMENDED,
        "data_api_version": "4.0",
        "routing_model": {"START": []},
        "screens": [{
            "id": "START", "title": "Your code", "terminal": True,
            "data": {"code_error": {"type": "string", "__example__": ""},
                     "code_value": {"type": "string", "__example__": "ABC123"}},
            "layout": {"type": "SingleColumnLayout", "children": [
                {"type": "TextHeading", "text": "Enter your code"},
                {"type": "TextInput", "name": "code", "label": "Code", "input-type": "text", "required": True,
                 "max-chars": 20, "init-value": "${data.code_value}", "error-message": "${data.code_error}"},
                {"type": "Footer", "label": "Send",
                 "on-click-action": {"name": "data_exchange", "payload": {"code": "${form.code}"}}},
            ]},
        }],
    }


def handler_module(name: str, lookup: str | None) -> str:
    title = name.replace("_", " ").capitalize()
    declared = (f',\n            lookups=[Lookup("{lookup}", settings="{lookup.upper()}_API", '
                f'policy="closed", path="/{lookup}")]' if lookup else "")
    field_lookup = f', lookup="{lookup}"' if lookup else ""
    checked = f"checked against the {lookup} API" if lookup else "checked"
    return f'''"""{name}: one code, {checked}, then done. Edit {name}.json and this module."""
from pathlib import Path

from flows.protocol import Finish, Screen
from flows.registry import Flow{", Lookup" if lookup else ""}
from validation.checks import length, pattern, required
from validation.forms import Field, Form, no_spaces, upper

flow = Flow("{name}", Path(__file__).with_suffix(".json"), title="{title}"{declared})

FORM = Form(Field(
    "code", required(), length(max=20), pattern(r"[A-Z0-9-]+"),
    normalise=[no_spaces, upper]{field_lookup}, echo=True,
    messages={{"pattern": "Use only letters and digits", "not_found": "We couldn't find this code"}},
))


@flow.on_init
def start(ctx):
    return Screen("START", FORM.neutral())


@flow.on_submit("START", FORM)  # a code that fails comes back to START with its error
def submit(ctx, result):
    return Finish({{"code": result.values["code"]}})
'''


def test_module(name: str, package: str, lookup: str | None) -> str:
    if lookup:
        setup = (f'    business_api.records["{lookup}"]["ABC123"] = {{"status": "active"}}\n'
                 f'    app = flowgate(FLOWS_PACKAGE="{package}", '
                 f'{lookup.upper()}_API_URL=business_api.url("{lookup}"))\n')
        unknown = f'''

def test_an_unknown_code_comes_back_with_its_error(flowgate, business_api):
{setup}    reply = app.client("{name}").exchange("tok-2", "START", {{"code": "NOPE1"}})
    assert reply.screen == "START" and reply.body["data"]["code_error"] == "We couldn't find this code"
'''
    else:
        setup, unknown = f'    app = flowgate(FLOWS_PACKAGE="{package}")\n', ""
    return f'''"""{name}, played through the encrypted protocol against a real Redis (testkit)."""
from testkit.fixtures import business_api, flowgate, flowgate_redis  # noqa: F401  (pytest fixtures)


def test_a_good_code_completes_the_flow(flowgate, business_api):
{setup}    client = app.client("{name}")
    assert client.init("tok-1").screen == "START"
    bad = client.exchange("tok-1", "START", {{"code": "no!"}})
    assert bad.screen == "START" and bad.body["data"]["code_error"]
    done = client.exchange("tok-1", "START", {{"code": " abc123 "}})
    assert done.screen == "SUCCESS"
    assert done.body["data"]["extension_message_response"]["params"]["code"] == "ABC123"
{unknown}'''


def scaffold(root: Path, package: str, name: str, lookup: str | None = None) -> list[Path]:
    """Write the flow's files under ``root/<package>``; returns the paths written."""
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a flow name (lower case letters, digits and _, from a letter)")
    if lookup is not None and not NAME.fullmatch(lookup):
        raise ValueError(f"{lookup!r} is not a lookup name (lower case letters, digits and _)")
    folder = root.joinpath(*package.split("."))
    files = {
        folder / f"{name}.json": json.dumps(flow_json(), indent=2) + "\n",
        folder / f"{name}.py": handler_module(name, lookup),
        folder / "tests" / f"test_{name}.py": test_module(name, package, lookup),
    }
    existing = [path for path in files if path.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} exists: not overwritten")
    written = []
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        init = path.parent / "__init__.py"
        if path.parent == folder and not init.exists():
            init.write_text(f'"""The business\'s own flows (FLOWS_PACKAGE={package}): one NAME.json + '
                            'NAME.py each."""\n')
            written.append(init)
        path.write_text(text)
        written.append(path)
    return written
