"""What ``sweep --organization`` prints: a line per project as it finishes (stderr), a table per
project at the end, and ``--json`` (pure formatting)."""

from __future__ import annotations

from typing import Any

from ..sweep.report import LIST_COMPLIANT_UP_TO, OUTCOME_STYLES
from .run import LIVE, OrganizationReport, ProjectResult


def progress_line(done: int, total: int, result: ProjectResult) -> str:
    """``[3/30] eg-org-p03 (folders/2): 2 remediated, 4 compliant; live sweep, 17 calls``."""
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(result.outcomes().items())) or "nothing to decide"
    calls = "calls not counted" if result.calls is None else f"{result.calls} calls"
    where = f" ({result.folder})" if result.folder else ""
    return f"[{done}/{total}] {result.project}{where}: {outcomes}; {result.decided_from}, {calls}"


def render(report: OrganizationReport, console: Any, *, all_rows: bool = False) -> None:
    """A row per project (above ``LIST_COMPLIANT_UP_TO`` projects, only those with something other
    than compliant decisions, unless ``all_rows``), then the totals and the calls."""
    from rich.table import Table

    grid = Table(title=f"egress-guard sweep of {', '.join(report.scopes)}", expand=False)
    for column in ("Project", "Folder", "Decided from", "Outcomes", "API calls"):
        grid.add_column(column, overflow="fold")
    many = len(report.projects) > LIST_COMPLIANT_UP_TO and not all_rows
    listed = [p for p in report.projects if not many or set(p.outcomes()) - {"compliant"}]
    for result in listed:
        outcomes = ", ".join(f"[{OUTCOME_STYLES.get(o, '')}]{n} {o}[/]" for o, n in sorted(result.outcomes().items()))
        grid.add_row(result.project, result.folder or "-", result.decided_from, outcomes or "-",
                     "-" if result.calls is None else str(result.calls))
    if listed:
        console.print(grid)
    if len(listed) < len(report.projects):
        console.print(f"[dim]{len(report.projects) - len(listed):,} projects all compliant, not listed (--all lists them)[/]")
    live = sum(1 for p in report.projects if p.decided_from == LIVE)
    totals = ", ".join(f"{n} {o}" for o, n in sorted(report.outcomes().items())) or "nothing to decide"
    calls = "not counted" if report.calls is None else f"{report.calls:,}"
    console.print(f"{report.projects_seen:,} projects found, {len(report.projects):,} holding a connector or a workload, "
                  f"{live:,} swept live: {totals}.")
    console.print(f"API calls: {calls} (Asset Inventory search: {report.search_pages:,} page{'' if report.search_pages == 1 else 's'}) in {report.seconds:.1f} s.")
    for result in report.projects:
        if result.report is not None:
            for problem in result.report.problems:
                console.print(f"[bold red]problem:[/] {result.project}: {problem}")


def to_json(report: OrganizationReport) -> dict[str, Any]:
    """The whole run as one JSON document: each project's summary and findings, and the totals."""
    return {
        "scopes": list(report.scopes), "projects_seen": report.projects_seen, "search_pages": report.search_pages,
        "calls": report.calls, "seconds": round(report.seconds, 3), "outcomes": report.outcomes(),
        "projects": [{"project": p.project, "folder": p.folder, "decided_from": p.decided_from, "why": p.why,
                      "calls": p.calls, "outcomes": p.outcomes(),
                      "findings": [r.finding.to_dict() for r in p.rows if r.finding is not None],
                      "skipped": [{"resource": r.resource.name, "guardrail": r.guardrail, "reason": r.reason}
                                  for r in p.rows if r.finding is None],
                      "problems": list(p.report.problems) if p.report is not None else []}
                     for p in report.projects],
    }
