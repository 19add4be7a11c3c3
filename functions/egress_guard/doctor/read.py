"""Reading a deployment: every Google read doctor makes, each turned into a typed reading.

Read-only by construction: the only calls are gets and lists, ``getIamPolicy``, and for the
dead-letter count a pull whose messages are handed straight back (``modifyAckDeadline`` 0), so
nothing is acknowledged. Every failure becomes ``Unreadable`` with its reason and HTTP code: a
project that does not exist, a permission the caller lacks, an organization it cannot see are
answers for the checks, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import api
from ..events import TRIGGER_METHODS
from . import expected
from .readings import (AuditEntries, Function, PolicyFile, Read, Readings, Role, Scope, Secret, Sink, Subscription,
                       SweepSummary, Unreadable, Waiting)

if TYPE_CHECKING:
    from ..clients import Clients

log = logging.getLogger("egress_guard.doctor")
T = TypeVar("T")

AUDIT_WINDOW = timedelta(days=30)
MAX_AUDIT_ENTRIES = 2000  # the bound of entries.list: enough to see every trigger method many times
AUDIT_PAGE_SIZE = 500
DEAD_LETTER_PULLS = 10  # pulls of up to DEAD_LETTER_BATCH messages each; past that the count is "N+"
DEAD_LETTER_BATCH = 100


def attempt(action: str, read: Callable[[], T]) -> Read[T]:
    """Run one read; an API or network failure becomes ``Unreadable`` naming the action."""
    try:
        return read()
    except Exception as exc:  # sorted below; a bug in doctor itself propagates
        code = _code(exc)
        if code is None and not _is_api_or_network(exc):
            raise
        message = _message(exc)
        return Unreadable(f"{action}: {f'{code} ' if code else ''}{message}", code)


def _code(exc: BaseException) -> int | None:
    resp = getattr(exc, "resp", None)  # googleapiclient.errors.HttpError
    if resp is not None and getattr(resp, "status", None):
        return int(resp.status)
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    cause = exc.__cause__
    return _code(cause) if cause is not None and cause is not exc else None


def _message(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason and getattr(exc, "resp", None) is not None:
        return reason
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:300]


def _is_api_or_network(exc: BaseException) -> bool:
    from ..errors import is_api_error

    names = {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}
    return is_api_error(exc) or "googleapiclient.errors.HttpError" in names or isinstance(exc, OSError)


class Reader:
    """Reads one deployment through the one client factory."""

    def __init__(self, clients: "Clients", *, prefix: str = expected.NAME_PREFIX, infra: Path = expected.DEFAULT_INFRA,
                 policy_path: str | None = None, host_project: str | None = None, role_organization: str | None = None,
                 sweep: bool = True, now: datetime | None = None) -> None:
        self.clients = clients
        self.names = expected.Names(prefix)
        self.prefix = prefix
        self.infra = infra
        self.policy_path = policy_path
        self.host_override = host_project
        self.role_organization = role_organization
        self.run_sweep = sweep
        self.now = now or datetime.now(timezone.utc)

    # ---- everything -------------------------------------------------------------------------------
    def read(self, scope: Scope) -> Readings:
        sink = self.sink(scope)
        host = self.host_project(scope, sink)
        expected_filter: Read[str] = (expected.sink_filter(TRIGGER_METHODS, expected.self_principals(host))
                                      if isinstance(host, str) else host)
        readings: dict[str, Any] = dict(scope=scope, host_project=host, prefix=self.prefix,
                                        expected_filter=expected_filter, expected_roles=self.expected_roles(),
                                        sink=sink, policy=self.policy(), role_parent=self.role_parent(scope, host),
                                        scope_bindings=self.bindings(scope), audit_entries=self.audit_entries(scope))
        if isinstance(host, str):
            readings.update(self.pubsub(host))
            readings["functions"] = self.functions(host)
            readings["secret"] = self.secret(host)
            if scope.kind != "project":
                readings["sweep"] = None
            else:
                readings["sweep"] = self.sweep(host) if self.run_sweep else Unreadable("not run (--no-sweep)")
        if isinstance(readings["role_parent"], str):
            readings["roles"] = {spec.key: self.role(f"{readings['role_parent']}/roles/{spec.role_id(self.prefix)}")
                                 for spec in expected.FUNCTIONS}
        return Readings(**readings)

    # ---- the sink and where the deployment lives --------------------------------------------------
    def sink(self, scope: Scope) -> Read[Sink]:
        name = f"{scope.resource}/sinks/{self.names.sink}"

        def get() -> Sink:
            # The sinks API's JSON, not logging_v2.Sink, which drops includeChildren.
            found = self.clients.logging.sinks_api.sink_get(name)
            return Sink(name=name, filter=found.get("filter", ""), destination=found.get("destination", ""),
                        writer_identity=found.get("writerIdentity", ""),
                        include_children=bool(found.get("includeChildren")))
        return attempt(f"logging.sinks.get {name}", get)

    def host_project(self, scope: Scope, sink: Read[Sink]) -> Read[str]:
        """The project holding the topics, functions and secret: --host-project, the sink's topic's
        project, or (project scope) the project itself."""
        if self.host_override:
            return self.host_override
        if isinstance(sink, Sink) and sink.topic:
            return sink.topic.split("/")[1]
        if scope.kind == "project":
            return scope.id
        return Unreadable("the sink was not read, so the project holding egress-guard is unknown: pass --host-project")

    def expected_roles(self) -> Read[Mapping[str, frozenset[str]]]:
        try:
            return expected.role_permissions(self.infra)
        except expected.PermissionTableMissing as exc:
            return Unreadable(str(exc))

    # ---- Pub/Sub ------------------------------------------------------------------------------------
    def pubsub(self, host: str) -> dict[str, Any]:
        publisher, subscriber = self.clients.publisher, self.clients.subscriber
        names = self.names
        topics: dict[str, Read[bool]] = {}
        for topic in (names.audit_topic, names.findings_topic, names.dead_letter_topic):
            path = f"projects/{host}/topics/{topic}"
            found = attempt(f"pubsub.topics.get {path}", lambda path=path: publisher.get_topic(topic=path))
            topics[topic] = found if isinstance(found, Unreadable) and not found.missing else not isinstance(found, Unreadable)
        audit_topic = f"projects/{host}/topics/{names.audit_topic}"
        publishers = attempt(f"pubsub.topics.getIamPolicy {audit_topic}", lambda: frozenset(
            member for binding in self.clients.topic_iam.get_iam_policy(request={"resource": audit_topic},
                                                                         **api.read_options()).bindings
            if binding.role == "roles/pubsub.publisher" for member in binding.members))
        push: dict[str, Read[tuple[Subscription, ...]]] = {}
        for topic in (names.audit_topic, names.findings_topic):
            path = f"projects/{host}/topics/{topic}"
            push[topic] = attempt(f"pubsub.topics.subscriptions.list {path}", lambda path=path: tuple(
                self._subscription(subscriber, name) for name in publisher.list_topic_subscriptions(topic=path)))
        inbox = f"projects/{host}/subscriptions/{names.dead_letter_subscription}"
        dead_letter_subscription = attempt(f"pubsub.subscriptions.get {inbox}",
                                           lambda: self._subscription(subscriber, inbox))
        dead_letters = (attempt(f"pubsub.subscriptions.pull {inbox}", lambda: self.waiting(inbox))
                        if isinstance(dead_letter_subscription, Subscription) else dead_letter_subscription)
        return dict(topics=topics, audit_topic_publishers=publishers, push_subscriptions=push,
                    dead_letter_subscription=dead_letter_subscription, dead_letters=dead_letters)

    @staticmethod
    def _subscription(subscriber: Any, name: str) -> Subscription:
        sub = subscriber.get_subscription(subscription=name)
        return Subscription(name=sub.name, topic=sub.topic, push_endpoint=sub.push_config.push_endpoint,
                            dead_letter_topic=sub.dead_letter_policy.dead_letter_topic,
                            max_delivery_attempts=sub.dead_letter_policy.max_delivery_attempts)

    def waiting(self, subscription: str) -> Waiting:
        """How many messages wait: pull them, then hand each back at once (ack deadline 0), so
        none is consumed and each is delivered again to whoever reads the inbox."""
        subscriber = self.clients.subscriber
        seen: set[str] = set()
        capped = True
        for _ in range(DEAD_LETTER_PULLS):
            response = subscriber.pull(request={"subscription": subscription, "max_messages": DEAD_LETTER_BATCH,
                                                "return_immediately": True}, timeout=api.READ_TIMEOUT_S)
            received = list(response.received_messages)
            if received:
                subscriber.modify_ack_deadline(request={"subscription": subscription, "ack_deadline_seconds": 0,
                                                        "ack_ids": [m.ack_id for m in received]})
            fresh = {m.message.message_id for m in received} - seen
            if not fresh:  # nothing new: either empty, or the same messages handed back again
                capped = False
                break
            seen |= fresh
        return Waiting(len(seen), capped)

    # ---- functions and IAM --------------------------------------------------------------------------
    def functions(self, host: str) -> dict[str, Read[Function]]:
        parent = f"projects/{host}/locations/-"  # every region at once

        def list_all() -> list[dict[str, Any]]:
            api, found, token = self.clients.functions.projects().locations().functions(), [], None
            while True:
                page = api.list(parent=parent, pageToken=token).execute(num_retries=1)
                found += page.get("functions", [])
                token = page.get("nextPageToken")
                if not token:
                    return found
        listed = attempt(f"cloudfunctions.functions.list {parent}", list_all)
        if isinstance(listed, Unreadable):
            return {spec.key: listed for spec in expected.FUNCTIONS}
        by_name = {f.get("name", "").rsplit("/", 1)[-1]: f for f in listed}
        out: dict[str, Read[Function]] = {}
        for spec in expected.FUNCTIONS:
            found = by_name.get(spec.name(self.prefix))
            if found is None:
                out[spec.key] = Unreadable(f"no function {spec.name(self.prefix)} in any region of {host}", 404)
            else:
                out[spec.key] = Function(found["name"], str(found.get("state", "STATE_UNSPECIFIED")),
                                         (found.get("serviceConfig") or {}).get("serviceAccountEmail", ""))
        return out

    def role_parent(self, scope: Scope, host: Read[str]) -> Read[str]:
        """Where the custom roles are: the project (project scope) or the organization."""
        if scope.kind == "project":
            return f"projects/{scope.id}"
        if scope.kind == "organization":
            return scope.resource
        if self.role_organization:
            return f"organizations/{self.role_organization}"
        return Unreadable("folders cannot hold custom roles: pass --role-organization ORG (where infra/ created them)")

    def role(self, name: str) -> Read[Role]:
        def get() -> Role:
            kind = "projects" if name.startswith("projects/") else "organizations"
            body = getattr(self.clients.iam, kind)().roles().get(name=name).execute(num_retries=1)
            return Role(name=body.get("name", name), permissions=frozenset(body.get("includedPermissions", [])),
                        deleted=bool(body.get("deleted")))
        return attempt(f"iam.roles.get {name}", get)

    def bindings(self, scope: Scope) -> Read[Mapping[str, frozenset[str]]]:
        client = {"project": self.clients.projects, "organization": self.clients.organizations,
                  "folder": self.clients.folders}[scope.kind]

        def get() -> Mapping[str, frozenset[str]]:
            policy = client.get_iam_policy(request={"resource": scope.resource}, **api.read_options())
            out: dict[str, frozenset[str]] = {}
            for binding in policy.bindings:
                out[binding.role] = out.get(binding.role, frozenset()) | frozenset(binding.members)
            return out
        return attempt(f"cloudresourcemanager.{scope.kind}s.getIamPolicy {scope.resource}", get)

    # ---- configuration ------------------------------------------------------------------------------
    def policy(self) -> PolicyFile:
        from ..errors import ConfigError
        from ..policy import load_policy

        path = self.policy_path or self.clients.settings.policy_path
        if not path:
            return PolicyFile("built-in defaults")
        try:
            load_policy(path)
        except ConfigError as exc:
            return PolicyFile(str(path), str(exc))
        return PolicyFile(str(path))

    def secret(self, host: str) -> Read[Secret]:
        name = f"projects/{host}/secrets/{self.names.slack_secret}"
        found = attempt(f"secretmanager.secrets.get {name}",
                        lambda: self.clients.secrets.get_secret(name=name, **api.read_options()))
        if isinstance(found, Unreadable):
            return found

        def versions() -> Secret:
            listed = list(self.clients.secrets.list_secret_versions(parent=name, **api.read_options()))
            enabled = tuple(v.name for v in listed if v.state.name == "ENABLED")
            return Secret(name, enabled, tuple(v.name for v in listed if v.state.name != "ENABLED"))
        return attempt(f"secretmanager.secrets.versions.list {name}", versions)

    # ---- what the guardrails would do today ---------------------------------------------------------
    def sweep(self, project: str) -> Read[SweepSummary]:
        from ..cli import forced_dry_run
        from ..errors import EgressGuardError
        from ..findings import Mode
        from ..policy import Policy, load_policy
        from ..sweep import Sweep
        from ..sweep.report import SKIPPED, changes_text, short_resource

        try:
            path = self.policy_path or self.clients.settings.policy_path
            deployed = load_policy(path) if path else Policy()
            policy = forced_dry_run(deployed)
        except EgressGuardError as exc:
            return Unreadable(f"the policy does not load: {exc}")
        try:
            report = Sweep(self.clients, policy, operation_timeout=self.clients.settings.operation_timeout_seconds,
                           publish=None).run(project, [])
        except EgressGuardError as exc:
            return Unreadable(f"sweep: {exc}")
        decided = [row for row in report.rows if row.outcome != SKIPPED]
        def line(row: Any) -> str:
            return f"{row.guardrail} {short_resource(row.resource)}: {changes_text(row.changes)}"
        enforced = {row.guardrail: deployed.mode_for(row.guardrail) == Mode.ENFORCE for row in decided}
        return SweepSummary(project, tuple(line(r) for r in decided if r.changes and enforced[r.guardrail]),
                            tuple(line(r) for r in decided if r.changes and not enforced[r.guardrail]),
                            len(decided), tuple(report.problems))

    # ---- the audit log --------------------------------------------------------------------------------
    def audit_entries(self, scope: Scope) -> Read[AuditEntries]:
        from google.cloud import logging as cloud_logging

        since = (self.now - AUDIT_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
        names = " OR ".join(f'"{m}"' for m in TRIGGER_METHODS)
        text = (f'{expected.ACTIVITY_LOG_CLAUSE} AND protoPayload.methodName=({names}) AND timestamp>="{since}"')

        def read() -> AuditEntries:
            found = self.clients.logging.list_entries(resource_names=[scope.resource], filter_=text,
                                                      order_by=cloud_logging.DESCENDING, page_size=AUDIT_PAGE_SIZE,
                                                      max_results=MAX_AUDIT_ENTRIES + 1)
            entries = [entry.to_api_repr() for entry in found]
            return AuditEntries(tuple(entries[:MAX_AUDIT_ENTRIES]), since, len(entries) > MAX_AUDIT_ENTRIES)
        return attempt(f"logging.entries.list {scope.resource}", read)
