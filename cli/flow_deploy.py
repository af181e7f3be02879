"""`flask flows deploy`: put each served flow on Meta as the repository has it, and nothing more.

For one flow: lint; find it on the WABA (the Flow ID remembered for this environment, else by
name); create it when absent (name, categories, ``endpoint_uri`` = PUBLIC_BASE_URL/flows/<name>);
correct a draft's ``endpoint_uri`` and categories; upload the Flow JSON only when it differs from
Meta's copy (compared by digest); publish on request once our lint and Meta's validation are
clean. A published Flow is immutable (Meta error 139001): its new version is a new Flow cloned
from it (``clone_flow_id``), named ``<name>-<8 hex>`` (of its JSON and endpoint), which takes over
the remembered Flow ID so new messages open it, while messages already sent keep opening the old
one. Writes happen only for what differs, so a second run writes nothing. Graph failures other
than Meta's documented refusals propagate (the command reports them).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from devtools.lint import ERROR, lint_flow
from flows.on_meta import Deployed, FlowIdStore, StatusCache
from flows.registry import CATEGORIES
from messaging.flows_api import (CANNOT_UPDATE, DEPRECATED, PUBLISH_REFUSED, FlowsApi, MetaFlow,
                                 ValidationError, json_digest)
from messaging.graph import GraphError


def endpoint_uri(base_url: str, flow_name: str) -> str:
    return f"{base_url.rstrip('/')}/flows/{flow_name}"


def clone_name(flow_name: str, digest: str, uri: str) -> str:
    """A clone's name: unique per WABA (Meta requires it) and the same for the same JSON and
    endpoint, so a second run finds the clone it made instead of making another."""
    return f"{flow_name}-{hashlib.sha256(f'{digest} {uri}'.encode()).hexdigest()[:8]}"


@dataclass
class Report:
    flow: str
    flow_id: str | None = None
    meta_name: str | None = None
    status: str | None = None
    findings: list = field(default_factory=list)  # our lint, all severities (matched to Meta's paths)
    meta_errors: list[ValidationError] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)  # what was changed on Meta, in words
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # why the flow is not where it was asked to be

    @property
    def failed(self) -> bool:
        return bool(self.problem or self.meta_errors or any(f.severity == ERROR for f in self.findings))

    def ours_at(self, error: ValidationError) -> list:
        """Our findings at the place Meta's error points to (the same node, or inside it)."""
        return [f for f in self.findings for p in error.paths
                if f.path == p or f.path.startswith((p + ".", p + "["))
                   or p.startswith((f.path + ".", f.path + "["))]


