"""flask command groups: keys, flows, worker, endpoint, doctor."""


def init_app(app) -> None:
    from cli.doctor import doctor_command
    from cli.endpoint import endpoint_group
    from cli.flows import flows_group
    from cli.keys import keys_group
    from cli.lint import lint_command
    from cli.messages import messages_group, submissions_command
    from cli.worker import worker_command

    flows_group.add_command(lint_command)
    app.cli.add_command(keys_group)
    app.cli.add_command(flows_group)
    app.cli.add_command(worker_command)
    app.cli.add_command(endpoint_group)
    app.cli.add_command(messages_group)
    app.cli.add_command(doctor_command)
    flows_group.add_command(submissions_command)
