"""``egress-guard sweep --organization ORG | --folder FOLDER``: every project, decided by the one
per-project sweep (design §3, "Command line").

1. **discover** (``discovery.discover``): one Cloud Asset Inventory search per scope, every asset type
   at once, 500 results a page. Calls: pages, whatever the number of projects.
2. **judge each project from its snapshot**: ``snapshot.snapshot_inventory`` builds the project's
   ``Inventory`` from those results and the sweep's own ``Sweep.reconcile`` plans it, in dry-run
   (no call: every plan is made from the inventory). A project whose every decision is compliant or
   exempt has nothing to do and costs nothing more.
3. **sweep live** every other project (something planned, blocked, skipped or failed, or a snapshot
   that could not be read) with ``Sweep.run``, exactly as ``egress-guard sweep --project P`` does: it
   reads the project again, live, and plans and applies from that, never from the snapshot, which
   Asset Inventory keeps only eventually consistent (docs/gcp-facts.md §17.4). Its regions are the
   ones the snapshot found (no ``locations.list``). ``projects_at_once`` projects at a time.

So a sweep's calls are the search's pages plus, for each project that has something to do, that
project's own sweep: an organization that is all compliant costs its pages only.

Nothing is changed before the whole search has been read: a scope that does not exist or may not
be searched (403) stops the run with nothing changed (``DiscoveryFailed``).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..errors import EgressGuardError
from ..findings import Finding, Outcome
from ..guardrails.connector_firewalls import planner_reads
from ..policy import Policy
from ..sweep import HttpCalls, Row, Sweep, SweepReport
from ..sweep.report import count_outcomes
from .discovery import Discovery, Scope, discover
from .snapshot import Snapshots, Unreadable, has_subjects

if TYPE_CHECKING:
    from ..clients import Clients

# Projects swept live at once. Each project's sweep writes only that project's resources (and its
# Shared VPC host's), and Compute's write quotas are counted per project; four keeps two cores busy
# while operations are waited for without holding hundreds of connections. ``--projects-at-once``.
PROJECTS_AT_ONCE = 4
SNAPSHOT, LIVE = "asset snapshot", "live sweep"
SETTLED = (Outcome.COMPLIANT.value, Outcome.EXEMPT.value)


class DiscoveryFailed(Exception):
    """The search could not be read; nothing was decided or changed."""

    def __init__(self, scope: str, error: EgressGuardError) -> None:
        super().__init__(f"{scope}: {error.reason}")
        self.scope = scope
        self.error = error


@dataclass(frozen=True)
class ProjectResult:
    project: str
    folder: str  # the nearest folder ("" when directly under the organization)
    decided_from: str  # SNAPSHOT or LIVE
    why: str  # why it was swept live ("" from the snapshot)
    rows: tuple[Row, ...]
    calls: int | None  # the live sweep's API calls (0 from the snapshot)
    report: SweepReport | None = None

    @property
    def failed(self) -> bool:
        return self.report.failed if self.report is not None else any(r.failed for r in self.rows)

    def outcomes(self) -> dict[str, int]:
        return count_outcomes(self.rows)


@dataclass(frozen=True)
class OrganizationReport:
    scopes: tuple[str, ...]
    projects: tuple[ProjectResult, ...]  # those holding a connector or a workload
    projects_seen: int  # every project the search returned a resource of
    search_pages: int
    calls: int | None  # every API call: the search's and each live sweep's
    seconds: float

    @property
    def failed(self) -> bool:
        return any(p.failed for p in self.projects)

    def outcomes(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for project in self.projects:
            for outcome, n in project.outcomes().items():
                counted[outcome] = counted.get(outcome, 0) + n
        return counted


class OrganizationSweep:
    """Discover, judge from the snapshot, sweep live what has something to do."""

    def __init__(self, clients: "Clients", policy: Policy, *, operation_timeout: float,
                 new_clients: Callable[[], "Clients"], publish: Callable[[Finding], object] | None = None,
                 projects_at_once: int = PROJECTS_AT_ONCE,
                 on_project: Callable[[int, int, ProjectResult], None] | None = None,
                 on_page: Callable[[int], None] | None = None) -> None:
        if projects_at_once < 1:
            raise ValueError("projects_at_once must be at least 1")
        self.clients = clients
        self.policy = policy
        self.timeout = operation_timeout
        self.new_clients = new_clients  # each live sweep has its own clients, so its calls are its own
        self.publish = publish
        self.projects_at_once = projects_at_once
        self.on_project = on_project
        self.on_page = on_page
        self.run_id = uuid.uuid4().hex[:12]

    def run(self, scopes: Sequence[Scope]) -> OrganizationReport:
        started = time.monotonic()
        http = HttpCalls().attach(self.clients)
        try:
            found = discover(self.clients, scopes, on_page=self.on_page)
        except EgressGuardError as exc:
            raise DiscoveryFailed(", ".join(s.name for s in scopes), exc) from exc
        search_calls = http.total
        projects = sorted(p for p in found.assets if has_subjects(p, found))
        snapshots = Snapshots(found, keep_rule=lambda name: planner_reads(name, self.policy))
        judged = [self._judge(p, found, snapshots) for p in projects]
        live = [(p, regions, why) for p, regions, why in judged if why]
        results: dict[str, ProjectResult] = {}
        done = 0

        def finish(result: ProjectResult) -> None:
            nonlocal done
            results[result.project] = result
            done += 1
            if self.on_project is not None:
                self.on_project(done, len(projects), result)

        for project, rows, why in judged:
            if not why:
                finish(ProjectResult(project, _folder(found, project), SNAPSHOT, "",
                                     tuple(self._as_decided(r, _folder(found, project)) for r in rows), 0))
        if live:
            with ThreadPoolExecutor(min(self.projects_at_once, len(live)), thread_name_prefix="sweep-project") as pool:
                running = [pool.submit(self._live, project, regions, why, found) for project, regions, why in live]
                for future in as_completed(running):  # the progress line as each project finishes
                    finish(future.result())
        ordered = tuple(results[p] for p in projects)
        calls = None if search_calls is None or any(r.calls is None for r in ordered) else \
            search_calls + sum(r.calls or 0 for r in ordered)
        return OrganizationReport(scopes=tuple(s.name for s in scopes), projects=ordered,
                                  projects_seen=len(found.assets), search_pages=found.pages, calls=calls,
                                  seconds=time.monotonic() - started)

    # -- step 2: the snapshot, planned by the sweep's own code (no call)

    def _judge(self, project: str, found: Discovery, snapshots: Snapshots) -> tuple[str, object, str]:
        """(project, the snapshot's rows or the regions to sweep, why it is swept live or "")."""
        from ..cli import forced_dry_run

        inventory = snapshots.inventory(project)
        if isinstance(inventory, Unreadable):
            regions = sorted({a.location for a in found.assets.get(project, ())
                              if a.location and a.location != "global"})
            return project, regions, f"its snapshot could not be read: {inventory.reason}"
        triage = Sweep(self.clients, forced_dry_run(self.policy), operation_timeout=self.timeout, run_id=self.run_id)
        triage.started_at = datetime.now(timezone.utc)
        rows = triage.reconcile(inventory)
        unsettled = [r for r in rows if r.outcome not in SETTLED]
        if not unsettled:
            return project, rows, ""
        first = unsettled[0]
        return project, sorted(inventory.run_regions), (f"{len(unsettled)} decision(s) not compliant in its snapshot, "
                                                        f"e.g. {first.guardrail} {first.outcome} {first.resource.name}")

    def _as_decided(self, row: Row, folder: str) -> Row:
        """A snapshot row as the sweep decided it: the policy's own mode, the project's folder."""
        if row.finding is None:
            return row
        finding = dataclasses.replace(row.finding, mode=self.policy.mode_for(row.guardrail), folder=folder)
        if self.publish is not None:
            self.publish(finding)
        return dataclasses.replace(row, finding=finding)

    # -- step 3: the project's own sweep, live

    def _live(self, project: str, regions: object, why: str, found: Discovery) -> ProjectResult:
        folder = _folder(found, project)
        publish = None if self.publish is None else (lambda f: self.publish(dataclasses.replace(f, folder=folder)))
        sweep = Sweep(self.new_clients(), self.policy, operation_timeout=self.timeout, publish=publish,
                      run_id=self.run_id)
        report = sweep.run(project, list(regions) if isinstance(regions, list) and regions else None)
        rows = tuple(r if r.finding is None else dataclasses.replace(r, finding=dataclasses.replace(r.finding, folder=folder))
                     for r in report.rows)
        return ProjectResult(project, folder, LIVE, why, rows, report.calls, report)


def _folder(found: Discovery, project: str) -> str:
    folders = found.folders_of(project)
    return folders[0] if folders else ""
