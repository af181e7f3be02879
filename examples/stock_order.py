"""stock_order: SKU and quantity checked against the inventory API before the order can be
confirmed; confirming re-checks the stock with a fresh call (no cache), since it may have moved.
"""
from pathlib import Path

from validation.checks import integer, pattern, required
from validation.money import money
from flows.protocol import Finish, Screen
from flows.registry import Flow, Lookup
from validation.forms import Field, Form, no_spaces, trim, upper

flow = Flow("stock_order", Path(__file__).with_suffix(".json"), title="Stock order",
            lookups=[Lookup("inventory", settings="INVENTORY_API", policy="closed", path="/inventory")],
            categories=("OTHER",))

ORDER = Form(
    Field("sku", required(), pattern(r"[A-Z0-9-]{2,20}"), normalise=[no_spaces, upper],
          lookup="inventory", policy="closed", echo=True, verify=lambda item: _problem(item),
          messages={"not_found": "We don't have this product", "pattern": "Use the code on the product page",
                    "sold_out": "Sorry, this product is sold out",
                    "bad_record": "This product can't be ordered right now"}),
    Field("quantity", required(), integer(min=1, max=99), normalise=[trim]),
)
RECHECK_FAILED = "We can't check the stock right now, please try again."


def _problem(item: dict):
    if not isinstance(item.get("available"), int) or not isinstance(item.get("unit_price_minor"), int):
        return "bad_record"
    return "sold_out" if item["available"] <= 0 else None


def review_data(item: dict, quantity: int) -> dict:
    name = str(item.get("name") or item.get("sku") or "item")[:60]
    return {"product_text": f"{quantity} × {name} at {money(item['unit_price_minor'])}",
            "total_text": f"Total: {money(item['unit_price_minor'] * quantity)}"}


@flow.on_init
def start(ctx):
    return Screen("ORDER", ORDER.neutral())


@flow.on_submit("ORDER", ORDER)
def check_stock(ctx, result):
    sku, quantity = result.values["sku"], result.values["quantity"]
    if quantity > result.records["sku"]["available"]:
        return result.fail("quantity", f"Only {result.records['sku']['available']} left")  # back to ORDER
    ctx.carry(sku=sku, quantity=quantity)
    return Screen("REVIEW", review_data(result.records["sku"], quantity))


@flow.on_exchange("REVIEW")
def confirm(ctx):
    sku, quantity = ctx.carried.get("sku"), ctx.carried.get("quantity")
    if not sku or not isinstance(quantity, int):
        return Screen("ORDER", ORDER.neutral(), error_message="Please choose a product first.")
    answer = ctx.lookup("inventory", sku, fresh=True)  # the stock may have moved: no cache
    if answer.unavailable:
        return Screen("REVIEW",
                      {"product_text": f"{quantity} × {sku}", "total_text": "Total: to be confirmed"},
                      error_message=RECHECK_FAILED)
    item = answer.record if answer.found and _problem(answer.record) is None else None
    if item is None or item["available"] < quantity:
        left = item["available"] if item else 0
        return Screen("REVIEW",
                      {"product_text": f"{quantity} × {sku}", "total_text": f"Only {left} left now"},
                      error_message=f"Only {left} left now. Go back to change the quantity.")
    return Finish({"sku": sku, "quantity": quantity, "currency": str(item.get("currency", "USD"))[:3],
                   "unit_price_minor": item["unit_price_minor"],
                   "total_minor": item["unit_price_minor"] * quantity})
