"""Imports run one way: each top-level package imports only packages in layers below its own
(README "Architecture"); packages of one layer are peers. The test reads every module's imports
with ``ast``, never running them, and names each import that goes up."""
from __future__ import annotations

import ast

from conftest import ROOT

# Top to bottom. A module may import its own package and anything in a lower layer.
LAYERS = [
    ("entry", {"app", "wsgi", "gunicorn", "domain", "security", "cli", "preflight", "testkit"}),
    ("http", {"blueprints", "dashboard"}),
    ("flows served", {"examples"}),
    ("jobs", {"workers"}),
    ("channels", {"messaging"}),
    ("metrics writer", {"metrics"}),
    ("developer tools", {"devtools"}),
    ("validation", {"validation"}),
    ("stores", {"stores", "records"}),  # Redis's hot state and SQL's lasting records, peers
    ("protocol core", {"flows"}),
    ("redis", {"storage", "redis_budget"}),
    ("settings", {"config"}),
]
# The domain gets what it needs passed in: no settings, no metrics writer.
DOMAIN = {"flows", "validation", "stores", "records", "devtools"}
NOT_FOR_THE_DOMAIN = {"config", "metrics"}
LEVEL = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests", "bench", "test-artifacts") or "__pycache__" in rel.parts:
            continue
        top = rel.parts[0].removesuffix(".py").split(".")[0]
        if top in LEVEL:
            yield rel, top


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def violations():
    found = []
    for rel, top in _modules():
        for line, imported in _imports(ROOT / rel):
            if imported == top or imported not in LEVEL:
                continue
            if LEVEL[imported] < LEVEL[top]:
                found.append(f"{rel}:{line} imports {imported} (layer {LAYERS[LEVEL[imported]][0]!r}), "
                             f"above its own ({LAYERS[LEVEL[top]][0]!r})")
            elif top in DOMAIN and imported in NOT_FOR_THE_DOMAIN:
                found.append(f"{rel}:{line} imports {imported}: the domain gets it passed in")
    return found


def test_every_package_has_a_layer():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests", "bench"}
    assert packages - set(LEVEL) == set(), "a package the layers in this test (and the README) do not place"


def test_no_import_goes_up_a_layer():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path):
    """The check itself can fail: an import of blueprints from flows is reported."""
    module = tmp_path / "probe.py"
    module.write_text("import os\nfrom blueprints import auth\n")
    assert [name for _, name in _imports(module)] == ["os", "blueprints"]
    assert LEVEL["blueprints"] < LEVEL["flows"]


def test_the_serving_path_never_imports_the_developer_tools():
    """The endpoint, the webhooks and the jobs run without devtools/ (lint, simulator, scaffold):
    only the playground (a development page) and the CLI reach them."""
    allowed = {"blueprints/playground.py"}
    serving = {"app", "wsgi", "gunicorn", "domain", "security", "blueprints", "dashboard", "examples",
               "workers", "messaging", "metrics", "validation", "stores", "flows"}
    found = [f"{rel}:{line}" for rel, top in _modules() if top in serving and str(rel) not in allowed
             for line, imported in _imports(ROOT / rel) if imported == "devtools"]
    assert found == []
