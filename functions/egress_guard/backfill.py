"""``egress-guard backfill --since 2h``: replay a past window of audit entries (design §3).

After an outage (the functions down for longer than the event age limit, a subscription deleted,
a sink filter broken for a while), the audit entries are still in Cloud Logging: Admin Activity
entries are kept 400 days. ``backfill`` reads those of the trigger methods
(``events.TRIGGERS``) with Cloud Logging ``entries.list`` (google-cloud-logging, pages of
``PAGE_SIZE``), oldest first, and hands each to ``runner.handle`` for each guardrail, exactly as
a function would have received it, without the age cut-off (the window is the limit; the runner
still ignores failed calls and egress-guard's own writes).

One replay per change: the entries of one long-running operation (``operation.first`` and
``operation.last``, same ``operation.id``) are replayed once, with the entry that says how the
operation ended (a non-zero status if one was logged, else the last entry, else the first); other
entries once per ``insertId``. The guardrails re-read live state, so replaying an old entry never
undoes a later change: it reconciles the resource as it is now.

A replay that needs a retry (``TransientError``) is tried again ``RETRIES`` times, ``RETRY_DELAY_S``
apart; if it still fails it is reported and the command exits 1, so it can be run again.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from . import api
from .errors import EgressGuardError, PermanentError, TransientError
from .events import TRIGGER_METHODS, parse_time
from .findings import Finding

if TYPE_CHECKING:
    from .clients import Clients
    from .runner import Context, Guardrail

ACTIVITY_LOG = "cloudaudit.googleapis.com%2Factivity"  # Admin Activity audit log id, URL-encoded in logName
PAGE_SIZE = 1000  # the largest page entries.list serves
# Admin Activity audit logs are kept 400 days (_Required bucket); a wider window reads nothing more.
MAX_WINDOW = timedelta(days=400)
RETRIES = 2
RETRY_DELAY_S = 1.0

_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


# =========================================================================== the window


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``2h``, ``90m``, ``1d12h``, ``45s`` (before now) or an RFC 3339 time -> the window's start (UTC).

    Raises ``ValueError`` with a sentence saying what is accepted.
    """
    current = now or datetime.now(timezone.utc)
    value = (text or "").strip()
    match = _DURATION_RE.fullmatch(value)
    if value and match and any(match.groups()):
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        window = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if window <= timedelta(0):
            raise ValueError(f"--since {text!r} is an empty window; give a duration like 2h")
        if window > MAX_WINDOW:
            raise ValueError(f"--since {text!r} reaches further back than the 400 days Admin Activity audit logs "
                             "are kept")
        return current - window
    try:
        start = parse_time(value, field="--since")
    except EgressGuardError:
        raise ValueError(f"--since {text!r} is neither a duration (like 2h, 90m, 1d12h, 45s) nor an RFC 3339 time "
                         "(like 2026-01-31T08:00:00Z)") from None
    if start >= current:
        raise ValueError(f"--since {text!r} is in the future")
    return start


def audit_filter(project: str, since: datetime, *, methods: Iterable[str] | None = None,
                 exclude_principals: Iterable[str] = ()) -> str:
    """The Logging query for the trigger methods' Admin Activity entries of ``project`` since
    ``since``, without egress-guard's own writes (as the sink filter in infra/ excludes them)."""
    names = " OR ".join(f'"{m}"' for m in (methods or TRIGGER_METHODS))
    stamp = since.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    text = (f'logName="projects/{project}/logs/{ACTIVITY_LOG}" AND protoPayload.methodName=({names}) '
            f'AND timestamp>="{stamp}"')
    own = " OR ".join(f'"{p}"' for p in sorted(exclude_principals))
    return f"{text} AND NOT protoPayload.authenticationInfo.principalEmail=({own})" if own else text


