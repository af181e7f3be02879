"""flask records …: the SQL store's schema, the upgrade from Redis-only, erasure and retention.

``migrate`` is what the Procfile's release phase runs on every deploy: the schema brought to the
newest revision, then the submissions and opt-outs Redis still holds copied over (idempotent).
"""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from flows.identity import User, mask_bsuid
from flows.identity import mask_phone as phone
from records import legacy
from workers import erase, retention

records_group = AppGroup("records", help="The SQL records: migrate (release phase), erase a user, purge.")


@records_group.command("migrate")
@click.option("--skip-redis", is_flag=True, help="Only the schema: do not copy from Redis.")
def migrate(skip_redis):
    """Bring the schema to the newest revision, then copy Redis's submissions and opt-outs."""
    ext = current_app.extensions
    click.echo(f"records ({ext['records'].backend}): {ext['records'].upgrade()}")
    if skip_redis:
        return
    copied, present = legacy.copy_submissions(ext["redis"], ext["records"])
    click.echo(f"submissions from Redis: {copied} copied, {present} already there")
    copied, present = legacy.copy_opt_outs(ext["redis"], ext["records"])
    click.echo(f"opt-outs from Redis: {copied} copied, {present} already there")


@records_group.command("erase")
@click.argument("who")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_user(who, yes):
    """Erase one person everywhere (a data-protection request): WHO is a phone number (+ and
    digits) or a BSUID. Their opt-outs stay in the consent ledger, so they are not messaged again."""
    digits = who.strip().removeprefix("+")
    user = User(phone=digits) if digits.isdigit() else User(bsuid=who.strip())
    if not user.known or len(who) > 256:
        raise click.BadParameter("a phone number or a BSUID", param_hint="WHO")
    shown = phone(user.phone) if user.phone else mask_bsuid(user.bsuid)
    if not yes:
        click.confirm(f"Erase {shown} from Redis and SQL? This cannot be undone", abort=True)
    ext = current_app.extensions
    counts = erase.erase(ext["redis"], ext["contacts"], ext["sessions"], ext["records"], user)
    click.echo(f"erased {shown}: {json.dumps(counts, sort_keys=True)} (consent ledger kept)")


@records_group.command("purge")
def purge():
    """Delete submissions and logged messages older than RECORDS_RETENTION_DAYS now (the worker
    does it every hour)."""
    days = current_app.config["RECORDS_RETENTION_DAYS"]
    if days <= 0:
        click.echo("RECORDS_RETENTION_DAYS is 0: records are kept for ever, nothing to purge")
        return
    removed = retention.purge(current_app.extensions["records"], days)
    click.echo(f"removed {removed['submissions']} submissions and {removed['messages']} messages "
               f"older than {days} days")
