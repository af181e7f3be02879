"""Geometry for the dashboard's inline SVG charts, computed here so the templates only place it.

Latency uses a log scale from 1 ms to 10 s: a healthy endpoint answers in a few to tens of
milliseconds and Meta's thresholds sit at 1, 5 and 7 s; on a linear axis one or the other would
be invisible.
"""
from __future__ import annotations

import math
import time

from metrics.latency import P90_THRESHOLDS

BAR_WIDTH = 300  # funnel bars (viewBox units); the SVG itself scales to the page
LAT_WIDTH = 400  # the latency axis, 1 ms to 10 s
LAT_MIN, LAT_MAX = 0.001, 10.0


def funnel(flow, data: dict) -> dict:
    """Steps sent → opened → each screen → completed, with abandoned/recovered/failed beside."""
    counters, screens = data["counters"], data["screens"]
    steps = [("Sent", counters.get("sent", 0)), ("Opened", counters.get("opened", 0))]
    screen_ids = flow.screen_ids if flow is not None else sorted(screens)
    steps += [(f"Screen {sid}", screens.get(sid, 0)) for sid in screen_ids]
    row = 40
    steps.append(("Completed", counters.get("completed", 0)))
    side = [("Abandoned", counters.get("abandoned", 0)), ("Recovered", counters.get("recovered", 0)),
            ("Failed", counters.get("failed", 0)), ("Opt-outs", counters.get("opt_out", 0))]
    top = max([v for _, v in steps + side] + [1])
    base = max(counters.get("opened", 0), 1)
    rows = []
    for i, (label, value) in enumerate(steps):
        rows.append({"label": label, "value": value, "y": i * row,
                     "width": round(BAR_WIDTH * value / top, 1),
                     "share": f"{100 * value / base:.0f}%" if counters.get("opened") and i > 0 else ""})
    side_rows = [{"label": label, "value": value} for label, value in side]
    return {"rows": rows, "side": side_rows, "height": len(rows) * row + 6,
            "empty": not any(v for _, v in steps + side),
            "failed_by": data["failed_by"], "recovered_by": data["recovered_by"]}


def x_of(seconds: float | None) -> float:
    if not seconds:
        return 0.0
    clamped = min(max(seconds, LAT_MIN), LAT_MAX)
    return round(LAT_WIDTH * math.log10(clamped / LAT_MIN) / math.log10(LAT_MAX / LAT_MIN), 1)


def latency(snapshot: dict) -> dict:
    rows = []
    for flow, data in sorted(snapshot["flows"].items()):
        for action, s in sorted(data["endpoint"].items()):
            if action == "all" or not s["requests"]:
                continue
            rows.append({"flow": flow, "action": action, **s, "y": len(rows) * 42 + 16,
                         "x50": x_of(s["p50"]), "x90": x_of(s["p90"]), "x99": x_of(s["p99"])})
    ticks = [{"x": x_of(v), "label": label} for v, label in
             ((0.001, "1ms"), (0.01, "10ms"), (0.1, "100ms"), (1.0, "1s"), (10.0, "10s"))]
    thresholds = [{"x": x_of(t), "label": f"{t:g}s"} for t in P90_THRESHOLDS]
    return {"rows": rows, "ticks": ticks, "thresholds": thresholds, "height": len(rows) * 42 + 40}


def when(epoch: float) -> str:
    """A moment as the page prints it (UTC, to the minute)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(epoch)))
