"""A Finding as a rich renderable: the Slack message, for a terminal (``make demo``,
``egress-guard replay``). Pure: returns a renderable, prints nothing.

Text is passed to rich as ``Text`` objects, never as markup, so a `[` in a name or a reason cannot
restyle the output.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from egress_guard.findings import Finding, Mode, Outcome
from egress_guard.notify.summary import (
    DEFAULT_CONSOLE_BASE,
    DRY_RUN_BADGE,
    OUTCOME_STYLES,
    change_counts,
    console_links,
    dry_run_note,
    headline,
    summarise_change,
    where_fields,
)

MAX_CHANGES_SHOWN = 20


def render_finding_rich(
    finding: Finding,
    *,
    console_base: str = DEFAULT_CONSOLE_BASE,
    max_changes: int = MAX_CHANGES_SHOWN,
) -> RenderableType:
    style = OUTCOME_STYLES[finding.outcome]
    parts: list[RenderableType] = []

    if finding.mode is Mode.DRY_RUN:
        parts.append(Text.assemble((f" {DRY_RUN_BADGE} ", "bold black on yellow"), " ", dry_run_note(finding)))
    parts.append(Text.assemble(("Why: ", "bold"), finding.reason or "no reason recorded"))

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    for label, value in where_fields(finding):
        facts.add_row(label, Text(value))
    parts.append(facts)

    parts.append(_changes(finding, max_changes))

    links = console_links(finding, console_base=console_base)
    if links:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for link in links:
            # The URL is printed too: not every terminal makes the label clickable.
            table.add_row(Text(link.label, style=f"link {link.url}"), Text(link.url, style="dim"))
        parts.append(Group(Text("Console:", style="bold"), table))

    parts.append(Text(f"finding {finding.id} · {finding.severity} · {finding.time}", style="dim"))
    return Panel(
        Group(*parts),
        title=Text(f" {headline(finding)} ", style=f"bold {style.colour}"),
        title_align="left",
        border_style=style.colour,
    )


def _changes(finding: Finding, max_changes: int) -> RenderableType:
    changes = finding.changes
    if not changes:
        return Text.assemble(("Changes: ", "bold"), "none")
    table = Table(title=change_counts(changes), title_justify="left", show_lines=False, expand=True)
    table.add_column("change", no_wrap=True)
    table.add_column("resource", overflow="fold")
    table.add_column("before → after", overflow="fold")
    for change in changes[:max_changes]:
        summary = summarise_change(change, planned=finding.outcome is Outcome.PLANNED)
        table.add_row(
            Text(summary.verb, style="bold"),
            Text(f"{summary.kind} {summary.name}\n{summary.action}"),
            Text("\n".join(summary.details) or "—"),
        )
    hidden = len(changes) - max_changes
    if hidden > 0:
        return Group(table, Text(f"… and {hidden} more change{'s' if hidden != 1 else ''}", style="italic"))
    return table
