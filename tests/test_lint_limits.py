"""Meta's limits in the linter (flows/lint/limits.py): one mutation of the valid Flow per rule,
the numbers at their edges, each finding with its source, and the shipped Flow JSON clean."""
from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from flows.loader import EXAMPLES, flows_in
from devtools.lint import RULES, lint, lint_flow
from devtools.lint import limits as L

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lint"
BASE = json.loads((FIXTURES / "valid_flow.json").read_text())
CATALOG_DIR = Path(__file__).resolve().parent.parent / "examples"
CATALOG = flows_in(EXAMPLES)


def kids(d, i):
    return d["screens"][i]["layout"]["children"]


def options(n, **extra):
    return [{"id": str(i), "title": f"Option {i}", **extra} for i in range(n)]


def image_kb(kb: int) -> str:
    return base64.b64encode(b"\0" * (kb * 1024)).decode()


def nested_ifs(depth: int) -> dict:
    node = {"type": "TextBody", "text": "deep"}
    for _ in range(depth):
        node = {"type": "If", "condition": "${data.show_hint}", "then": [node]}
    return node


# (rule, mutation of a copy of the valid Flow, where the finding must point)
CASES = [
    ("limit.chars",
     lambda d: kids(d, 0)[2].update(label="Coupon code (optional)"),  # the shipped bug: 22 > 20
     "$.screens[0].layout.children[2].label"),
    ("limit.chars", lambda d: kids(d, 0)[6].update(label="Continue to the next step of booking now"),
     "$.screens[0].layout.children[6].label"),
    ("limit.chars", lambda d: kids(d, 0)[2].update({"helper-text": "x" * 81}),
     "$.screens[0].layout.children[2].helper-text"),
    ("limit.chars", lambda d: kids(d, 0)[0].update(text="H" * 81), "$.screens[0].layout.children[0].text"),
    ("limit.chars", lambda d: kids(d, 0)[5].update(text="c" * 410), "$.screens[0].layout.children[5].text"),
    ("limit.chars", lambda d: kids(d, 0)[6].update({"left-caption": "a caption too long"}),
     "$.screens[0].layout.children[6].left-caption"),
    ("limit.chars", lambda d: kids(d, 0)[3].update({"data-source": [{"id": "a", "title": "t" * 31}]}),
     "$.screens[0].layout.children[3].data-source[0].title"),
    ("limit.chars", lambda d: kids(d, 0)[3].update(label="Which plan suits you?"),  # Dropdown: 20
     "$.screens[0].layout.children[3].label"),
    ("limit.chars",
     lambda d: kids(d, 1)[0]["children"][0].update(label="The day you would like to come in, please"),
     "$.screens[1].layout.children[0].children[0].label"),
    ("limit.screen-title", lambda d: d["screens"][0].update(title="Tell us a little bit about yourself"),
     "$.screens[0].title"),
    ("limit.count", lambda d: kids(d, 0)[3].update({"data-source": options(201)}),
     "$.screens[0].layout.children[3].data-source"),
    ("limit.count", lambda d: kids(d, 0)[3].update({"data-source": options(101, image=image_kb(1))}),
     "$.screens[0].layout.children[3].data-source"),
    ("limit.count", lambda d: kids(d, 0).insert(0, {"type": "RadioButtonsGroup", "name": "r", "label": "Pick",
                                                    "data-source": options(21)}),
     "$.screens[0].layout.children[0].data-source"),
    ("limit.count", lambda d: kids(d, 0).insert(0, {"type": "CheckboxGroup", "name": "c", "label": "Pick",
                                                    "data-source": []}),
     "$.screens[0].layout.children[0].data-source"),
    ("limit.captions", lambda d: kids(d, 0)[6].update({"left-caption": "a", "center-caption": "b",
                                                       "right-caption": "c"}),
     "$.screens[0].layout.children[6].center-caption"),
    ("limit.nesting", lambda d: kids(d, 0).insert(0, nested_ifs(4)),
     "$.screens[0].layout.children[0].then[0].then[0].then[0]"),
    ("limit.per-flow", lambda d: [kids(d, i).insert(0, {"type": "ImageCarousel", "images": [
        {"src": "AAAA", "alt-text": "x"}]}) for i in (0, 0, 1, 2)], "$.screens[2].layout.children[0]"),
    ("limit.size",
     lambda d: kids(d, 0)[3].update({"data-source": [{"id": "a", "title": "A", "image": image_kb(101)}]}),
     "$.screens[0].layout.children[3].data-source[0].image"),
    ("limit.size", lambda d: d["screens"][0]["data"]["name_error"].update(__example__="e" * (1024 * 1024)),
     "$.screens[0].data"),
    ("limit.image-recommended", lambda d: kids(d, 0).insert(0, {"type": "Image", "src": image_kb(301)}),
     "$.screens[0].layout.children[0].src"),
]


@pytest.mark.parametrize("rule, mutate, path", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_limit_fires_on_its_mutation_with_its_source(rule, mutate, path):
    assert rule in RULES
    doc = copy.deepcopy(BASE)
    mutate(doc)
    hits = [f for f in lint(doc) if f.rule == rule]
    assert path in [f.path for f in hits], [(f.rule, f.path) for f in lint(doc)]
    assert all(f.source and f.source in L.SOURCES.values() for f in hits)


@pytest.mark.parametrize("component, prop", [(c, p) for c, props in L.CHARS.items() for p in props])
def test_every_character_limit_is_exact_at_its_edge(component, prop):
    """At the limit: clean; one more character: an error naming the limit."""
    limit = L.CHARS[component][prop].max
    for length, expected in ((limit, []), (limit + 1, ["limit.chars"])):
        doc = copy.deepcopy(BASE)
        kids(doc, 0).insert(0, {"type": component, prop: "x" * length})
        found = [f.rule for f in lint(doc) if f.path == f"$.screens[0].layout.children[0].{prop}"
                 and f.rule.startswith("limit.")]
        assert found == expected, (component, prop, length, found)


def test_bound_text_and_expressions_are_left_to_run_time():
    doc = copy.deepcopy(BASE)
    kids(doc, 0)[0]["text"] = "${data.name_error}" + "x" * 100
    kids(doc, 0)[6]["label"] = "`${form.full_name} != ''`" + " " * 40
    kids(doc, 0)[3]["data-source"] = "${data.plans}"
    assert [f for f in lint(doc) if f.rule.startswith("limit.")] == []


def test_a_dropdown_of_200_options_and_if_three_deep_are_allowed():
    doc = copy.deepcopy(BASE)
    kids(doc, 0)[3]["data-source"] = options(200)
    kids(doc, 0).insert(0, nested_ifs(3))
    assert [f for f in lint(doc) if f.rule.startswith("limit.")] == []


@pytest.mark.parametrize("path", sorted(CATALOG_DIR.glob("*.json")), ids=lambda p: p.name)
def test_the_shipped_flow_json_has_zero_findings(path):
    assert lint(json.loads(path.read_text()), uses_endpoint=True) == []


@pytest.mark.parametrize("flow", CATALOG, ids=lambda f: f.name)
def test_the_shipped_flows_and_their_handlers_have_no_error_or_warning(flow):
    assert [f for f in lint_flow(flow) if f.severity != "info"] == []
