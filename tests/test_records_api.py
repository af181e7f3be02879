"""What users do with the records: the submissions API by cursor and filters, the CSV export
(dashboard download and ``flask flows submissions --csv``), the dashboard's session timeline with
the messages sent and their statuses; hostile query strings get 400; a database outage is a 503.
Each against SQLite and a real PostgreSQL cluster."""
from __future__ import annotations

import csv
import io
import time

import pytest

from app import create_app
from metrics.store import RECENT_KEY
from records import Records

API_TOKEN = "records-api-token"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
DAY = 86400
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def app(app_config, database_url):
    app = create_app({**app_config, "DATABASE_URL": database_url, "API_TOKEN": API_TOKEN})
    app.extensions["records"].upgrade()
    return app


@pytest.fixture
def filled(app) -> Records:
    """25 submissions: flows alternating, one a day from T0, two users."""
    records = app.extensions["records"]
    for i in range(25):
        records.submissions.add({
            "id": f"sub_{i:03d}", "message_id": f"wamid.{i}",
            "flow": "member_check" if i % 2 else "appointment",
            "from": "15550001111" if i < 20 else "15550002222", "received_at": T0 + i * DAY,
            "response": {"member_id": f"MEM{i}", "note": "=HYPERLINK(\"x\")" if i == 3 else "ok"}})
    return records


def get(app, query: str):
    return app.test_client().get(f"/api/submissions{query}", headers=BEARER)


def test_pages_by_cursor_newest_first_with_nothing_missed_or_repeated(app, filled):
    seen, cursor, pages = [], None, 0
    while True:
        resp = get(app, f"?limit=7{'&cursor=' + cursor if cursor else ''}")
        assert resp.status_code == 200
        seen += [s["id"] for s in resp.json["submissions"]]
        pages += 1
        cursor = resp.json["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and seen == [f"sub_{i:03d}" for i in reversed(range(25))]


def test_filters_by_flow_time_and_user(app, filled):
    flow = get(app, "?flow=member_check&limit=500").json["submissions"]
    assert {s["flow"] for s in flow} == {"member_check"} and len(flow) == 12
    window = get(app, "?since=2026-01-03&until=2026-01-06T00:00:00Z").json["submissions"]
    assert [s["id"] for s in window] == ["sub_004", "sub_003", "sub_002"]
    unix = get(app, f"?since={int(T0 + 23 * DAY)}").json["submissions"]
    assert [s["id"] for s in unix] == ["sub_024", "sub_023"]
    user = get(app, "?user=%2B15550002222").json["submissions"]  # "+" and digits, or the digits
    assert [s["id"] for s in user] == [f"sub_{i:03d}" for i in (24, 23, 22, 21, 20)]
    both = get(app, "?user=15550001111&flow=appointment&limit=3")
    assert [s["id"] for s in both.json["submissions"]] == ["sub_018", "sub_016", "sub_014"]
    follow = get(app, f"?user=15550001111&flow=appointment&limit=3&cursor={both.json['next_cursor']}")
    assert [s["id"] for s in follow.json["submissions"]][0] == "sub_012"


@pytest.mark.parametrize("query, parameter", [
    ("?cursor=nope", "cursor"), ("?cursor=czEyYQ", "cursor"), ("?cursor=%00", "cursor"),
    ("?cursor=" + "A" * 80, "cursor"), ("?since=yesterday", "since"), ("?until=2026-13-45", "until"),
    ("?since=%EF%BC%91", "since"), ("?since=2026-02-30", "since"), ("?flow=a%00b", "flow"),
    ("?user=" + "9" * 300, "user"),
    ("?limit=501", "limit"),
])
def test_hostile_queries_are_400_naming_the_parameter(app, filled, query, parameter):
    resp = get(app, query)
    assert resp.status_code == 400 and resp.json["parameter"] == parameter


def test_an_unknown_or_hostile_id_is_404(app, filled):
    assert app.test_client().get("/api/submissions/sub_nope", headers=BEARER).status_code == 404
    assert app.test_client().get("/api/submissions/a%00b", headers=BEARER).status_code == 404


def test_csv_from_the_dashboard_and_the_cli_holds_every_row_and_field(app, filled, tmp_path):
    app.config["DASHBOARD_PASSWORD"] = None
    app.config["APP_ENV"] = "development"  # the dashboard open, as under make run
    resp = app.test_client().get("/dashboard/submissions.csv?flow=member_check")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 12 and {r["flow"] for r in rows} == {"member_check"}
    assert rows[-1]["id"] == "sub_001" and rows[-1]["response.member_id"] == "MEM1"
    assert rows[-1]["received_at"] == "2026-01-02T00:00:00Z"
    three = next(r for r in rows if r["id"] == "sub_003")
    assert three["response.note"].startswith("'=")  # a formula shown as text, never run
    out = tmp_path / "all.csv"
    result = app.test_cli_runner().invoke(
        args=["flows", "submissions", "--csv", str(out), "--user", "15550002222"])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in csv.DictReader(out.open())] == [f"sub_{i:03d}" for i in (24, 23, 22, 21, 20)]
    bad = app.test_cli_runner().invoke(args=["flows", "submissions", "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_the_session_timeline_shows_messages_sent_and_their_statuses(app):
    app.config["DASHBOARD_PASSWORD"] = None
    app.config["APP_ENV"] = "development"
    sessions, records = app.extensions["sessions"], app.extensions["records"]
    sessions.visit("fg_timeline", "member_check", "MEMBER_LOOKUP")
    app.extensions["redis"].zadd(RECENT_KEY, {"fg_timeline": time.time()})  # as the metrics writer does
    records.messages.sent("wamid.tl1", channel="cloud", kind="template", template="resume_flow",
                          flow_token="fg_timeline", key="rec-fg_timeline-step1")
    records.messages.status("wamid.tl1", "delivered")
    records.messages.status("wamid.tl1", "failed", error_code=131026)
    from dashboard.activity import recent_sessions

    with app.app_context():
        rows = recent_sessions(app.extensions["redis"], records=records)
    row = next(r for r in rows if r["flow"] == "member_check")
    (message,) = row["messages"]
    assert message["template"] == "resume_flow" and message["channel"] == "cloud"
    assert [(s["status"], s["error_code"]) for s in message["statuses"]] == [
        ("delivered", None), ("failed", 131026)]
    page = app.test_client().get("/dashboard").get_data(as_text=True)
    assert "resume_flow" in page and "131026" in page and "Download submissions (CSV)" in page
