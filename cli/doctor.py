"""flask doctor: check a configuration against production before a customer does.

    flask --app app doctor            every check, Meta and WASender included
    flask --app app doctor --offline  settings, Redis and the app's start (the release phase)
    python -m cli.doctor [--offline]  the same without building the app first: the way to run it
                                      when the app refuses to start (the Procfile's release does)

One line per check: ✓ ok, ⚠ warning (does not fail), ✗ failure with its fix, - not checked.
Exit 1 on any ✗. ``--json`` prints the report as JSON instead. The checks: ``preflight``.
"""
from __future__ import annotations

import json
import sys

import click

MARKS = {"ok": "✓", "warn": "⚠", "fail": "✗", "skip": "-"}
PLAIN = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "--"}


def _build_app(cfg: dict):
    """An app from the checked settings, started (Redis, keys, channels): what web and worker do,
    so whatever makes them refuse is reported here as a line."""
    from app import create_app, start

    app = create_app(cfg)
    start(app)
    return app


def _marks() -> dict:
    # A terminal that cannot print ✓ gets words rather than a UnicodeEncodeError.
    try:
        "".join(MARKS.values()).encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return PLAIN
    return MARKS


@click.command("doctor")
@click.option("--offline", is_flag=True,
              help="Only what needs no call to Meta, WASender or the public URL: "
                   "settings, Redis, the app's start.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor_command(offline, as_json):
    """Check these settings against production: one line per check, exit 1 on any failure."""
    import preflight

    report = preflight.run(offline=offline, build_app=_build_app)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        marks = _marks()
        scope = "offline checks" if offline else "every check"
        click.echo(f"flask doctor: {'production' if report.production else 'development'} settings, {scope}")
        for c in report.checks:
            fix = f" → {c.fix}" if c.fix and c.status in ("fail", "warn") else ""
            click.echo(f"{marks[c.status]} {c.name}: {c.summary}{fix}")
        failed, warned = report.count("fail"), report.count("warn")
        click.echo(f"{failed} failed, {warned} warning(s): " + ("fix the failed checks and run it again"
                                                                if failed else "ready"))
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    doctor_command(prog_name="python -m cli.doctor")
