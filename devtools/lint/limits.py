"""Meta's limits on Flow JSON, as data: characters, counts and sizes, each row with its source.

Meta enforces these when a Flow is validated or published (a TextInput ``label`` of 22 characters
is refused: protocol doc, corrections); ``rules_limits`` only reads this table. Where Meta's
component reference and pywa's docstrings disagree, Meta's number is the row and pywa's is noted.
Text bound to data (``${data.x}``) or written as an expression is checked by nobody until run
time: keep what the endpoint sends under the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

# Where each number comes from (docs/meta-facts.md, "Flow JSON limits", quotes them).
SOURCES = {
    "components": "Meta, Flow JSON components reference (developers.facebook.com/docs/whatsapp/flows/"
                  "reference/components), the component's 'Limits and Restrictions' table",
    "flowjson": "Meta, Flow JSON reference (developers.facebook.com/docs/whatsapp/flows/reference/flowjson)",
    "flowsapi": "Meta, Flows API reference (developers.facebook.com/docs/whatsapp/flows/reference/flowsapi): "
                "the Flow JSON file 'is limited to 10 MB'",
    "pywa": "pywa, component docstrings (david-lev/pywa, pywa/types/flows.py)",
    "unverified": "no published number; Flow Builder shows a title on one line (UNVERIFIED: a warning only)",
}


@dataclass(frozen=True)
class Chars:
    """At most ``max`` characters; ``source`` is a key of SOURCES."""

    max: int
    source: str = "components"
    note: str = ""  # where another source says otherwise


C = Chars
# component type -> property -> limit
CHARS: dict[str, dict[str, Chars]] = {
    "TextHeading": {"text": C(80)},
    "TextSubheading": {"text": C(80)},
    "TextBody": {"text": C(4096)},
    "TextCaption": {"text": C(409, note="pywa says 4096")},
    "TextInput": {"label": C(20), "helper-text": C(80), "error-message": C(30)},
    "TextArea": {"label": C(20), "helper-text": C(80)},
    "CheckboxGroup": {"label": C(30), "description": C(300, "pywa")},
    "RadioButtonsGroup": {"label": C(30), "description": C(300, "pywa")},
    "Dropdown": {"label": C(20, note="pywa says 30")},
    "ChipsSelector": {"label": C(80), "description": C(300)},
    "Footer": {"label": C(35), "left-caption": C(15), "center-caption": C(15), "right-caption": C(15)},
    "OptIn": {"label": C(120, note="pywa says 30")},
    "EmbeddedLink": {"text": C(25, note="pywa says 35")},
    "DatePicker": {"label": C(40), "helper-text": C(80), "error-message": C(80)},
    "CalendarPicker": {"title": C(80), "description": C(300), "label": C(40), "helper-text": C(80),
                       "error-message": C(80)},
    "NavigationList": {"label": C(80), "description": C(300)},
    "PhotoPicker": {"label": C(30, "pywa"), "description": C(300, "pywa")},
    "DocumentPicker": {"label": C(30, "pywa"), "description": C(300, "pywa")},
}
# The items of a data-source (CheckboxGroup, RadioButtonsGroup, Dropdown).
OPTION_CHARS = {"title": C(30), "description": C(300), "metadata": C(20)}
OPTION_COMPONENTS = ("CheckboxGroup", "RadioButtonsGroup", "Dropdown")
# NavigationList items: add-on -> field -> limit; "badge" and each of at most 3 "tags" are texts.
NAV_ITEM_CHARS = {
    "main-content": {"title": C(30), "description": C(20), "metadata": C(80)},
    "end": {"title": C(10), "description": C(10, note="pywa says 20"),
            "metadata": C(10, note="pywa says 80")},
}
NAV_BADGE = C(15)
NAV_TAG = C(15)
NAV_TAGS_MAX = 3
SCREEN_TITLE = C(30, "unverified")


@dataclass(frozen=True)
class Count:
    """How many items a list property of a component may hold."""

    prop: str
    min: int
    max: int
    source: str = "components"
    max_with_images: int | None = None  # Dropdown: fewer options once any has an image


COUNTS: dict[str, Count] = {
    "CheckboxGroup": Count("data-source", 1, 20),
    "RadioButtonsGroup": Count("data-source", 1, 20),
    "Dropdown": Count("data-source", 1, 200, max_with_images=100),
    "ChipsSelector": Count("data-source", 2, 20),
    "NavigationList": Count("list-items", 1, 20),
    "ImageCarousel": Count("images", 1, 3),
}
IMAGE_CAROUSELS_PER_FLOW = 3  # and 2 per screen (components.py, per_screen)
IF_NESTING_MAX = 3  # "It is allowed to nest up to 3 If components"

# --- sizes ----------------------------------------------------------------------------------------
FLOW_JSON_BYTES = 10 * 1024 * 1024  # source: flowsapi
DATA_PAYLOAD_BYTES = 1024 * 1024  # "Total data channel payload size: 1 Mb" (Image limits; components)
OPTION_IMAGE_KB = 100  # data-source item image, Flow JSON 6.0+ (300 KB before 6.0)
OPTION_IMAGE_KB_BEFORE_6 = 300
NAV_IMAGE_KB = 100  # NavigationList start image
IMAGE_RECOMMENDED_KB = 300  # Image src: "Recommended image size: up to 300kb" (a warning)
