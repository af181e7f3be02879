"""The Graph stand-in speaks Meta's shapes, and GraphClient classifies its errors."""
import pytest

from messaging.graph import NEEDS_TEMPLATE, PERMANENT, RETRYABLE, GraphClient, GraphError
from standins.graph import ACCESS_TOKEN, graph_error


def test_send_returns_a_wamid(graph):
    client = GraphClient(graph.url, "v23.0", ACCESS_TOKEN, "123")
    body = client.request("POST", "123/messages", json={"to": "15550001111", "type": "text"})
    assert body["messages"][0]["id"].startswith("wamid.")
    assert graph.sent_messages()[0]["to"] == "15550001111"


@pytest.mark.parametrize("status, code, kind", [
    (400, 131047, NEEDS_TEMPLATE), (429, 130429, RETRYABLE), (500, 131000, RETRYABLE),
    (400, 131026, PERMANENT), (400, 132001, PERMANENT), (401, 190, PERMANENT), (503, None, RETRYABLE),
])
def test_errors_are_classified_by_code(graph, status, code, kind):
    client = GraphClient(graph.url, "v23.0", ACCESS_TOKEN, "123")
    graph.fail_next(status, graph_error(code) if code else {"unexpected": True}, headers={"Retry-After": "7"})
    with pytest.raises(GraphError) as info:
        client.request("POST", "123/messages", json={"to": "1"})
    assert info.value.kind == kind and info.value.code == code and info.value.retry_after == 7.0


def test_timeout_is_retryable(graph):
    client = GraphClient(graph.url, "v23.0", ACCESS_TOKEN, "123", timeout=0.2)
    graph.fail_next(200, {}, delay=1.0)
    with pytest.raises(GraphError) as info:
        client.request("POST", "123/messages", json={"to": "1"})
    assert info.value.kind == RETRYABLE and info.value.message == "timeout"


def test_wrong_token_is_permanent(graph):
    client = GraphClient(graph.url, "v23.0", "wrong", "123")
    with pytest.raises(GraphError) as info:
        client.request("POST", "123/messages", json={"to": "1"})
    assert info.value.code == 190 and info.value.kind == PERMANENT
