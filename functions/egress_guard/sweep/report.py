"""What a sweep decided, row by row, and the table and totals printed at its end (pure formatting)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..findings import Change, Finding, Outcome, ResourceRef

SKIPPED = "skipped"  # a row without a decision (nothing to act on), like an acknowledged event


@dataclass(frozen=True)
class Row:
    """One line of the sweep's table: a decision (with its finding) or a skipped subject."""

    resource: ResourceRef
    guardrail: str
    outcome: str  # an Outcome value, or SKIPPED
    reason: str
    changes: tuple[Change, ...] = ()
    finding: Finding | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == Outcome.FAILED.value


def skipped(ref: ResourceRef, guardrail: str, reason: str) -> Row:
    return Row(ref, guardrail, SKIPPED, reason)


@dataclass(frozen=True)
class SweepReport:
    project: str
    regions: tuple[str, ...]
    rows: tuple[Row, ...]
    reads: Mapping[str, int]  # read calls by method (one per page)
    calls: int | None  # every API call, counted at the HTTP layer (None when it could not be counted)
    problems: tuple[str, ...]
    seconds: float
    counts: Mapping[str, int]  # connectors, services, jobs, worker pools, functions, app engine versions

    @property
    def api_calls(self) -> int | None:
        return self.calls

    @property
    def writes(self) -> int | None:
        """Calls other than the planned reads: writes, operation waits, re-reads after a conflict."""
        return None if self.calls is None else self.calls - sum(self.reads.values())

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(r.failed for r in self.rows)

    def outcomes(self) -> dict[str, int]:
        return count_outcomes(self.rows)


def count_outcomes(rows: Iterable[Row]) -> dict[str, int]:
    """How many rows had each outcome, in the order outcomes first appear (the summary line's order)."""
    counted: dict[str, int] = {}
    for row in rows:
        counted[row.outcome] = counted.get(row.outcome, 0) + 1
    return counted


def changes_text(changes: Iterable[Change]) -> str:
    """``routers.patch egress-guard-europe-west2`` per change, one per line (for the table)."""
    return "\n".join(f"{c.action.removeprefix('compute.')} {c.resource.rsplit('/', 1)[-1]}" for c in changes)


OUTCOME_STYLES: Mapping[str, str] = {
    "remediated": "green", "compliant": "dim", "planned": "cyan", "exempt": "blue", "blocked": "yellow",
    "failed": "bold red", SKIPPED: "magenta",
}
# Compliant rows are listed one by one only in small sweeps; above this they are counted.
LIST_COMPLIANT_UP_TO = 50


def short_resource(ref: ResourceRef) -> str:
    """``connector europe-west2/conn-a``, ``job europe-west2/nightly`` (the table's first column)."""
    parts = ref.name.split("/")
    kind = {"connectors": "connector", "services": "service", "jobs": "job", "functions": "function",
            "versions": "app engine version", "workerPools": "worker pool"}.get(parts[-2] if len(parts) > 1 else "",
                                                                                  ref.type)
    where = parts[3] if len(parts) > 4 and parts[2] == "locations" else (
        parts[3] if len(parts) == 6 and parts[0] == "apps" else "")  # apps/P/services/S/versions/V: the service
    return f"{kind} {where + '/' if where else ''}{parts[-1]}"


def render_report(report: SweepReport, console: Any, *, all_rows: bool = False, table: bool = True) -> None:
    """The table at the end of a sweep (unless ``table`` is false: ``--json`` has printed every
    decision already), then the totals, the API calls and any problem."""
    from rich.table import Table

    rows = sorted(report.rows, key=lambda r: (r.resource.name, r.guardrail))
    listed = [r for r in rows if table and (all_rows or r.outcome != "compliant" or len(rows) <= LIST_COMPLIANT_UP_TO)]
    grid = Table(title=f"egress-guard sweep of {report.project}", show_lines=False, expand=False)
    grid.add_column("Resource", overflow="fold")
    grid.add_column("Guardrail", no_wrap=True)
    grid.add_column("Outcome")
    grid.add_column("Changes", overflow="fold")
    for row in listed:
        style = OUTCOME_STYLES.get(row.outcome, "")
        changes = changes_text(row.changes) or ("-" if row.outcome != SKIPPED else row.reason)
        grid.add_row(short_resource(row.resource), row.guardrail, f"[{style}]{row.outcome}[/]", changes)
    if listed:
        console.print(grid)
    hidden = len(rows) - len(listed)
    if hidden and table:
        console.print(f"[dim]{hidden} compliant decisions not listed (--all lists them)[/]")
    outcomes = ", ".join(f"{count} {outcome}" for outcome, count in sorted(report.outcomes().items()))
    counts = report.counts
    console.print(f"{_many(counts.get('connectors', 0), 'connector')}, {_many(counts.get('services', 0), 'service')}, "
                  f"{_many(counts.get('jobs', 0), 'job')}, {_many(counts.get('worker pools', 0), 'worker pool')}, "
                  f"{_many(counts.get('functions', 0), 'function')} and "
                  f"{_many(counts.get('app engine versions', 0), 'App Engine version')} "
                  f"in {_many(len(report.regions), 'region')}: "
                  f"{outcomes or 'nothing to decide'}.")
    reads = ", ".join(f"{method} {count}" for method, count in sorted(report.reads.items()))
    total = "not counted" if report.api_calls is None else f"{report.api_calls:,}"
    others = "" if report.writes is None else f"; {report.writes:,} writes, waits and re-reads"
    console.print(f"API calls: {total} ({sum(report.reads.values()):,} list pages: {reads}{others}) "
                  f"in {report.seconds:.1f} s.")
    for problem in report.problems:
        console.print(f"[bold red]problem:[/] {problem}")


def _many(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
