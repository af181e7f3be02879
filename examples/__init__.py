"""The five demo flows of the README and their backend (``demo_api``): examples of the handler API,
served only with DEMO_FLOWS (on in development, off in production). The framework finds them the
way it finds a business's flows (flows/loader.py), by the package name in configuration.
"""
from examples import appointment, coupon_checkout, member_check, service_area, stock_order

FLOWS = [member_check.flow, service_area.flow, coupon_checkout.flow, stock_order.flow, appointment.flow]
