"""POST /flows/<flow_name>: the encrypted data endpoint Meta calls.

Thin on purpose: size, shape, signature, decryption, then the engine decides and the reply is
encrypted with the request's key and inverted IV. Every failure has its own status (413, 400, 432,
421, 427) and never a traceback. The deadline starts when the request arrives and bounds every
lookup and every Redis call the engine makes (``redis_budget.within``): whatever Redis does, the
reply leaves in time.
"""
from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, g, request

import redis_budget
from blueprints import metering
from flows.budget import Deadline
from flows.crypto import DecryptionError, decrypt_request, flip_iv, seal
from flows.protocol import FlowRequest, ProtocolError
from flows.signing import HEADER

bp = Blueprint("endpoint", __name__)
log = logging.getLogger("flowgate.endpoint")
bp.before_request(metering.start_clock)
bp.after_request(metering.record)

FIELDS = ("encrypted_flow_data", "encrypted_aes_key", "initial_vector")


def _plain(status: int, text: str = "") -> Response:
    return Response(text, status=status, mimetype="text/plain")


def parse_body(raw: bytes) -> dict:
    """The three base64 strings, or a ValueError whose text is the 400's reason."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError("body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("body is not a JSON object")
    for name in FIELDS:
        if not isinstance(body.get(name), str):
            raise ValueError(f"{name} missing or not a string")
    return body


@bp.post("/flows/<flow_name>")
def flow_endpoint(flow_name: str):
    deadline = Deadline(current_app.config["FLOW_DEADLINE_SECONDS"])
    ext = current_app.extensions
    flow = ext["flows"].get(flow_name)
    if flow is None:
        return _plain(404, "unknown flow")
    request.max_content_length = current_app.config["FLOW_MAX_REQUEST_BYTES"]
    raw = request.get_data(cache=False)  # raises 413 past the limit, chunked too (blueprints/bodies.py)
    try:
        body = parse_body(raw)
    except ValueError as exc:
        return _plain(400, str(exc))
    verifier = ext["verifier"]
    if verifier.enabled and not verifier.check(request.headers.get(HEADER), raw):
        log.warning("flow=%s signature %s", flow_name,
                    "missing" if HEADER not in request.headers else "mismatch")
        return _plain(432)
    try:
        envelope = decrypt_request(body, ext["keyring"])
    except DecryptionError as exc:
        log.warning("flow=%s cannot decrypt: %s failed", flow_name, exc.step)
        return _plain(421)
    if envelope.key_used == "previous":
        log.info("flow=%s request decrypted with the previous key (rotation in progress)", flow_name)
    try:
        flow_request = FlowRequest.parse(envelope.payload)
    except ProtocolError as exc:
        return _plain(400, str(exc))
    with redis_budget.within(deadline):
        outcome = ext["engine"].handle(flow, flow_request, deadline)
    g.flow_request, g.flow_outcome = flow_request, outcome  # for blueprints.metering
    text = seal(outcome.plaintext, envelope.aes_key, flip_iv(envelope.iv))
    return _plain(outcome.status, text)
