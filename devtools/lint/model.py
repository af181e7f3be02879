"""A read-only view of a Flow JSON document that every rule shares: screens, components, names."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from devtools.lint.components import INPUT_TYPES


@dataclass(frozen=True)
class Node:
    """One component with where it sits: its JSON path and whether a Form encloses it."""

    comp: dict
    path: str
    in_form: bool
    branch: str = ""  # "" at screen level; "then"/"else"/case key inside If/Switch

    @property
    def type(self) -> str | None:
        value = self.comp.get("type")
        return value if isinstance(value, str) else None


def walk(children, path: str, in_form: bool = False, branch: str = ""):
    """Every component under ``children``, including inside Form, If and Switch."""
    if not isinstance(children, list):
        return
    for i, comp in enumerate(children):
        here = f"{path}[{i}]"
        if not isinstance(comp, dict):
            continue
        yield Node(comp, here, in_form, branch)
        kind = comp.get("type")
        if kind == "Form":
            yield from walk(comp.get("children"), f"{here}.children", True, branch)
        elif kind == "If":
            yield from walk(comp.get("then"), f"{here}.then", in_form, branch or "then")
            yield from walk(comp.get("else"), f"{here}.else", in_form, branch or "else")
        elif kind == "Switch" and isinstance(comp.get("cases"), dict):
            for key, case in comp["cases"].items():
                yield from walk(case, f"{here}.cases.{key}", in_form, branch or f"case:{key}")


@dataclass
class ScreenView:
    index: int
    raw: dict
    nodes: list = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"$.screens[{self.index}]"

    @property
    def id(self) -> str | None:
        value = self.raw.get("id")
        return value if isinstance(value, str) else None

    @property
    def terminal(self) -> bool:
        return self.raw.get("terminal") is True

    @property
    def data(self) -> dict:
        value = self.raw.get("data")
        return value if isinstance(value, dict) else {}

    def data_type(self, key: str) -> str | None:
        decl = self.data.get(key)
        if isinstance(decl, dict):
            return decl.get("type") if isinstance(decl.get("type"), str) else None
        return None

    @cached_property
    def input_names(self) -> set[str]:
        return {n.comp["name"] for n in self.nodes
                if n.type in INPUT_TYPES and isinstance(n.comp.get("name"), str)}

    @cached_property
    def has_form(self) -> bool:
        return any(n.type == "Form" for n in self.nodes)


class Doc:
    def __init__(self, definition: dict):
        self.raw = definition
        self.version = str(definition.get("version", ""))
        screens = definition.get("screens")
        self.screens: list[ScreenView] = []
        if isinstance(screens, list):
            for i, raw in enumerate(screens):
                if isinstance(raw, dict):
                    view = ScreenView(i, raw)
                    layout = raw.get("layout") if isinstance(raw.get("layout"), dict) else {}
                    view.nodes = list(walk(layout.get("children"), f"{view.path}.layout.children"))
                    self.screens.append(view)

    @cached_property
    def screen_ids(self) -> set[str]:
        return {s.id for s in self.screens if s.id}

    def screen(self, screen_id: str) -> ScreenView | None:
        return next((s for s in self.screens if s.id == screen_id), None)

    @property
    def routing(self) -> dict | None:
        value = self.raw.get("routing_model")
        return value if isinstance(value, dict) else None

    @cached_property
    def uses_endpoint(self) -> bool:
        """Any data_exchange action, even on a property Meta would reject, or refresh_on_back."""
        if any(s.raw.get("refresh_on_back") is True for s in self.screens):
            return True
        return _mentions_data_exchange(self.raw.get("screens"))


def _mentions_data_exchange(value) -> bool:
    if isinstance(value, dict):
        if value.get("name") == "data_exchange":
            return True
        return any(_mentions_data_exchange(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_data_exchange(v) for v in value)
    return False
