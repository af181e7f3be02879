"""A lint finding, and the catalog of rules: id → (severity, one-line fix)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

ERROR, WARNING, INFO = "error", "warning", "info"

# Each rule once, with the severity Meta's validation implies and the fix a developer applies.
RULES: dict[str, tuple[str, str]] = {
    "json.invalid": (ERROR, "Fix the JSON syntax; Flow JSON must be one JSON object."),
    "top.version-missing": (ERROR, 'Add "version": "7.3" at the top level.'),
    "top.version-unpublishable": (ERROR,
                                  'Use a publishable Flow JSON version: "7.3" (5.1, 6.0-6.3, 7.0-7.3).'),
    "top.version-old": (WARNING, 'Move to "version": "7.3", the recommended one.'),
    "top.unknown-key": (ERROR, "Remove the key; the top level allows version, data_api_version, "
                               "routing_model, screens."),
    "top.data-channel-uri": (ERROR,
                             "Remove data_channel_uri; set endpoint_uri on the Flow through the Flows API."),
    "top.data-api-version-missing": (ERROR, 'Add "data_api_version": "4.0": the Flow talks to an endpoint.'),
    "top.data-api-version-invalid": (ERROR, 'Use "data_api_version": "4.0" (or "3.0").'),
    "top.routing-model-missing": (ERROR, 'Add "routing_model": {"SCREEN": ["NEXT"], '
                                         '...}: the Flow uses an endpoint.'),
    "top.screens-missing": (ERROR, 'Add a non-empty "screens" array.'),
    "top.too-many-screens": (ERROR, "Split the Flow: at most 100 screens."),
    "routing.unknown-screen": (ERROR, "Route only between screen ids that exist in screens."),
    "routing.missing-screen": (ERROR, 'List every screen in routing_model (a terminal one as "ID": []).'),
    "routing.self-loop": (ERROR,
                          "Remove the self edge; returning the same screen from the endpoint needs none."),
    "routing.cycle": (ERROR, "Keep forward edges only; going back is implied by every edge."),
    "routing.no-entry": (ERROR, "Leave one screen without inbound edges: that is where the Flow starts."),
    "routing.dead-end": (ERROR, 'Route the screen onward, or mark it "terminal": true with a Footer.'),
    "routing.too-many-branches": (ERROR, "Use at most 10 connections in routing_model."),
    "screen.id-pattern": (ERROR, "Use letters and underscores only in screen ids, e.g. MEMBER_LOOKUP."),
    "screen.id-duplicate": (ERROR, "Give every screen its own id."),
    "screen.id-reserved": (ERROR,
                           "Rename the screen: SUCCESS is reserved for closing the Flow from the endpoint."),
    "screen.unknown-key": (ERROR, "Remove the key; screens allow id, title, terminal, success, data, "
                                  "layout, refresh_on_back, sensitive."),
    "screen.layout": (ERROR, 'Use "layout": {"type": "SingleColumnLayout", "children": [...]}.'),
    "screen.no-terminal": (ERROR, 'Mark the last screen "terminal": true.'),
    "screen.terminal-footer": (ERROR, "Give the terminal screen a Footer (complete or data_exchange)."),
    "screen.footer-count": (ERROR, "Keep one Footer per screen (inside If: one in each branch)."),
    "screen.component-limit": (ERROR, "Move components to another screen: limit reached for this type."),
    "screen.too-many-components": (ERROR, "Split the screen: at most 50 components."),
    "screen.outside-form": (ERROR, "Move the input into the screen's Form (or drop the Form, 4.0+)."),
    "screen.form-required": (ERROR, "Put inputs in a Form, or use Flow JSON 4.0+ (7.3 recommended)."),
    "screen.success-not-terminal": (ERROR, 'Only terminal screens take "success"; remove it.'),
    "data.not-schema": (ERROR, 'Declare a schema, e.g. "key": {"type": "string", "__example__": "..."}; '
                               'values come from the endpoint.'),
    "data.missing-type": (ERROR, 'Add "type" (string, number, integer, boolean, array, object).'),
    "data.bad-type": (ERROR, "Use one of string, number, integer, boolean, array, object."),
    "data.missing-example": (ERROR, 'Add "__example__": a sample value for the builder preview.'),
    "data.array-items": (ERROR, 'Arrays need "items" describing one element.'),
    "data.reserved-error-message": (WARNING, "Rename the key (e.g. member_id_error): data.error_message is "
                                             "the endpoint's snackbar."),
    "component.unknown-type": (ERROR,
                               "Use a component from the Flow JSON reference (TextInput, Footer, ...)."),
    "component.unknown-property": (ERROR, "Remove the property: this component does not have it."),
    "component.missing-property": (ERROR, "Add the required property."),
    "component.version": (ERROR, "Raise the Flow JSON version, or use another component."),
    "component.property-version": (ERROR, "Raise the Flow JSON version to use this property."),
    "component.inside-form": (ERROR, "Inside a Form use the Form's init-values / error-messages instead."),
    "component.duplicate-name": (ERROR, "Give every input on the screen its own name."),
    "component.empty-text": (ERROR, "Text may not be empty or blank."),
    "component.pattern-helper": (ERROR, "Add helper-text that tells the user what the pattern expects."),
    "component.realtime-validation": (WARNING, "Validate on submit (Footer data_exchange), or client-side "
                                               "with required, input-type, min-chars/max-chars, pattern."),
    "limit.chars": (ERROR, "Shorten the text to Meta's limit (a longer text from the "
                           "endpoint must be cut there too)."),
    "limit.screen-title": (WARNING, "Keep the screen title to 30 characters: it is one line in the top bar."),
    "limit.count": (ERROR, "Keep the list within Meta's count (split the choice over screens, or use a "
                           "NavigationList)."),
    "limit.captions": (ERROR, "Use left-caption with right-caption, or center-caption alone."),
    "limit.nesting": (ERROR, "Flatten the If components: at most 3 levels."),
    "limit.per-flow": (ERROR, "Use at most 3 ImageCarousel components in one Flow."),
    "limit.size": (ERROR, "Make it smaller: Meta refuses it past the limit."),
    "limit.image-recommended": (WARNING, "Compress the image to 300 KB or less."),
    "action.missing-name": (ERROR, 'Name the action: {"name": "navigate" | "data_exchange" | ...}.'),
    "action.unknown": (ERROR, "Use navigate, complete, data_exchange, update_data or open_url."),
    "action.not-allowed": (ERROR, "Use an action this event accepts (see the component reference)."),
    "action.complete-outside-footer": (ERROR, "Only a Footer can complete the Flow; use navigate or "
                                              "data_exchange here."),
    "action.version": (ERROR, "Raise the Flow JSON version (6.0+) to use this action."),
    "action.navigate-target": (ERROR, 'Use "next": {"type": "screen", "name": "<an existing screen id>"}.'),
    "action.navigate-not-routed": (WARNING, "Add the edge to routing_model."),
    "action.payload-literal": (WARNING, 'Send the typed value: "${form.NAME}", not the field\'s name.'),
    "ref.missing-dollar": (ERROR, 'Write "${data.x}" / "${form.x}": without "$" it is literal text.'),
    "ref.data-undeclared": (ERROR, "Declare the key in the screen's data (type + __example__)."),
    "ref.form-unknown": (ERROR, "Reference an input whose name exists on this screen."),
    "ref.screen-unknown": (ERROR, "Reference an existing screen in ${screen.ID...}."),
    "ref.version": (ERROR, "Global ${screen.ID...} references need Flow JSON 4.0+."),
    "expr.needs-backticks": (ERROR, "Wrap the whole expression in backticks (Flow "
                                    "JSON 6.0+): \"`${form.x} != ''`\"."),
    "expr.version": (ERROR, "Backtick expressions need Flow JSON 6.0+."),
    "expr.operand-type": (ERROR, "!, && and || take booleans: compare instead, e.g. `${data.x} != ''`."),
    "prop.not-boolean": (ERROR, 'Use true/false, a boolean "${data.flag}", or a backtick expression (6.0+).'),
    "code.unknown-screen": (ERROR, "Return a screen that exists in the Flow JSON (or Finish to close)."),
    "code.undeclared-data": (ERROR, "Declare the key in the target screen's data, or stop returning it."),
    "code.transition": (WARNING, "Add the edge to routing_model, or return a screen reachable from here."),
    "code.init-not-entry": (WARNING, "INIT should open an entry screen (one without inbound edges)."),
    "code.unchecked": (INFO, "Build the screen name / data as literals so the linter can check them."),
    "code.handler-unknown-screen": (ERROR, "Register handlers only for screens in the Flow JSON."),
}


@dataclass(frozen=True)
class Finding:
    path: str  # JSON path into the Flow JSON ($.screens[0]...), or "handler name (file:line)"
    rule: str
    message: str
    severity: str
    fix: str
    source: str = ""  # where the rule's number comes from (Meta's limits: flows/lint/limits.py)

    def to_dict(self) -> dict:
        return asdict(self)


def finding(path: str, rule: str, message: str, severity: str | None = None, source: str = "") -> Finding:
    default, fix = RULES[rule]
    return Finding(path, rule, message, severity or default, fix, source)


def has_errors(findings) -> bool:
    return any(f.severity == ERROR for f in findings)
