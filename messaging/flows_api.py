"""Meta's Flows API through the shared ``GraphClient``: list, create, update, upload, publish, read.

Shapes and error codes as Meta documents them (docs/meta-facts.md, "Flows API"); every call is
one Graph request and raises ``GraphError`` as the transport classifies it. Nothing here decides
anything: ``flows.deploy`` does, with this client handed in.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date

import requests

from messaging.graph import RETRYABLE, GraphClient, GraphError

# Fields read on every Flow of the list and on one Flow (``preview.invalidate(false)`` keeps the
# current preview link instead of minting a new one on every read).
LIST_FIELDS = ("id", "name", "status", "categories", "validation_errors", "endpoint_uri", "json_version",
               "data_api_version")
DETAIL_FIELDS = LIST_FIELDS + ("preview.invalidate(false)", "health_status")
METRICS = ("ENDPOINT_REQUEST_COUNT", "ENDPOINT_REQUEST_ERROR", "ENDPOINT_REQUEST_ERROR_RATE",
           "ENDPOINT_REQUEST_LATENCY_SECONDS_CEIL", "ENDPOINT_AVAILABILITY")
# Meta's Flow Management error codes (the Flows error codes reference).
CANNOT_UPDATE = 139001  # "Flow can't be updated": a published Flow's JSON or metadata
PUBLISH_REFUSED = 139002  # validation errors, no endpoint_uri, not a draft, endpoint not available, ...
NOT_ENOUGH_DATA = 139006  # metrics: fewer than 250 requests in the window
# A published Flow (live, or degraded by Meta's health monitoring) is immutable; a deprecated one
# cannot be sent at all.
PUBLISHED = ("PUBLISHED", "THROTTLED", "BLOCKED")
DEPRECATED = "DEPRECATED"
MAX_PAGES = 100  # 25 Flows a page by default: far more than a WABA holds; stops a paging loop


def json_digest(content: bytes) -> str:
    """SHA-256 of the Flow JSON read as JSON (key order and spacing do not count); of the bytes
    when they are not JSON."""
    try:
        canonical = json.dumps(json.loads(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha256(canonical.encode()).hexdigest()


_TOKEN = re.compile(r"[^./\[\]\s]+")


def json_path(pointer: str) -> str:
    """Meta's pointer path (``screens[0].layout.children[0].type``, spaces and all, or
    ``$root/screens/0/layout``) in the linter's spelling: ``$.screens[0].layout.children[0].type``."""
    out = ""
    for token in _TOKEN.findall(pointer or ""):
        if token in ("$", "$root"):
            continue
        out += f"[{token}]" if token.isdigit() else f".{token}"
    return "$" + out


@dataclass(frozen=True)
class ValidationError:
    """One of Meta's ``validation_errors``."""

    error: str
    error_type: str
    message: str
    line: int | None = None
    column: int | None = None
    paths: tuple[str, ...] = ()  # the pointers' paths, in the linter's spelling

    @classmethod
    def parse(cls, raw) -> "ValidationError":
        raw = raw if isinstance(raw, dict) else {}
        pointers = [p for p in raw.get("pointers") or [] if isinstance(p, dict)]
        paths = [json_path(str(p["path"])) for p in pointers if p.get("path")]
        if not paths:  # schema errors name the place in their message: "$root/screens/0/..."
            paths = [json_path(m) for m in re.findall(r"\$root[\w/\-]*", str(raw.get("message") or ""))]
        return cls(str(raw.get("error") or "UNKNOWN"), str(raw.get("error_type") or ""),
                   str(raw.get("message") or "")[:500], _int(raw.get("line_start")),
                   _int(raw.get("column_start")), tuple(paths))

    def to_dict(self) -> dict:
        return {"error": self.error, "error_type": self.error_type, "message": self.message,
                "line": self.line, "column": self.column, "paths": list(self.paths)}


