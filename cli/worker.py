"""flask worker: the RQ worker, built from the same config as the web process."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from workers.queues import QUEUES, build_worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty (tests, one-offs).")
@click.option("--queue", "queue_names", multiple=True, help="Queues to serve (default: all, by priority).")
@click.option("--name", default=None, help="Worker name (default: RQ's).")
@with_appcontext
def worker_command(burst, queue_names, name):
    """Run a HerokuWorker-based RQ worker with the scheduler.

    Jobs reach the app's Redis client and settings through ``current_app``: each runs in a
    fresh app context of this app (or, with RQ_FORK_PER_JOB, in a horse that inherits it).
    """
    cfg = current_app.config
    worker = build_worker(current_app.extensions["redis"], queue_names or QUEUES, name=name,
                          maintenance_interval=cfg["RQ_MAINTENANCE_INTERVAL"],
                          job_monitoring_interval=cfg["RQ_JOB_MONITORING_INTERVAL"],
                          worker_ttl=cfg["RQ_WORKER_TTL"], heartbeat_grace=cfg["RQ_HEARTBEAT_GRACE"],
                          fork_per_job=cfg["RQ_FORK_PER_JOB"])
    worker.work(with_scheduler=True, burst=burst, logging_level=current_app.config["LOG_LEVEL"])
