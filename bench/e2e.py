"""End to end: an audit entry published on the audit topic -> the findings on the findings topic.

Each event is a new Serverless VPC Access connector in its own project (its own network and /28
subnet, no NAT), so each needs remediation by both guardrails: ensure_nat creates a router with a
NAT, replace_connector_firewalls inserts the managed allow and deny rules (enforce-db policy). The
entry is localcloud's ``CreateConnector`` entry (``operation.first``) for the user's real API call,
published by the benchmark exactly as the sink publishes it (see ``harness``). The event is done
when both findings are on the findings topic; its time is the later finding's ``publish_time``
minus the entry's, both stamped by the Pub/Sub emulator. Events run one at a time (one in flight),
so a figure is a latency, not a queue.

The first events wake the function instances (lazy client imports, first connections); they are
reported on their own (``first_event_ms``) and kept out of the percentiles.

Realistic profile: localcloud adds 150 ms to every API call (fault rule ``latency_ms``) and every
operation takes 2 s (config operation delays). The pure API latency of an event is measured from
localcloud's call log: per guardrail, the sum of the server-side durations of its calls (they are
sequential within a guardrail); the two guardrails run in parallel, so the event's pure latency is
the larger sum. ``overhead_ratio`` = (sum of e2e - sum of pure API latency) / sum of e2e: the
share of the time that is egress-guard, the Functions Framework and Pub/Sub delivery rather than
Google's APIs. The call-count model (calls other than waits x 150 ms + operations x 2 s) is
reported beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .harness import LocalStack, one

CONNECTOR_CREATE = "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"
GUARDRAILS = ("ensure_nat", "replace_connector_firewalls")
REALISTIC = {"latency_ms": 150.0, "operation_delay_s": 2.0}
WARMUP_EVENTS = 2


@dataclass(frozen=True)
class Event:
    project: str
    entry: Mapping[str, Any]

    @property
    def insert_id(self) -> str:
        return str(self.entry["insertId"])


@dataclass(frozen=True)
class Timed:
    project: str
    e2e_ms: float | None  # None: a finding did not arrive (reported, not raised)
    outcomes: tuple[str, ...]
    pure_api_ms: float = 0.0
    model_api_ms: float = 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def pure_api_ms(calls_by_guardrail: Mapping[str, Sequence[Mapping[str, Any]]]) -> float:
    """Measured: the largest per-guardrail sum of server-side call durations."""
    return max((sum(float(c.get("duration_ms", 0.0)) for c in calls) for calls in calls_by_guardrail.values()),
               default=0.0)


def model_api_ms(calls_by_guardrail: Mapping[str, Sequence[Mapping[str, Any]]], latency_ms: float,
                 operation_ms: float) -> float:
    """Modelled: a wait call's own latency overlaps its operation, which started at the write."""
    def one_guardrail(calls: Sequence[Mapping[str, Any]]) -> float:
        waits = sum(1 for c in calls if str(c["method_id"]).endswith("Operations.wait"))
        return (len(calls) - waits) * latency_ms + waits * operation_ms
    return max((one_guardrail(calls) for calls in calls_by_guardrail.values()), default=0.0)


def seed(stack: LocalStack, projects: Sequence[str]) -> list[Event]:
    """One new connector per project (zero-latency profile), and its CreateConnector entry."""
    for project in projects:
        stack.user.connector_on_new_network(project)
    entries = stack.fetch_entries()
    return [Event(p, one(entries, CONNECTOR_CREATE, project=p, first=True)) for p in projects]