@dataclass
class MetaFlow:
    """A Flow as Meta holds it (the fields asked for; others stay empty)."""

    id: str
    name: str
    status: str = "DRAFT"
    categories: tuple = ()
    validation_errors: list = field(default_factory=list)
    endpoint_uri: str | None = None
    json_version: str | None = None
    data_api_version: str | None = None
    preview_url: str | None = None
    can_send_message: str | None = None  # health_status: AVAILABLE | LIMITED | BLOCKED
    health_errors: list = field(default_factory=list)  # [(code, description)] of the Flow's node

    @classmethod
    def parse(cls, raw: dict) -> "MetaFlow":
        health = raw.get("health_status") if isinstance(raw.get("health_status"), dict) else {}
        errors = []
        for entity in health.get("entities") or []:
            if isinstance(entity, dict):
                for e in entity.get("errors") or []:
                    if isinstance(e, dict):
                        errors.append((f"{entity.get('entity_type', '?')} {e.get('error_code', '')}".strip(),
                                       str(e.get("error_description") or "")[:300]))
        preview = raw.get("preview") if isinstance(raw.get("preview"), dict) else {}
        return cls(id=str(raw.get("id") or ""), name=str(raw.get("name") or ""),
                   status=str(raw.get("status") or "DRAFT"), categories=tuple(raw.get("categories") or ()),
                   validation_errors=[ValidationError.parse(e) for e in raw.get("validation_errors") or []],
                   endpoint_uri=raw.get("endpoint_uri") or raw.get("data_channel_uri"),
                   json_version=raw.get("json_version"), data_api_version=raw.get("data_api_version"),
                   preview_url=preview.get("preview_url"), can_send_message=health.get("can_send_message"),
                   health_errors=errors)

    @property
    def published(self) -> bool:
        return self.status in PUBLISHED


class FlowsApi:
    def __init__(self, graph: GraphClient, waba_id: str):
        self.graph = graph
        self.waba_id = waba_id

    def list(self) -> list[MetaFlow]:
        """Every Flow of the WABA, page after page (``paging.cursors.after`` while there is a ``next``)."""
        flows, params = [], {"fields": ",".join(LIST_FIELDS)}
        for _ in range(MAX_PAGES):
            page = self.graph.request("GET", f"{self.waba_id}/flows", params=params)
            flows += [MetaFlow.parse(row) for row in page.get("data") or [] if isinstance(row, dict)]
            paging = page.get("paging") if isinstance(page.get("paging"), dict) else {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                break
            params = {**params, "after": after}
        return flows

    def create(self, name: str, categories, endpoint_uri: str, clone_flow_id: str | None = None) -> str:
        body = {"name": name, "categories": list(categories), "endpoint_uri": endpoint_uri}
        if clone_flow_id:
            body["clone_flow_id"] = clone_flow_id
        return str(self.graph.request("POST", f"{self.waba_id}/flows", json=body)["id"])

    def update(self, flow_id: str, **fields) -> None:
        """The Flow's metadata: ``name``, ``categories``, ``endpoint_uri``."""
        self.graph.request("POST", flow_id, json=fields)

    def upload_json(self, flow_id: str, content: bytes) -> list[ValidationError]:
        """Replace the Flow JSON (multipart, as Meta asks); Meta's validation errors, if any."""
        reply = self.graph.request("POST", f"{flow_id}/assets", files={
            "file": ("flow.json", content, "application/json"), "name": (None, "flow.json"),
            "asset_type": (None, "FLOW_JSON")})
        return [ValidationError.parse(e) for e in reply.get("validation_errors") or []]

    def publish(self, flow_id: str) -> None:
        self.graph.request("POST", f"{flow_id}/publish")

    def get(self, flow_id: str) -> MetaFlow:
        return MetaFlow.parse(self.graph.request("GET", flow_id, params={"fields": ",".join(DETAIL_FIELDS)}))

    def flow_json(self, flow_id: str) -> bytes | None:
        """The Flow JSON Meta holds (its asset's ``download_url``), or None when it has none.
        The download is not a Graph call: no token goes with it."""
        reply = self.graph.request("GET", f"{flow_id}/assets",
                                   params={"fields": "name,asset_type,download_url"})
        asset = next((a for a in reply.get("data") or [] if isinstance(a, dict)
                      and a.get("asset_type") == "FLOW_JSON" and a.get("download_url")), None)
        if asset is None:
            return None
        try:
            resp = self.graph.http.get(asset["download_url"], timeout=self.graph.timeout)
        except requests.RequestException as exc:
            raise GraphError(RETRYABLE, 0, None, f"Flow JSON download failed: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise GraphError(RETRYABLE, resp.status_code, None, "Flow JSON download failed")
        return resp.content

    def metric(self, flow_id: str, name: str, since: date, until: date, granularity: str = "DAY") -> list:
        """Meta's data points of one endpoint metric: ``[{"timestamp", "data": [{"key", "value"}]}]``."""
        spec = (f"metric.name({name}).granularity({granularity})"
                f".since({since:%Y-%m-%d}).until({until:%Y-%m-%d})")
        reply = self.graph.request("GET", flow_id, params={"fields": spec})
        metric = reply.get("metric") if isinstance(reply.get("metric"), dict) else {}
        return [p for p in metric.get("data_points") or [] if isinstance(p, dict)]


def _int(value) -> int | None:
    return value if isinstance(value, int) else None
