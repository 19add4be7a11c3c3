"""The real path, end to end: a user's ``CreateConnector`` -> both guardrails' findings published.

What a user lives with, not an easier thing: the connector answers CREATING and becomes READY only
after ``connector_ready_s`` (localcloud's operation); localcloud writes both audit entries of the
operation (``operation.first`` at the call, ``operation.last`` at READY) and the audit sink, with its
filter rendered from infra/, publishes them to the audit topic; Pub/Sub pushes each to both
functions, and redelivers what a function did not acknowledge with the deployment's own backoff
(``deployment.read()``: infra/'s trigger retry policy, Eventarc's default backoff). Nothing is
published by the benchmark.

Each event is a connector in its own project (network and /28 subnet made first, untimed). Events
start ``STAGGER_S`` apart and run together. An event is over when both guardrails have settled
both entries (a log line other than "will retry" for each). Figures per event:

- ``create_to_remediated``: the create call (the benchmark's clock, before the request) -> the later
  of the two guardrails' first ``remediated`` finding (the Pub/Sub emulator's ``publish_time``);
- ``ready_to_remediated``: the ``operation.last`` entry's timestamp (localcloud's clock, when the
  operation completed) -> the same finding; one machine, one clock;
- ``deliveries``: the functions' delivery log lines (one per delivery: acknowledged, will retry, or
  the decision) for every audit entry of the project from the create call on (the connector's two
  and those of the ``aet-*`` rules VPC Access creates), both guardrails;
- ``calls``: the two functions' API calls in the event's project (localcloud's call log).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import deployment
from .e2e import REALISTIC, percentile
from .harness import LocalStack, select

CONNECTOR_CREATE = "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"
GUARDRAILS = ("ensure_nat", "replace_connector_firewalls")
DEFAULT_CONNECTOR_READY_S = 20.0  # Google takes a minute or two; shorter keeps the run short, the path is the same
STAGGER_S = 5.0  # about one remediation under the realistic profile: one local instance per function, so
# overlapping events would queue in it, where Cloud Functions starts more instances (max_instances)
SETTLE_TIMEOUT_S = 240.0  # only stops a hang; an event not settled is reported as such
ARGUED_CALLS_PER_EVENT = 12  # docs/minimums.md, "The real path"


@dataclass
class Event:
    project: str
    created: float = 0.0
    first: str = ""  # insertIds of the operation's two entries
    last: str = ""
    caused: set[str] = field(default_factory=set)  # every audit entry of the project from the create call on
    ready: float | None = None
    remediated: float | None = None
    deliveries: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    outcomes: list[str] = field(default_factory=list)

    @property
    def create_to_remediated_ms(self) -> float | None:
        return None if self.remediated is None else (self.remediated - self.created) * 1000

    @property
    def ready_to_remediated_ms(self) -> float | None:
        if self.remediated is None or self.ready is None:
            return None
        return (self.remediated - self.ready) * 1000


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _insert_id(line: Mapping[str, Any]) -> str | None:
    """The audit entry a function's log line is about (acknowledgement, retry or decision)."""
    if line.get("insert_id"):
        return str(line["insert_id"])
    trigger = line.get("trigger")
    if isinstance(trigger, Mapping) and trigger.get("insertId"):
        return str(trigger["insertId"])
    return None


def _outcome(line: Mapping[str, Any]) -> str | None:
    labels = line.get("logging.googleapis.com/labels") or {}
    return labels.get("outcome") if isinstance(labels, Mapping) else None


def delivery_lines(lines: Sequence[Mapping[str, Any]], insert_ids: set[str]) -> list[Mapping[str, Any]]:
    """The lines that each stand for one delivery of one of ``insert_ids`` (pure)."""
    return [line for line in lines if _insert_id(line) in insert_ids and _outcome(line) is not None]


def settled(lines: Sequence[Mapping[str, Any]], insert_id: str) -> bool:
    """A delivery of ``insert_id`` ended in something other than a retry (pure)."""
    return any(_insert_id(line) == insert_id and _outcome(line) not in (None, "retry") for line in lines)


def _prepare(stack: LocalStack, projects: Sequence[str]) -> None:
    stack.profile(None)
    for project in projects:
        stack.user.network(project, "net")
        stack.user.subnet(project, "conn-28", "net", "10.8.0.0/28")


def _entries_of(stack: LocalStack, events: Sequence[Event]) -> None:
    entries = stack.fetch_entries()
    for event in events:
        event.caused = {str(e["insertId"]) for e in entries
                        if f"projects/{event.project}/" in e["protoPayload"].get("resourceName", "")
                        and _epoch(str(e["timestamp"])) >= event.created}
        first = select(entries, CONNECTOR_CREATE, project=event.project, first=True)
        last = select(entries, CONNECTOR_CREATE, project=event.project, last=True)
        event.first = str(first[0]["insertId"]) if first else ""
        if last:
            event.last = str(last[0]["insertId"])
            event.ready = _epoch(str(last[0]["timestamp"]))


def _all_settled(stack: LocalStack, events: Sequence[Event]) -> bool:
    _entries_of(stack, events)
    logs = {g: stack.function_log(g) for g in GUARDRAILS}
    for event in events:
        if not event.first or not event.last:
            return False
        for guardrail in GUARDRAILS:
            if not (settled(logs[guardrail], event.first) and settled(logs[guardrail], event.last)):
                return False
    return True


