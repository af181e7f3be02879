"""Every catalog Flow JSON keeps Meta's rules (protocol doc section 6), and every reply the
handlers give fits the declared screen data (else the client raises payload-schema-error)."""
from __future__ import annotations

import re

import pytest

from examples import FLOWS as CATALOG
from devtools.player import walk_components

# Components documented with an error-message property (Dropdown, Radio and Checkbox groups have none).
ERROR_MESSAGE_COMPONENTS = {"TextInput", "TextArea", "DatePicker", "CalendarPicker", "PhotoPicker",
                            "DocumentPicker"}
REF = re.compile(r"\$\{data\.([A-Za-z0-9_]+)\}")
FLOWS = {flow.name: flow for flow in CATALOG}


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_flow_json_rules(name):
    doc = FLOWS[name].definition
    assert doc["version"] == "7.3" and doc["data_api_version"] in ("3.0", "4.0")
    ids = [s["id"] for s in doc["screens"]]
    assert set(doc["routing_model"]) == set(ids) and "SUCCESS" not in ids
    assert all(t in ids for edges in doc["routing_model"].values() for t in edges)
    assert any(s.get("terminal") for s in doc["screens"])
    for screen in doc["screens"]:
        assert re.fullmatch(r"[A-Z_]+", screen["id"])
        declared = screen.get("data", {})
        for key, schema in declared.items():
            assert "type" in schema and "__example__" in schema, (screen["id"], key)
            if schema["type"] == "array":
                assert "items" in schema
        comps = list(walk_components(screen["layout"]["children"]))
        footers = [c for c in comps if c["type"] == "Footer"]
        assert len(footers) <= 1 and (footers or not screen.get("terminal"))
        text = str(screen["layout"])
        assert "on-change-action" not in text
        assert set(REF.findall(text)) <= set(declared), screen["id"]
        for comp in comps:
            if "error-message" in comp:
                assert comp["type"] in ERROR_MESSAGE_COMPONENTS and REF.fullmatch(comp["error-message"])
            if comp["type"] in ("DatePicker", "CalendarPicker") and "on-select-action" in comp:
                assert comp["on-select-action"]["name"] == "data_exchange"
            if comp["type"] == "TextInput":
                assert "on-click-action" not in comp and "on-select-action" not in comp
            if "visible" in comp:
                ref = REF.fullmatch(str(comp["visible"]))
                assert ref and declared[ref.group(1)]["type"] == "boolean"


def declared_keys(flow_name: str, screen: str) -> set:
    doc = FLOWS[flow_name].definition
    return set(next(s for s in doc["screens"] if s["id"] == screen).get("data", {}))


def fits(flow_name: str, reply) -> bool:
    if reply.screen == "SUCCESS":
        return set(reply.data) == {"extension_message_response"}
    return set(reply.data) - {"error_message"} <= declared_keys(flow_name, reply.screen)


def test_replies_fit_the_declared_screen_data(served, api):  # noqa: F811
    from test_demo_flows import next_weekday

    app, client = served()
    day = next_weekday()
    script = [
        ("member_check", None, None), ("member_check", "MEMBER_LOOKUP", {"member_id": "x"}),
        ("member_check", "MEMBER_LOOKUP", {"member_id": "MEM123"}),
        ("service_area", None, None), ("service_area", "POSTCODE", {"postal_code": "1"}),
        ("service_area", "POSTCODE", {"postal_code": "10001"}), ("service_area", "DETAILS", {}),
        ("coupon_checkout", None, None), ("coupon_checkout", "CART", {"coupon": "NOPE"}),
        ("coupon_checkout", "CART", {"coupon": "SAVE10"}), ("coupon_checkout", "SUMMARY", {}),
        ("stock_order", None, None), ("stock_order", "ORDER", {}),
        ("stock_order", "ORDER", {"sku": "MUG-01", "quantity": 2}), ("stock_order", "REVIEW", {}),
        ("appointment", None, None), ("appointment", "BOOK", {"step": "day_chosen", "date": day}),
        ("appointment", "BOOK", {"step": "time_chosen", "date": day, "slot": "16:30"}),
        ("appointment", "BOOK", {"step": "continue", "date": day, "slot": "16:30"}),
        ("appointment", "CONFIRM", {}),
    ]
    for flow_name, screen, data in script:
        c = client(flow_name)
        reply = (c.init("tok-fit-" + flow_name) if screen is None
                 else c.exchange("tok-fit-" + flow_name, screen, data))
        assert reply.status == 200 and fits(flow_name, reply), (flow_name, screen, reply.body)


from test_demo_flows import api, served  # noqa: E402,F401  (fixtures)