class Deployer:
    def __init__(self, api: FlowsApi, ids: FlowIdStore, statuses: StatusCache, base_url: str, *,
                 publish: bool = False, clone: bool = False):
        self.api, self.ids, self.statuses = api, ids, statuses
        self.base_url, self.publish, self.clone = base_url, publish, clone
        self._listing: list[MetaFlow] | None = None

    def run(self, flows):
        """One Report per flow, as each is done."""
        for flow in flows:
            yield self.deploy(flow)

    @property
    def listing(self) -> list[MetaFlow]:
        if self._listing is None:
            self._listing = self.api.list()
        return self._listing

    def deploy(self, flow) -> Report:
        report = Report(flow.name, findings=lint_flow(flow))
        if report.failed:
            report.problem = f"lint errors: nothing sent to Meta (flask flows lint {flow.name})"
            return report
        unknown = sorted(set(flow.categories) - set(CATEGORIES)) or ([] if flow.categories else ["(none)"])
        if unknown:
            report.problem = f"categories {', '.join(unknown)} are not Meta's ({', '.join(CATEGORIES)})"
            return report
        content = flow.json_path.read_bytes()
        digest, uri = json_digest(content), endpoint_uri(self.base_url, flow.name)
        remembered = self.ids.get(flow.name)
        meta = self._locate(flow, digest, remembered, report)
        if meta is None:
            meta = self._create(flow, flow.name, uri, report)
        elif meta.published or meta.status == DEPRECATED:
            changed = self._immutable_change(meta, content, digest, remembered, report)
            if not changed:
                report.notes.append("Flow JSON unchanged")
                report.meta_errors = list(meta.validation_errors)
                return self._done(report, meta, digest, synced=True)
            if not self.clone:
                report.problem = _immutable(flow.name, meta, changed, self.publish)
                return self._done(report, meta, digest, synced=False)
            meta = self._clone(flow, meta, digest, uri, report)
        try:
            changes = {}
            if meta.endpoint_uri != uri:
                changes["endpoint_uri"] = uri
            if set(meta.categories) != set(flow.categories):
                changes["categories"] = list(flow.categories)
            if changes:
                self.api.update(meta.id, **changes)
                report.writes.append("set " + ", ".join(f"{k} {v if isinstance(v, str) else ', '.join(v)}"
                                                        for k, v in changes.items()))
                meta.endpoint_uri, meta.categories = uri, tuple(flow.categories)
            if self._same_json(meta, content, digest, remembered, report):
                report.notes.append("Flow JSON unchanged")
            else:
                meta.validation_errors = self.api.upload_json(meta.id, content)
                report.writes.append(f"Flow JSON uploaded (sha256 {digest[:12]})")
        except GraphError as exc:
            if exc.code != CANNOT_UPDATE:
                raise
            report.problem = _immutable(flow.name, meta, "Flow JSON", self.publish, refused=exc)
            return self._done(report, meta, digest, synced=False)
        report.meta_errors = list(meta.validation_errors)
        if self.publish and meta.status == "DRAFT":
            self._publish(meta, report)
        return self._done(report, meta, digest, synced=True)

    # --- the steps -------------------------------------------------------------------------
    def _locate(self, flow, digest: str, remembered: Deployed | None, report: Report) -> MetaFlow | None:
        if remembered:
            found = next((m for m in self.listing if m.id == remembered.flow_id), None)
            if found:
                return found
            report.notes.append(f"the remembered Flow {remembered.flow_id} is "
                                "not on this WABA: found by name")
        for name in (clone_name(flow.name, digest, endpoint_uri(self.base_url, flow.name)), flow.name):
            found = next((m for m in self.listing if m.name == name), None)
            if found:
                return found
        return None

    def _create(self, flow, name: str, uri: str, report: Report, clone_of: str | None = None) -> MetaFlow:
        flow_id = self.api.create(name, flow.categories, uri, clone_flow_id=clone_of)
        meta = MetaFlow(id=flow_id, name=name, status="DRAFT", categories=flow.categories, endpoint_uri=uri)
        self.ids.remember(flow.name, Deployed(flow_id, name, None, "DRAFT"))
        self.listing.append(meta)
        what = f"cloned from Flow {clone_of}" if clone_of else f"categories {', '.join(flow.categories)}"
        report.writes.append(f"created Flow {flow_id} named {name} ({what})")
        return meta

    def _immutable_change(self, meta: MetaFlow, content: bytes, digest: str, remembered: Deployed | None,
                          report: Report) -> str | None:
        """What would have to change on a published or deprecated Flow, or None."""
        if meta.status == DEPRECATED:
            return "status"
        if meta.endpoint_uri != endpoint_uri(self.base_url, report.flow):
            return "endpoint_uri"
        return None if self._same_json(meta, content, digest, remembered, report) else "Flow JSON"

    def _clone(self, flow, old: MetaFlow, digest: str, uri: str, report: Report) -> MetaFlow:
        name = clone_name(flow.name, digest, uri)
        existing = next((m for m in self.listing if m.name == name), None)
        meta = existing or self._create(flow, name, uri, report, clone_of=old.id)
        report.notes.append(f"Flow {old.id} ({old.name}) stays {old.status} for the messages already sent; "
                            "deprecate it once they have expired (Flow Builder, or POST "
                            f"/{old.id}/deprecate)")
        return meta

    def _same_json(self, meta: MetaFlow, content: bytes, digest: str, remembered: Deployed | None,
                   report: Report) -> bool:
        """Meta's copy against ours, by digest; the digest remembered at the last upload when
        Meta's copy cannot be downloaded."""
        try:
            remote = self.api.flow_json(meta.id)
        except GraphError as exc:
            if exc.code is not None:  # Meta refused the read itself: the command reports it
                raise
            report.notes.append(f"Meta's copy of the Flow JSON could not be read ({exc.message}): "
                                "compared with the digest of the last upload")
            return bool(remembered and remembered.flow_id == meta.id and remembered.json_sha256 == digest)
        return remote is not None and json_digest(remote) == digest

    def _publish(self, meta: MetaFlow, report: Report) -> None:
        if report.meta_errors:
            report.problem = "not published: Meta reports validation errors"
            return
        try:
            self.api.publish(meta.id)
        except GraphError as exc:
            if exc.code != PUBLISH_REFUSED:
                raise
            report.problem = f"Meta refused to publish (error {exc.code}): {exc.user_message or exc.message}"
            return
        meta.status = "PUBLISHED"
        report.writes.append("published")

    def _done(self, report: Report, meta: MetaFlow, digest: str, synced: bool) -> Report:
        """Remember the Flow (with the digest of its JSON when Meta now has ours) and cache its
        status for the dashboard."""
        report.flow_id, report.meta_name, report.status = meta.id, meta.name, meta.status
        previous = self.ids.get(report.flow)
        kept = previous.json_sha256 if previous and previous.flow_id == meta.id else None
        self.ids.remember(report.flow, Deployed(meta.id, meta.name, digest if synced else kept, meta.status))
        cached = self.statuses.all().get(report.flow, {})
        if cached.get("flow_id") != meta.id:
            cached = {}  # a new Flow: Meta's figures for the old one no longer apply
        self.statuses.put(report.flow, {**cached, "flow_id": meta.id, "meta_name": meta.name,
                                        "status": meta.status, "endpoint_uri": meta.endpoint_uri,
                                        "validation_errors": [e.to_dict() for e in meta.validation_errors],
                                        "checked_at": None})
        return report


def _immutable(flow: str, meta: MetaFlow, what: str, publish: bool, refused: GraphError | None = None) -> str:
    flags = " --clone" + (" --publish" if publish else "")
    said = (f" (Meta answered error {refused.code}: {refused.user_message or refused.message})"
            if refused else "")
    if what == "status":
        return (f"{meta.name} (Flow {meta.id}) is DEPRECATED on Meta: it can no longer be sent or opened. "
                f"A new Flow is needed: flask flows deploy {flow}{flags}")
    return (f"{meta.name} (Flow {meta.id}) is {meta.status} on Meta and its {what} differs from this app's, "
            f"but a published Flow cannot be changed{said}. Meta's way: a new Flow cloned from it "
            f"(clone_flow_id) with the new JSON, then published; messages already sent keep opening the "
            f"old one. To do that: flask flows deploy {flow}{flags}")
