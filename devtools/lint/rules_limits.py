"""Meta's limits (characters, counts, sizes), read from the table in ``limits.py``.

Only text written into the Flow JSON is measured: a ``${...}`` binding or a backtick expression
is filled in at run time, where the linter cannot see it.
"""
from __future__ import annotations

import json

from devtools.lint import components as T
from devtools.lint import limits as L
from devtools.lint.findings import finding
from devtools.lint.model import Doc, Node, ScreenView


def check_limits(doc: Doc):
    yield from _flow_size(doc)
    carousels = []
    for screen in doc.screens:
        yield from _title(screen)
        yield from _payload(screen)
        for node in screen.nodes:
            yield from _chars(node)
            yield from _counts(doc, node)
            yield from _captions(node)
            yield from _nesting(node)
            yield from _images(doc, node)
            if node.type == "ImageCarousel":
                carousels.append(node)
    if len(carousels) > L.IMAGE_CAROUSELS_PER_FLOW:
        yield _limit(carousels[L.IMAGE_CAROUSELS_PER_FLOW].path, "limit.per-flow",
                     f"{len(carousels)} ImageCarousel components in the Flow; Meta allows "
                     f"{L.IMAGE_CAROUSELS_PER_FLOW}", "components")


def _limit(path: str, rule: str, message: str, source: str):
    return finding(path, rule, message, source=L.SOURCES[source])


def static_text(value) -> str | None:
    """The text as the user will see it, or None when it is filled in at run time."""
    if isinstance(value, str):
        return None if "${" in value or value.strip().startswith("`") else value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        # The array form (TextBody / TextCaption markdown, RichText): one text, paragraph by paragraph.
        return None if any("${" in v for v in value) else "\n".join(value)
    return None


def _too_long(path: str, what: str, value, limit: L.Chars):
    text = static_text(value)
    if text is not None and len(text) > limit.max:
        note = f"; {limit.note}" if limit.note else ""
        rule = "limit.screen-title" if limit.source == "unverified" else "limit.chars"
        yield _limit(path, rule, f"{what} has {len(text)} characters; Meta allows {limit.max}{note}",
                     limit.source)


def _title(screen: ScreenView):
    yield from _too_long(f"{screen.path}.title", f"screen {screen.id} title", screen.raw.get("title"),
                         L.SCREEN_TITLE)


def _chars(node: Node):
    for prop, limit in L.CHARS.get(node.type, {}).items():
        value = node.comp.get(prop)
        if isinstance(value, dict):  # CalendarPicker in range mode: {"start-date": ..., "end-date": ...}
            for key, part in value.items():
                yield from _too_long(f"{node.path}.{prop}.{key}", f"{node.type} {prop} {key}", part, limit)
        else:
            yield from _too_long(f"{node.path}.{prop}", f"{node.type} {prop}", value, limit)
    items = node.comp.get("data-source")
    if node.type in L.OPTION_COMPONENTS and isinstance(items, list):
        for i, item in enumerate(items):
            for field, limit in L.OPTION_CHARS.items():
                if isinstance(item, dict):
                    yield from _too_long(f"{node.path}.data-source[{i}].{field}",
                                         f"{node.type} option {field}", item.get(field), limit)
    if node.type == "NavigationList" and isinstance(node.comp.get("list-items"), list):
        for i, item in enumerate(node.comp["list-items"]):
            if isinstance(item, dict):
                yield from _nav_item(f"{node.path}.list-items[{i}]", item)


def _nav_item(path: str, item: dict):
    for addon, fields in L.NAV_ITEM_CHARS.items():
        part = item.get(addon) if isinstance(item.get(addon), dict) else {}
        for field, limit in fields.items():
            yield from _too_long(f"{path}.{addon}.{field}", f"NavigationList item {addon} {field}",
                                 part.get(field), limit)
    yield from _too_long(f"{path}.badge", "NavigationList item badge", item.get("badge"), L.NAV_BADGE)
    tags = item.get("tags")
    if isinstance(tags, list):
        if len(tags) > L.NAV_TAGS_MAX:
            yield _limit(f"{path}.tags", "limit.count",
                         f"{len(tags)} tags on a NavigationList item; Meta allows {L.NAV_TAGS_MAX}",
                         "components")
        for i, tag in enumerate(tags):
            yield from _too_long(f"{path}.tags[{i}]", "NavigationList item tag", tag, L.NAV_TAG)


