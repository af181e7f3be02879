"""flask flows deploy / status: the served flows on Meta (cli/flow_deploy.py, messaging/flow_status.py)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import click
from flask import current_app

from cli.flow_deploy import Deployer, Report, endpoint_uri
from messaging.flow_status import SENDABLE, describe, latency_shares, meta_metrics
from messaging.flows_api import FlowsApi
from messaging.graph import GraphError, explain
from metrics.snapshot import endpoint_days


def _served(names) -> list:
    registry = current_app.extensions["flows"]
    for name in names:
        if registry.get(name) is None:
            raise click.BadParameter(f"{name!r} is not a served flow (served: "
                                     f"{', '.join(registry.names()) or 'none'})",
                                     param_hint="NAME")
    return [registry.get(n) for n in names] if names else list(registry)


def _api(*needed: str) -> FlowsApi:
    cfg = current_app.config
    missing = [n for n in ("WHATSAPP_BUSINESS_ACCOUNT_ID", "WHATSAPP_ACCESS_TOKEN", *needed) if not cfg[n]]
    if missing:
        raise click.ClickException(f"set {' and '.join(missing)} to reach the Flows on Meta")
    return FlowsApi(current_app.extensions["graph"], cfg["WHATSAPP_BUSINESS_ACCOUNT_ID"])


def _graph_failure(exc: GraphError) -> click.ClickException:
    detail = f" ({exc.user_message})" if exc.user_message else ""
    return click.ClickException(explain(exc) + detail)


@click.command("deploy")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--publish", is_flag=True,
              help="Publish each flow once our lint and Meta's validation are clean.")
@click.option("--clone", is_flag=True,
              help="A flow published on Meta whose JSON changed: create a new Flow cloned from it "
                   "(clone_flow_id) with the new JSON; new messages open it.")
def deploy_command(names, publish, clone):
    """Create, update and (with --publish) publish the served flows on Meta's WhatsApp Business
    Account: lint first, upload only what changed; exit 1 when lint or Meta report errors."""
    flows = _served(names)
    api = _api("PUBLIC_BASE_URL")
    ext, cfg = current_app.extensions, current_app.config
    deployer = Deployer(api, ext["flow_ids"], ext["meta_status"], cfg["PUBLIC_BASE_URL"],
                        publish=publish, clone=clone)
    failed, writes = False, 0
    try:
        for report in deployer.run(flows):
            _print_report(report)
            failed |= report.failed
            writes += len(report.writes)
    except GraphError as exc:
        raise _graph_failure(exc) from None
    click.echo(f"{len(flows)} flow{'s' * (len(flows) != 1)}, {writes} change{'s' * (writes != 1)} on Meta"
               + ("; see the errors above" if failed else ""))
    if failed:
        raise SystemExit(1)


def _print_report(r: Report) -> None:
    where = f"Flow {r.flow_id} ({r.meta_name}) {r.status}" if r.flow_id else "not on Meta"
    click.echo(f"{r.flow}: {where}")
    for line in r.writes:
        click.echo(f"  + {line}")
    for line in r.notes:
        click.echo(f"  · {line}")
    for f in r.findings:
        if f.severity != "info":
            click.echo(f"  lint {f.severity} {f.path} [{f.rule}] {f.message}")
    if r.meta_errors:
        click.echo(f"  Meta's validation errors ({len(r.meta_errors)}):")
    for e in r.meta_errors:
        place = " at " + ", ".join(e.paths) if e.paths else ""
        pos = f" (line {e.line}, column {e.column})" if e.line else ""
        click.echo(f"    {e.error}{place}{pos}: {e.message}")
        for f in r.ours_at(e):
            click.echo(f"      ours: {f.severity} [{f.rule}] {f.message} — fix: {f.fix}")
    if r.problem:
        click.echo(f"  ✗ {r.problem}")
    elif not r.writes:
        click.echo("  nothing to change")


@click.command("status")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90),
              help="The window of Meta's metrics and ours, in whole days up to today (UTC).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def status_command(names, days, as_json):
    """Meta's view of each served flow (status, health, validation errors, preview URL, endpoint
    metrics) beside Flowgate's own figures for the same days; refreshes the dashboard's copy.
    Exit 1 when a flow is not on Meta, cannot be sent, or has validation errors."""
    flows = _served(names)
    api = _api()
    ext, cfg = current_app.extensions, current_app.config
    until = datetime.now(timezone.utc).date()
    since = until - timedelta(days=days - 1)
    day_list = [(since + timedelta(days=i)).isoformat() for i in range(days)]
    listing, docs = None, []
    try:
        for flow in flows:
            flow_id = ext["flow_ids"].flow_id(flow.name)
            if flow_id is None:
                listing = listing if listing is not None else api.list()
                found = next((m for m in listing if m.name == flow.name), None)
                flow_id = found.id if found else None
            doc = {"flow": flow.name, "window": {"since": since.isoformat(), "until": until.isoformat()},
                   "ours": endpoint_days(ext["redis"], flow.name, day_list)}
            meta = _read(api, flow_id) if flow_id is not None else None
            if meta is not None:
                doc.update(describe(meta), metrics=meta_metrics(api, flow_id, since, until))
                if cfg["PUBLIC_BASE_URL"]:
                    doc["expected_endpoint_uri"] = endpoint_uri(cfg["PUBLIC_BASE_URL"], flow.name)
                ext["meta_status"].put(flow.name, doc)
            docs.append(doc)
    except GraphError as exc:
        raise _graph_failure(exc) from None
    if as_json:
        click.echo(json.dumps({"flows": docs}, indent=2))
    else:
        for doc in docs:
            _print_status(doc)
    if any(_unwell(d) for d in docs):
        raise SystemExit(1)


def _read(api: FlowsApi, flow_id: str):
    """The Flow's details, or None when Meta has no such Flow (any more)."""
    try:
        return api.get(flow_id)
    except GraphError as exc:
        if exc.code == 100:  # "Unsupported get request. Object with ID ... does not exist"
            return None
        raise