def read_entries(clients: "Clients", project: str, since: datetime) -> tuple[Mapping[str, Any], ...]:
    """entries.list through google-cloud-logging, oldest first, every page (the library pages);
    egress-guard's own writes (``EGRESS_GUARD_SELF_PRINCIPALS``) are left out by the filter."""
    from google.cloud import logging as cloud_logging

    with api.classified(f"logging.entries.list projects/{project}"):
        found = clients.logging.list_entries(resource_names=[f"projects/{project}"],
                                             filter_=audit_filter(project, since, exclude_principals=sorted(
                                                 clients.settings.self_principals)),
                                             order_by=cloud_logging.ASCENDING, page_size=PAGE_SIZE)
        return tuple(entry.to_api_repr() for entry in found)


def deduplicate(entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One entry per operation (or per insertId), in the order each change was first logged."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(_change_key(entry), []).append(entry)
    return [_telling(group) for group in groups.values()]


def _change_key(entry: Mapping[str, Any]) -> str:
    operation = entry.get("operation")
    if isinstance(operation, Mapping) and operation.get("id"):
        return f"operation {operation.get('producer', '')} {operation['id']}"
    return f"entry {entry.get('insertId', '')} {entry.get('logName', '')} {entry.get('timestamp', '')}"


def _telling(group: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The entry of an operation that says how it ended."""
    def status(entry: Mapping[str, Any]) -> int:
        payload = entry.get("protoPayload")
        code = payload.get("status", {}).get("code", 0) if isinstance(payload, Mapping) and isinstance(
            payload.get("status"), Mapping) else 0
        return code if isinstance(code, int) else 0

    for entry in group:
        if status(entry):
            return entry
    for entry in group:
        operation = entry.get("operation")
        if isinstance(operation, Mapping) and operation.get("last"):
            return entry
    return group[0]


# =========================================================================== replay


@dataclass(frozen=True)
class Result:
    """What one guardrail did with one entry."""

    guardrail: str
    outcome: str  # a finding outcome (or several, comma-separated), "acknowledged" or "retry"
    reason: str
    findings: tuple[Finding, ...] = ()

    @property
    def needs_retry(self) -> bool:
        return self.outcome == "retry"


@dataclass(frozen=True)
class Replayed:
    """One entry and what each guardrail did with it."""

    timestamp: str
    method: str
    resource: str
    principal: str
    results: tuple[Result, ...]

    @property
    def needs_retry(self) -> bool:
        return any(r.needs_retry for r in self.results)


def describe_entry(entry: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(timestamp, methodName, resourceName, principal) for display; tolerant of any shape."""
    payload = entry.get("protoPayload") if isinstance(entry.get("protoPayload"), Mapping) else {}
    auth = payload.get("authenticationInfo") if isinstance(payload.get("authenticationInfo"), Mapping) else {}
    return (str(entry.get("timestamp", "")), str(payload.get("methodName", "?")),
            str(payload.get("resourceName", "?")), str(auth.get("principalEmail", "")))


def replay_entry(entry: Mapping[str, Any], guardrails: Sequence["Guardrail"], ctx: "Context", *,
                 retries: int = RETRIES, delay: float = RETRY_DELAY_S,
                 sleep: Callable[[float], None] = time.sleep) -> Replayed:
    """Run every guardrail on ``entry`` through ``runner.handle`` (retrying transient errors)."""
    from .runner import handle

    results = []
    for guardrail in guardrails:
        for attempt in range(retries + 1):
            with _acknowledgements() as notes:
                try:
                    findings = handle(dict(entry), guardrail, ctx)
                except TransientError as exc:
                    if attempt < retries:
                        sleep(delay * (attempt + 1))
                        continue
                    results.append(Result(guardrail.name, "retry", exc.reason))
                    break
            if findings:
                outcomes = sorted({f.outcome.value for f in findings})
                results.append(Result(guardrail.name, ", ".join(outcomes), findings[0].reason, tuple(findings)))
            else:
                results.append(Result(guardrail.name, "acknowledged", notes[-1] if notes else "nothing to act on"))
            break
    timestamp, method, resource, principal = describe_entry(entry)
    return Replayed(timestamp, method, resource, principal, tuple(results))


class _Notes(logging.Handler):
    """Collects the runner's one line per event acknowledged without a decision (its reason)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        labels = getattr(record, "eg_labels", None) or {}
        if labels.get("outcome") == "acknowledged":
            self.reasons.append(record.getMessage().split(" without action: ", 1)[-1])


@contextmanager
def _acknowledgements() -> Iterator[list[str]]:
    handler = _Notes()
    runner_log = logging.getLogger("egress_guard.runner")
    runner_log.addHandler(handler)
    try:
        yield handler.reasons
    finally:
        runner_log.removeHandler(handler)


@dataclass(frozen=True)
class BackfillReport:
    project: str
    since: datetime
    read: int  # entries read
    replayed: tuple[Replayed, ...]
    seconds: float

    @property
    def failed(self) -> bool:
        return any(r.needs_retry for r in self.replayed)

    def outcomes(self) -> dict[str, dict[str, int]]:
        """guardrail -> outcome -> count."""
        counted: dict[str, dict[str, int]] = {}
        for replayed in self.replayed:
            for result in replayed.results:
                per = counted.setdefault(result.guardrail, {})
                per[result.outcome] = per.get(result.outcome, 0) + 1
        return counted


def backfill(ctx: "Context", guardrails: Sequence["Guardrail"], project: str, since: datetime, *,
             on_entry: Callable[[int, int, Replayed], None] = lambda i, n, r: None,
             retries: int = RETRIES) -> BackfillReport:
    """Read the window and replay every change once, oldest first."""
    started = time.monotonic()
    entries = read_entries(ctx.clients, project, since)
    changes = deduplicate(entries)
    replayed = []
    for index, entry in enumerate(changes, 1):
        try:
            done = replay_entry(entry, guardrails, ctx, retries=retries)
        except PermanentError as exc:  # publishing is configured wrong, ...: report it on this entry
            timestamp, method, resource, principal = describe_entry(entry)
            done = Replayed(timestamp, method, resource, principal, (Result("-", "retry", exc.reason),))
        replayed.append(done)
        on_entry(index, len(changes), done)
    return BackfillReport(project=project, since=since, read=len(entries),
                          replayed=tuple(replayed), seconds=time.monotonic() - started)


# =========================================================================== terminal output


def progress_line(index: int, total: int, replayed: Replayed) -> str:
    """``[3/17] 2026-01-31T08:00:00Z v1.compute.firewalls.delete projects/... -> ensure_nat: ...``"""
    results = "; ".join(f"{r.guardrail}: {r.outcome}" + (f" ({r.reason})" if r.outcome in ("acknowledged", "retry")
                                                          else "") for r in replayed.results)
    return f"[{index}/{total}] {replayed.timestamp} {replayed.method} {replayed.resource} -> {results}"


def render_report(report: BackfillReport, console: Any, *, limit: int = 100) -> None:
    """The summary table: one row per change replayed (the first ``limit``), then the totals."""
    from rich.table import Table

    guardrails = sorted({r.guardrail for replayed in report.replayed for r in replayed.results})
    table = Table(title=f"egress-guard backfill of {report.project} since "
                        f"{report.since.isoformat(timespec='seconds').replace('+00:00', 'Z')}")
    table.add_column("Time")
    table.add_column("Method", overflow="fold")
    table.add_column("Resource", overflow="fold")
    for name in guardrails:
        table.add_column(name)
    for replayed in report.replayed[:limit]:
        by_guardrail = {r.guardrail: r.outcome for r in replayed.results}
        method = ".".join(replayed.method.rsplit(".", 2)[-2:])  # Jobs.CreateJob, firewalls.delete
        table.add_row(replayed.timestamp[:19], method, replayed.resource,
                      *(by_guardrail.get(g, "-") for g in guardrails))
    if report.replayed:
        console.print(table)
    if len(report.replayed) > limit:
        console.print(f"[dim]... and {len(report.replayed) - limit} more changes[/]")
    totals = "; ".join(f"{g}: " + ", ".join(f"{n} {o}" for o, n in sorted(per.items()))
                       for g, per in sorted(report.outcomes().items()))
    console.print(f"{report.read} audit entries read, {len(report.replayed)} changes replayed in "
                  f"{report.seconds:.1f} s" + (f": {totals}." if totals else "."))
    if report.failed:
        console.print("[bold red]some changes still need a retry[/]: run the same backfill again.")