def _measure(stack: LocalStack, events: Sequence[Event]) -> None:
    findings = stack.findings.wait_until(lambda _: True, timeout=0)
    logs = {g: stack.function_log(g) for g in GUARDRAILS}
    calls = {g: stack.calls_by(stack.principals[g]) for g in GUARDRAILS}
    for event in events:
        ids = event.caused  # the connector's two entries and those of the aet-* rules VPC Access makes
        mine = [f for f in findings if f.body.get("project") == event.project]
        event.outcomes = sorted(f"{f.body['guardrail']}:{f.body['outcome']}" for f in mine)
        done = []
        for guardrail in GUARDRAILS:
            remediated = [f.published for f in mine if f.body["guardrail"] == guardrail
                          and f.body["outcome"] == "remediated"]
            done.append(min(remediated) if remediated else None)
            event.deliveries[guardrail] = len(delivery_lines(logs[guardrail], ids))
            event.calls[guardrail] = sum(1 for c in calls[guardrail] if f"/projects/{event.project}/" in c["path"])
        event.remediated = None if None in done else max(d for d in done if d is not None)


def run_profile(stack: LocalStack, projects: Sequence[str], *, latency_ms: float | None, operation_s: float,
                connector_ready_s: float, progress: Callable[[str], None]) -> list[Event]:
    _prepare(stack, projects)
    stack.profile(latency_ms, operation_s, connector_ready_s=connector_ready_s)
    events = [Event(p) for p in projects]
    try:
        for event in events:
            event.created = stack.user.start_connector(event.project, "conn", "conn-28")
            time.sleep(STAGGER_S)
        deadline = time.monotonic() + connector_ready_s + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline and not _all_settled(stack, events):
            time.sleep(0.5)
        time.sleep(1.0)  # the last findings reach the watch subscription
        _measure(stack, events)
    finally:
        stack.profile(None)
    progress(f"real path: {sum(e.remediated is not None for e in events)}/{len(events)} events remediated")
    return events


def summary(events: Sequence[Event]) -> dict[str, Any]:
    done = [e for e in events if e.remediated is not None and e.ready is not None]
    ready = [e.ready_to_remediated_ms for e in done if e.ready_to_remediated_ms is not None]
    create = [e.create_to_remediated_ms for e in done if e.create_to_remediated_ms is not None]

    def rounded(values: list[float], q: float) -> float | None:
        return round(percentile(values, q), 1) if values else None

    deliveries = [sum(e.deliveries.values()) for e in done]
    calls = [sum(e.calls.values()) for e in done]
    return {
        "events": len(events),
        "completed": len(done),
        "ready_to_remediated_p50_ms": rounded(ready, 50),
        "ready_to_remediated_p95_ms": rounded(ready, 95),
        "create_to_remediated_p50_ms": rounded(create, 50),
        "create_to_remediated_p95_ms": rounded(create, 95),
        "deliveries_per_event": round(statistics.mean(deliveries), 2) if deliveries else None,
        "deliveries_per_event_by_guardrail": {
            g: round(statistics.mean(e.deliveries.get(g, 0) for e in done), 2) for g in GUARDRAILS} if done else {},
        "calls_per_event": round(statistics.mean(calls), 2) if calls else None,
        "calls_per_event_by_guardrail": {
            g: round(statistics.mean(e.calls.get(g, 0) for e in done), 2) for g in GUARDRAILS} if done else {},
        "calls_per_event_argued": ARGUED_CALLS_PER_EVENT,
        "outcomes": _count(o for e in done for o in e.outcomes),
        **({"incomplete_events": [e.project for e in events if e not in done]} if len(done) < len(events) else {}),
    }


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def run(stack: LocalStack, events: int = 8, connector_ready_s: float = DEFAULT_CONNECTOR_READY_S,
        progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """``e2e.real_path``: the realistic profile's figures at the top, zero latency under ``zero_latency``."""
    redelivery = deployment.read()
    stack.retry_policy(redelivery.minimum_backoff_s, redelivery.maximum_backoff_s)
    stack.attach_sink()
    try:
        progress(f"real path, zero latency: {events} connectors, READY after {connector_ready_s:g} s, backoff "
                 f"{redelivery.minimum_backoff_s:g}-{redelivery.maximum_backoff_s:g} s from infra/")
        zero = run_profile(stack, [f"egb-path-{i:02d}" for i in range(events)], latency_ms=None, operation_s=0.0,
                           connector_ready_s=connector_ready_s, progress=progress)
        latency, operation_s = REALISTIC["latency_ms"], REALISTIC["operation_delay_s"]
        progress(f"real path, {latency:g} ms per call, {operation_s:g} s per operation: {events} connectors")
        real = run_profile(stack, [f"egb-pathr-{i:02d}" for i in range(events)], latency_ms=latency,
                           operation_s=operation_s, connector_ready_s=connector_ready_s, progress=progress)
    finally:
        stack.detach_sink()
    return {
        "method": "a user's CreateConnector (CREATING, READY after connector_ready_s) -> both audit entries through "
                  "the audit sink (filter from infra/) -> Pub/Sub push to both functions, redelivery with the "
                  "deployment's backoff -> both guardrails' remediated findings; events start "
                  f"{STAGGER_S:g} s apart and overlap",
        "connector_ready_s": connector_ready_s,
        "redelivery": redelivery.as_dict(),
        "profile": {"latency_ms_per_call": latency, "operation_s": operation_s},
        **summary(real),
        "zero_latency": summary(zero),
        "per_event": [_row(e) for e in zero + real],
    }


def _row(event: Event) -> dict[str, Any]:
    return {"project": event.project,
            "ready_to_remediated_ms": _round(event.ready_to_remediated_ms),
            "create_to_remediated_ms": _round(event.create_to_remediated_ms),
            "deliveries": event.deliveries, "calls": event.calls}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
