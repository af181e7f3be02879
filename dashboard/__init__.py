"""The dashboard's read side: what the dashboard and GET /metrics show of sessions, the outbox,
WASender's status (``activity``) and the Prometheus exporter (``prometheus``). Reads only; the
counters are written by ``metrics/``, the RQ figures come from ``workers/jobs.py``."""
