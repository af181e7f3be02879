"""flask flows submissions, flask messages …: what came in and what went out, from a terminal."""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from flows.identity import mask_bsuid
from flows.redact import phone
from flows.submissions import SubmissionStore
from messaging import fallback
from messaging.console import ConsoleChannel
from workers.inbound import flow_events

messages_group = AppGroup("messages", help="Outbound messages: console outbox, fallback cases, Flow events.")


@click.command("submissions")
@click.argument("submission_id", required=False)
@click.option("--limit", default=20, show_default=True, help="How many of the newest to list.")
@with_appcontext
def submissions_command(submission_id, limit):
    """List completed Flow submissions (newest first), or print one in full by id."""
    store = SubmissionStore(current_app.extensions["redis"], current_app.config["SUBMISSION_RETENTION_SECONDS"])
    if submission_id:
        document = store.get(submission_id)
        if document is None:
            raise click.ClickException(f"no submission {submission_id!r} (unknown or past retention)")
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    documents = store.recent(limit)
    if not documents:
        click.echo("no submissions yet (a completed Flow's webhook stores one; kept "
                   f"{current_app.config['SUBMISSION_RETENTION_SECONDS'] // 86400} days)")
    for doc in documents:
        fields = ", ".join(sorted((doc.get("response") or {}).keys())) or doc.get("problem") or "-"
        click.echo(f"{doc['id']}  {doc.get('flow') or '?':16} from {phone(doc.get('from'))}  fields: {fields}")


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
