"""What doctor read, as typed values: the checks judge these and never see a client or a dict.

Each reading is either its value or ``Unreadable`` with the reason (a 404 says the thing is
missing, a 403 that the caller may not look), so a check can say ✗ or ? with that reason instead
of failing on an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

T = TypeVar("T")


@dataclass(frozen=True)
class Unreadable:
    """A read that did not give an answer: why, and the HTTP code when there was one."""

    reason: str
    code: int | None = None

    @property
    def missing(self) -> bool:
        return self.code == 404

    @property
    def forbidden(self) -> bool:
        return self.code in (401, 403)


Read = Union[T, Unreadable]

SCOPE_KINDS = ("project", "organization", "folder")


@dataclass(frozen=True)
class Scope:
    """Where the audit sink is, and where the custom roles are granted."""

    kind: str  # project | organization | folder
    id: str

    @property
    def resource(self) -> str:
        return f"{self.kind}s/{self.id}"

    def gcloud_flag(self) -> str:
        return {"project": f"--project={self.id}", "organization": f"--organization={self.id}",
                "folder": f"--folder={self.id}"}[self.kind]


@dataclass(frozen=True)
class Sink:
    name: str
    filter: str
    destination: str
    writer_identity: str
    include_children: bool

    @property
    def topic(self) -> str | None:
        """``projects/P/topics/T`` when the destination is a Pub/Sub topic."""
        prefix = "pubsub.googleapis.com/"
        return self.destination[len(prefix):] if self.destination.startswith(prefix) else None


@dataclass(frozen=True)
class Subscription:
    name: str  # projects/P/subscriptions/S
    topic: str
    push_endpoint: str
    dead_letter_topic: str
    max_delivery_attempts: int


@dataclass(frozen=True)
class Waiting:
    """Messages waiting in a subscription, counted by pulling without acknowledging."""

    count: int
    capped: bool  # more may wait than were counted


@dataclass(frozen=True)
class Function:
    name: str  # projects/P/locations/R/functions/N
    state: str
    service_account: str


@dataclass(frozen=True)
class Role:
    name: str
    permissions: frozenset[str]
    deleted: bool = False


@dataclass(frozen=True)
class Secret:
    name: str
    enabled_versions: tuple[str, ...]
    other_versions: tuple[str, ...]  # disabled or destroyed


@dataclass(frozen=True)
class PolicyFile:
    source: str  # the path, or "built-in defaults"
    error: str | None = None


@dataclass(frozen=True)
class SweepSummary:
    project: str
    changes: tuple[str, ...]  # one line per decision that changes something, its guardrail enforcing
    planned_only: tuple[str, ...]  # the same for guardrails the policy keeps in dry-run (by design)
    decided: int  # decisions made (changing or not)
    problems: tuple[str, ...]


@dataclass(frozen=True)
class AuditEntries:
    entries: tuple[Mapping[str, Any], ...]
    since: str
    truncated: bool  # the bound was reached: older entries were not read


@dataclass(frozen=True)
class Readings:
    """Everything doctor read about one deployment."""

    scope: Scope
    host_project: Read[str]  # where the topics, functions, secret and service accounts are
    prefix: str
    expected_filter: Read[str]
    expected_roles: Read[Mapping[str, frozenset[str]]]
    sink: Read[Sink]
    audit_topic_publishers: Read[frozenset[str]] = Unreadable("not read")
    topics: Mapping[str, Read[bool]] = field(default_factory=dict)
    push_subscriptions: Mapping[str, Read[tuple[Subscription, ...]]] = field(default_factory=dict)  # by topic id
    dead_letter_subscription: Read[Subscription] = Unreadable("not read")
    dead_letters: Read[Waiting] = Unreadable("not read")
    functions: Mapping[str, Read[Function]] = field(default_factory=dict)  # by function key
    roles: Mapping[str, Read[Role]] = field(default_factory=dict)  # by function key
    role_parent: Read[str] = Unreadable("not read")  # projects/P or organizations/O
    scope_bindings: Read[Mapping[str, frozenset[str]]] = Unreadable("not read")  # role -> members
    policy: PolicyFile = PolicyFile("built-in defaults")
    secret: Read[Secret] = Unreadable("not read")
    sweep: Read[SweepSummary] | None = None
    audit_entries: Read[AuditEntries] = Unreadable("not read")
