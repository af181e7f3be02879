"""The one place flows are registered: add a module here and its endpoint exists."""
from flows.catalog import appointment, coupon_checkout, member_check, service_area, stock_order

CATALOG = [member_check.flow, service_area.flow, coupon_checkout.flow, stock_order.flow, appointment.flow]
