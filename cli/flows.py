"""flask flows …: list the registered flows and play one through the encrypted protocol."""
from __future__ import annotations

import json

import click
import requests
from flask import current_app
from flask.cli import AppGroup

import config
import security
from cli import offline
from devtools.player import Player
from flows import loader
from flows.sessions import new_token
from devtools.simulator import FlowClient

flows_group = AppGroup("flows", help="Flows: list the served ones, lint, deploy to Meta and read their "
                                     "status there, simulate, send, read submissions.")


@flows_group.command("list")
def list_flows():
    """The flows this app serves, with their endpoint paths."""
    if not current_app.extensions["flows"].names():
        click.echo("no flows served (the demo flows need DEMO_FLOWS=true; add your own in the FLOWS_PACKAGE "
                   "folder, business_flows/ by default)")
    for flow in current_app.extensions["flows"]:
        click.echo(f"{flow.name:20} /flows/{flow.name}  screens: {', '.join(flow.screen_ids)}")


def _fields(pairs) -> dict:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not name=value", param_hint="--field")
        out[name] = value
    return out


@flows_group.command("simulate")
@click.argument("flow_name")
@click.option("--url", default=None, help="Endpoint URL (default: this app on 127.0.0.1:$PORT).")
@click.option("--field", "fields", multiple=True, help="A form value, name=value (repeatable).")
@click.option("--token", default=None, help="Flow token to use (default: a fresh one).")
@click.option("--public-key", "public_key_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="The endpoint's public key (default: this app's own key).")
@click.option("--app-secret", default=None,
              help="Meta app secret to sign with (default: WHATSAPP_APP_SECRET).")
@click.option("--json", "as_json", is_flag=True, help="Print each step as a JSON line.")
@offline
def simulate(flow_name, url, fields, token, public_key_path, app_secret, as_json):
    """Play WhatsApp: encrypt, sign, POST, decrypt, and print each screen until the flow ends.

    With --url and --public-key it needs no configuration."""
    known = loader.known(current_app.config.get("FLOWS_PACKAGE"))
    flow = next((f for f in known if f.name == flow_name), None)
    if flow is None:
        raise click.ClickException(f"unknown flow {flow_name!r} (known: {', '.join(f.name for f in known)})")
    url = url or f"http://127.0.0.1:{config.server()['port']}/flows/{flow_name}"
    public_key = (open(public_key_path).read() if public_key_path
                  else security.keyring(current_app).public_pem)
    secret = app_secret if app_secret is not None else current_app.config["WHATSAPP_APP_SECRET"]
    client = FlowClient(url, public_key, secret)
    token = token or new_token()
    click.echo(f"# {flow_name} at {url} (token {token[:9]}…)")
    last = None
    try:
        for step in Player(flow.definition, client, token, _fields(fields)).run():
            last = step
            _print_step(step, as_json)
    except requests.ConnectionError:
        raise click.ClickException(f"cannot connect to {url} (is the app running? `make run` starts "
                                   "it; --url or PORT points elsewhere)") from None
    except requests.Timeout:
        raise click.ClickException(f"{url} did not answer within {client.timeout:.0f} s") from None
    if last is None or last.screen != "SUCCESS":
        raise SystemExit(1)


def _print_step(step, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"screen": step.screen, "data": step.data, "note": step.note,
                               "ms": round(step.reply.latency * 1000, 1) if step.reply else None}))
        return
    ms = f"{step.reply.latency * 1000:.0f} ms" if step.reply and step.reply.latency else ""
    click.echo(f"\n== {step.screen or '(no screen)'}  {ms}")
    for key, value in step.data.items():
        click.echo(f"   {key}: {json.dumps(value)}")
    if step.note:
        click.echo(f"   ({step.note})")


@flows_group.command("send")
@click.argument("flow_name")
@click.argument("phone", metavar="PHONE_OR_BSUID", required=False)
@click.option("--data", "pairs", multiple=True, help="Prefill value, name=value (repeatable).")
@click.option("--csv", "csv_file", type=click.File("r"), default=None,
              help="Bulk: a CSV whose first column (or a 'phone' column) holds the numbers.")
def send(flow_name, phone, pairs, csv_file):
    """Send a Flow with a fresh token to a phone number or a BSUID (a WhatsApp username user);
    the worker delivers it (Cloud API, WASender or console)."""
    import csv

    from workers.sending import issue_and_enqueue

    flow = current_app.extensions["flows"].get(flow_name)
    if flow is None:
        raise click.ClickException(f"unknown flow {flow_name!r}; try: flask flows list")
    data = _fields(pairs)
    if csv_file is None:
        if not phone:
            raise click.UsageError("give a PHONE or --csv FILE")
        try:
            result = issue_and_enqueue(current_app, flow, phone, data)
        except ValueError as exc:
            raise click.ClickException(str(exc))
        click.echo(json.dumps(result))
        return
    rows = list(csv.reader(csv_file))
    if rows and rows[0] and not any(ch.isdigit() for ch in rows[0][0]):
        header = [h.strip().lower() for h in rows.pop(0)]
        column = header.index("phone") if "phone" in header else 0
    else:
        column = 0
    sent, skipped = 0, 0
    with click.progressbar(rows, label=f"queueing {flow_name}") as bar:
        for row in bar:
            try:
                issue_and_enqueue(current_app, flow, row[column], data)
                sent += 1
            except (ValueError, IndexError):
                skipped += 1
    click.echo(f"queued {sent}, skipped {skipped} invalid rows")
