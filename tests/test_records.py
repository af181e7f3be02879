"""The records store (issue 20) against both backends, SQLite and a real PostgreSQL cluster of
the tests' own: the schema Alembic builds, the completion stored once however often its job runs,
the consent ledger that every send consults, the message log, what survives a Redis FLUSHALL,
the upgrade from Redis-only submissions and opt-outs, erasure and retention."""
from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from app import create_app
from records import Records
from records.legacy import copy_opt_outs, copy_submissions
from records.submissions import submission_id
from standins.graph import ACCESS_TOKEN
from standins.meta_webhooks import USER, completion, new_wamid, status, text_message
from workers import completion as completion_jobs
from workers import inbound as inbound_jobs
from workers import retention

API_TOKEN = "records-api-token"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def app(app_config, database_url, graph):
    return create_app({**app_config, "DATABASE_URL": database_url, "WHATSAPP_API_BASE": graph.url,
                       "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": "999000111",
                       "FOLLOWUP_CHANNEL": "cloud", "API_TOKEN": API_TOKEN})


@pytest.fixture
def records(app) -> Records:
    records = app.extensions["records"]
    if records.backend == "postgresql":
        records.upgrade()  # what the release phase does (SQLite upgrades itself at start)
    return records


def run(app, message):
    with app.app_context():
        return completion_jobs.process_completion(message, "106540352242922")


