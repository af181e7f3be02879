"""Reading metrics back: the dashboard's and /metrics.json's view, in two round trips.

Field names are the ones ``metrics.store`` writes: ``c|event[|label]`` counters,
``v|field|check`` validation failures, ``l|lookup|outcome`` lookup outcomes.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from metrics.latency import (ERROR_RATE_THRESHOLDS, P90_THRESHOLDS, WINDOW_MINUTES, Window,
                             parse_fields)
from metrics.store import (FLOWS_EVENTS_KEY, FLOWS_KEY, LATENCY_TOTAL_KEY, day_key, day_of,
                           minute_key, total_key)

# Counters with a label that the funnel shows as a breakdown.
BREAKDOWNS = {"screen": "screens", "failed": "failed_by", "recovered": "recovered_by"}


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def structure(fields: dict) -> dict:
    """Flat hash fields to a readable dict: counters, breakdowns, validation, lookups."""
    out = {"counters": {}, "screens": {}, "failed_by": {}, "recovered_by": {}, "labels": {},
           "validation": {}, "lookups": {}}
    for raw_key, raw_value in fields.items():
        parts = _s(raw_key).split("|")
        value = int(raw_value)
        if parts[0] == "c" and len(parts) in (2, 3):
            event = parts[1]
            out["counters"][event] = out["counters"].get(event, 0) + value
            if len(parts) == 3:
                bucket = BREAKDOWNS.get(event)
                target = out[bucket] if bucket else out["labels"].setdefault(event, {})
                target[parts[2]] = target.get(parts[2], 0) + value
        elif parts[0] == "v" and len(parts) == 3:
            key = f"{parts[1]}|{parts[2]}"
            out["validation"][key] = out["validation"].get(key, 0) + value
        elif parts[0] == "l" and len(parts) == 3:
            per = out["lookups"].setdefault(parts[1], {})
            per[parts[2]] = per.get(parts[2], 0) + value
    return out


def _merge(into: dict, fields: dict) -> dict:
    for k, v in fields.items():
        into[_s(k)] = into.get(_s(k), 0) + int(v)
    return into


def window(redis, now: float | None = None, minutes: int = WINDOW_MINUTES) -> dict:
    """``{(kind, flow, name): Window}`` over the last ``minutes`` minutes, the current one included."""
    now = time.time() if now is None else now
    current = int(now // 60)
    pipe = redis.pipeline(transaction=False)
    for minute in range(current - minutes + 1, current + 1):
        pipe.hgetall(minute_key(minute))
    into: dict = {}
    for fields in pipe.execute():
        parse_fields(fields, into)
    return into


def totals(redis, flows) -> tuple[dict, dict]:
    """All-time counters per flow and the all-time latency histograms (for Prometheus)."""
    pipe = redis.pipeline(transaction=False)
    for flow in flows:
        pipe.hgetall(total_key(flow))
    pipe.hgetall(LATENCY_TOTAL_KEY)
    results = pipe.execute()
    return {flow: {_s(k): int(v) for k, v in f.items()} for flow, f in zip(flows, results)}, \
        {_s(k): int(v) for k, v in results[-1].items()}


def flow_names(redis) -> list[str]:
    return sorted(_s(x) for x in redis.smembers(FLOWS_KEY))


def snapshot(redis, days: int = 7, now: float | None = None, flows=None) -> dict:
    now = time.time() if now is None else now
    names = sorted(set(flow_names(redis)) | set(flows or ()))
    day_list = [day_of(now - 86400 * i) for i in range(days)]
    current = int(now // 60)
    pipe = redis.pipeline(transaction=False)
    for flow in names:
        for day in day_list:
            pipe.hgetall(day_key(flow, day))
    for minute in range(current - WINDOW_MINUTES + 1, current + 1):
        pipe.hgetall(minute_key(minute))
    pipe.lrange(FLOWS_EVENTS_KEY, 0, -1)
    results = pipe.execute()
    per_flow = results[: len(names) * days]
    minutes = results[len(names) * days: -1]
    windows: dict = {}
    for fields in minutes:
        parse_fields(fields, windows)
    out_flows = {}
    for i, flow in enumerate(names):
        daily = per_flow[i * days: (i + 1) * days]
        period: dict = {}
        for fields in daily:
            _merge(period, fields)
        out_flows[flow] = {
            "today": structure(daily[0]),
            "period": structure(period),
            "days": [{"day": d, **structure(f)["counters"]} for d, f in zip(day_list, daily)],
            "endpoint": _windows_for(windows, "e", flow),
            "lookup_latency": _windows_for(windows, "l", flow),
        }
    return {
        "generated_at": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
        "period_days": days,
        "window_minutes": WINDOW_MINUTES,
        "thresholds": {"p90_seconds": list(P90_THRESHOLDS), "error_rate": list(ERROR_RATE_THRESHOLDS)},
        "flows": out_flows,
        "flows_events": [json.loads(x) for x in results[-1]],
    }


def _windows_for(windows: dict, kind: str, flow: str) -> dict:
    """Per action (or lookup name), plus "all" summed over them."""
    out, everything = {}, Window()
    for (k, f, name), w in sorted(windows.items()):
        if k == kind and f == flow:
            out[name] = w.summary()
            everything.add(w)
    if out:
        out["all"] = everything.summary()
    return out


def top_validation_errors(snap: dict, limit: int = 10) -> list[dict]:
    rows = []
    for flow, data in snap["flows"].items():
        for key, count in data["period"]["validation"].items():
            field, check = key.split("|", 1)
            rows.append({"flow": flow, "field": field, "check": check, "count": count})
    rows.sort(key=lambda r: (-r["count"], r["flow"], r["field"], r["check"]))
    return rows[:limit]


def endpoint_days(redis, flow: str, days: list[str]) -> dict:
    """Our endpoint figures summed over ``days`` (``YYYY-MM-DD``, UTC), in the shape of Meta's
    Flow metrics: requests, errors, latency rounded up to whole seconds ("1".."10", "10+"), and
    the drift counted by the engine."""
    pipe = redis.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(day_key(flow, day))
    out = {"requests": 0, "errors": 0, "latency": {}, "drift": {}}
    for fields in pipe.execute():
        for raw_key, raw_value in fields.items():
            key, value = _s(raw_key), int(raw_value)
            if key == "r|n":
                out["requests"] += value
            elif key == "r|err":
                out["errors"] += value
            elif key.startswith("r|s"):
                out["latency"][key[3:]] = out["latency"].get(key[3:], 0) + value
            elif key.startswith("c|drift|"):
                out["drift"][key[8:]] = out["drift"].get(key[8:], 0) + value
    return out
