"""The Flow JSON against its handlers: screens they return exist, data keys they send are declared.

Handlers are read, never run (running one needs a request, a session and its dependencies). The
linter parses the handler's module with ``ast`` and follows the handler into the module-level
helpers it calls, collecting every ``Screen("ID", {...})``. Names that are module constants are
resolved through the function's globals; a dict built in a variable is followed through its
literal assignments and ``d["k"] = ...`` lines; a module-level Form's keys are read from the
Form itself (``FORM.neutral()``, ``result.screen("X")`` and the screen an ``@flow.on_submit``
handler comes back to). Every key found is checked; data built at run time (a helper's dict) is
checked where the linter cannot follow it, by the engine in development (FLOW_REPLY_CHECK:
each reply against the Flow JSON). A screen name computed at run time is reported as
``code.unchecked`` (info). Helpers imported from other modules are not followed: keep a flow's
``Screen(...)`` calls in its own module.
"""
from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from devtools.lint.findings import finding
from devtools.lint.model import Doc
from flows.protocol import SUCCESS

# Keys the engine adds itself or that Meta reads outside the screen schema (protocol doc 2.2).
IMPLICIT_KEYS = {"error_message"}


@dataclass(frozen=True)
class Returned:
    screen: str | None  # None: not a literal
    keys: frozenset | None  # None: not a literal
    where: str  # "function (file:line)"


def check_code(doc: Doc, flow) -> list:
    out = []
    routing = doc.routing or {}
    for (action, source), fn in flow.handlers.items():
        name = getattr(fn, "__name__", "handler")
        if source is not None and source not in doc.screen_ids:
            out.append(finding(f"handler {name}", "code.handler-unknown-screen",
                               f"{name} handles {action} on {source!r}, which is not a screen"))
        for ret in returned_screens(fn):
            out.extend(_check_return(doc, routing, action, source, ret))
    return out


def _check_return(doc: Doc, routing: dict, action: str, source: str | None, ret: Returned):
    if ret.screen is None:
        yield finding(ret.where, "code.unchecked", "screen name is not a literal: not checked")
        return
    if ret.screen == SUCCESS:
        return
    target = doc.screen(ret.screen)
    if target is None:
        yield finding(ret.where, "code.unknown-screen",
                      f"returns screen {ret.screen!r}, not in the Flow JSON")
        return
    if ret.keys is not None:
        for key in sorted(ret.keys - set(target.data) - IMPLICIT_KEYS):
            yield finding(ret.where, "code.undeclared-data",
                          f"returns data key {key!r} that {ret.screen}'s data does not declare")
    if not routing:
        return
    if action == "INIT":
        inbound = {t for edges in routing.values() for t in (edges or [])}
        if ret.screen in inbound:
            yield finding(ret.where, "code.init-not-entry",
                          f"INIT returns {ret.screen}, which has inbound edges")
    elif action == "data_exchange" and source is not None and ret.screen != source:
        forward = ret.screen in (routing.get(source) or [])
        # Every edge implies going back, so any screen on a path to this one is a valid return.
        backward = source in _descendants(routing, ret.screen)
        if not (forward or backward):
            yield finding(ret.where, "code.transition", f"{source} → {ret.screen} is not in routing_model")


