"""member_check: the seed article's use case, done to the real protocol.

Submit on the Footer (TextInput has no actions; protocol doc 6.8), look the ID up in the member
API, and either come back to the same screen with a field error and a snackbar, or move on to a
confirmation screen.
"""
from pathlib import Path

from validation.checks import length, pattern, required
from flows.protocol import Finish, Screen
from flows.registry import Flow, Lookup
from validation.forms import Field, Form, trim, upper

flow = Flow("member_check", Path(__file__).with_suffix(".json"), title="Member check",
            lookups=[Lookup("members", settings="MEMBER_API", policy="closed", path="/members")],
            categories=("SIGN_IN",))

NOT_FOUND = "We couldn't find that member ID"

LOOKUP = Form(Field(
    "member_id", required(), length(max=20), pattern(r"[A-Z0-9-]+"),
    normalise=[trim, upper], lookup="members", echo=True,
    verify=lambda member: "expired" if member.get("status", "active") != "active" else None,
    messages={"not_found": NOT_FOUND, "pattern": "Use only the letters and digits on your card",
              "expired": "This membership has expired",
              "not_found_snackbar": f"{NOT_FOUND}. Check your card and try again."},  # the hint helps here
))


@flow.on_init
def start(ctx):
    # Every declared key gets a neutral value on first display: never null.
    return Screen("MEMBER_LOOKUP", LOOKUP.neutral({"member_id": ctx.carried.get("member_id", "")}))


@flow.on_submit("MEMBER_LOOKUP", LOOKUP)  # an ID that fails comes back here with its error
def lookup(ctx, result):
    member_id = result.values["member_id"]
    # With MEMBER_API_POLICY=open an unanswered ID is accepted and re-checked after completion.
    member = result.records.get("member_id") or {"tier": "To be confirmed"}
    ctx.carry(member_id=member_id)
    return Screen("CONFIRM", {"member_id": member_id, "member_name": _name(member, member_id),
                              "tier": str(member.get("tier") or "Member")[:40]})


@flow.on_exchange("CONFIRM")
def confirm(ctx):
    # The payload echoes screen data; never trust it blindly: look it up again (a cache hit).
    result = LOOKUP.check(ctx)
    if not result.ok:
        return result.screen("MEMBER_LOOKUP", {"member_id_value": ""})
    member_id = result.values["member_id"]
    return Finish({"member_id": member_id,
                   "member_name": _name(result.records.get("member_id") or {}, member_id)})


def _name(member: dict, member_id: str) -> str:
    return str(member.get("name") or member_id)[:80]  # the API's record is input too
