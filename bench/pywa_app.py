"""The comparison endpoint: member_check's MEMBER_LOOKUP screen on pywa's Flask integration.

Served by the same gunicorn.conf.py (``gunicorn --config gunicorn.conf.py bench.pywa_app:app``)
with the same key, so the only difference measured is the endpoint code. It answers the same
ping and the same MEMBER_LOOKUP ``data_exchange`` with the same CONFIRM screen data, and the
benchmark checks both replies decrypt to the same screen before timing anything.

What pywa does not do and Flowgate does (so the comparison flatters pywa): pywa's flow route
checks no X-Hub-Signature-256 and keeps no Flow session in Redis (Flowgate: one HMAC and three
Redis round trips per data_exchange).

pywa must never reach Meta: it gets a dummy phone id and token, no callback_url (the only
start-up network call pywa makes is registering one), validate_updates off (no app secret for
the webhook route, which the benchmark never calls), and an audit hook that refuses any
connection or DNS lookup beyond loopback, so a future pywa that phoned home would fail loudly.
"""
from __future__ import annotations

import ipaddress
import sys

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", ""}


def _loopback_only(event: str, args: tuple) -> None:
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else None  # AF_UNIX paths are local
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if host is None:
        return
    host = host.decode() if isinstance(host, bytes) else str(host)
    try:
        local = host in LOOPBACK_NAMES or ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        local = False
    if not local:
        raise RuntimeError(f"bench.pywa_app: refused a network call to {host!r} (loopback only)")


sys.addaudithook(_loopback_only)

# Imports after the hook on purpose: nothing pywa does at import or start-up escapes it.
import flask  # noqa: E402
from pywa import WhatsApp  # noqa: E402
from pywa.types.flows import FlowRequest, FlowResponse  # noqa: E402

import config  # noqa: E402  (the one module that reads the environment)

MEMBERS = {"MEM123": {"name": "Ana Silva", "tier": "Gold"}, "VIP999": {"name": "Victor Ito", "tier": "VIP"}}
NOT_FOUND = "We couldn't find that member ID"

app = flask.Flask(__name__)


@app.get("/health")
def health():
    return {"status": "ok"}


wa = WhatsApp(
    phone_id="0",  # dummy: nothing here sends messages
    token="bench-dummy-token",
    server=app,
    verify_token="bench-only",  # pywa requires one to mount its webhook route
    validate_updates=False,
    business_private_key=config.load()["FLOW_PRIVATE_KEY"],
)


@wa.on_flow_request("/flows/member_check")
def member_check(_: WhatsApp, req: FlowRequest) -> FlowResponse:
    # INIT and anything not handled below: the first screen, as Flowgate's flow does.
    return req.respond(screen="MEMBER_LOOKUP", data={"member_id_error": "", "member_id_value": ""})


@member_check.on_data_exchange(screen="MEMBER_LOOKUP")
def lookup(_: WhatsApp, req: FlowRequest) -> FlowResponse:
    member_id = str(req.data.get("member_id", "")).strip().upper()[:40]
    member = MEMBERS.get(member_id)
    if member is None:
        return req.respond(screen="MEMBER_LOOKUP",
                           data={"member_id_error": NOT_FOUND, "member_id_value": member_id},
                           error_message=f"{NOT_FOUND}. Check your card and try again.")
    return req.respond(screen="CONFIRM", data={"member_id": member_id, "member_name": member["name"],
                                               "tier": member["tier"]})
