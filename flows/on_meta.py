"""What this app remembers of its flows on Meta, per flow and environment (the WABA).

- ``FlowIds``: the Flow ID `flask flows deploy` created or found, with the digest of the Flow
  JSON it uploaded. Sending a Flow uses it (FLOW_IDS still overrides it), so a Flow sent is the
  one deployed, even after a published Flow was replaced by a clone under another name.
- ``StatusCache``: the last view of Meta's side (`flask flows status`, deploys, `flows` status
  webhooks) that the dashboard shows; no page ever calls Meta.

Both are small interfaces over Redis, the durable store today: another store implements the
same four methods. Keys: ``fg:meta:ids:<env>`` and ``fg:meta:status:<env>`` (one hash field per
flow, bounded by the number of flows; no expiry).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Protocol

NO_ENVIRONMENT = "-"  # WHATSAPP_BUSINESS_ACCOUNT_ID unset: nothing was deployed from here


@dataclass
class Deployed:
    flow_id: str
    meta_name: str  # the Flow's name on Meta (a clone's differs from the flow's)
    json_sha256: str | None = None  # flows.api json_digest of what was last uploaded
    status: str | None = None
    at: float = 0.0


class FlowIdStore(Protocol):
    def get(self, flow: str) -> Deployed | None: ...

    def remember(self, flow: str, deployed: Deployed) -> None: ...

    def flow_id(self, flow: str) -> str | None: ...

    def all(self) -> dict[str, Deployed]: ...


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class FlowIds:
    """The Redis implementation of ``FlowIdStore``."""

    def __init__(self, redis, environment: str | None):
        self.redis = redis
        self.environment = environment or NO_ENVIRONMENT
        self.key = f"fg:meta:ids:{self.environment}"

    def get(self, flow: str) -> Deployed | None:
        raw = self.redis.hget(self.key, flow)
        return _deployed(raw) if raw else None

    def remember(self, flow: str, deployed: Deployed) -> None:
        deployed.at = deployed.at or time.time()
        self.redis.hset(self.key, flow, json.dumps(asdict(deployed)))

    def flow_id(self, flow: str) -> str | None:
        found = self.get(flow) if self.environment != NO_ENVIRONMENT else None
        return found.flow_id if found else None

    def all(self) -> dict[str, Deployed]:
        return {_s(k): _deployed(v) for k, v in self.redis.hgetall(self.key).items()}


def _deployed(raw) -> Deployed:
    data = json.loads(raw)
    return Deployed(**{k: data.get(k) for k in ("flow_id", "meta_name", "json_sha256", "status")},
                    at=float(data.get("at") or 0))


class StatusCache:
    """Meta's view of each flow as last read: ``{"flow_id", "status", "can_send_message",
    "validation_errors", "preview_url", "endpoint_uri", "metrics", "window", "checked_at"}``."""

    def __init__(self, redis, environment: str | None):
        self.redis = redis
        self.key = f"fg:meta:status:{environment or NO_ENVIRONMENT}"

    def put(self, flow: str, doc: dict) -> None:
        self.redis.hset(self.key, flow,
                        json.dumps({**doc, "checked_at": doc.get("checked_at") or time.time()}))

    def all(self) -> dict[str, dict]:
        return {_s(k): json.loads(v) for k, v in self.redis.hgetall(self.key).items()}

    def status_changed(self, flow_id: str, status: str) -> str | None:
        """A `flows` webhook said Flow ``flow_id`` is now ``status``: the flow it is, if one of ours."""
        for flow, doc in self.all().items():
            if str(doc.get("flow_id")) == str(flow_id):
                self.put(flow, {**doc, "status": status, "checked_at": time.time(), "source": "webhook"})
                return flow
        return None
