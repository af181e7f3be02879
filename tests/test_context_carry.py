"""Context.carry writes without reading the hash back first, and reads still see every value."""
from flows.protocol import FlowRequest
from flows.registry import Context
from flows.sessions import SessionStore


def _hgetall_calls(redis_client) -> int:
    return redis_client.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0)


def _ctx(store, token):
    req = FlowRequest(action="data_exchange", screen="MEMBER_LOOKUP", flow_token=token)
    return Context(request=req, flow=None, sessions=store if token else None)


def test_carry_stores_values_and_a_later_read_sees_old_and_new(redis_client):
    store = SessionStore(redis_client, lifetime=3600)
    store.carry("tok-carry", {"earlier": 1})
    ctx = _ctx(store, "tok-carry")
    before = _hgetall_calls(redis_client)
    ctx.carry(member_id="MEM123")
    assert _hgetall_calls(redis_client) == before  # a write needs no read (one round trip saved)
    assert store.carried("tok-carry") == {"earlier": 1, "member_id": "MEM123"}
    assert ctx.carried == {"earlier": 1, "member_id": "MEM123"}
    ctx.carry(tier="Gold")  # cache loaded now: updated in place, and stored
    assert ctx.carried["tier"] == "Gold"
    assert store.carried("tok-carry")["tier"] == "Gold"


def test_carry_without_a_token_keeps_values_for_the_request(redis_client):
    ctx = _ctx(SessionStore(redis_client, lifetime=3600), None)
    ctx.carry(member_id="MEM123")
    assert ctx.carried == {"member_id": "MEM123"}
