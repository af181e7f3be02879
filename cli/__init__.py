"""flask command groups: keys, flows, endpoint, messages, records, worker, doctor.

Every command starts the app's subsystems (Redis, keys, domain, channels: ``app.start``) before
it runs, except the ones marked ``@offline``, which need none of them and so run with an empty
environment. A configuration problem (``config.ConfigError``) is one line on stderr,
``Error: <what is wrong> (<how to fix it>)``, and exit status 1, never a traceback.
"""
from __future__ import annotations

import functools

import click
from flask import current_app
from flask.cli import with_appcontext

from config import ConfigError


def offline(fn):
    """Mark a command that needs no Redis, no keys and no settings (keys generate, flows lint, ...)."""
    fn.offline = True
    return fn


def init_app(app) -> None:
    from cli.deploy import deploy_command, status_command
    from cli.doctor import doctor_command
    from cli.endpoint import endpoint_group
    from cli.flows import flows_group
    from cli.keys import keys_group
    from cli.lint import lint_command
    from cli.messages import messages_group, submissions_command
    from cli.new import new_command
    from cli.records import records_group
    from cli.worker import worker_command

    flows_group.add_command(lint_command)
    flows_group.add_command(deploy_command)
    flows_group.add_command(status_command)
    flows_group.add_command(submissions_command)
    flows_group.add_command(new_command)
    for command in (keys_group, flows_group, worker_command, endpoint_group, messages_group, records_group):
        _guard(command)
        app.cli.add_command(command)
    # The doctor reports a configuration the app refuses as one of its lines: it builds and starts
    # an app of its own from the settings it checked, so it is not guarded like the others.
    app.cli.add_command(doctor_command)

    @app.shell_context_processor
    def started() -> dict:  # flask shell: the subsystems too
        from app import start

        try:
            start(app)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        return {}


def _guard(command: click.Command) -> None:
    """Wrap each command's callback (once: the command objects are shared by every app built)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _guard(sub)
        return
    if getattr(command, "guarded", False):
        return
    callback = command.callback
    needs_app = not getattr(callback, "offline", False)

    @functools.wraps(callback)
    def run(*args, **kwargs):
        from app import start

        try:
            if needs_app:
                start(current_app)
            elif "config_error" in current_app.extensions:
                raise current_app.extensions["config_error"]
            return callback(*args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    command.callback = with_appcontext(run)
    command.guarded = True
