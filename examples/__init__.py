"""The one place flows are registered: add a module here and its endpoint exists.

``FLOWS`` are the business's own, always served; ``DEMO`` are the five demo flows of the README,
served only with DEMO_FLOWS (on in development, off in production). The offline tools (flask
flows lint, simulate) know both.
"""
from examples import appointment, coupon_checkout, member_check, service_area, stock_order

FLOWS: list = []
DEMO = [member_check.flow, service_area.flow, coupon_checkout.flow, stock_order.flow, appointment.flow]
CATALOG = FLOWS + DEMO


def served(demo: bool) -> list:
    """The flows this app serves."""
    return FLOWS + (DEMO if demo else [])
