"""The five demo flows through the simulator, against the app on loopback and a loopback business
API that can be told to misbehave."""
from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from app import create_app
from conftest import APP_SECRET, LiveServer
from metrics import Metrics
from devtools.player import Player
from devtools.simulator import FlowClient
from standins.business import BusinessStandIn, lookup_config


@pytest.fixture
def api():
    with BusinessStandIn() as standin:
        yield standin


@pytest.fixture
def served(app_config, api):
    """(app, make_client) with every lookup pointed at the stand-in."""
    servers = []

    def start(**extra):
        app = create_app({**app_config, **lookup_config(api), **extra})
        server = LiveServer(app).__enter__()
        servers.append(server)

        def client(flow):
            return FlowClient(f"{server.url}/flows/{flow}", _public_key(app), APP_SECRET)
        return app, client

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def _public_key(app):
    return app.extensions["keyring"].public_pem


def play(app, client, flow, token, **fields):
    steps = list(Player(app.extensions["flows"].get(flow).definition, client(flow), token, fields).run())
    return steps


# --- member_check ----------------------------------------------------------------------------


def test_member_check_expired_member(served):
    app, client = served()
    expired = client("member_check").exchange("tok-m0", "MEMBER_LOOKUP", {"member_id": "old777"})
    assert expired.screen == "MEMBER_LOOKUP"
    assert expired.data["member_id_error"] == "This membership has expired"
    assert expired.data["member_id_value"] == "OLD777"


@pytest.mark.parametrize("mode", ["hang", "500", "garbage", "huge", "list"])
def test_a_failing_member_api_gets_a_clear_screen_within_the_deadline(served, api, mode):
    app, client = served(FLOW_DEADLINE_SECONDS=0.5, MEMBER_API_TIMEOUT=5.0)
    api.behave(mode)
    started = time.monotonic()
    reply = client("member_check").exchange("tok-m1", "MEMBER_LOOKUP", {"member_id": "VIP999"})
    assert time.monotonic() - started < 0.5 + 0.5
    assert reply.status == 200 and reply.screen == "MEMBER_LOOKUP"
    assert reply.data["member_id_error"] == "We can't check this right now"
    assert reply.data["error_message"] == "We can't check this right now, please try again."
    expected = "timeout" if mode == "hang" else "error"
    lookups = Metrics(app.extensions["redis"]).snapshot(days=1)["flows"]["member_check"]["today"]["lookups"]
    assert lookups["members"][expected] == 1


def test_member_check_under_the_open_policy_accepts_and_marks_unverified(served, api):
    app, client = served(MEMBER_API_POLICY="open")
    api.behave("500")
    reply = client("member_check").exchange("tok-m3", "MEMBER_LOOKUP", {"member_id": "VIP999"})
    assert reply.screen == "CONFIRM"
    assert reply.data == {"member_id": "VIP999", "member_name": "VIP999", "tier": "To be confirmed"}
    assert app.extensions["sessions"].unverified("tok-m3")["member_id"]["lookup"] == "members"


def test_member_check_walks_to_success_with_the_player(served):
    app, client = served()
    steps = play(app, client, "member_check", "tok-m2", member_id=" mem123 ")
    assert [s.screen for s in steps] == ["MEMBER_LOOKUP", "CONFIRM", "SUCCESS"]
    assert steps[-1].data["extension_message_response"]["params"]["member_name"] == "Ana Silva"


# --- service_area ----------------------------------------------------------------------------


