"""Top level (6.1, 6.2) and the routing model."""
from __future__ import annotations

from devtools.lint import components as T
from devtools.lint.findings import finding
from devtools.lint.model import Doc


def check_top(doc: Doc, uses_endpoint: bool):
    raw = doc.raw
    for key in raw:
        if key not in T.TOP_LEVEL_KEYS:
            yield finding(f"$.{key}", "top.unknown-key", f"unknown top-level key {key!r}")
    version = raw.get("version")
    if version is None:
        yield finding("$.version", "top.version-missing", "no Flow JSON version")
    elif str(version) not in T.PUBLISHABLE:
        kind = "send-only (existing Flows only)" if str(version) in T.SEND_ONLY else "not a Flow JSON version"
        hint = (" — it looks like a Data API version put in the wrong field"
                if str(version) in T.DATA_API_VERSIONS else "")
        yield finding("$.version", "top.version-unpublishable",
                      f"version {version!r} is {kind}: new Flows publish only "
                      f"with 5.1, 6.0-6.3, 7.0-7.3{hint}")
    elif str(version) != T.RECOMMENDED:
        yield finding("$.version", "top.version-old",
                      f"version {version} is below the recommended {T.RECOMMENDED}")
    if "data_channel_uri" in raw and T.at_least(doc.version, "3.0"):
        yield finding("$.data_channel_uri", "top.data-channel-uri", "data_channel_uri exists only before 3.0")
    api = raw.get("data_api_version")
    if api is None and uses_endpoint:
        yield finding("$.data_api_version", "top.data-api-version-missing",
                      "the Flow calls an endpoint (data_exchange or INIT) but declares no data_api_version")
    elif api is not None and str(api) not in T.DATA_API_VERSIONS:
        yield finding("$.data_api_version", "top.data-api-version-invalid",
                      f"data_api_version {api!r} is not 3.0 or 4.0")
    if uses_endpoint and "routing_model" not in raw:
        yield finding("$.routing_model", "top.routing-model-missing",
                      "the Flow calls an endpoint but has no routing_model")
    screens = raw.get("screens")
    if not isinstance(screens, list) or not screens:
        yield finding("$.screens", "top.screens-missing", "screens is missing or empty")
    elif len(screens) > T.MAX_SCREENS:
        yield finding("$.screens", "top.too-many-screens", f"{len(screens)} screens (limit {T.MAX_SCREENS})")


def check_routing(doc: Doc):
    routing = doc.routing
    if routing is None:
        return
    ids = doc.screen_ids
    edges: dict[str, list[str]] = {}
    for source, targets in routing.items():
        path = f"$.routing_model.{source}"
        if source not in ids:
            yield finding(path, "routing.unknown-screen", f"{source!r} is not a screen")
        targets = targets if isinstance(targets, list) else []
        for target in targets:
            if target == source:
                yield finding(path, "routing.self-loop", f"{source} routes to itself")
            elif target not in ids:
                yield finding(path, "routing.unknown-screen", f"{source} routes to unknown screen {target!r}")
        edges[source] = [t for t in targets if t in ids and t != source]
    for screen in doc.screens:
        if screen.id and screen.id not in routing:
            yield finding("$.routing_model", "routing.missing-screen",
                          f"screen {screen.id} is not in routing_model")
    count = sum(len(t) for t in edges.values())
    if count > T.MAX_ROUTING_BRANCHES:
        yield finding("$.routing_model", "routing.too-many-branches",
                      f"{count} connections (limit {T.MAX_ROUTING_BRANCHES})")
    inbound = {t for targets in edges.values() for t in targets}
    if ids and not (ids - inbound):
        yield finding("$.routing_model", "routing.no-entry",
                      "every screen has an inbound edge: no entry screen")
    cycle = _find_cycle(edges)
    if cycle:
        yield finding("$.routing_model", "routing.cycle", "backward edge: " + " → ".join(cycle))
    for screen in doc.screens:
        if screen.id in routing and not edges.get(screen.id) and not screen.terminal:
            yield finding(f"{screen.path}", "routing.dead-end",
                          f"route ends at {screen.id}, which is not terminal")


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str):
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
