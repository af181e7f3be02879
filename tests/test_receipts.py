"""Follow-up media after a completion: a PDF summary or a configured image, sent after the text
confirmation, by the Cloud API (media by link) or WASenderApi (documentUrl / imageUrl).

The stand-ins fetch every link over loopback as the real APIs do and refuse what they refuse
(Graph 131052 / 131053, WASender 422), so the PDF is really served by the app at its signed URL.
"""
from __future__ import annotations

import re
import time

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from app import create_app
from conftest import LiveServer, wait_for
from messaging import pdf
from stack import Stack, stack_config
from standins.media_host import MediaHostStandIn
from standins.meta_webhooks import completion, status
from workers import completion as completion_jobs
from workers import inbound as inbound_jobs
from workers import receipts

CONFIRMATION = "Thank you! We have received your answers."
CAPTION = "Your receipt"


@pytest.fixture
def host():
    with MediaHostStandIn() as h:
        yield h


def fresh_completion(token: str, values: dict | None = None) -> dict:
    message = completion(token=token, values=values or {"member_id": "MEM123", "member_name": "Ana (VIP)"})
    message["timestamp"] = str(int(time.time()))  # just now: the 24-hour window is open
    return message


def kinds(graph) -> list[str]:
    """The type of every message POSTed to the Graph stand-in (accepted or refused)."""
    return [b["type"] for b in graph.sent_messages()]


def timeline(app, token: str, event: str) -> list[str]:
    return [e["detail"] for e in app.extensions["sessions"].timeline(token) if e["event"] == event]


# --- the PDF itself --------------------------------------------------------------------------------
def test_pdf_is_well_formed_and_carries_the_lines():
    lines = ["Member id: MEM(1)", "Name: José \\ 日本"] + [f"line {i}" for i in range(70)]
    doc = pdf.render("Receipt — Member check", lines)
    assert doc.startswith(b"%PDF-1.4\n") and doc.endswith(b"%%EOF\n")
    xref = int(re.search(rb"startxref\n(\d+)\n", doc).group(1))
    assert doc[xref:xref + 4] == b"xref"
    count = int(re.search(rb"xref\n0 (\d+)\n", doc).group(1))
    offsets = [int(x) for x in re.findall(rb"(\d{10}) 00000 n \n", doc)]
    assert len(offsets) == count - 1
    for number, offset in enumerate(offsets, start=1):  # every entry points at its object
        assert doc[offset:].startswith(f"{number} 0 obj\n".encode())
    for match in re.finditer(rb"<< /Length (\d+) >>\nstream\n", doc):
        length = int(match.group(1))
        assert doc[match.end() + length:].startswith(b"\nendstream")
    assert b"/Count 2" in doc  # 72 lines: two pages
    assert b"(Member id: MEM\\(1\\)) Tj" in doc
    assert "(Name: José \\\\ ??) Tj".encode("cp1252") in doc  # cp1252; the rest as "?"
    assert "(Receipt — Member check) Tj".encode("cp1252") in doc


def test_summary_lines_come_from_the_template():
    title, lines = receipts.summary_lines(
        {"id": "sub_1", "received_at": 0, "response": {"member_id": "MEM123", "flow_token": "fg_x",
                                                       "toppings": ["a", "b"]}}, "Member check")
    assert title == "Receipt — Member check"
    assert lines == ["Received: 1970-01-01 00:00 UTC", "Reference: sub_1", "", "Member id: MEM123",
                     "Toppings: a, b"]