def test_service_area_covered_then_every_bad_detail_at_once_then_success(served):
    app, client = served()
    c = client("service_area")
    assert c.init("tok-s1").data == {"postal_code_error": "", "postal_code_value": ""}
    no = c.exchange("tok-s1", "POSTCODE", {"postal_code": "90210"})
    assert no.screen == "POSTCODE" and no.data["postal_code_error"] == "Sorry, we don't serve this area yet"
    yes = c.exchange("tok-s1", "POSTCODE", {"postal_code": " sw1a 1aa "})
    assert yes.screen == "DETAILS" and yes.data["area_text"] == "Good news: we serve Westminster, London."
    bad = c.exchange("tok-s1", "DETAILS", {"name": "A", "email": "nope", "phone": "555"})
    assert bad.screen == "DETAILS"
    assert bad.data["name_error"] == "Use at least 2 characters"
    assert bad.data["email_error"].startswith("Enter an email address")
    assert bad.data["phone_error"].startswith("Enter the number with its country code")
    assert bad.data["error_message"] == "Please fix the 3 highlighted fields."
    done = c.exchange("tok-s1", "DETAILS", {"name": " Ana ", "email": "Ana@Example.COM",
                                            "phone": "+44 20 7946 0958"})
    params = done.data["extension_message_response"]["params"]
    assert params == {"name": "Ana", "email": "ana@example.com", "phone": "+442079460958",
                      "postal_code": "SW1A1AA", "coverage": "verified", "flow_token": "tok-s1"}


def test_service_area_open_policy_accepts_and_marks_unverified(served, api):
    app, client = served()
    c = client("service_area")
    api.behave("500")
    reply = c.exchange("tok-s2", "POSTCODE", {"postal_code": "10001"})
    assert reply.screen == "DETAILS" and "We'll confirm that we serve 10001" in reply.data["area_text"]
    sessions = app.extensions["sessions"]
    assert sessions.unverified("tok-s2")["postal_code"]["value"] == "10001"
    done = c.exchange("tok-s2", "DETAILS", {"name": "Bo", "email": "bo@example.com", "phone": "+14155550100"})
    assert done.data["extension_message_response"]["params"]["coverage"] == "unverified"


def test_an_answered_resubmission_clears_the_unverified_mark(served, api):
    app, client = served()
    c = client("service_area")
    api.fail_next("500")
    c.exchange("tok-s4", "POSTCODE", {"postal_code": "90210"})
    assert "postal_code" in app.extensions["sessions"].unverified("tok-s4")
    c.exchange("tok-s4", "POSTCODE", {"postal_code": "60601"})  # the API answers this time
    assert app.extensions["sessions"].unverified("tok-s4") == {}


def test_details_without_a_checked_code_go_back_to_the_start(served):
    app, client = served()
    reply = client("service_area").exchange("tok-s3", "DETAILS", {"name": "Bo"})
    assert reply.screen == "POSTCODE" and "ZIP code first" in reply.data["error_message"]


# --- coupon_checkout -------------------------------------------------------------------------


@pytest.mark.parametrize("coupon, discount, total", [
    ("save10", "Discount (SAVE10): -$6.19", "Total: $55.71"),   # 10 % of 6190, half-up
    ("FIVE OFF", "Discount (FIVEOFF): -$5.00", "Total: $56.90"),
    ("", "No coupon", "Total: $61.90"),
])
def test_coupon_totals_are_computed_in_minor_units(served, coupon, discount, total):
    app, client = served()
    c = client("coupon_checkout")
    assert c.init("tok-c").data["subtotal_text"] == "Subtotal: $61.90"
    summary = c.exchange("tok-c", "CART", {"coupon": coupon})
    assert summary.screen == "SUMMARY"
    assert (summary.data["discount_text"], summary.data["total_text"]) == (discount, total)
    done = c.exchange("tok-c", "SUMMARY", {"confirm": True, "total_minor": 1})  # client's figures ignored
    params = done.data["extension_message_response"]["params"]
    assert params["subtotal_minor"] == 6190
    assert params["subtotal_minor"] - params["discount_minor"] == params["total_minor"]
    assert total.endswith(f"{params['total_minor'] // 100}.{params['total_minor'] % 100:02d}")


