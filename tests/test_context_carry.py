"""Carried values: kept in the request until the reply, then written in the round trip that records
the screen shown (or the completion), never read back first."""
import pytest

from examples import member_check
from flows.engine import Engine
from flows.protocol import Finish, FlowRequest, Screen
from flows.registry import Context, Flow, Lookup
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


# --- the token's check folded into the commit (issue 16) ------------------------------------


def _evalsha(redis_client) -> int:
    return _calls(redis_client, "evalsha") + _calls(redis_client, "eval")


def test_a_handler_that_only_reads_costs_one_session_round_trip(redis_client):
    def handler(ctx):
        ctx.carry(member_id="MEM123")
        assert ctx.carried["member_id"] == "MEM123"  # reading carried values checks nothing
        return Screen("CONFIRM", {"member_id": "MEM123", "member_name": "Ana", "tier": "Gold"})

    flow, store, engine = _engine(redis_client, handler)
    opened = []
    engine.hooks.opened = lambda flow_name, token: opened.append(token)
    before = _evalsha(redis_client)
    assert engine.handle(flow, _exchange("tok-one")).screen == "CONFIRM"
    assert _evalsha(redis_client) == before + 1
    session = store.get("tok-one")
    assert (session["state"], session["screen"]) == ("in_progress", "CONFIRM")
    assert [(e["event"], e.get("detail")) for e in store.timeline("tok-one")] == [
        ("opened", "first seen"), ("screen", "MEMBER_LOOKUP"), ("screen", "CONFIRM")]
    assert store.carried("tok-one") == {"member_id": "MEM123"} and opened == ["tok-one"]


@pytest.mark.parametrize("state", ["completed", "expired", "revoked"])
def test_a_closed_token_is_refused_and_its_readonly_reply_is_discarded(redis_client, state):
    def handler(ctx):
        ctx.carry(member_id="MEM123")
        return Finish({"member_id": "MEM123"})

    flow, store, engine = _engine(redis_client, handler)
    store.issue("tok-closed", flow.name, None)
    store.move("tok-closed", state)
    outcome = engine.handle(flow, _exchange("tok-closed"))
    assert (outcome.status, outcome.event) == (427, "refused")
    assert store.carried("tok-closed") == {} and store.get("tok-closed")["state"] == state


def test_a_closed_token_is_refused_before_a_handler_writes(redis_client):
    wrote = []

    def handler(ctx):
        ctx.sessions.mark_unverified(ctx.token, "member_id", "members", "MEM123", ctx.flow.name)
        wrote.append(True)
        return Screen("CONFIRM", {})

    flow, store, engine = _engine(redis_client, handler)
    store.issue("tok-write", flow.name, None)
    store.move("tok-write", "completed")
    assert engine.handle(flow, _exchange("tok-write")).status == 427
    assert wrote == [] and store.unverified("tok-write") == {}


def test_a_handler_that_swallows_the_refusal_is_refused_all_the_same(redis_client):
    def handler(ctx):
        try:
            ctx.effect()
        except BaseException:  # noqa: B036  (what a careless flow could write)
            pass
        return Screen("CONFIRM", {})

    flow, store, engine = _engine(redis_client, handler)
    store.issue("tok-swallow", flow.name, None)
    store.move("tok-swallow", "completed")
    assert engine.handle(flow, _exchange("tok-swallow")).status == 427


def test_a_closed_token_never_reaches_the_business_api(redis_client):
    from metrics import Metrics
    from standins.business import BusinessStandIn
    from validation.lookups import LookupSpec, Lookups

    def handler(ctx):
        return Screen("CONFIRM", {"found": ctx.lookup("members", "MEM123").found})

    with BusinessStandIn() as api:
        lookups = Lookups([LookupSpec(name="members", url=f"{api.url}/members")], redis_client,
                          metrics=Metrics(redis_client))
        flow = Flow("carry_test", JSON, lookups=(Lookup("members", "MEMBER_API"),))
        flow.on_exchange("MEMBER_LOOKUP")(handler)
        store = SessionStore(redis_client, lifetime=3600)
        engine = Engine(store, {"lookups": lookups}, deadline_seconds=3.0, max_reply_bytes=64 * 1024)
        store.issue("tok-api", flow.name, None)
        store.move("tok-api", "completed")
        assert engine.handle(flow, _exchange("tok-api")).status == 427
        assert api.calls("members") == 0
        store.issue("tok-open", flow.name, None)
        assert engine.handle(flow, _exchange("tok-open")).screen == "CONFIRM"
        assert api.calls("members") == 1