# --- GET /media/<id> -------------------------------------------------------------------------------
def test_media_links_are_signed_and_expire(app_config):
    app = create_app({**app_config, "PUBLIC_BASE_URL": "https://flowgate.example", "MEDIA_URL_TTL": 60})
    store, client = app.extensions["media"], app.test_client()
    url = store.put("sub_abc", b"%PDF-1.4 test", "application/pdf", "receipt.pdf")
    assert url.startswith("https://flowgate.example/media/")
    path = url[len("https://flowgate.example"):]
    ok = client.get(path)
    assert ok.status_code == 200 and ok.data == b"%PDF-1.4 test" and ok.mimetype == "application/pdf"
    assert 'filename="receipt.pdf"' in ok.headers["Content-Disposition"]
    media_id, exp = re.search(r"/media/(\w+)\?exp=(\d+)", path).groups()
    assert client.get(path[:-4] + "0000").status_code == 403  # altered signature
    assert client.get(path.replace(f"exp={exp}", f"exp={int(exp) + 3600}")).status_code == 403  # extended
    assert client.get(f"/media/{media_id}?exp={exp}").status_code == 400
    assert client.get(f"/media/{media_id}?exp=soon&sig=ab").status_code == 400
    assert client.get(f"/media/{media_id}?exp=²&sig=ab").status_code == 400  # a digit, not a number
    assert client.get(f"/media/{media_id}?exp={exp}&sig=é").status_code == 403
    assert client.get("/media/..%2f..%2fetc?exp=1&sig=ab").status_code == 404
    other = "0" * 32  # the right shape, a valid signature, nothing stored
    assert client.get(f"/media/{other}?exp={exp}&sig={store.signature(other, int(exp))}").status_code == 404
    old = store.put("sub_old", b"x", "application/pdf", "old.pdf", now=time.time() - 120)
    assert client.get(old[len("https://flowgate.example"):]).status_code == 410


# --- end to end: signed webhook, real worker, the stand-in fetching the PDF ------------------------
def test_pdf_receipt_follows_the_confirmation_once(app_config, graph, wasender, keypair):
    cfg = stack_config(app_config, graph, wasender, RECEIPT_PDF="true")
    with Stack(cfg, keypair, public=True) as stack:
        message = fresh_completion("fg_receipt_e2e")
        assert stack.whatsapp(message)["enqueued"] == 1
        wait_for(lambda: len(graph.sent_messages()) == 2, timeout=15, message="confirmation and receipt")
        assert stack.whatsapp(message)["duplicates"] == 1  # Meta redelivers
        sid = completion_jobs.submission_id(message["id"])
        job = lambda: Job.fetch(f"receipt-{sid}", connection=stack.redis,
                                serializer=JSONSerializer)  # noqa: E731
        wait_for(lambda: job().get_status(refresh=True) == "finished", message="the receipt job")
        events = [e["event"] for e in stack.sessions.timeline("fg_receipt_e2e")]
    assert kinds(graph) == ["text", "document"]  # the text first, then the receipt
    # Both from the number the user wrote to (the webhook's metadata), not the configured default.
    assert [r.path for r in graph.matching("POST", "/messages")] == ["/v23.0/106540352242922/messages"] * 2
    text, document = graph.sent_messages()
    assert text["text"]["body"] == CONFIRMATION
    assert document["document"]["link"].startswith(f"{stack.server.url}/media/")
    assert document["document"]["filename"].endswith(".pdf") and document["document"]["caption"] == CAPTION
    assert document["biz_opaque_callback_data"] == f"receipt:{sid}"
    assert events.index("confirmation_sent") < events.index("receipt_sent")
    assert wasender.sent() == []


# --- refusals and channels, the jobs run in this process -------------------------------------------
class Receipts:
    """The app on loopback (the stand-ins fetch its /media links); jobs called directly."""

    def __init__(self, cfg: dict):
        self.app = create_app(cfg)
        self.server = LiveServer(self.app)
        self.app.config["PUBLIC_BASE_URL"] = self.server.url
        self.app.extensions["media"].base_url = self.server.url

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)

    def complete(self, token: str) -> tuple[dict, str]:
        """The completion job, then the receipt job it enqueued: (completion result, receipt result)."""
        message = fresh_completion(token)
        with self.app.app_context():
            result = completion_jobs.process_completion(message, "106540352242922")
            sid = result["submission"]
            assert Job.fetch(f"receipt-{sid}", connection=self.app.extensions["redis"],
                             serializer=JSONSerializer).func_name == "workers.receipts.send_receipt"
            return result, receipts.send_receipt(sid)


@pytest.fixture
def base(app_config, graph, wasender):
    return stack_config(app_config, graph, wasender, FOLLOWUP_CHANNEL="cloud")


def test_configured_image_goes_by_link_once(base, graph, host):
    with Receipts({**base, "RECEIPT_IMAGE_URL": host.link("card.png")}) as r:
        result, sent = r.complete("fg_img_ok")
        with r.app.app_context():
            again = receipts.send_receipt(result["submission"])
    assert (result["confirmation"], sent, again) == ("sent", "sent", "already_done")
    assert kinds(graph) == ["text", "image"]
    assert graph.sent_messages()[1]["image"] == {"link": host.link("card.png"), "caption": CAPTION}
    assert host.matching("GET", "/card.png"), "the Graph stand-in fetched the image"
    assert timeline(r.app, "fg_img_ok", "receipt_sent") == ["image via cloud"]


