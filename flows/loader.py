"""Which flows an app serves, found by configuration, never by name.

A business keeps its flows in a package of its own (``FLOWS_PACKAGE``, by default a top-level
``business_flows/``): one ``<name>.json`` plus one ``<name>.py`` defining ``flow = Flow(...)`` per
flow. The framework imports the package the setting names and takes every module's ``flow``, or
the package's ``FLOWS`` list when it declares one. The demo flows are such a package too
(``examples``), served only with ``DEMO_FLOWS``. So upgrading Flowgate never touches a business's
files, and adding a flow touches nothing but that package.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil

from flows.registry import Flow

EXAMPLES = "examples"  # the demo flows and their backend
DEFAULT_PACKAGE = "business_flows"


class NoSuchPackage(LookupError):
    """The package a setting names is not importable from here."""


def flows_in(package: str) -> list[Flow]:
    """Every flow the package defines: its ``FLOWS`` list, or each module's ``flow``."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise NoSuchPackage(package)
    module = importlib.import_module(package)
    declared = getattr(module, "FLOWS", None)
    if declared is not None:
        return list(declared)
    flows = []
    for info in sorted(pkgutil.iter_modules(getattr(module, "__path__", [])), key=lambda i: i.name):
        if info.name.startswith(("_", "test")):  # tests and private helpers sit next to flows
            continue
        flow = getattr(importlib.import_module(f"{package}.{info.name}"), "flow", None)
        if isinstance(flow, Flow):
            flows.append(flow)
    return flows


def business(package: str | None) -> list[Flow]:
    """The business's flows; none while the default package does not exist yet, an error when a
    package set on purpose cannot be found."""
    package = package or DEFAULT_PACKAGE
    try:
        return flows_in(package)
    except NoSuchPackage:
        if package == DEFAULT_PACKAGE:
            return []
        raise


def served(package: str | None, demo: bool) -> list[Flow]:
    """The flows this app serves: the business's, and the examples with DEMO_FLOWS."""
    return business(package) + (flows_in(EXAMPLES) if demo else [])


def known(package: str | None) -> list[Flow]:
    """Every flow the offline tools (lint, simulate, selftest) can name, served here or not."""
    flows = served(package, demo=True)
    seen, unique = set(), []
    for flow in flows:
        if flow.name not in seen:
            seen.add(flow.name)
            unique.append(flow)
    return unique


def lookups_of(flows) -> list:
    """The lookups the flows declare, once each; two flows may share one only if they declare it
    alike (flows.registry.Lookup)."""
    found: dict = {}
    for flow in flows:
        for lookup in flow.declared_lookups:
            if found.setdefault(lookup.name, lookup) != lookup:
                raise ValueError(f"flow {flow.name} declares lookup {lookup.name!r} unlike another flow does")
    return list(found.values())
