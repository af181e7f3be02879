"""service_area: a lead form that checks the ZIP/postal code against the coverage API first.

Coverage uses the *open* policy: if the API cannot answer in time the lead is still taken, the
code is marked unverified on the session and workers/recheck.py looks it up after completion.
"""
from pathlib import Path

from validation.checks import email, length, pattern, phone, required
from flows.protocol import Finish, Screen
from flows.registry import Flow, Lookup
from validation.forms import Field, Form, lower, no_spaces, phone_chars, trim, upper

# a lead is worth keeping: re-checked after completion
flow = Flow("service_area", Path(__file__).with_suffix(".json"), title="Service area",
            lookups=[Lookup("coverage", settings="COVERAGE_API", policy="open", path="/coverage")],
            categories=("LEAD_GENERATION",))

POSTCODE = Form(Field(
    "postal_code", required(), pattern(r"[A-Z0-9]{3,8}"), normalise=[no_spaces, upper],
    lookup="coverage", echo=True,
    messages={"pattern": "Enter a ZIP or postal code, like 10001",
              "not_found": "Sorry, we don't serve this area yet"},
))
DETAILS = Form(
    Field("name", required(), length(min=2, max=60)),
    Field("email", required(), email(), normalise=[trim, lower]),
    Field("phone", required(), phone(), normalise=[phone_chars]),
)


@flow.on_init
def start(ctx):
    return Screen("POSTCODE", POSTCODE.neutral())


@flow.on_submit("POSTCODE", POSTCODE)
def check_area(ctx, result):
    code = result.values["postal_code"]
    verified = "postal_code" not in result.unverified
    area = str((result.records.get("postal_code") or {}).get("area") or code)[:80] if verified else ""
    ctx.carry(postal_code=code, coverage="verified" if verified else "unverified", area=area)
    return Screen("DETAILS", {"area_text": _area_text(code, area), **DETAILS.neutral()})


@flow.on_exchange("DETAILS")
def send_lead(ctx):
    code = ctx.carried.get("postal_code")
    if not code:  # DETAILS without a checked code: start over rather than take an unchecked lead
        return Screen("POSTCODE", POSTCODE.neutral(), error_message="Please enter your ZIP code first.")
    result = DETAILS.check(ctx)
    if not result.ok:
        return result.screen("DETAILS", {"area_text": _area_text(code, ctx.carried.get("area"))})
    return Finish({**result.values, "postal_code": code, "coverage": ctx.carried.get("coverage")})


def _area_text(code: str, area: str | None) -> str:
    return (f"Good news: we serve {area}." if area
            else f"We'll confirm that we serve {code} and get back to you.")