@pytest.mark.parametrize("image, reason", [("card.gif", "Unsupported image type image/gif"),
                                           ("huge.png", "exceeds the 5242880-byte limit"),
                                           ("missing.png", "HTTP 404")])
def test_image_the_cloud_api_refuses_is_recorded_and_the_text_still_goes(base, graph, host, image, reason):
    with Receipts({**base, "RECEIPT_IMAGE_URL": host.link(image)}) as r:
        result, sent = r.complete("fg_img_bad")
    assert (result["confirmation"], sent) == ("sent", "failed")
    assert kinds(graph) == ["text", "image"]  # asked once, refused, not retried
    (failure,) = timeline(r.app, "fg_img_bad", "receipt_failed")
    assert ("131052" if image == "missing.png" else "131053") in failure
    assert timeline(r.app, "fg_img_bad", "confirmation_sent")


def test_hybrid_sends_the_pdf_through_wasender_when_the_cloud_api_refuses_it(base, graph, wasender):
    graph.media_limits["document"] = (("application/pdf",), 100)  # our PDF is larger than that
    with Receipts({**base, "FOLLOWUP_CHANNEL": "hybrid", "RECEIPT_PDF": True}) as r:
        result, sent = r.complete("fg_pdf_ws")
    assert (result["confirmation"], sent) == ("sent", "sent")
    (message,) = wasender.sent()
    assert message["documentUrl"].startswith(f"{r.server.url}/media/") and message["text"] == CAPTION
    assert message["fileName"].endswith(".pdf")
    assert timeline(r.app, "fg_pdf_ws", "receipt_sent") == ["document via wasender"]


def test_hybrid_image_refused_by_both_channels_is_recorded(base, graph, wasender, host):
    wasender.media_limits["image"] = (("image/",), 1024 * 1024)
    with Receipts({**base, "FOLLOWUP_CHANNEL": "hybrid", "RECEIPT_IMAGE_URL": host.link("huge.png")}) as r:
        result, sent = r.complete("fg_img_both")
    assert (result["confirmation"], sent) == ("sent", "failed")
    assert kinds(graph) == ["text", "image"] and len(wasender.sent()) == 1  # both asked, both refused
    (failure,) = timeline(r.app, "fg_img_both", "receipt_failed")
    assert "wasender permanent" in failure and "may not be greater than 1024 kilobytes" in failure


def test_pdf_without_a_public_url_is_a_recorded_failure(base, graph):
    app = create_app({**base, "RECEIPT_PDF": True})  # PUBLIC_BASE_URL unset
    with app.app_context():
        result = completion_jobs.process_completion(fresh_completion("fg_no_url"), None)
        assert receipts.send_receipt(result["submission"]) == "failed"
    assert kinds(graph) == ["text"]
    assert "PUBLIC_BASE_URL is not set" in timeline(app, "fg_no_url", "receipt_failed")[0]


def test_a_receipt_failing_later_in_a_status_webhook_is_recorded_on_its_session(base, graph, host):
    with Receipts({**base, "RECEIPT_IMAGE_URL": host.link("card.png")}) as r:
        result, sent = r.complete("fg_img_async")
        failed = status("wamid.receipt1", "failed", code=131053, callback=f"receipt:{result['submission']}")
        with r.app.app_context():
            assert inbound_jobs.record_status(failed) == "failed"
    assert sent == "sent"
    (failure,) = timeline(r.app, "fg_img_async", "receipt_failed")
    assert "code 131053" in failure
    # Not mistaken for a failed Flow message: no fallback Flow is sent.
    assert kinds(graph) == ["text", "image"]
    assert not timeline(r.app, "fg_img_async", "fallback_failed_status")


def test_no_receipt_configured_no_job(base, graph):
    app = create_app(base)
    with app.app_context():
        result = completion_jobs.process_completion(fresh_completion("fg_plain"), None)
    assert result["confirmation"] == "sent" and kinds(graph) == ["text"]
    assert Job.fetch_many([f"receipt-{result['submission']}"], connection=app.extensions["redis"],
                          serializer=JSONSerializer) == [None]
