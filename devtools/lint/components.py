"""What Flow JSON allows, as data (protocol doc 5.1 and 6.1-6.7): the rule functions only read it.

Adding a component or a version gate is a row here, not a new ``if`` in a rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# --- versions (6.1) -------------------------------------------------------------------------------
PUBLISHABLE = ("5.1", "6.0", "6.1", "6.2", "6.3", "7.0", "7.1", "7.2", "7.3")
SEND_ONLY = ("2.1", "3.0", "3.1", "4.0", "5.0")
RECOMMENDED = "7.3"
DATA_API_VERSIONS = ("3.0", "4.0")


def version_tuple(value) -> tuple[int, ...]:
    """"6.10" > "6.2"; anything unreadable sorts first so gates fail closed."""
    try:
        return tuple(int(part) for part in str(value).split("."))
    except ValueError:
        return (0,)


def at_least(version, minimum: str | None) -> bool:
    return minimum is None or version_tuple(version) >= version_tuple(minimum)


# --- top level and screens (6.2, 6.3) -------------------------------------------------------------
TOP_LEVEL_KEYS = {"version", "data_api_version", "routing_model", "screens", "data_channel_uri"}
SCREEN_KEYS = {"id", "title", "terminal", "success", "data", "layout", "refresh_on_back", "sensitive"}
SCREEN_KEY_VERSIONS = {"sensitive": "5.1"}
LAYOUT_TYPE = "SingleColumnLayout"
SCREEN_ID_PATTERN = r"^[A-Za-z_]+$"
RESERVED_SCREEN_IDS = {"SUCCESS"}
DATA_TYPES = {"string", "number", "integer", "boolean", "array", "object"}

# --- limits (5.1) ---------------------------------------------------------------------------------
MAX_SCREENS = 100
MAX_COMPONENTS_PER_SCREEN = 50
MAX_ROUTING_BRANCHES = 10  # "connections" in the routing model, counted over the whole Flow

# --- actions (6.6) --------------------------------------------------------------------------------
ACTION_VERSIONS = {"navigate": None, "complete": None, "data_exchange": None,
                   "update_data": "6.0", "open_url": "6.0"}
BOOLEAN_PROPS = ("visible", "enabled", "required")
# Expressions in backticks and ${screen.X...} references (6.5).
EXPRESSION_VERSION = "6.0"
GLOBAL_REF_VERSION = "4.0"
# A form value travels only inside these; anything else sends the literal text.
FORM_OPTIONAL_VERSION = "4.0"


@dataclass(frozen=True)
class Component:
    """One row of the component reference.

    ``events`` maps an event property to the actions it accepts, each with the Flow JSON version
    that first allows it (None: any publishable version).
    """

    props: frozenset
    required: tuple = ()
    events: dict = field(default_factory=dict)
    is_input: bool = False
    since: str | None = None
    per_screen: int | None = None
    prop_versions: dict = field(default_factory=dict)
    outside_form_only: frozenset = frozenset()  # init-value / error-message (4.0+): Form has its own


def _c(props: str, **kw) -> Component:
    return Component(props=frozenset(props.split() + ["type"]), **kw)


_TEXT = "text visible"
_STYLED = "text visible font-weight strikethrough markdown"
_INPUT_COMMON = "name label required visible enabled init-value error-message helper-text"
_SELECT = {"data_exchange": None, "update_data": "6.0"}
_OUTSIDE = frozenset({"init-value", "error-message"})

COMPONENTS: dict[str, Component] = {
    "TextHeading": _c(_TEXT, required=("text",)),
    "TextSubheading": _c(_TEXT, required=("text",)),
    "TextBody": _c(_STYLED, required=("text",), prop_versions={"markdown": "5.1"}),
    "TextCaption": _c(_STYLED, required=("text",), prop_versions={"markdown": "5.1"}),
    "RichText": _c(_TEXT, required=("text",), since="5.1"),
    "TextInput": _c(_INPUT_COMMON + " input-type pattern min-chars max-chars label-variant",
                    required=("name", "label"), is_input=True, prop_versions={"pattern": "6.2"},
                    outside_form_only=_OUTSIDE),
    "TextArea": _c(_INPUT_COMMON + " max-length label-variant", required=("name", "label"),
                   is_input=True, outside_form_only=_OUTSIDE),
    "CheckboxGroup": _c(_INPUT_COMMON + " data-source description min-selected-items "
                        "max-selected-items media-size on-select-action on-unselect-action",
                        required=("name", "data-source"), is_input=True, outside_form_only=_OUTSIDE,
                        events={"on-select-action": _SELECT, "on-unselect-action": {"update_data": "6.0"}}),
    "RadioButtonsGroup": _c(_INPUT_COMMON + " data-source description media-size "
                            "on-select-action on-unselect-action",
                            required=("name", "data-source"), is_input=True, outside_form_only=_OUTSIDE,
                            events={"on-select-action": _SELECT,
                                    "on-unselect-action": {"update_data": "6.0"}}),
    "Dropdown": _c(_INPUT_COMMON + " data-source on-select-action on-unselect-action",
                   required=("name", "label", "data-source"), is_input=True, outside_form_only=_OUTSIDE,
                   events={"on-select-action": _SELECT, "on-unselect-action": {"update_data": "6.0"}}),
    "ChipsSelector": _c(_INPUT_COMMON + " data-source description min-selected-items "
                        "max-selected-items on-select-action on-unselect-action",
                        required=("name", "label", "data-source"), is_input=True, since="6.3",
                        outside_form_only=_OUTSIDE,
                        events={"on-select-action": {"data_exchange": None, "update_data": "7.1"},
                                "on-unselect-action": {"update_data": "7.1"}}),
    "DatePicker": _c(_INPUT_COMMON + " min-date max-date unavailable-dates on-select-action",
                     required=("name", "label"), is_input=True, outside_form_only=_OUTSIDE,
                     events={"on-select-action": {"data_exchange": None}}),
    "CalendarPicker": _c(_INPUT_COMMON + " title description mode min-date max-date "
                         "unavailable-dates include-days min-days max-days on-select-action",
                         required=("name", "label"), is_input=True, since="6.1",
                         outside_form_only=_OUTSIDE, events={"on-select-action": {"data_exchange": None}}),
    "OptIn": _c("name label required visible init-value on-click-action on-select-action "
                "on-unselect-action", required=("name", "label"), is_input=True, per_screen=5,
                outside_form_only=frozenset({"init-value"}),
                events={"on-click-action": {"navigate": None, "data_exchange": None, "open_url": "6.0"},
                        "on-select-action": {"update_data": "6.0"},
                        "on-unselect-action": {"update_data": "6.0"}}),
    "PhotoPicker": _c("name label description photo-source max-file-size-kb min-uploaded-photos "
                      "max-uploaded-photos enabled visible error-message", required=("name", "label"),
                      is_input=True, since="4.0"),
    "DocumentPicker": _c("name label description max-file-size-kb min-uploaded-documents "
                         "max-uploaded-documents allowed-mime-types enabled visible error-message",
                         required=("name", "label"), is_input=True, since="4.0"),
    "EmbeddedLink": _c("text visible on-click-action", required=("text", "on-click-action"), per_screen=2,
                       events={"on-click-action": {"navigate": None, "data_exchange": None,
                                                   "open_url": "6.0"}}),
    "Footer": _c("label left-caption center-caption right-caption enabled on-click-action",
                 required=("label", "on-click-action"), per_screen=1,
                 events={"on-click-action": {"navigate": None, "data_exchange": None, "complete": None}}),
    "Image": _c("src width height scale-type aspect-ratio alt-text visible", required=("src",),
                per_screen=3),
    "ImageCarousel": _c("images aspect-ratio scale-type visible", required=("images",), since="7.1",
                        per_screen=2),
    "NavigationList": _c("name list-items label description media-size visible on-click-action",
                         required=("name", "list-items"), since="6.2", per_screen=2,
                         events={"on-click-action": {"navigate": None, "data_exchange": None}}),
    "Form": _c("name children init-values error-messages", required=("name", "children")),
    "If": _c("condition then else", required=("condition", "then"), since="4.0"),
    "Switch": _c("value cases", required=("value", "cases"), since="4.0"),
}

INPUT_TYPES = frozenset(name for name, spec in COMPONENTS.items() if spec.is_input)