@pytest.mark.parametrize("coupon, message", [
    ("SUMMER23", "This coupon has expired"),
    ("BIG50", "This coupon needs an order of at least $200.00"),
    ("NOSUCH", "We don't know this coupon code"),
    ("bad-code!", "Use letters and digits only"),
])
def test_coupon_errors(served, coupon, message):
    app, client = served()
    reply = client("coupon_checkout").exchange("tok-c2", "CART", {"coupon": coupon})
    assert reply.screen == "CART" and reply.data["coupon_error"] == message
    assert reply.data["error_message"] == message and reply.data["subtotal_text"] == "Subtotal: $61.90"


def test_money_flows_stay_closed_even_if_the_policy_is_configured_open(served, api):
    app, client = served(PRICING_API_POLICY="open", INVENTORY_API_POLICY="open")
    api.behave("500")
    coupon = client("coupon_checkout").exchange("tok-c3", "CART", {"coupon": "SAVE10"})
    assert (coupon.screen == "CART"
            and coupon.data["error_message"].startswith("We can't check this right now"))
    stock = client("stock_order").exchange("tok-o4", "ORDER", {"sku": "MUG-01", "quantity": "1"})
    assert stock.screen == "ORDER" and stock.data["sku_error"] == "We can't check this right now"


# --- stock_order -----------------------------------------------------------------------------


def test_stock_order_checks_then_rechecks_on_confirm(served, api):
    app, client = served()
    c = client("stock_order")
    review = c.exchange("tok-o1", "ORDER", {"sku": "tee-m", "quantity": "2"})
    assert review.screen == "REVIEW"
    assert review.data == {"product_text": "2 × T-shirt (M) at $19.90", "total_text": "Total: $39.80"}
    api.data["inventory"]["TEE-M"]["available"] = 1  # sold in the meantime
    calls = api.calls("inventory")
    short = c.exchange("tok-o1", "REVIEW", {"confirm": True})
    assert api.calls("inventory") == calls + 1  # the confirm re-check is a fresh call
    assert short.screen == "REVIEW" and "Only 1 left now" in short.data["error_message"]
    api.data["inventory"]["TEE-M"]["available"] = 5
    done = c.exchange("tok-o1", "REVIEW", {"confirm": True})
    assert done.data["extension_message_response"]["params"] == {
        "sku": "TEE-M", "quantity": 2, "currency": "USD", "unit_price_minor": 1990, "total_minor": 3980,
        "flow_token": "tok-o1"}


@pytest.mark.parametrize("data, errors", [
    ({"sku": "NOPE-1", "quantity": "1"}, {"sku_error": "We don't have this product"}),
    ({"sku": "SOLD-OUT", "quantity": "1"}, {"sku_error": "Sorry, this product is sold out"}),
    ({"sku": "TEE-M", "quantity": "4"}, {"quantity_error": "Only 3 left"}),
    ({"sku": "", "quantity": "0"},
     {"sku_error": "This field is required", "quantity_error": "The minimum is 1"}),
    ({"sku": ["MUG-01"], "quantity": {"n": 1}}, {"sku_error": "This value isn't valid",
                                                "quantity_error": "This value isn't valid"}),
    ({"sku": "M" * 5000},
     {"sku_error": "Use at most 1000 characters", "quantity_error": "This field is required"}),
])
def test_stock_order_errors_and_hostile_input(served, data, errors):
    app, client = served()
    reply = client("stock_order").exchange("tok-o2", "ORDER", data)
    assert reply.status == 200 and reply.screen == "ORDER"
    for key, text in errors.items():
        assert reply.data[key] == text
    assert reply.data["error_message"]


def test_stock_confirm_when_the_api_is_down_is_a_clear_retry_message(served, api):
    app, client = served()
    c = client("stock_order")
    c.exchange("tok-o3", "ORDER", {"sku": "MUG-01", "quantity": "1"})
    api.behave("500")
    reply = c.exchange("tok-o3", "REVIEW", {"confirm": True})
    assert (reply.screen == "REVIEW"
            and reply.data["error_message"] == "We can't check the stock right now, please try again.")


