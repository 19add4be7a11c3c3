"""The one pipeline every guardrail function runs (design §1):

    parse_event -> screen (own principal, failed call, stale) -> not for this guardrail
    -> a repeat of a change this instance already decided (``decided.py``: acknowledged, no call)
    -> project exemption -> guardrail.run (read live state, plan, act, more exemptions)
    -> publish each Finding (one structured log line per decision)

``Context.from_env()`` is built once per cold start: settings, the validated policy, the client
factory, the finding publisher and JSON logging. ``handle(cloud_event, guardrail, ctx)`` is what a
function's entry point calls for every event.

Errors (style.md point 7):

- the event is corrupted, foreign, a failed call, made by egress-guard itself, badly named or stale,
  or the guardrail has nothing to act on (``NothingToDo``: what it names is gone or carries no
  traffic): one clear log line, the event is acknowledged (``handle`` returns normally);
- any other ``PermanentError`` (an API refused a guardrail's call for good: 403, 400, an operation
  that failed): a ``failed`` finding is published with the reason, then the event is acknowledged;
- ``TransientError`` (429, 5xx, an operation not done in time, a finding not published): logged and
  raised, so the platform redelivers; the event-age cut-off ends a retry storm.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from .clients import Clients
from .config import Settings
from .errors import (
    ConfigError,
    EgressGuardError,
    InvalidName,
    MalformedEvent,
    NothingToDo,
    NotOurEvent,
    PermanentError,
    StaleEvent,
    TransientError,
    classify_api_error,
)
from .decided import DecidedChanges, change_key
from .events import AuditEvent, parse_event, screen
from .findings import Finding, Mode, Outcome
from .log import DELIVERY, fields, setup_logging
from .plan import Plan, Verdict
from .policy import Policy, load_policy
from .publish import FindingPublisher

log = logging.getLogger("egress_guard.runner")
# One line per delivery, before anything can fail or be killed: which instance took which Pub/Sub
# message. Redeliveries (the same message id again, maybe on another instance) are read from these.
delivery_log = logging.getLogger("egress_guard.delivery")

# UNCONFIRMED: whether a long-running create writes an operation.last entry; nothing waits for one
# (assumptions.WAITS_FOR_LAST_ENTRY).

# Replay and backfill run on entries of any age: the age cut-off only exists to end retry storms.
NO_AGE_LIMIT = timedelta.max


class Guardrail(Protocol):
    """What the runner needs of a guardrail (``guardrails.ensure_nat.GUARDRAIL``, ...)."""

    name: str

    def accepts(self, event: AuditEvent, policy: Policy) -> str | None:
        """None when the guardrail acts on ``event``, else why not (no API call is made)."""

    def run(self, event: AuditEvent, ctx: "Context", mode: Mode) -> Sequence[Finding]:
        """Read live state, plan, act (enforce) or not (dry-run); one finding per subject."""


@dataclass
class Context:
    """Everything a guardrail needs, built once per cold start."""

    settings: Settings
    policy: Policy
    clients: Clients
    publish: Callable[[Finding], object]  # FindingPublisher.publish, or a collector (replay, tests)
    max_age: timedelta
    # A function instance's decided changes (None: replay and backfill, where every entry is a request).
    decided: DecidedChanges | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, policy: Policy | None = None,
                 publish: Callable[[Finding], object] | None = None, clients: Clients | None = None,
                 remember_decisions: bool = False) -> "Context":
        """Settings from the environment, the policy file, the clients and the publisher.

        Raises ``ConfigError`` (naming the variable or policy key) on a bad deployment: the cold
        start fails loudly rather than every event failing quietly.
        """
        setup_logging()
        settings = Settings.from_env(environ)
        if policy is None:
            policy = load_policy(settings.policy_path) if settings.policy_path else Policy()
        clients = clients or Clients(settings)
        if publish is None:
            publish = LazyPublisher(clients)
        return cls(settings=settings, policy=policy, clients=clients, publish=publish,
                   max_age=settings.max_event_age(policy),
                   decided=DecidedChanges() if remember_decisions else None)

    def mode_for(self, guardrail: str) -> Mode:
        return self.policy.mode_for(guardrail)


class LazyPublisher:
    """``FindingPublisher.publish``, with the Pub/Sub client built at the first finding, not at cold
    start (importing and authenticating google-cloud-pubsub is the slowest part of starting). The
    topic setting is still checked at cold start."""

    def __init__(self, clients: Clients) -> None:
        if not clients.settings.findings_topic:
            raise ConfigError("no findings topic: set EGRESS_GUARD_FINDINGS_TOPIC (projects/P/topics/T)")
        self._clients = clients
        self._publisher: FindingPublisher | None = None
        self._lock = threading.Lock()

    def __call__(self, finding: Finding) -> str:
        with self._lock:
            if self._publisher is None:
                self._publisher = FindingPublisher.from_clients(self._clients)
        return self._publisher.publish(finding)


def handle(cloud_event: Any, guardrail: Guardrail, ctx: Context, *, now: datetime | None = None) -> list[Finding]:
    """Run ``guardrail`` on one delivery; return the findings published (empty when acknowledged).

    Returns normally for every permanent outcome (the event is acknowledged); raises
    ``TransientError`` when a retry can help.
    """
    token = DELIVERY.set(_delivery_id(cloud_event))
    try:
        return _handle(cloud_event, guardrail, ctx, now=now)
    finally:
        DELIVERY.reset(token)


def _handle(cloud_event: Any, guardrail: Guardrail, ctx: Context, *, now: datetime | None) -> list[Finding]:
    started = time.monotonic()
    delivery_log.info("%s received delivery %s", guardrail.name, DELIVERY.get() or "?",
                      extra=fields(labels={"guardrail": guardrail.name}, pid=os.getpid()))
    try:
        event = parse_event(cloud_event)
    except PermanentError as exc:
        _acknowledge(guardrail.name, None, exc, started)
        return []
    try:
        screen(event, max_age=ctx.max_age, self_principals=ctx.settings.self_principals, now=now)
        not_ours = guardrail.accepts(event, ctx.policy)
        if not_ours:
            _acknowledge(guardrail.name, event, PermanentError(not_ours), started)
            return []
    except PermanentError as exc:
        _acknowledge(guardrail.name, event, exc, started)
        return []

    mode = ctx.mode_for(guardrail.name)
    if ctx.decided is None:  # replay, backfill: every entry given is a decision asked for
        return _decide(event, guardrail, ctx, mode, started)
    change = change_key(guardrail.name, mode, event)
    with ctx.decided.hold(change):  # a concurrent repeat waits for this delivery, then finds it decided
        decided_by = ctx.decided.decided_by(change)
        if decided_by is not None:
            what = f"operation {event.operation_id}" if event.operation_id else f"entry {event.insert_id}"
            _acknowledge(guardrail.name, event, NothingToDo(
                f"a repeat of {what}, which this instance already decided (delivery of entry {decided_by}) and "
                "whose findings it published; a later change writes its own entry"), started)
            return []
        findings = _decide(event, guardrail, ctx, mode, started)
        if findings and all(f.outcome is not Outcome.FAILED for f in findings):  # "failed" asks for a redelivery
            ctx.decided.remember(change, event.insert_id)
        return findings


def _decide(event: AuditEvent, guardrail: Guardrail, ctx: Context, mode: Mode, started: float) -> list[Finding]:
    """Run the guardrail on a parsed, screened event and publish its findings (see ``handle``)."""
    try:
        exempt = ctx.policy.exemptions.reason_for(project=event.project)
        if exempt:
            findings: Sequence[Finding] = [_exempt(event, guardrail.name, mode, exempt)]
        else:
            findings = guardrail.run(event, ctx, mode)
    except TransientError as exc:
        _log_transient(guardrail.name, event, exc, started)
        raise
    except (NothingToDo, NotOurEvent, InvalidName) as exc:  # nothing to act on, or a name we could never use
        _acknowledge(guardrail.name, event, exc, started)
        return []
    except PermanentError as exc:  # refused for good (403, 400, an operation that failed): say so
        findings = [_failed(event, guardrail.name, mode, exc)]
    except Exception as exc:  # an API error a guardrail did not expect, or a bug
        classified = classify_api_error(exc, action=f"{guardrail.name} on {event.resource}")
        if isinstance(classified, TransientError):
            _log_transient(guardrail.name, event, classified, started)
            raise classified from exc
        log.error("%s: %s", guardrail.name, classified.reason, exc_info=exc,
                  extra=fields(labels=_labels(guardrail.name, event, "failed"), insert_id=event.insert_id))
        findings = [_failed(event, guardrail.name, mode, classified)]

    if not findings:  # e.g. a router change in a region without connectors: nothing to decide, say so
        _acknowledge(guardrail.name, event, NothingToDo(
            f"nothing to decide: nothing {guardrail.name} guards depends on {event.resource}"), started)
        return []
    for finding in findings:
        ctx.publish(finding)  # logs the decision line; raises TransientError when Pub/Sub refuses
    return list(findings)


def _delivery_id(cloud_event: Any) -> str | None:
    """The delivery's id: the CloudEvent id, which for a Pub/Sub push is the message id and stays the
    same on every redelivery. None for what is not a CloudEvent (a bare LogEntry replayed, junk)."""
    try:
        return str(cloud_event["id"])
    except (KeyError, TypeError, IndexError):
        return None


def _exempt(event: AuditEvent, guardrail: str, mode: Mode, reason: str) -> Finding:
    return Plan(event.resource.ref, event.project, event.region, "", Verdict.EXEMPT,
                f"{event.resource.ref.name} is exempt: {reason}.").finding(
        guardrail=guardrail, mode=mode, trigger=event.trigger)


def _failed(event: AuditEvent, guardrail: str, mode: Mode, error: EgressGuardError) -> Finding:
    return Finding(guardrail=guardrail, mode=mode, outcome=Outcome.FAILED, project=event.project,
                   region=event.region, resource=event.resource.ref, trigger=event.trigger,
                   reason=f"{guardrail} could not finish: {error.reason}. Nothing is retried automatically; fix the "
                          "cause, then redeliver the event or run `egress-guard sweep`.")


def _labels(guardrail: str, event: AuditEvent | None, outcome: str) -> dict[str, str]:
    labels = {"guardrail": guardrail, "outcome": outcome}
    if event is not None:
        labels["project"] = event.project
    return labels


def _acknowledge(guardrail: str, event: AuditEvent | None, error: EgressGuardError, started: float) -> None:
    """The one log line of an event acknowledged without a decision."""
    what = event.describe() if event is not None else "event"
    # Bad input is worth a look (WARNING); an entry that is simply not this guardrail's, or has
    # nothing left to act on, is routine: both functions receive every audit entry of the sink.
    level = logging.WARNING if isinstance(error, (MalformedEvent, InvalidName, StaleEvent)) else logging.INFO
    log.log(
        level, "%s acknowledged %s without action: %s", guardrail, what, error.reason,
        extra=fields(labels=_labels(guardrail, event, "acknowledged"), error=type(error).__name__,
                     field=getattr(error, "field", None), insert_id=event.insert_id if event else None,
                     method=event.method_name if event else None,
                     elapsed_ms=round((time.monotonic() - started) * 1000)))


def _log_transient(guardrail: str, event: AuditEvent, error: EgressGuardError, started: float) -> None:
    log.warning(
        "%s will retry %s: %s", guardrail, event.describe(), error.reason,
        extra=fields(labels=_labels(guardrail, event, "retry"), error=type(error).__name__, code=error.code,
                     insert_id=event.insert_id, elapsed_ms=round((time.monotonic() - started) * 1000)))