def count(records, table: str) -> int:
    with records.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_alembic_builds_exactly_the_tables_the_code_uses(database_url):
    """The migration, run revision by revision, leaves no difference from the tables in
    records/schema.py (a fresh database takes the shortcut: create_all, stamped)."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from records.engine import alembic_config, head
    from records.schema import metadata

    records = Records.open(database_url)
    command.upgrade(alembic_config(records.engine), "head")
    with records.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert MigrationContext.configure(conn).get_current_revision() == head()
    assert records.upgrade().startswith("schema up to date")


def test_a_completion_is_one_row_and_a_replayed_job_adds_none(app, records, graph):
    message = completion(token=None, context_id=None, values={"member_id": "MEM123"})
    first = run(app, message)
    again = run(app, message)  # RQ ran it again (a retry, a recovered job): same message id
    assert first["submission"] == again["submission"] == submission_id(message["id"])
    assert count(records, "submissions") == 1
    stored = records.submissions.get(first["submission"])
    assert stored["response"] == {"member_id": "MEM123"} and stored["from"] == USER
    assert len(graph.sent_messages()) == 1  # and the confirmation went out once (workers/effects.py)
    # The confirmation is in the message log, once, with its key and kind.
    (logged,) = records.messages.for_user([USER])
    assert logged["channel"] == "cloud" and logged["kind"] == "text"
    assert logged["idempotency_key"] == f"confirm:{message['id']}"


def test_statuses_join_the_message_log_once_each(app, records, graph):
    message = completion(token=None, context_id=None)
    run(app, message)
    (sent,) = records.messages.for_user([USER])
    wamid = sent["message_id"]
    with app.app_context():
        for state in ("sent", "delivered", "delivered", "read"):  # Meta redelivers one
            inbound_jobs.record_status(status(wamid, state))
        inbound_jobs.record_status(status("wamid.someone-else", "failed", code=131026))
    logged = records.messages.get(wamid)
    assert [s["status"] for s in logged["statuses"]] == ["sent", "delivered", "read"]
    failed = records.messages.get("wamid.someone-else")  # a status of a message not logged (yet)
    assert failed is None
    with records.engine.connect() as conn:
        failed = sa.text("SELECT error_code FROM message_statuses WHERE status = 'failed'")
        code = conn.execute(failed).scalar_one()
    assert code == 131026


def test_records_survive_a_redis_flushall(app, records, redis_client, graph):
    message = completion(token=None, context_id=None)
    sid = run(app, message)["submission"]
    with app.app_context():
        inbound_jobs.record_inbound(text_message("STOP"), "106540352242922")
    assert app.extensions["contacts"].opted_out(USER)
    redis_client.flushall()
    resp = app.test_client().get(f"/api/submissions/{sid}", headers=BEARER)
    assert resp.status_code == 200 and resp.json["message_id"] == message["id"]
    assert app.extensions["contacts"].opted_out(USER), "the opt-out outlived the contact record"
    # ... and a send refuses them still: the ledger is read before every send.
    sent_before = len(graph.sent_messages())
    assert run(app, completion(token=None, context_id=None))["confirmation"] == "refused"
    assert len(graph.sent_messages()) == sent_before


def test_opt_out_and_opt_in_are_kept_with_channel_time_and_cause(app, records, graph):
    stop, resume = text_message("STOP"), text_message("RESUME")
    with app.app_context():
        inbound_jobs.record_inbound(stop, "106540352242922")
        inbound_jobs.record_inbound(stop, "106540352242922")  # the job again: nothing new
        inbound_jobs.record_inbound(resume, "106540352242922")
    history = records.consent.history([f"p:{USER}"])
    assert [(h["event"], h["channel"], h["message_id"]) for h in history] == [
        ("opt_out", "cloud", stop["id"]), ("opt_in", "cloud", resume["id"])]
    assert all(h["at"] > time.time() - 60 for h in history)
    assert not app.extensions["contacts"].opted_out(USER)


def test_redis_submissions_and_opt_outs_are_copied_on_upgrade(app, records, redis_client):
    legacy = {"id": submission_id("wamid.old"), "message_id": "wamid.old", "from": "15550009999",
              "flow": "member_check", "received_at": 1700000000.0, "response": {"member_id": "MEM123"},
              "session_known": True}
    redis_client.set(f"fg:submission:{legacy['id']}", json.dumps(legacy))
    redis_client.zadd("fg:submissions", {legacy["id"]: 1700000000.0})
    redis_client.zadd("fg:submissions", {"sub_expired": 1700000001.0})  # its document gone: skipped
    redis_client.hset("fg:contact:15550008888",
                      mapping={"phone": "15550008888", "opted_out": "1700000002.000",
                               "opt_out_channel": "wasender"})
    redis_client.hset("fg:contact:15550007777", mapping={"phone": "15550007777"})  # never opted out
    redis = app.extensions["redis"]
    assert copy_submissions(redis, records) == (1, 0)
    assert copy_opt_outs(redis, records) == (1, 0)
    assert copy_submissions(redis, records) == (0, 1)  # the release phase runs it on every deploy
    assert copy_opt_outs(redis, records) == (0, 1)
    assert records.submissions.get(legacy["id"])["response"] == {"member_id": "MEM123"}
    assert records.consent.opted_out(["p:15550008888"]) and not records.consent.opted_out(["p:15550007777"])
    (row,) = records.consent.history(["p:15550008888"])
    assert row["channel"] == "wasender" and row["at"] == 1700000002.0


def test_flask_records_migrate_upgrades_then_copies(app, records, redis_client):
    redis_client.hset("fg:contact:15550006666",
                      mapping={"phone": "15550006666", "opted_out": "1700000000.000"})
    runner = app.test_cli_runner()
    result = runner.invoke(args=["records", "migrate"])
    assert result.exit_code == 0, result.output
    assert "schema up to date" in result.output and "opt-outs from Redis: 1 copied" in result.output
    again = runner.invoke(args=["records", "migrate"]).output
    assert "opt-outs from Redis: 0 copied, 1 already there" in again


def test_erase_removes_one_user_from_redis_and_sql_and_keeps_the_opt_out(app, records, redis_client):
    other = "15550002222"
    run(app, completion(token=None, context_id=None))
    run(app, completion(token=None, context_id=None, user=other))
    with app.app_context():
        inbound_jobs.record_inbound(text_message("STOP"), "106540352242922")
    assert redis_client.exists(f"fg:contact:{USER}")
    redis_client.set(f"fg:effect:stop-{USER}", "{}")  # an exactly-once record named after them
    redis_client.set(f"fg:submission:{submission_id('wamid.legacy')}", json.dumps({"from": USER}))
    redis_client.zadd("fg:submissions", {submission_id("wamid.legacy"): 1.0})
    result = app.test_cli_runner().invoke(args=["records", "erase", f"+{USER}", "--yes"])
    assert result.exit_code == 0, result.output
    assert USER not in result.output  # masked
    assert records.submissions.page(10, None, None)[0][0]["from"] == other
    assert count(records, "submissions") == 1
    assert records.messages.for_user([USER]) == [] and len(records.messages.for_user([other])) == 1
    assert not [k for k in redis_client.scan_iter("*") if USER.encode() in k]
    assert redis_client.zcard("fg:submissions") == 0
    assert app.extensions["contacts"].opted_out(USER), "the consent ledger keeps the STOP"


def test_purge_deletes_what_is_older_than_the_retention(app, records):
    old = {"id": "sub_old", "message_id": "wamid.old", "received_at": 1.0,
           "stored_at": time.time() - 40 * 86400}
    new = {"id": "sub_new", "message_id": "wamid.new", "received_at": 2.0}
    records.submissions.add(old)
    records.submissions.add(new)
    records.messages.sent("wamid.sent-old", channel="cloud", at=time.time() - 40 * 86400)
    records.consent.record(["p:1555"], "opt_out", "cloud", at=time.time() - 400 * 86400)
    assert retention.purge(records, 0) == {}  # 0: kept for ever
    assert retention.purge(records, 30) == {"submissions": 1, "messages": 1}
    assert records.submissions.get("sub_old") is None and records.submissions.get("sub_new") is not None
    assert records.consent.opted_out(["p:1555"]), "the ledger is never purged"


def test_the_worker_schedules_the_hourly_purge_once(app, redis_client):
    from rq.registry import ScheduledJobRegistry

    from workers.queues import LOW, queue

    cfg = {**app.config, "RECORDS_RETENTION_DAYS": 30}
    retention.schedule(app.extensions["redis"], cfg)
    retention.schedule(app.extensions["redis"], cfg)  # a second worker starting: the same job
    jobs = ScheduledJobRegistry(queue=queue(app.extensions["redis"], LOW)).get_job_ids()
    assert len(jobs) == 1 and jobs[0].startswith("records-purge-")
    due = int(jobs[0].rsplit("-", 1)[1])
    assert due % 3600 == 0 and 0 < due - time.time() <= 3600
    retention.schedule(app.extensions["redis"], {**cfg, "RECORDS_RETENTION_DAYS": 0})
    assert len(ScheduledJobRegistry(queue=queue(app.extensions["redis"], LOW)).get_job_ids()) == 1


def test_development_without_database_url_uses_a_sqlite_file_under_instance(app_config, tmp_path):
    cfg = {**app_config, "APP_ENV": "development", "DATABASE_URL": None,
           "INSTANCE_DIR": str(tmp_path / "inst")}
    app = create_app(cfg)
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'inst' / 'flowgate.sqlite3'}"
    assert (tmp_path / "inst" / "flowgate.sqlite3").exists()
    assert app.extensions["records"].submissions.count() == 0  # the tables are there


def test_production_without_database_url_refuses_in_one_line(app_config):
    from config import ConfigError

    with pytest.raises(ConfigError) as refused:
        create_app({**app_config, "DATABASE_URL": None})
    message = str(refused.value)
    assert "\n" not in message and message.startswith("DATABASE_URL is not set (")
    with pytest.raises(ConfigError, match="DATABASE_URL is not usable"):
        create_app({**app_config, "DATABASE_URL": "mysql://x@localhost/db"})


def test_heroku_postgres_urls_name_the_psycopg_driver():
    import config

    assert config.database_url("postgres://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert config.database_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert config.database_url("sqlite:////tmp/x.sqlite3") == "sqlite:////tmp/x.sqlite3"
    assert config.database_url("") is None
