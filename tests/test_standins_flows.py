"""The Graph stand-in's Flows API speaks Meta's documented shapes (docs/meta-facts.md, "Flows API"),
read through the app's own FlowsApi client."""
from __future__ import annotations

from datetime import date

import pytest
import requests

from messaging.flows_api import CANNOT_UPDATE, NOT_ENOUGH_DATA, PUBLISH_REFUSED, FlowsApi
from messaging.graph import GraphClient, GraphError
from standins.graph import ACCESS_TOKEN

WABA = "555000111"
# The label is on line 2: the stand-in's validation error points at it.
FLOW_JSON = (b'{"version": "7.3", "screens": [{"id": "ONE", "terminal": true, '
             b'"layout": {"type": "SingleColumnLayout",\n'
             b'  "children": [{"type": "TextInput", "name": "n", "label": "Your membership number"},\n'
             b'               {"type": "Footer", "label": "Done", '
             b'"on-click-action": {"name": "complete", "payload": {}}}]}}]}')


@pytest.fixture
def api(graph):
    graph.meta_flows.add_waba(WABA)
    return FlowsApi(GraphClient(graph.url, "v23.0", ACCESS_TOKEN, None), WABA)


def test_the_list_comes_in_pages_with_cursors(api, graph):
    graph.meta_flows.page_size = 2
    for i in range(5):
        api.create(f"flow_{i}", ["OTHER"], "https://example.com/flows/x")
    raw = requests.get(f"{graph.url}/v23.0/{WABA}/flows",
                       headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}).json()
    assert [f["name"] for f in raw["data"]] == ["flow_0", "flow_1"]
    assert set(raw["data"][0]) == {"id", "name", "status", "categories", "validation_errors"}
    assert raw["paging"]["cursors"]["after"] and raw["paging"]["next"]
    assert [f.name for f in api.list()] == [f"flow_{i}" for i in range(5)]


def test_create_answers_an_id_and_refuses_a_name_twice_or_a_bad_category(api):
    flow_id = api.create("member_check", ["SIGN_IN"], "https://example.com/flows/member_check")
    assert flow_id.isdigit()
    for name, categories, said in (("member_check", ["SIGN_IN"], "Flow name is not unique"),
                                   ("other", ["SHOPPING_SPREE"], "Invalid parameter")):
        with pytest.raises(GraphError) as info:
            api.create(name, categories, "https://example.com")
        assert info.value.code == 100 and info.value.user_message == said


def test_an_upload_is_validated_with_pointers_and_a_published_flow_refuses_changes(api, graph):
    flow_id = api.create("f", ["OTHER"], "https://example.com/flows/f")
    (error,) = api.upload_json(flow_id, FLOW_JSON)
    assert (error.error == "INVALID_PROPERTY_VALUE"
            and error.paths == ("$.screens[0].layout.children[0].label",))
    assert error.line == 2 and "$root/screens/0/layout/children/0/label" in error.message
    with pytest.raises(GraphError) as info:
        api.publish(flow_id)
    assert info.value.code == PUBLISH_REFUSED and "validation errors" in info.value.user_message
    assert api.upload_json(flow_id, FLOW_JSON.replace(b"Your membership number", b"Member number")) == []
    api.publish(flow_id)
    assert api.get(flow_id).status == "PUBLISHED"
    for change in (lambda: api.upload_json(flow_id, FLOW_JSON), lambda: api.update(flow_id, name="g")):
        with pytest.raises(GraphError) as info:
            change()
        assert info.value.code == CANNOT_UPDATE and info.value.user_message == "Flow can't be updated"
    assert b"Member number" in api.flow_json(flow_id)


def test_details_and_metrics(api, graph):
    flow_id = api.create("f", ["OTHER"], "https://example.com/flows/f")
    meta = api.get(flow_id)
    assert meta.preview_url.startswith("https://business.facebook.com/wa/manage/flows/")
    assert meta.can_send_message == "AVAILABLE" and meta.endpoint_uri == "https://example.com/flows/f"
    with pytest.raises(GraphError) as info:
        api.metric(flow_id, "ENDPOINT_REQUEST_COUNT", date(2026, 1, 1), date(2026, 1, 7))
    assert info.value.code == NOT_ENOUGH_DATA
    graph.meta_flows.add_metrics(flow_id, date(2026, 1, 2), 300, errors={"timeout_error": 3})
    graph.meta_flows.add_metrics(flow_id, date(2026, 2, 2), 999)
    points = api.metric(flow_id, "ENDPOINT_REQUEST_ERROR", date(2026, 1, 1), date(2026, 1, 7))
    assert points == [{"timestamp": "2026-01-02T08:00:00+0000",
                       "data": [{"key": "timeout_error", "value": 3}]}]
