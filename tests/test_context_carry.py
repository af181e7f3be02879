"""Carried values: kept in the request until the reply, then written in the round trip that records
the screen shown (or the completion), never read back first."""
from examples import member_check
from flows.engine import Engine
from flows.protocol import Finish, FlowRequest, Screen
from flows.registry import Context, Flow
from flows.sessions import SessionStore

JSON = member_check.flow.json_path


def _calls(redis_client, command: str) -> int:
    return redis_client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


def _ctx(store, token):
    req = FlowRequest(action="data_exchange", screen="MEMBER_LOOKUP", flow_token=token)
    return Context(request=req, flow=None, sessions=store if token else None)


def _engine(redis_client, handler):
    flow = Flow("carry_test", JSON)
    flow.on_exchange("MEMBER_LOOKUP")(handler)
    store = SessionStore(redis_client, lifetime=3600)
    return flow, store, Engine(store, {}, deadline_seconds=3.0, max_reply_bytes=64 * 1024)


def _exchange(token):
    return FlowRequest(action="data_exchange", screen="MEMBER_LOOKUP", flow_token=token, data={})


def test_carry_touches_no_redis_and_reads_see_old_and_new(redis_client):
    store = SessionStore(redis_client, lifetime=3600)
    store.carry("tok-carry", {"earlier": 1})
    ctx = _ctx(store, "tok-carry")
    before = _calls(redis_client, "hset"), _calls(redis_client, "hgetall")
    ctx.carry(member_id="MEM123")
    assert (_calls(redis_client, "hset"), _calls(redis_client, "hgetall")) == before
    assert ctx.carried == {"earlier": 1, "member_id": "MEM123"}
    ctx.carry(tier="Gold")  # cache loaded now: updated in place
    assert ctx.carried["tier"] == "Gold"
    assert ctx.to_carry == {"member_id": "MEM123", "tier": "Gold"}


def test_carry_without_a_token_keeps_values_for_the_request(redis_client):
    ctx = _ctx(SessionStore(redis_client, lifetime=3600), None)
    ctx.carry(member_id="MEM123")
    assert ctx.carried == {"member_id": "MEM123"}


def test_the_engine_writes_carried_values_with_the_screen_shown(redis_client):
    def handler(ctx):
        ctx.carry(member_id="MEM123")
        return Screen("CONFIRM", {"member_id": "MEM123", "member_name": "Ana", "tier": "Gold"})

    flow, store, engine = _engine(redis_client, handler)
    assert engine.handle(flow, _exchange("tok-shown")).screen == "CONFIRM"
    assert store.carried("tok-shown") == {"member_id": "MEM123"}
    assert store.get("tok-shown")["screen"] == "CONFIRM"


def test_a_handler_that_raises_carries_nothing(redis_client):
    def handler(ctx):
        ctx.carry(member_id="MEM123")
        raise RuntimeError("bug in a flow")

    flow, store, engine = _engine(redis_client, handler)
    outcome = engine.handle(flow, _exchange("tok-raise"))
    assert outcome.event == "handler_error"
    assert store.carried("tok-raise") == {}


def test_finish_completes_and_carries_even_after_redis_forgot_its_scripts(redis_client):
    def handler(ctx):
        ctx.carry(member_id="MEM123")
        return Finish({"member_id": "MEM123"})

    flow, store, engine = _engine(redis_client, handler)
    store.visit("tok-finish", flow.name, "MEMBER_LOOKUP")
    redis_client.script_flush()  # a restarted Redis: the commit's EVALSHA answers NOSCRIPT
    assert engine.handle(flow, _exchange("tok-finish")).event == "finish"
    assert store.get("tok-finish")["state"] == "completed"
    assert store.carried("tok-finish") == {"member_id": "MEM123"}
