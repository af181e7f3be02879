"""flask flows submissions, flask messages …: what came in and what went out, from a terminal.

``flask messages deadletters [list | show ID | replay ID | replay --all]``: webhook events that
were acknowledged but could not become work (``workers/deadletters.py``), masked.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from flows.identity import mask_bsuid
from flows.identity import mask_phone as phone
from records import export
from records.submissions import Filters
from messaging import fallback
from messaging.console import ConsoleChannel
from workers import deadletters
from workers.inbound import flow_events

messages_group = AppGroup("messages", help="Outbound messages: console outbox, fallback "
                                           "cases, Flow events, dead letters.")


@click.command("submissions")
@click.argument("submission_id", required=False)
@click.option("--limit", default=20, show_default=True, help="How many of the newest to list.")
@click.option("--flow", default=None, help="Only this flow's.")
@click.option("--since", default=None, help="Received at or after (ISO 8601 date or time, UTC).")
@click.option("--until", default=None, help="Received before (ISO 8601 date or time, UTC).")
@click.option("--user", default=None, help="Only this phone number or BSUID's.")
@click.option("--csv", "csv_path", default=None, metavar="FILE",
              help="Every matching submission as CSV into FILE ('-': standard output).")
@with_appcontext
def submissions_command(submission_id, limit, flow, since, until, user, csv_path):
    """List completed Flow submissions (newest first), print one in full by id, or export CSV."""
    store = current_app.extensions["records"].submissions
    if submission_id:
        document = store.get(submission_id)
        if document is None:
            raise click.ClickException(f"no submission {submission_id!r} (unknown, erased or past retention)")
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    chosen = Filters(flow=flow, since=_moment(since, "--since"), until=_moment(until, "--until"),
                     user=user.removeprefix("+") if user else None)
    if csv_path:
        with click.open_file(csv_path, "w", encoding="utf-8") as out:  # rows end in \r\n (RFC 4180)
            for chunk in export.rows(store, chosen):
                out.write(chunk)
        return
    documents, _ = store.page(limit, None, chosen)
    if not documents:
        click.echo("no submissions (a completed Flow's webhook stores one)")
    for doc in documents:
        fields = ", ".join(sorted((doc.get("response") or {}).keys())) or doc.get("problem") or "-"
        click.echo(f"{doc['id']}  {doc.get('flow') or '?':16} from "
                   f"{phone(doc.get('from'))}  fields: {fields}")


def _moment(value: str | None, option: str) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    except (ValueError, OverflowError):
        raise click.BadParameter("an ISO 8601 date or time, like 2026-03-01 or 2026-03-01T09:30:00Z",
                                 param_hint=option) from None


@messages_group.command("console")
@click.option("--limit", default=20, show_default=True)
def console_outbox(limit):
    """Messages the console channel recorded instead of sending (development)."""
    entries = ConsoleChannel(current_app.extensions["redis"]).outbox(limit)
    if not entries:
        click.echo("the console outbox is empty (it fills when FOLLOWUP_CHANNEL is console, or in "
                   "development without WHATSAPP_ACCESS_TOKEN)")
    for entry in entries:
        click.echo(json.dumps(entry))


@messages_group.command("fallback")
@click.option("--limit", default=20, show_default=True)
def fallback_cases(limit):
    """Messages that could not be delivered, waiting for the fallback logic."""
    cases = fallback.pending(current_app.extensions["redis"], limit)
    if not cases:
        click.echo("no undeliverable messages")
    for case in cases:
        click.echo(json.dumps({**case, "to": phone(case.get("to")),
                               "user_id": mask_bsuid(case.get("user_id")) if case.get("user_id") else None}))


@messages_group.command("events")
@click.option("--limit", default=20, show_default=True)
def flows_events(limit):
    """The latest ``flows`` webhook events (endpoint health alerts, status changes)."""
    events = flow_events(current_app.extensions["redis"], limit)
    if not events:
        click.echo("no flows webhook events received")
    for event in events:
        click.echo(json.dumps(event))


@messages_group.group("deadletters", invoke_without_command=True)
@click.pass_context
def deadletters_group(ctx):
    """Webhook events kept aside (malformed, or their job out of retries): list, show, replay."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(deadletters_list)


@deadletters_group.command("list")
@click.option("--limit", default=20, show_default=True, help="How many of each kind, newest first.")
def deadletters_list(limit):
    """Pending dead letters, then failed webhook jobs; phone numbers masked."""
    summary = deadletters.overview(current_app.extensions["redis"], limit)
    click.echo(f"{summary['pending']} dead letters pending, {summary['failed_jobs']} failed webhook jobs, "
               f"{summary['evicted']} evicted over the cap")
    for row in summary["rows"] + summary["failed"]:
        click.echo(f"{row['id']}  {row['at']}  {row['source']:8}  {row['reason']}")


@deadletters_group.command("show")
@click.argument("item_id")
def deadletters_show(item_id):
    """One dead letter or failed webhook job, with its raw event (masked)."""
    row = deadletters.find(current_app.extensions["redis"], item_id)
    if row is None:
        raise click.ClickException(f"no dead letter or failed webhook job {item_id[:64]!r}")
    event = row.pop("event")
    click.echo(json.dumps(row, indent=2))
    click.echo(event)


@deadletters_group.command("replay")
@click.argument("item_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Every pending dead letter and failed webhook job.")
def deadletters_replay(item_id, replay_all):
    """Parse a dead letter again and enqueue it through the normal, once-only intake (a failed
    job is requeued). Exit 1 when something was not replayed."""
    if bool(item_id) == replay_all:
        raise click.UsageError("give one ID or --all")
    ext, cfg = current_app.extensions, current_app.config
    if replay_all:
        results = deadletters.replay_all(ext["redis"], cfg, ext["wasender"])
    else:
        results = [deadletters.replay(ext["redis"], cfg, ext["wasender"], item_id)]
    for result in results:
        click.echo(f"{result.id[:64]}  {result.state}  {result.detail}")
    if not results:
        click.echo("nothing to replay")
    if any(not r.done for r in results):
        raise SystemExit(1)
