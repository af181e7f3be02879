"""flask endpoint selftest: play Meta against a deployed endpoint and explain what fails."""
from __future__ import annotations

import textwrap
from urllib.parse import urlparse

import click
from flask import current_app
from flask.cli import AppGroup

import security
from cli import offline
from flows import keys
from devtools import selftest
from flows import loader
from flows.registry import Registry
from flows.sessions import new_token
from messaging import business_key
from messaging.graph import GraphClient, GraphError

endpoint_group = AppGroup("endpoint", help="Check a deployed Flow endpoint the way Meta calls it.")
MARK = {True: "ok  ", False: "FAIL", None: "--  "}


@endpoint_group.command("selftest")
@click.argument("url")
@click.option("--flow", "flow_name", default=None,
              help="Registered flow behind the URL (default: the URL's last path segment).")
@click.option("--requests", "count", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Pings for the latency figures.")
@click.option("--public-key", "public_key_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Public key to encrypt with (default: this app's own key; use "
                   "the key registered with Meta).")
@click.option("--app-secret", default=None,
              help="Meta app secret to sign with (default: WHATSAPP_APP_SECRET).")
@click.option("--token", default=None, help="Flow token for INIT (default: a fresh one).")
@click.option("--timeout", type=float, default=selftest.META_TIMEOUT, show_default=True,
              help="Seconds to wait for each answer.")
@offline
def selftest_command(url, flow_name, count, public_key_path, app_secret, token, timeout):
    """Encrypted signed ping, a wrongly signed ping, the flow's INIT, and latency over N requests.

    With --public-key it needs no configuration (WHATSAPP_APP_SECRET or --app-secret signs)."""
    app = current_app
    public_key = open(public_key_path).read() if public_key_path else security.keyring(app).public_pem
    secret = app_secret if app_secret is not None else app.config["WHATSAPP_APP_SECRET"]
    name = flow_name or urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
    flow = Registry(loader.known(current_app.config.get("FLOWS_PACKAGE"))).get(name)
    screens = None
    if flow is not None:
        screens = {s["id"]: set(s.get("data") or {}) for s in flow.definition.get("screens", [])}
    elif flow_name:
        raise click.BadParameter(f"unknown flow {flow_name!r}", param_hint="--flow")
    version = str((flow.definition.get("data_api_version") if flow else None) or "3.0")
    report = selftest.run(url, public_key, secret, screens=screens, token=token or new_token(),
                          count=count, timeout=timeout, version=version)
    click.echo(f"Self-test of {url}" + (f" (flow {flow.name})" if flow else ""))
    for check in report.checks:
        click.echo(f"  {MARK[check.ok]} {check.name:16} {check.summary}")
        for line in textwrap.wrap(check.detail, 90, break_on_hyphens=False):
            click.echo(f"{'':23}{line}")
    if any(c.name == "decryption" and c.ok is False and c.summary.startswith("421") for c in report.checks):
        _compare_registered(public_key)
    click.echo("Result: " + ("OK" if report.ok else "FAILED"))
    if not report.ok:
        raise SystemExit(1)


def _compare_registered(public_key: str) -> None:
    """Which key does Meta hold? Only when the Graph API is configured."""
    cfg = current_app.config
    if not (cfg["WHATSAPP_ACCESS_TOKEN"] and cfg["WHATSAPP_PHONE_NUMBER_ID"]):
        click.echo(f"{'':23}(set WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID to compare with the key "
                   "registered at Meta)")
        return
    graph = GraphClient(cfg["WHATSAPP_API_BASE"], cfg["WHATSAPP_API_VERSION"], cfg["WHATSAPP_ACCESS_TOKEN"],
                        cfg["WHATSAPP_PHONE_NUMBER_ID"])
    try:
        reg = business_key.registered(graph, cfg["WHATSAPP_PHONE_NUMBER_ID"])
    except GraphError as exc:
        click.echo(f"{'':23}could not read the registered key: {exc}")
        return
    if reg.public_key is None:
        click.echo(f"{'':23}Meta has NO key registered for this number: flask keys upload")
        return
    registered_fp, used_fp = keys.fingerprint(reg.public_key), keys.fingerprint(public_key)
    click.echo(f"{'':23}registered at Meta: sha256:{registered_fp[:16]}…  used here: sha256:{used_fp[:16]}…"
               + ("  (same key: the endpoint runs a different private key)" if registered_fp == used_fp
                  else "  (different keys)"))
