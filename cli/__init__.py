"""flask command groups: keys, flows, worker."""


def init_app(app) -> None:
    from cli.flows import flows_group
    from cli.keys import keys_group
    from cli.messages import messages_group, submissions_command
    from cli.worker import worker_command

    app.cli.add_command(keys_group)
    app.cli.add_command(flows_group)
    app.cli.add_command(worker_command)
    app.cli.add_command(messages_group)
    flows_group.add_command(submissions_command)