def _counts(doc: Doc, node: Node):
    rule = L.COUNTS.get(node.type)
    items = node.comp.get(rule.prop) if rule else None
    if not isinstance(items, list):  # absent, or bound to data: counted at run time
        return
    most = rule.max
    if rule.max_with_images and any(isinstance(i, dict) and i.get("image") for i in items):
        most = rule.max_with_images
    if not rule.min <= len(items) <= most:
        yield _limit(f"{node.path}.{rule.prop}", "limit.count",
                     f"{node.type} has {len(items)} {rule.prop} items; Meta allows {rule.min} to {most}",
                     rule.source)


def _captions(node: Node):
    if node.type == "Footer" and all(k in node.comp
                                     for k in ("left-caption", "center-caption", "right-caption")):
        yield _limit(f"{node.path}.center-caption", "limit.captions",
                     "Footer sets left-, center- and right-caption at once", "components")


def _nesting(node: Node):
    if node.type == "If":
        depth = node.path.count(".then[") + node.path.count(".else[") + 1
        if depth > L.IF_NESTING_MAX:
            yield _limit(node.path, "limit.nesting",
                         f"If nested {depth} deep; Meta allows {L.IF_NESTING_MAX}", "components")


def _kb(value) -> float | None:
    """Decoded size of a base64 image, in KB; None when it is not static base64 text."""
    if not isinstance(value, str) or "${" in value:
        return None
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    return (len(text.strip()) * 3 / 4 - text.count("=")) / 1024


def _images(doc: Doc, node: Node):
    if node.type == "Image":
        size = _kb(node.comp.get("src"))
        if size is not None and size > L.IMAGE_RECOMMENDED_KB:
            yield _limit(f"{node.path}.src", "limit.image-recommended",
                         f"Image of {size:.0f} KB; Meta recommends at most {L.IMAGE_RECOMMENDED_KB} KB",
                         "components")
    items = node.comp.get("data-source") if node.type in L.OPTION_COMPONENTS else None
    most = L.OPTION_IMAGE_KB if T.at_least(doc.version, "6.0") else L.OPTION_IMAGE_KB_BEFORE_6
    for i, item in enumerate(items if isinstance(items, list) else []):
        size = _kb(item.get("image")) if isinstance(item, dict) else None
        if size is not None and size > most:
            yield _limit(f"{node.path}.data-source[{i}].image", "limit.size",
                         f"option image of {size:.0f} KB; Meta allows {most} KB", "components")
    listed = node.comp.get("list-items") if node.type == "NavigationList" else None
    for i, item in enumerate(listed if isinstance(listed, list) else []):
        start = item.get("start") if isinstance(item, dict) and isinstance(item.get("start"), dict) else {}
        size = _kb(start.get("image"))
        if size is not None and size > L.NAV_IMAGE_KB:
            yield _limit(f"{node.path}.list-items[{i}].start.image", "limit.size",
                         f"list item image of {size:.0f} KB; Meta allows {L.NAV_IMAGE_KB} KB", "components")


def _payload(screen: ScreenView):
    """The screen's data as its examples describe it: the endpoint sends data of that shape, and
    Meta caps what one data channel payload may carry."""
    examples = {k: d.get("__example__") for k, d in screen.data.items() if isinstance(d, dict)}
    size = len(json.dumps(examples, ensure_ascii=False).encode())
    if size > L.DATA_PAYLOAD_BYTES:
        yield _limit(f"{screen.path}.data", "limit.size",
                     f"{screen.id}'s data examples take {size // 1024} KB; a data payload may carry "
                     f"{L.DATA_PAYLOAD_BYTES // 1024} KB", "components")


def _flow_size(doc: Doc):
    size = len(json.dumps(doc.raw, ensure_ascii=False, separators=(",", ":")).encode())
    if size > L.FLOW_JSON_BYTES:
        yield _limit("$", "limit.size", f"the Flow JSON takes {size / 2**20:.1f} MB; Meta takes files of "
                                        f"{L.FLOW_JSON_BYTES // 2**20} MB at most", "flowsapi")
