"""flask flows lint: the offline Flow JSON linter, on files or on registered flows."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from cli import offline
from devtools.lint import ERROR, WARNING, lint_flow, lint_text
from flows import loader
from flows.registry import Registry


def _targets(names) -> list[tuple[str, list]]:
    # every flow the code knows, served here or not
    registry = Registry(loader.known(current_app.config.get("FLOWS_PACKAGE")))
    if not names:
        return [(flow.name, lint_flow(flow)) for flow in registry]
    out = []
    for name in names:
        flow = registry.get(name)
        if flow is not None:
            out.append((name, lint_flow(flow)))
        elif Path(name).is_file():
            out.append((name, lint_text(Path(name).read_text(encoding="utf-8", errors="replace"))))
        else:
            raise click.BadParameter(f"{name!r} is neither a registered flow nor a file "
                                     f"(flows: {', '.join(registry.names()) or 'none'})", param_hint="TARGET")
    return out


@click.command("lint")
@click.argument("targets", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@with_appcontext
@offline
def lint_command(targets, fmt, strict):
    """Lint Flow JSON: a file, or a registered flow (its JSON and its handlers); all flows when none given.

    Exits 1 when any finding is an error (or a warning, with --strict).
    """
    results = _targets(targets)
    failing = {ERROR, WARNING} if strict else {ERROR}
    failed = any(f.severity in failing for _, found in results for f in found)
    if fmt == "json":
        click.echo(json.dumps({"ok": not failed, "results": [
            {"target": name, "findings": [f.to_dict() for f in found]}
            for name, found in results]}, indent=2))
    else:
        for name, found in results:
            _print_text(name, found)
    if failed:
        raise SystemExit(1)


def _print_text(name: str, found: list) -> None:
    if not found:
        click.echo(f"{name}: clean")
        return
    counts = {s: sum(f.severity == s for f in found) for s in ("error", "warning", "info")}
    click.echo(f"{name}: " + ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n))
    for f in found:
        click.echo(f"  {f.severity:7} {f.path}  [{f.rule}]")
        click.echo(f"          {f.message}")
        click.echo(f"          fix: {f.fix}")
        if f.source:
            click.echo(f"          source: {f.source}")
