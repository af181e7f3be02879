"""The records' retention: submissions and logged messages older than ``RECORDS_RETENTION_DAYS``
are deleted every hour (0 keeps them for ever). The consent ledger is never purged.

The purge is a job that schedules its successor for the next hour (``queues.schedule_hourly``);
``flask worker`` schedules the first, so a deployment that sets the retention needs nothing else.
"""
from __future__ import annotations

import logging
import time

from flask import current_app

from workers.queues import schedule_hourly

log = logging.getLogger("flowgate.retention")
JOB = "workers.retention.purge_records"


def schedule(redis, cfg) -> None:
    if cfg["RECORDS_RETENTION_DAYS"] > 0:
        schedule_hourly(redis, JOB, "records-purge")


def purge(records, days: int, now: float | None = None) -> dict:
    """Delete what was stored more than ``days`` ago; {} when the retention is 0 (for ever)."""
    if days <= 0:
        return {}
    return records.purge((time.time() if now is None else now) - days * 86400)


def purge_records() -> dict:
    ext, cfg = current_app.extensions, current_app.config
    # The next run first: a purge that fails (the database down) is retried by RQ, and the
    # schedule goes on either way.
    schedule(ext["redis"], cfg)
    removed = purge(ext["records"], cfg["RECORDS_RETENTION_DAYS"])
    if any(removed.values()):
        log.info("retention: removed %s submissions and %s messages older than %s days",
                 removed["submissions"], removed["messages"], cfg["RECORDS_RETENTION_DAYS"])
    return removed
