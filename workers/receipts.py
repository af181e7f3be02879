"""Follow-up media after a completion: a receipt sent after the text confirmation.

Either a configured image (``RECEIPT_IMAGE_URL``) or a PDF summary of what the user submitted
(``RECEIPT_PDF``), rendered from ``TEMPLATE`` and served by this app at a signed, expiring link
(``messaging/media.py``, ``PUBLIC_BASE_URL``). Its own job, enqueued once the confirmation job is
through, and its own effect (``receipt:<wamid>``, ``workers/effects.py``, at most once): a receipt
that fails — too large, a type the channel refuses, a link it cannot fetch — is recorded on the
session timeline as ``receipt_failed`` and never holds the confirmation back; one whose worker died
mid-send is not sent again but recorded as ``unknown_outcome`` (timeline, fallback list). The
router picks the channel, so in ``hybrid`` mode a receipt the Cloud API refuses goes through
WASenderApi's documentUrl/imageUrl.
"""
from __future__ import annotations

import logging
import time

from flask import current_app

from flows.identity import User
from flows.redact import wamid
from flows.sessions import short
from messaging import fallback, pdf
from messaging.graph import GraphError
from messaging.outbound import Outbound
from messaging.router import Refused
from messaging.wasender import WASenderError
from workers.effects import SKIP, Effects, nothing_sent, record_sent
from workers.queues import LOW, enqueue_once, is_final_attempt, retry_from

log = logging.getLogger("flowgate.receipts")

CALLBACK_PREFIX = "receipt:"  # biz_opaque_callback_data of a receipt: its status webhook finds it
TEMPLATE = {
    "title": "Receipt — {flow_title}",
    "head": ["Received: {received}", "Reference: {reference}", ""],
    "field": "{label}: {value}",
}
HIDDEN_FIELDS = ("flow_token",)


def configured(cfg) -> bool:
    return bool(cfg["RECEIPT_IMAGE_URL"] or cfg["RECEIPT_PDF"])


def enqueue_receipt(redis, cfg, sid: str) -> None:
    """Called by the completion job after its confirmation; the unique id keeps it to one job."""
    if not configured(cfg):
        return
    enqueue_once(redis, "workers.receipts.send_receipt", sid, queue_name=LOW, job_id=f"receipt-{sid}",
                 retry=retry_from(cfg))


def summary_lines(document: dict, flow_title: str) -> tuple[str, list[str]]:
    """The receipt's title and lines: the template filled with the submitted values."""
    received = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(
        document["received_at"] if document.get("received_at") is not None else time.time()))
    title = TEMPLATE["title"].format(flow_title=flow_title)
    lines = [line.format(received=received, reference=document["id"]) for line in TEMPLATE["head"]]
    for key, value in (document.get("response") or {}).items():
        if key in HIDDEN_FIELDS:
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        lines.append(TEMPLATE["field"].format(label=key.replace("_", " ").capitalize(), value=shown))
    return title, lines


def build(document: dict) -> Outbound:
    """The receipt as an Outbound: the configured image, else the PDF at its signed link."""
    ext, cfg = current_app.extensions, current_app.config
    key = CALLBACK_PREFIX + document["id"]
    caption, sender_id = cfg["RECEIPT_CAPTION"], document.get("phone_number_id")
    # The user's phone, or their BSUID when they completed the Flow without sharing one.
    to = User(phone=document.get("from"), bsuid=document.get("user_id"))
    if cfg["RECEIPT_IMAGE_URL"]:
        return Outbound(to=to, text=caption, key=key, image_url=cfg["RECEIPT_IMAGE_URL"],
                        sender_id=sender_id)
    flow = ext["flows"].get(document.get("flow") or "")
    title, lines = summary_lines(document, getattr(flow, "title", None) or "your form")
    file_name = f"receipt-{document['id'][-8:]}.pdf"
    url = ext["media"].put(document["id"], pdf.render(title, lines), "application/pdf", file_name)
    return Outbound(to=to, text=caption, key=key, document_url=url, file_name=file_name,
                    sender_id=sender_id)


def send_receipt(sid: str) -> str:
    ext, cfg = current_app.extensions, current_app.config
    redis, sessions = ext["redis"], ext["sessions"]
    document = ext["records"].submissions.get(sid)
    if document is None or not configured(cfg):
        return "skipped"
    token = document.get("flow_token")
    # Built (and the PDF stored) before the effect starts: a Redis error here leaves nothing
    # half-done, and every retry stores the same file under the same id.
    try:
        out, problem = build(document), None
    except ValueError as exc:  # PUBLIC_BASE_URL missing: nothing a retry can fix
        out, problem = None, str(exc)

    def send() -> dict:
        if out is None:
            return {"failed": problem}
        try:
            return ext["router"].deliver(out, final_attempt=is_final_attempt()).to_dict()
        except Refused as exc:
            return {"failed": exc.reason}
        except (GraphError, WASenderError) as exc:
            if is_final_attempt() and nothing_sent(exc):
                return {"failed": str(exc)[:300]}  # retries exhausted: record it, do not raise
            raise  # retryable: released by Effects, retried by RQ (a timeout: left ambiguous)

    outcome = Effects(redis, cfg["EFFECT_LEASE_SECONDS"]).once(
        CALLBACK_PREFIX + document["message_id"], send, safe_to_retry=nothing_sent, when_lost=SKIP)
    result = outcome.result or {}
    if out is not None:
        record_sent(result, out.to, key=out.key, token=token)
    if outcome.state == "lost":
        # An earlier attempt died mid-send: the receipt may or may not have arrived. Not resent.
        log.warning("receipt for %s: outcome unknown (an attempt died mid-send)",
                    wamid(document["message_id"]))
        fallback.hand_over(redis, sessions, reason="unknown_outcome", to=document["from"], token=token,
                           message_id=document["message_id"], detail="receipt")
        return "unknown"
    if outcome.state != "performed":
        return f"already_{outcome.state}"
    if "failed" in result:
        log.warning("receipt for %s not sent: %s (token %s)", wamid(document["message_id"]),
                    result["failed"], short(token))
        if token:
            sessions.note(token, "receipt_failed", result["failed"][:300])
        return "failed"
    if token:
        sessions.note(token, "receipt_sent", f"{result['detail']} via {result['channel']}")
    return "sent"


def failed_status(callback: str | None, code: int | None, title: str = "") -> bool:
    """A ``failed`` status webhook for a receipt (Meta could not fetch or take the media after
    accepting the request): recorded on the session. True if the status was a receipt's."""
    if not callback or not callback.startswith(CALLBACK_PREFIX):
        return False
    ext, cfg = current_app.extensions, current_app.config
    document = ext["records"].submissions.get(callback[len(CALLBACK_PREFIX):])
    if document and document.get("flow_token"):
        ext["sessions"].note(document["flow_token"], "receipt_failed",
                             f"status failed, code {code}{': ' + title if title else ''}"[:300])
    return True