# --- appointment -----------------------------------------------------------------------------


def next_weekday(offset: int = 1) -> str:
    d = date.today() + timedelta(days=offset)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d.isoformat()


def test_appointment_walks_date_slot_confirm(served):
    app, client = served()
    day = next_weekday()
    steps = play(app, client, "appointment", "tok-a1", date=day, slot="10:00")
    assert [s.screen for s in steps] == ["BOOK", "CONFIRM", "SUCCESS"], [s.data for s in steps]
    assert steps[-1].data["extension_message_response"]["params"] == {"date": day, "slot": "10:00",
                                                                     "flow_token": "tok-a1"}
    assert app.extensions["engine"].deps["slots"].owner(day, "10:00") == (None, "tok-a1")


def test_a_held_slot_is_not_offered_to_others_and_cannot_be_taken(served):
    app, client = served()
    c = client("appointment")
    day = next_weekday()
    loaded = c.exchange("tok-a2", "BOOK", {"step": "day_chosen", "date": day})
    assert loaded.data["show_slots"] is True and {"id": "09:00", "title": "09:00"} in loaded.data["slots"]
    held = c.exchange("tok-a2", "BOOK", {"step": "time_chosen", "date": day, "slot": "09:00"})
    assert held.data["show_hold"] is True and "held for you" in held.data["hold_text"]
    other = c.exchange("tok-a3", "BOOK", {"step": "day_chosen", "date": day})
    assert "09:00" not in [s["id"] for s in other.data["slots"]]
    grab = c.exchange("tok-a3", "BOOK", {"step": "time_chosen", "date": day, "slot": "09:00"})
    assert grab.data["slot_error"].startswith("Someone just took this time")
    assert grab.data["show_slot_error"] is True  # Dropdown has no error-message: a caption shows it
    # Picking another time releases the first hold.
    c.exchange("tok-a2", "BOOK", {"step": "time_chosen", "date": day, "slot": "09:30"})
    assert c.exchange("tok-a3", "BOOK",
                      {"step": "time_chosen", "date": day, "slot": "09:00"}).data["show_hold"] is True


@pytest.mark.parametrize("data, key, text", [
    ({"step": "day_chosen", "date": "2001-01-01"}, "date_error", "Pick a date between"),
    ({"step": "day_chosen", "date": "not-a-date"}, "date_error", "Pick a date"),
    ({"step": "day_chosen"}, "date_error", "Pick a day"),
])
def test_appointment_date_errors(served, data, key, text):
    app, client = served()
    reply = client("appointment").exchange("tok-a4", "BOOK", data)
    assert reply.screen == "BOOK" and reply.data[key].startswith(text)


def test_a_closed_day_has_no_slots(served, api):
    app, client = served()
    day = next_weekday()
    api.data["calendar"][day] = []
    reply = client("appointment").exchange("tok-a5", "BOOK", {"step": "day_chosen", "date": day})
    assert reply.data["date_error"] == "No free times that day; please pick another"
    assert reply.data["show_slots"] is False


def test_a_member_api_that_keeps_failing_hands_the_session_to_the_fallback(served, api):
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from workers.recovery import job_id

    app, client = served()
    api.behave("500")
    redis = app.extensions["redis"]
    for attempt in range(1, 4):
        reply = client("member_check").exchange("tok-fb", "MEMBER_LOOKUP", {"member_id": "VIP999"})
        assert reply.data["member_id_error"] == "We can't check this right now"
        queued = Job.exists(job_id("fb", "tok-fb"), connection=redis)
        assert queued == (attempt == 3), attempt  # the third closed failure, not before
    job = Job.fetch(job_id("fb", "tok-fb"), connection=redis, serializer=JSONSerializer)
    assert job.func_name == "workers.recovery.fallback" and job.args == ["tok-fb", "lookup_unavailable"]
