"""Meta's Flows API on the Graph stand-in: list (paged), create / clone, update, assets, publish,
deprecate, details and metrics, with the shapes and error codes Meta documents (docs/meta-facts.md,
"Flows API"). A published Flow refuses changes with error 139001, as Meta's Flows API reference,
its error codes page and pywa's FlowUpdatingError have it.

Meta validates every uploaded Flow JSON; this stand-in checks a few documented rules on its own
(JSON syntax, two character limits of the components reference) and answers any other
``validation_errors`` a test scripts with ``reject_next_upload``.
"""
from __future__ import annotations

import itertools
import json
import re
import secrets
from datetime import date, timedelta

from flask import Response, request

from standins import StandIn

CATEGORIES = {"SIGN_UP", "SIGN_IN", "APPOINTMENT_BOOKING", "LEAD_GENERATION", "CONTACT_US",
              "CUSTOMER_SUPPORT", "SURVEY", "OTHER"}
DEFAULT_FIELDS = ("id", "name", "status", "categories", "validation_errors")
# The stand-in's own share of Meta's validation: (component, property) -> characters.
LIMITS = {("TextInput", "label"): 20, ("Footer", "label"): 35}
_INDEX = re.compile(r"\[(\d+)\]")
METRIC = re.compile(r"metric\.name\((\w+)\)\.granularity\((\w+)\)"
                    r"(?:\.since\(([\d-]+)\))?(?:\.until\(([\d-]+)\))?")


def flows_error(code: int, title: str, message: str = "Invalid parameter", status: int = 400):
    return status, {"error": {"message": message, "type": "OAuthException", "code": code,
                              "error_user_title": title, "error_user_msg": title, "is_transient": False,
                              "fbtrace_id": "AbCdEfFlows"}}


def validation_error(error: str, message: str, path: str = "", line: int = 1, column: int = 1) -> dict:
    """One of Meta's ``validation_errors`` (``path`` in Meta's spelling: ``screens[0].layout...``)."""
    span = {"line_start": line, "line_end": line, "column_start": column, "column_end": column + 10}
    body = {"error": error, "error_type": "FLOW_JSON_ERROR", "message": message, **span}
    if path:
        body["pointers"] = [{**span, "path": path}]
    return body


