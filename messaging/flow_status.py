"""`flask flows status`: Meta's view of a Flow (status, health, validation errors, preview) and its
endpoint metrics over a window of days, summed into the figures Flowgate keeps for the same days.

Meta's Metrics API (``GET /<FLOW_ID>?fields=metric.name(...).granularity(DAY).since(...).until(...)``)
answers error 139006 below 250 requests in the window, and Meta announced its deprecation for
30 April 2026 (docs/meta-facts.md): either way the metrics are reported unavailable, in words,
and the rest of the status stands.
"""
from __future__ import annotations

from datetime import date

from messaging.flows_api import METRICS, NOT_ENOUGH_DATA, FlowsApi, MetaFlow
from messaging.graph import GraphError

SENDABLE = ("PUBLISHED", "DRAFT")  # THROTTLED sends 10 an hour; BLOCKED and DEPRECATED none


def meta_metrics(api: FlowsApi, flow_id: str, since: date, until: date) -> dict:
    """``{"requests", "errors", "error_types", "error_rate", "latency", "availability"}`` summed over
    Meta's DAY data points, or ``{"unavailable": why}``."""
    points = {}
    for name in METRICS:
        try:
            points[name] = api.metric(flow_id, name, since, until)
        except GraphError as exc:
            if exc.code == NOT_ENOUGH_DATA:
                return {"unavailable": "not enough data yet: Meta reports metrics "
                                       "from 250 requests in the window"}
            if exc.code is None and exc.status == 0:
                raise  # the network: the command says so
            return {"unavailable": f"Meta's metrics are not available (error {exc.code}: "
                                   f"{exc.user_message or exc.message})"}
    summed = {name: _sum(points[name]) for name in METRICS}
    requests = summed["ENDPOINT_REQUEST_COUNT"].get("value", 0)
    errors = summed["ENDPOINT_REQUEST_ERROR"]
    return {"requests": requests, "errors": sum(errors.values()), "error_types": errors,
            "error_rate": round(sum(errors.values()) / requests, 4) if requests else None,
            "latency": summed["ENDPOINT_REQUEST_LATENCY_SECONDS_CEIL"],
            "availability": summed["ENDPOINT_AVAILABILITY"]}


def _sum(points: list) -> dict:
    out: dict = {}
    for point in points:
        for item in point.get("data") or []:
            if isinstance(item, dict) and isinstance(item.get("value"), (int, float)):
                key = str(item.get("key"))
                out[key] = out.get(key, 0) + item["value"]
    return out


def describe(meta: MetaFlow) -> dict:
    """What the status shows and the dashboard caches of one Flow."""
    return {"flow_id": meta.id, "meta_name": meta.name, "status": meta.status,
            "can_send_message": meta.can_send_message, "health_errors": meta.health_errors,
            "validation_errors": [e.to_dict() for e in meta.validation_errors],
            "endpoint_uri": meta.endpoint_uri, "json_version": meta.json_version,
            "data_api_version": meta.data_api_version, "preview_url": meta.preview_url}


def latency_shares(buckets: dict) -> str:
    """"≤1 s 95 %, ≤3 s 4 %, >10 s 1 %" from ceil-second buckets ("1".."10", "10+")."""
    total = sum(buckets.values())
    if not total:
        return "-"
    order = sorted(buckets, key=lambda k: 11 if k == "10+" else int(k))
    return ", ".join(f"{'>10 s' if k == '10+' else '≤' + k + ' s'} {buckets[k] / total:.0%}" for k in order)
