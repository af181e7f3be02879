"""flask command groups: keys, flows, worker."""


def init_app(app) -> None:
    from cli.flows import flows_group
    from cli.keys import keys_group
    from cli.worker import worker_command

    app.cli.add_command(keys_group)
    app.cli.add_command(flows_group)
    app.cli.add_command(worker_command)