def run_event(stack: LocalStack, event: Event, *, measure_calls: bool = False,
              latency_ms: float = 0.0, operation_ms: float = 0.0) -> Timed:
    if measure_calls:
        stack.clear_calls()
    stack.publish([event.entry])
    (audit,) = stack.audit.wait(event.insert_id, 1)[:1] or (None,)
    findings = stack.findings.wait(event.insert_id, len(GUARDRAILS))
    outcomes = tuple(sorted(f"{f.body['guardrail']}:{f.body['outcome']}" for f in findings))
    if audit is None or len(findings) < len(GUARDRAILS):
        return Timed(event.project, None, outcomes)
    e2e_ms = (max(f.published for f in findings) - audit.published) * 1000
    if not measure_calls:
        return Timed(event.project, e2e_ms, outcomes)
    calls = {g: stack.calls_by(stack.principals[g]) for g in GUARDRAILS}
    return Timed(event.project, e2e_ms, outcomes, pure_api_ms(calls), model_api_ms(calls, latency_ms, operation_ms))


def summary(timed: Sequence[Timed]) -> dict[str, Any]:
    done = [t for t in timed if t.e2e_ms is not None]
    e2e = [t.e2e_ms for t in done if t.e2e_ms is not None]
    out: dict[str, Any] = {
        "events": len(timed),
        "completed": len(done),
        "e2e_p50_ms": round(percentile(e2e, 50), 1),
        "e2e_p95_ms": round(percentile(e2e, 95), 1),
        "e2e_max_ms": round(max(e2e), 1) if e2e else None,
        "outcomes": _count(o for t in done for o in t.outcomes),
    }
    missing = [t.project for t in timed if t.e2e_ms is None]
    if missing:
        out["incomplete_events"] = missing
    return out


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def run(stack: LocalStack, events: int = 30, realistic_events: int = 30,
        progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    warm = [f"egb-warm-{i:02d}" for i in range(WARMUP_EVENTS)]
    zero = [f"egb-e2e-{i:02d}" for i in range(events)]
    slow = [f"egb-real-{i:02d}" for i in range(realistic_events)]
    stack.profile(None)
    progress(f"seeding {len(warm) + len(zero) + len(slow)} connectors, one per project")
    seeded = seed(stack, warm + zero + slow)
    by_project = {e.project: e for e in seeded}

    first = [run_event(stack, by_project[p]) for p in warm]
    progress(f"zero latency: {events} events")
    zero_timed = [run_event(stack, by_project[p]) for p in zero]

    latency, operation_s = REALISTIC["latency_ms"], REALISTIC["operation_delay_s"]
    progress(f"realistic profile ({latency:g} ms per call, {operation_s:g} s per operation): {realistic_events} events")
    stack.profile(latency, operation_s)
    try:
        slow_timed = [run_event(stack, by_project[p], measure_calls=True, latency_ms=latency,
                                operation_ms=operation_s * 1000) for p in slow]
    finally:
        stack.profile(None)

    result = {
        "method": "audit entry published to the audit topic (localcloud's CreateConnector entry for a real API call, "
                  "published as the sink does) -> both findings on the findings topic; Pub/Sub emulator publish_time "
                  "on both ends; one event in flight",
        "first_event_ms": [t.e2e_ms and round(t.e2e_ms, 1) for t in first],
        **summary(zero_timed),
    }
    realistic = summary(slow_timed)
    done = [t for t in slow_timed if t.e2e_ms is not None]
    total_e2e = sum(t.e2e_ms for t in done if t.e2e_ms is not None)
    total_pure = sum(t.pure_api_ms for t in done)
    ratios = [(t.e2e_ms - t.pure_api_ms) / t.e2e_ms for t in done if t.e2e_ms]
    realistic.update({
        "profile": {"latency_ms_per_call": latency, "operation_s": operation_s},
        "pure_api_p50_ms": round(statistics.median([t.pure_api_ms for t in done]), 1) if done else None,
        "pure_api_model_p50_ms": round(statistics.median([t.model_api_ms for t in done]), 1) if done else None,
        "overhead_p50_ms": round(statistics.median([t.e2e_ms - t.pure_api_ms for t in done if t.e2e_ms]), 1)
        if done else None,
        "overhead_ratio": round((total_e2e - total_pure) / total_e2e, 4) if total_e2e else None,
        "overhead_ratio_p95": round(percentile(ratios, 95), 4) if ratios else None,
    })
    result["realistic"] = realistic
    result["overhead_ratio"] = realistic["overhead_ratio"]
    return result
