"""coupon_checkout: a coupon validated by the pricing API; the total is computed here.

Money is integer minor units (cents) end to end; the discount is computed server-side from the
pricing API's record, never taken from the client. Confirming re-checks the coupon (a cache hit).
"""
from pathlib import Path

from validation.checks import length, pattern
from validation.money import money
from flows.protocol import Finish, Screen
from flows.registry import Flow, Lookup
from validation.forms import Field, Form, no_spaces, upper

# money: never accept an unchecked coupon
flow = Flow("coupon_checkout", Path(__file__).with_suffix(".json"), title="Coupon checkout",
            lookups=[Lookup("pricing", settings="PRICING_API", policy="closed", path="/coupons")],
            categories=("OTHER",))

CURRENCY = "USD"
CART = [  # (item, unit price in cents, quantity): the demo's fixed basket
    ("Espresso beans 1 kg", 2450, 2),
    ("Grinder cleaning tablets", 1290, 1),
]
SUBTOTAL = sum(price * qty for _, price, qty in CART)


def discount_minor(coupon: dict, subtotal: int) -> int:
    """Half-up rounding for percentages; never more than the subtotal. ValueError on a bad record."""
    kind = coupon.get("kind")
    if kind == "percent":
        pct = coupon.get("percent")
        if not isinstance(pct, int) or not 0 < pct <= 100:
            raise ValueError("percent")
        off = (subtotal * pct + 50) // 100
    elif kind == "amount":
        off = coupon.get("amount_minor")
        if not isinstance(off, int) or off <= 0:
            raise ValueError("amount_minor")
    else:
        raise ValueError("kind")
    return min(off, subtotal)


def usable(coupon: dict):
    if coupon.get("active") is not True:
        return "expired"
    minimum = coupon.get("min_subtotal_minor", 0)
    if isinstance(minimum, int) and SUBTOTAL < minimum:
        return f"This coupon needs an order of at least {money(minimum)}"
    try:
        discount_minor(coupon, SUBTOTAL)
    except ValueError:
        return "unusable"
    return None


COUPON = Form(Field(
    "coupon", length(max=20), pattern(r"[A-Z0-9]+"), normalise=[no_spaces, upper],
    lookup="pricing", policy="closed", verify=usable, echo=True,
    messages={"not_found": "We don't know this coupon code", "expired": "This coupon has expired",
              "unusable": "This coupon can't be used right now", "pattern": "Use letters and digits only"},
))


def cart_data() -> dict:
    items = "\n".join(f"{qty} × {name}: {money(price * qty)}" for name, price, qty in CART)
    return {"items_text": items, "subtotal_text": f"Subtotal: {money(SUBTOTAL)}"}


def summary_data(code: str, off: int) -> dict:
    return {
        "subtotal_text": f"Subtotal: {money(SUBTOTAL)}",
        "discount_text": f"Discount ({code}): {money(-off)}" if code else "No coupon",
        "total_text": f"Total: {money(SUBTOTAL - off)}",
    }


@flow.on_init
def start(ctx):
    return Screen("CART", {**cart_data(), **COUPON.neutral()})


@flow.on_submit("CART", COUPON, data=lambda ctx: cart_data())
def apply_coupon(ctx, result):
    code = result.values["coupon"]
    off = discount_minor(result.records["coupon"], SUBTOTAL) if code else 0
    ctx.carry(coupon=code)
    return Screen("SUMMARY", summary_data(code, off))


@flow.on_exchange("SUMMARY")
def place_order(ctx):
    # Price from the carried code and the pricing API again, never from what the client echoes.
    result = COUPON.check(ctx, data={"coupon": ctx.carried.get("coupon", "")})
    if not result.ok:  # the coupon died since SUMMARY: stay, say so (going back is the user's call)
        return Screen("SUMMARY", summary_data("", 0), error_message=
                      f"{next(iter(result.errors.values()))}. Go back to change the coupon.")
    code = result.values["coupon"]
    off = discount_minor(result.records["coupon"], SUBTOTAL) if code else 0
    return Finish({"coupon": code, "currency": CURRENCY, "subtotal_minor": SUBTOTAL,
                   "discount_minor": off, "total_minor": SUBTOTAL - off})
