"""flask worker: the RQ worker, built from the same config as the web process."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from workers import retention
from workers.pool import run_pool
from workers.queues import QUEUES, build_worker, import_job_modules


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty (tests, one-offs).")
@click.option("--queue", "queue_names", multiple=True, help="Queues to serve (default: all, by priority).")
@click.option("--name", default=None, help="Worker name (default: RQ's; with --processes, suffixed -N).")
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Worker processes in this dyno (default: WORKER_PROCESSES); worker 0 runs the scheduler.")
@with_appcontext
def worker_command(burst, queue_names, name, processes):
    """Run HerokuWorker-based RQ workers with the scheduler.

    Jobs reach the app's Redis client and settings through ``current_app``: each runs in a
    fresh app context of this app (or, with RQ_FORK_PER_JOB, in a horse that inherits it).
    """
    cfg = current_app.config
    processes = processes or cfg["WORKER_PROCESSES"]
    retention.schedule(current_app.extensions["redis"], cfg)  # the hourly purge of old records

    def run_one(index: int | None) -> None:
        worker = build_worker(current_app.extensions["redis"], queue_names or QUEUES,
                              name=f"{name}-{index}" if name and index is not None else name,
                              maintenance_interval=cfg["RQ_MAINTENANCE_INTERVAL"],
                              job_monitoring_interval=cfg["RQ_JOB_MONITORING_INTERVAL"],
                              worker_ttl=cfg["RQ_WORKER_TTL"], heartbeat_grace=cfg["RQ_HEARTBEAT_GRACE"],
                              fork_per_job=cfg["RQ_FORK_PER_JOB"], threads=cfg["WORKER_THREADS"])
        worker.work(with_scheduler=not index, burst=burst, logging_level=cfg["LOG_LEVEL"])

    if processes == 1:
        run_one(None)
    else:
        import_job_modules()  # once, before the fork: the children share those pages
        run_pool(processes, run_one, burst=burst)
