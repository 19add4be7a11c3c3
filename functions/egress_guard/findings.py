"""The Finding: one decision of one guardrail, published to the findings topic (design §3).

A Finding is a frozen value. It travels as JSON (``to_json`` / ``from_json``) with Pub/Sub
attributes (``attributes``) so that subscriptions can filter on guardrail, outcome and project.
Its ``id`` is stable: the same trigger, guardrail and resource always give the same id, which is
what lets notify_slack drop a redelivered finding.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Mapping
from typing import Any

SCHEMA = "egress-guard.finding/v1"


class Outcome(str, enum.Enum):
    REMEDIATED = "remediated"
    COMPLIANT = "compliant"
    PLANNED = "planned"  # dry-run: the exact changes enforce mode would make
    EXEMPT = "exempt"
    BLOCKED = "blocked"  # a change was needed but is unsafe; the reason says what to do
    FAILED = "failed"
    UNDONE = "undone"  # ``egress-guard undo`` restored the ``before`` of an earlier finding's changes


class Mode(str, enum.Enum):
    ENFORCE = "enforce"
    DRY_RUN = "dry-run"


# Severity follows the outcome: what a person must look at first.
SEVERITY_BY_OUTCOME = {
    Outcome.REMEDIATED: "NOTICE",
    Outcome.COMPLIANT: "INFO",
    Outcome.PLANNED: "NOTICE",
    Outcome.EXEMPT: "INFO",
    Outcome.BLOCKED: "WARNING",
    Outcome.FAILED: "ERROR",
    Outcome.UNDONE: "NOTICE",
}


@dataclass(frozen=True)
class ResourceRef:
    type: str  # e.g. "vpcaccess.connector", "run.job", "run.service", "compute.router"
    name: str  # full resource name, e.g. projects/P/locations/R/connectors/C


@dataclass(frozen=True)
class Trigger:
    serviceName: str = ""
    methodName: str = ""
    resourceName: str = ""
    principal: str = ""
    insertId: str = ""
    operationId: str = ""
    timestamp: str = ""


# Trigger's fields, for to_dict (dataclasses.asdict deep-copies: a tenth of a large sweep's output time).
_TRIGGER_FIELDS = tuple(f.name for f in dataclasses.fields(Trigger))


@dataclass(frozen=True)
class Change:
    action: str  # e.g. "compute.routers.insert", "compute.firewalls.patch"
    resource: str  # the resource changed, as a relative name
    before: dict[str, Any] | None = None  # previous body, so a person can undo by hand
    after: dict[str, Any] | None = None


@dataclass(frozen=True)
class Finding:
    guardrail: str
    mode: Mode
    outcome: Outcome
    project: str
    resource: ResourceRef
    trigger: Trigger
    reason: str
    region: str = ""
    network: str = ""
    changes: tuple[Change, ...] = ()
    links: tuple[str, ...] = ()
    # Where the subject sits, for routing findings to the team that owns it (policy notify.routes):
    # the workload's own labels (a Cloud Run service or job; empty for connectors, which have none)
    # and its project's folder ("folders/N") when the caller knows it, else "".
    labels: Mapping[str, str] = field(default_factory=dict)
    folder: str = ""
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    id: str = ""
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", finding_id(self.trigger, self.guardrail, self.resource.name))

    @property
    def severity(self) -> str:
        return SEVERITY_BY_OUTCOME[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready values. Written out rather than ``dataclasses.asdict``, which
        deep-copies every change's ``before``/``after`` (a router with its whole NAT) twice: that was
        half of a 1,000-connector sweep. The bodies are shared with the finding, not copied: read only."""
        return {
            "guardrail": self.guardrail, "mode": self.mode.value, "outcome": self.outcome.value,
            "project": self.project, "resource": {"type": self.resource.type, "name": self.resource.name},
            "trigger": {name: getattr(self.trigger, name) for name in _TRIGGER_FIELDS}, "reason": self.reason, "region": self.region,
            "network": self.network,
            "changes": [{"action": c.action, "resource": c.resource, "before": c.before, "after": c.after}
                        for c in self.changes],
            "links": list(self.links), "labels": dict(self.labels), "folder": self.folder, "time": self.time, "id": self.id, "schema": self.schema,
            "severity": self.severity,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def attributes(self) -> dict[str, str]:
        """Pub/Sub message attributes, for subscription filters."""
        return {"guardrail": self.guardrail, "outcome": self.outcome.value, "project": self.project}

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> "Finding":
        if body.get("schema") != SCHEMA:
            raise ValueError(f"not an egress-guard finding: schema is {body.get('schema')!r}, expected {SCHEMA!r}")
        return cls(
            guardrail=body["guardrail"],
            mode=Mode(body["mode"]),
            outcome=Outcome(body["outcome"]),
            project=body["project"],
            region=body.get("region", ""),
            network=body.get("network", ""),
            resource=ResourceRef(**body["resource"]),
            trigger=Trigger(**body.get("trigger", {})),
            changes=tuple(Change(**c) for c in body.get("changes", [])),
            reason=body.get("reason", ""),
            links=tuple(body.get("links", [])),
            labels={str(k): str(v) for k, v in (body.get("labels") or {}).items()},
            folder=str(body.get("folder") or ""),
            time=body["time"],
            id=body["id"],
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> "Finding":
        return cls.from_dict(json.loads(text))


def finding_id(trigger: Trigger, guardrail: str, resource_name: str) -> str:
    """Same trigger + guardrail + resource -> same id (first and last entries of one operation share it)."""
    trigger_key = trigger.operationId or trigger.insertId
    digest = hashlib.sha256(f"{trigger_key}|{guardrail}|{resource_name}".encode()).hexdigest()
    return digest[:24]
