"""flask flows new: scaffold a working flow in the business's own package."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app

from cli import offline
from devtools.scaffold import scaffold


@click.command("new")
@click.argument("name")
@click.option("--lookup", default=None,
              help="Check the field against your API: the lookup's name (e.g. members).")
@click.option("--package", default=None, help="Where to write it (default: FLOWS_PACKAGE, business_flows).")
@offline
def new_command(name, lookup, package):
    """Write NAME.json, NAME.py and tests/test_NAME.py: a flow that lints clean, serves and plays."""
    package = package or current_app.config.get("FLOWS_PACKAGE") or "business_flows"
    try:
        written = scaffold(Path.cwd(), package, name, lookup)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path.relative_to(Path.cwd())}")
    click.echo(f"next: flask --app app flows lint {name}, then serve it (make run) and play it "
               f"(flask --app app flows simulate {name})")
