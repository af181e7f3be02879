"""Submissions as CSV: one row each, the fixed fields first, then one column per answer field.

Written in two passes over the same filters (the answer fields differ between flows, and the
header must name them all), a batch at a time, so an export of any size holds one batch in memory.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

from records.submissions import Filters, SubmissionRecords

FIXED = ("id", "received_at", "flow", "from", "user_id", "username", "message_id", "flow_token", "problem")
# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): shown as text instead.
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    return "'" + text if text.startswith(FORMULA) else text


def _when(ts) -> str:
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else ""


def rows(store: SubmissionRecords, filters: Filters | None = None):
    """The CSV text, a chunk of lines at a time (for a streamed HTTP answer or a file)."""
    fields: dict[str, None] = {}
    for doc in store.each(filters):
        for key in (doc.get("response") or {}):
            fields.setdefault(str(key), None)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*FIXED, *(f"response.{k}" for k in fields)])
    for n, doc in enumerate(store.each(filters), 1):
        response = doc.get("response") or {}
        fixed = [_when(doc["received_at"]) if k == "received_at" else _cell(doc.get(k)) for k in FIXED]
        writer.writerow(fixed + [_cell(response.get(k)) for k in fields])
        if n % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