def _unwell(doc: dict) -> bool:
    return "flow_id" not in doc or doc.get("status") not in SENDABLE or bool(doc.get("validation_errors"))


def _print_status(d: dict) -> None:
    name = d["flow"]
    if "flow_id" not in d:
        click.echo(f"{name}: not on Meta — flask flows deploy {name}")
        return
    health = d.get("can_send_message") or "-"
    click.echo(f"{name}: Flow {d['flow_id']} ({d['meta_name']}) {d['status']}, health {health}")
    if d["status"] == "THROTTLED":
        click.echo("  ✗ THROTTLED: Meta lets 10 messages of this Flow out an "
                   "hour until the endpoint is healthy")
    elif d["status"] in ("BLOCKED", "DEPRECATED"):
        click.echo(f"  ✗ {d['status']}: this Flow cannot be sent")
    for code, text in d.get("health_errors") or []:
        click.echo(f"  health {code}: {text}")
    expected = d.get("expected_endpoint_uri")
    mark = "" if not expected else ("  (as this app's)" if d.get("endpoint_uri") == expected
                                    else f"  ≠ {expected}")
    click.echo(f"  endpoint_uri {d.get('endpoint_uri') or '-'}{mark}")
    click.echo(f"  Flow JSON {d.get('json_version') or '-'}, data_api_version "
               f"{d.get('data_api_version') or '-'}; validation errors: "
               f"{len(d.get('validation_errors') or []) or 'none'}")
    for e in d.get("validation_errors") or []:
        click.echo(f"    {e['error']} at {', '.join(e['paths']) or 'line ' + str(e.get('line'))}: "
                   f"{e['message']}")
    if d.get("preview_url"):
        click.echo(f"  preview {d['preview_url']}")
    window, meta, ours = d["window"], d["metrics"], d["ours"]
    click.echo(f"  endpoint {window['since']} to {window['until']}{'Meta':>18}{'Flowgate':>14}")
    if "unavailable" in meta:
        click.echo(f"    Meta: {meta['unavailable']}")
        meta = {}

    def rate(errors, requests) -> str:
        return f"{errors} ({errors / requests:.1%})" if requests else f"{errors}"

    row = "    {:<25}{:>20}{:>14}"
    click.echo(row.format("requests", meta.get("requests", "-"), ours["requests"]))
    click.echo(row.format("errors", rate(meta["errors"], meta["requests"]) if meta else "-",
                          rate(ours["errors"], ours["requests"])))
    if meta.get("error_types"):
        click.echo("      Meta's error types: "
                   + ", ".join(f"{k} {v}" for k, v in meta["error_types"].items()))
    click.echo(f"    latency: Meta {latency_shares(meta.get('latency') or {})}; "
               f"Flowgate {latency_shares(ours['latency'])}")
    if meta.get("availability"):
        click.echo("    availability checks by Meta: "
                   + ", ".join(f"{k} {v}" for k, v in meta["availability"].items()))
    click.echo("    (Meta counts its own days; Flowgate's are UTC days)")
    drift = ours.get("drift") or {}
    if drift:
        click.echo(f"  ✗ drift: {sum(drift.values())} requests from another Flow JSON than the one served "
                   f"({', '.join(f'{k} {v}' for k, v in sorted(drift.items()))}) — flask flows deploy {name}")