class MetaFlows:
    def __init__(self, standin: StandIn):
        self.standin = standin
        self.wabas: set[str] = set()
        self.flows: dict[str, dict] = {}  # flow id -> its node, plus "waba" and the uploaded "json"
        self.page_size = 25
        self.metrics: dict[str, dict[str, list]] = {}  # flow id -> metric name -> data points
        self._scripted: list[list[dict]] = []
        self.publish_refusal: str | None = None  # a publishing check that fails (e.g. no signed public key)
        self._downloads: dict[str, str] = {}
        self._ids = itertools.count(7_100_000_000_001)

    # --- what a test sets up or reads -----------------------------------------------------
    def add_waba(self, waba_id: str) -> None:
        self.wabas.add(waba_id)

    def reject_next_upload(self, *errors: dict) -> None:
        self._scripted.append(list(errors))

    def by_name(self, name: str) -> dict | None:
        return next((f for f in self.flows.values() if f["name"] == name), None)

    def add_metrics(self, flow_id: str, day: date, requests: int, errors: dict | None = None,
                    latency: dict | None = None, availability: dict | None = None) -> None:
        """One day's data points of every endpoint metric, as Meta's Metrics API gives them."""
        stamp = f"{day:%Y-%m-%d}T08:00:00+0000"
        errors, latency = errors or {}, latency or {"1": requests}
        per = {"ENDPOINT_REQUEST_COUNT": [{"key": "value", "value": requests}],
               "ENDPOINT_REQUEST_ERROR": [{"key": k, "value": v} for k, v in errors.items()],
               "ENDPOINT_REQUEST_ERROR_RATE": [
                   {"key": "value", "value": round(sum(errors.values()) / requests, 4) if requests else 0}],
               "ENDPOINT_REQUEST_LATENCY_SECONDS_CEIL": [{"key": k, "value": v} for k, v in latency.items()],
               "ENDPOINT_AVAILABILITY": [{"key": k, "value": v}
                                         for k, v in (availability or {"succeeded": 10}).items()]}
        for name, data in per.items():
            self.metrics.setdefault(flow_id, {}).setdefault(name, []).append({"timestamp": stamp,
                                                                              "data": data})

    # --- Meta's side ----------------------------------------------------------------------
    def validate(self, content: bytes) -> list[dict]:
        if self._scripted:
            return self._scripted.pop(0)
        try:
            doc = json.loads(content)
        except ValueError:
            return [validation_error("INVALID_FLOW_JSON", "Flow JSON is not valid")]
        found, text = [], content.decode("utf-8", "replace")
        for i, screen in enumerate(doc.get("screens") or []):
            for path, comp in _components(screen.get("layout", {}).get("children"),
                                          f"screens[{i}].layout.children"):
                for (kind, prop), most in LIMITS.items():
                    value = comp.get(prop)
                    if (comp.get("type") == kind and isinstance(value, str) and "${" not in value
                            and len(value) > most):
                        at = max(text.find(json.dumps(value, ensure_ascii=False)), 0)
                        line = text[:at].count("\n") + 1
                        root = "$root/" + _INDEX.sub(r"/\1", path).replace(".", "/")
                        found.append(validation_error(
                            "INVALID_PROPERTY_VALUE",
                            f"Invalid value found for property '{prop}' at '{root}/{prop}'.",
                            f"{path}.{prop}", line))
        return found

    def node(self, flow: dict, fields: tuple[str, ...]) -> tuple[int, dict]:
        out = {"id": flow["id"]}
        for name in fields:
            metric = METRIC.fullmatch(name)
            if metric:
                return self._metric(flow, *metric.groups())
            key = name.split(".")[0]
            if key == "preview":
                out["preview"] = {
                    "preview_url": f"https://business.facebook.com/wa/manage/flows/{flow['id']}/preview/"
                                   f"?token={flow['preview']}",
                    "expires_at": "2026-12-31T11:18:09+0000"}
            elif key == "health_status":
                can = {"PUBLISHED": "AVAILABLE", "THROTTLED": "LIMITED",
                       "DRAFT": "AVAILABLE"}.get(flow["status"], "BLOCKED")
                entity = {"entity_type": "FLOW", "id": flow["id"], "can_send_message": can}
                if can == "BLOCKED":
                    entity["errors"] = [{
                        "error_code": 131000, "error_description": f"flow status: {flow['status']}",
                        "possible_solution": "https://developers.facebook.com/docs/whatsapp/flows"}]
                out["health_status"] = {"can_send_message": can, "entities": [entity]}
            elif key in flow and key not in ("json", "waba", "preview"):
                out[key] = flow[key]
        return 200, out

    def _metric(self, flow: dict, name: str, granularity: str, since: str | None, until: str | None):
        points = self.metrics.get(flow["id"], {}).get(name)
        if points is None:
            return flows_error(139006, "Metrics threshold not reached",
                               "Not enough data: metrics need at least 250 endpoint requests")
        since_d = date.fromisoformat(since) if since else date.today() - timedelta(days=90)
        until_d = date.fromisoformat(until) if until else date.today()
        kept = [p for p in points if since_d <= date.fromisoformat(p["timestamp"][:10]) <= until_d]
        return 200, {"id": flow["id"],
                     "metric": {"granularity": granularity, "name": name, "data_points": kept}}

    def routes(self, app, answer) -> None:
        standin = self.standin

        @app.get("/<version>/<waba_id>/flows")
        def list_flows(version, waba_id):
            def ok():
                if waba_id not in self.wabas:
                    return _no_such(waba_id)
                rows = [f for f in self.flows.values() if f["waba"] == waba_id]
                start = int(request.args.get("after") or 0)
                page = rows[start: start + self.page_size]
                fields = _fields(request.args.get("fields"))
                paging = {"cursors": {"before": str(start), "after": str(start + len(page))}}
                if start + len(page) < len(rows):
                    paging["next"] = f"{standin.url}/{version}/{waba_id}/flows?after={start + len(page)}"
                return {"data": [self.node(f, fields)[1] for f in page], "paging": paging}
            return answer(ok)

        @app.post("/<version>/<waba_id>/flows")
        def create_flow(version, waba_id):
            def ok():
                body = request.get_json(silent=True) or request.form.to_dict()
                if waba_id not in self.wabas:
                    return _no_such(waba_id)
                name, categories = body.get("name"), body.get("categories")
                if not name or not isinstance(categories, list) or not categories \
                        or not set(categories) <= CATEGORIES:
                    return flows_error(100, "Invalid parameter", "(#100) Invalid parameter")
                if any(f["name"] == name and f["waba"] == waba_id for f in self.flows.values()):
                    return flows_error(100, "Flow name is not unique")
                source = self.flows.get(str(body.get("clone_flow_id") or ""))
                if body.get("clone_flow_id") and source is None:
                    return flows_error(100, "Flow with specified ID does not exist")
                flow_id = str(next(self._ids))
                self.flows[flow_id] = {"id": flow_id, "name": name, "status": "DRAFT",
                                       "categories": categories,
                                       "validation_errors": (list(source["validation_errors"]) if source
                                                             else []),
                                       "endpoint_uri": body.get("endpoint_uri"), "waba": waba_id,
                                       "json": source["json"] if source else None,
                                       "json_version": source.get("json_version") if source else None,
                                       "data_api_version": source.get("data_api_version") if source else None,
                                       "preview": secrets.token_hex(4)}
                return {"id": flow_id, "success": True}
            return answer(ok)

        @app.post("/<version>/<flow_id>")
        def update_flow(version, flow_id):
            def ok():
                flow = self.flows.get(flow_id)
                if flow is None:
                    return _no_such(flow_id)
                if flow["status"] != "DRAFT":
                    return flows_error(139001, "Flow can't be updated")
                body = request.get_json(silent=True) or request.form.to_dict()
                flow.update({k: body[k] for k in ("name", "categories", "endpoint_uri") if k in body})
                return {"success": True}
            return answer(ok)

        @app.post("/<version>/<flow_id>/assets")
        def upload(version, flow_id):
            def ok():
                flow = self.flows.get(flow_id)
                if flow is None:
                    return _no_such(flow_id)
                if flow["status"] != "DRAFT":
                    return flows_error(139001, "Flow can't be updated")
                file = request.files.get("file")
                if file is None or request.form.get("name") != "flow.json" \
                        or request.form.get("asset_type") != "FLOW_JSON":
                    return flows_error(100, "Invalid parameter", "(#100) Invalid parameter")
                content = file.read()
                errors = self.validate(content)
                flow.update(json=content, validation_errors=errors)
                try:
                    doc = json.loads(content)
                    flow.update(json_version=doc.get("version"), data_api_version=doc.get("data_api_version"))
                except ValueError:
                    pass
                return {"success": True, "validation_errors": errors}
            return answer(ok)

        @app.get("/<version>/<flow_id>/assets")
        def assets(version, flow_id):
            def ok():
                flow = self.flows.get(flow_id)
                if flow is None:
                    return _no_such(flow_id)
                if flow["json"] is None:
                    return {"data": []}
                token = secrets.token_urlsafe(8)
                self._downloads[token] = flow_id
                return {"data": [{"name": "flow.json", "asset_type": "FLOW_JSON",
                                  "download_url": f"{standin.url}/cdn/flow-json/{token}"}],
                        "paging": {"cursors": {"before": "QVFIU", "after": "QVFIU"}}}
            return answer(ok)

        @app.get("/cdn/flow-json/<token>")
        def download(token):
            standin.record(request)
            flow = self.flows.get(self._downloads.get(token, ""))
            if flow is None or flow["json"] is None:
                return Response("not found", status=404)
            return Response(flow["json"], mimetype="application/json")

        @app.post("/<version>/<flow_id>/publish")
        def publish(version, flow_id):
            def ok():
                flow = self.flows.get(flow_id)
                if flow is None:
                    return _no_such(flow_id)
                if flow["status"] != "DRAFT":
                    return flows_error(139002, "Publishing Flow in invalid state")
                if flow["validation_errors"] or flow["json"] is None:
                    return flows_error(139002, "Publishing Flow with validation errors")
                if not flow["endpoint_uri"]:
                    return flows_error(139002, "Publishing without specifying endpoint_uri is forbidden")
                if self.publish_refusal:
                    return flows_error(139002, self.publish_refusal)
                flow["status"] = "PUBLISHED"
                return {"success": True}
            return answer(ok)

        @app.post("/<version>/<flow_id>/deprecate")
        def deprecate(version, flow_id):
            def ok():
                flow = self.flows.get(flow_id)
                if flow is None:
                    return _no_such(flow_id)
                if flow["status"] not in ("PUBLISHED", "THROTTLED", "BLOCKED"):
                    return flows_error(139003, "Can't deprecate unpublished Flow")
                flow["status"] = "DEPRECATED"
                return {"success": True}
            return answer(ok)


def _fields(asked: str | None) -> tuple[str, ...]:
    return tuple(f.strip() for f in asked.split(",") if f.strip()) if asked else DEFAULT_FIELDS


def _components(children, path: str):
    for i, comp in enumerate(children if isinstance(children, list) else []):
        if isinstance(comp, dict):
            here = f"{path}[{i}]"
            yield here, comp
            for key in ("children", "then", "else"):
                yield from _components(comp.get(key), f"{here}.{key}")


def _no_such(node_id: str):
    from standins.graph import no_such_object

    return no_such_object(node_id)
