"""member_check: the seed article's use case, done to the real protocol.

Submit on the Footer (TextInput has no actions; protocol doc 6.8), look the ID up, and either come
back to the same screen with a field error and a snackbar, or move on to a confirmation screen.
"""
from pathlib import Path

from flows.protocol import Finish, Screen
from flows.registry import Flow

flow = Flow("member_check", Path(__file__).with_suffix(".json"), title="Member check")

NOT_FOUND = "We couldn't find that member ID"


@flow.on_init
def start(ctx):
    # Every declared key gets a neutral value on first display: never null.
    prefill = ctx.carried.get("member_id", "")
    return Screen("MEMBER_LOOKUP", {"member_id_error": "", "member_id_value": prefill})


@flow.on_exchange("MEMBER_LOOKUP")
def lookup(ctx):
    member_id = str(ctx.data.get("member_id", "")).strip().upper()[:40]
    member = ctx.deps["members"].find(member_id) if member_id else None
    if member is None:
        return Screen(
            "MEMBER_LOOKUP",
            {"member_id_error": NOT_FOUND, "member_id_value": member_id},
            error_message=f"{NOT_FOUND}. Check your card and try again.",
        )
    ctx.carry(member_id=member_id)
    return Screen("CONFIRM", {"member_id": member_id, "member_name": member["name"], "tier": member["tier"]})


@flow.on_exchange("CONFIRM")
def confirm(ctx):
    member_id = str(ctx.data.get("member_id", "")).strip().upper()[:40]
    member = ctx.deps["members"].find(member_id)
    if member is None:  # the payload echoes screen data; never trust it blindly
        return Screen("MEMBER_LOOKUP", {"member_id_error": NOT_FOUND, "member_id_value": ""},
                      error_message=NOT_FOUND)
    return Finish({"member_id": member_id, "member_name": member["name"]})