def _descendants(routing: dict, start: str) -> set:
    seen, stack = set(), [start]
    while stack:
        for nxt in routing.get(stack.pop()) or []:
            if isinstance(nxt, str) and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def returned_screens(fn) -> list[Returned]:
    bound = fn if hasattr(fn, "form") and hasattr(fn, "screen") else None
    fn = inspect.unwrap(fn)
    try:
        path = inspect.getsourcefile(fn)
    except TypeError:
        path = None
    if not path:
        return [Returned(None, None, getattr(fn, "__name__", "handler"))]
    functions = _functions(path)
    start = functions.get(fn.__name__)
    if start is None:
        return [Returned(None, None, fn.__name__)]
    found, queue, seen = [], [start], set()
    if bound is not None:  # @flow.on_submit: the screen it comes back to with every field's error
        found.append(Returned(bound.screen, frozenset(bound.form.neutral()), f"{fn.__name__} (on_submit)"))
    while queue:
        func = queue.pop()
        if func.name in seen:
            continue
        seen.add(func.name)
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            callee = _callee(node.func)
            if callee == "Screen":
                found.append(_screen_call(node, func, fn.__globals__, Path(path).name))
            elif callee == "screen" and isinstance(node.func, ast.Attribute):  # result.screen("X", {...})
                ret = _screen_call(node, func, fn.__globals__, Path(path).name)
                form = _form_of(node.func.value, func, fn.__globals__)
                if form is not None:
                    ret = Returned(ret.screen,
                                   (ret.keys or frozenset()) | frozenset(form.neutral()), ret.where)
                found.append(ret)
            elif callee in functions and isinstance(node.func, ast.Name):
                queue.append(functions[callee])
    return found


@lru_cache(maxsize=64)
def _functions(path: str) -> dict:
    tree = ast.parse(Path(path).read_text(), filename=path)
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _callee(func) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _screen_call(call: ast.Call, func, globals_: dict, filename: str) -> Returned:
    where = f"{func.name} ({filename}:{call.lineno})"
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    name_node = call.args[0] if call.args else kw.get("name")
    data_node = call.args[1] if len(call.args) > 1 else kw.get("data")
    return Returned(_string(name_node, globals_), _keys(data_node, func, globals_), where)


def _string(node, globals_: dict) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and isinstance(globals_.get(node.id), str):
        return globals_[node.id]
    return None


def _form_of(node, func, globals_: dict):
    """The module-level Form behind ``result`` in ``result = FORM.check(ctx)``, if it is one."""
    if isinstance(node, ast.Name):
        for stmt in ast.walk(func):
            if (isinstance(stmt, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets)
                    and isinstance(stmt.value, ast.Call) and _callee(stmt.value.func) == "check"
                    and isinstance(stmt.value.func, ast.Attribute)):
                return _form_of(stmt.value.func.value, func, globals_)
        obj = globals_.get(node.id)
        return obj if callable(getattr(obj, "neutral", None)) else None
    return None


def _keys(node, func, globals_: dict | None = None) -> frozenset | None:
    """The data keys a node is known to hold: literal keys, ``**`` spreads of what can be
    followed, a module-level Form's ``neutral()``; None when nothing can be known."""
    globals_ = globals_ or {}
    if node is None:
        return frozenset()
    if isinstance(node, ast.Dict):
        keys = set()
        for k, v in zip(node.keys, node.values):
            if k is None:  # **spread
                keys |= _keys(v, func, globals_) or set()
            elif isinstance(k, ast.Constant) and isinstance(k.value, str):
                keys.add(k.value)
        return frozenset(keys)
    if (isinstance(node, ast.Call) and _callee(node.func) == "neutral"
            and isinstance(node.func, ast.Attribute)):
        form = _form_of(node.func.value, func, globals_)
        return frozenset(form.neutral()) if form is not None else None
    if isinstance(node, ast.Call) and _callee(node.func) == "dict" and not node.args:
        if all(k.arg for k in node.keywords):
            return frozenset(k.arg for k in node.keywords)
        return None
    if isinstance(node, ast.Name):
        return _variable_keys(node.id, func)
    return None


def _variable_keys(name: str, func) -> frozenset | None:
    keys: set[str] = set()
    literal = False
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    value = _keys(node.value, func) if not isinstance(node.value, ast.Name) else None
                    if value is None:
                        return None
                    keys |= value
                    literal = True
                elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                      and target.value.id == name):
                    if not (isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str)):
                        return None
                    keys.add(target.slice.value)
    return frozenset(keys) if literal else None
