"""One sweep of one project: read the inventory, decide every subject, apply, report.

Each decision is made by the guardrails' own code: the planners (``plan_nat``, ``workload_plan``,
``plan_firewalls``), the executors (``apply_nat``, ``apply_firewalls``) and the converge loop
(``converge``: a conflict re-reads that one region's routers or that one network's rules and plans
again, carrying what was already written). What is the sweep's own: the first state comes from the
inventory instead of a live read, and a region's NAT subjects share one write per router.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .. import api, estate
from ..converge import MAX_ATTEMPTS, converge
from ..errors import EgressGuardError, PermanentError, TransientError
from ..egress import EgressPoint
from ..estate import Connector
from ..findings import Change, Finding, Mode, Outcome, ResourceRef, Trigger
from ..guardrails import connector_firewalls as firewalls_guardrail
from ..guardrails import ensure_nat as nat_guardrail
from ..guardrails.connector_firewalls import RuleIndex, planner_reads
from ..names import AppEngineVersionName, FunctionName, NetworkName, RunJobName, RunServiceName, RunWorkerPoolName
from ..plan import Plan
from ..policy import Policy
from .fold import NatSubject, converge_nat_region, inventory_point, nat_subjects
from .inventory import HttpCalls, Inventory, Reads
from .progress import NoProgress, Progress
from .report import Row, SweepReport, skipped

if TYPE_CHECKING:
    from ..clients import Clients

NAT = nat_guardrail.GUARDRAIL_NAME
FIREWALLS = firewalls_guardrail.GUARDRAIL_NAME
SWEEP_METHOD = "egress-guard.sweep"


class Sweep:
    """One sweep of one project: read, plan, apply, report."""

    def __init__(self, clients: "Clients", policy: Policy, *, operation_timeout: float,
                 publish: Callable[[Finding], object] | None = None, progress: Progress = NoProgress(),
                 run_id: str | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.clients = clients
        self.policy = policy
        self.timeout = operation_timeout
        self.publish = publish
        self.progress = progress
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._now = now or (lambda: datetime.now(timezone.utc))
        self.reads = Reads()
        self.http = HttpCalls()
        # The rule indexes of the networks being decided (few: connectors are decided network by
        # network), built from the inventory's compressed rules and let go once the network is done.
        self._indexes: "OrderedDict[str, RuleIndex]" = OrderedDict()
        self._indexes_lock = threading.Lock()

    def run(self, project: str, regions: Sequence[str] | None = None) -> SweepReport:
        started = time.monotonic()
        self.started_at = self._now()
        self.http.attach(self.clients)
        before = self.http.total
        self.progress.phase(f"reading project {project}", None)
        # The NAT plans are made while the firewall rules are still being listed (Inventory.reading).
        # A write a rate quota refuses waits for the next window (Compute: 1,500 global mutations a
        # minute per project by default, docs/minimums.md): the sweep finishes, later, instead of
        # failing each refused connector.
        with Inventory.reading(self.clients, project, regions, reads=self.reads, progress=self.progress,
                               keep_rule=lambda name: planner_reads(name, self.policy)) as inventory, \
                api.RATE_QUOTA.waiting(getattr(self.clients.settings, "rate_quota_window_seconds", None)):
            rows = self.reconcile(inventory)
        counts = {"connectors": sum(1 for c in inventory.connectors.values() if c.name.project == project),
                  "services": sum(1 for w in inventory.workloads if isinstance(w.name, RunServiceName)),
                  "jobs": sum(1 for w in inventory.workloads if isinstance(w.name, RunJobName)),
                  "worker pools": sum(1 for w in inventory.workloads if isinstance(w.name, RunWorkerPoolName)),
                  "functions": sum(1 for w in inventory.workloads if isinstance(w.name, FunctionName)),
                  "app engine versions": sum(1 for w in inventory.workloads if isinstance(w.name, AppEngineVersionName))}
        after = self.http.total
        return SweepReport(project=project, regions=inventory.regions, rows=tuple(rows), reads=dict(self.reads.calls),
                           calls=None if after is None or before is None else after - before,
                           problems=tuple(self.reads.problems),
                           seconds=time.monotonic() - started, counts=counts)

    # -- decisions

    def trigger(self, ref: ResourceRef) -> Trigger:
        return Trigger(serviceName="egress-guard", methodName=SWEEP_METHOD, resourceName=ref.name,
                       operationId=f"sweep/{self.run_id}",
                       timestamp=self.started_at.isoformat(timespec="seconds").replace("+00:00", "Z"))

    def mode(self, guardrail: str) -> Mode:
        return self.policy.mode_for(guardrail)

    def reconcile(self, inventory: Inventory) -> list[Row]:
        subjects, settled, skipped_rows = nat_subjects(inventory, self.policy)
        # Network by network: one network's rules are unpacked at a time (_rule_index).
        firewall_connectors = [c for c in sorted(inventory.connectors.values(),
                                                 key=lambda c: (_network_key(c, inventory), c.name.relative))
                               if c.name.project == inventory.project]
        regions = sorted({(s.point.project, s.point.region) for s in subjects})
        self.progress.phase("reconciling", len(subjects) + len(settled) + len(firewall_connectors))
        rows: list[Row] = list(skipped_rows)
        for plan in settled:
            rows.append(self._row(NAT, plan, []))
            self.progress.advance(plan.subject.name)
        by_region: dict[tuple[str, str], list[NatSubject]] = {}
        for subject in subjects:
            by_region.setdefault((subject.point.project, subject.point.region), []).append(subject)
        rows += self._all_nat_regions([(p, r, by_region[(p, r)]) for p, r in regions], inventory)
        rows += self._all_firewalls(firewall_connectors, inventory)
        return rows

    def _all_nat_regions(self, regions: Sequence[tuple[str, str, list[NatSubject]]], inventory: Inventory
                         ) -> list[Row]:
        """Rows in region order. Dry-run plans make no call: one thread. Enforce: regions are independent
        (each writes its own routers, and waits ``ROUTER_WRITE_SETTLE_S`` before verifying each
        patch), so their writes and waits overlap instead of adding up region after region."""
        if self.mode(NAT) is not Mode.ENFORCE or len(regions) < 2:
            return [row for p, r, subjects in regions for row in self._nat_region(p, r, subjects, inventory)]
        from concurrent.futures import ThreadPoolExecutor

        from ..assumptions import SWEEP_FIREWALL_WRITERS

        self.clients.routers, self.clients.region_operations  # noqa: B018 - built before threads share them
        with ThreadPoolExecutor(min(SWEEP_FIREWALL_WRITERS, len(regions)), thread_name_prefix="sweep-nat") as pool:
            decided = list(pool.map(lambda item: self._nat_region(item[0], item[1], item[2], inventory), regions))
        return [row for rows in decided for row in rows]

    def _row(self, guardrail: str, plan: Plan, applied: Sequence[Change]) -> Row:
        finding = plan.finding(guardrail=guardrail, mode=self.mode(guardrail), trigger=self.trigger(plan.subject),
                               applied=list(applied))
        return self._publish(Row(plan.subject, guardrail, finding.outcome.value, finding.reason, finding.changes,
                                 finding))

    def _failed(self, guardrail: str, ref: ResourceRef, point: EgressPoint | None, error: EgressGuardError) -> Row:
        finding = Finding(guardrail=guardrail, mode=self.mode(guardrail), outcome=Outcome.FAILED,
                          project=point.project if point else ref.name.split("/")[1],
                          region=point.region if point else "", network=point.network.relative if point else "",
                          resource=ref, trigger=self.trigger(ref),
                          reason=f"{guardrail} could not finish: {error.reason}. Run `egress-guard sweep` again once "
                                 "the cause is fixed.")
        return self._publish(Row(ref, guardrail, Outcome.FAILED.value, finding.reason, (), finding))

    def _publish(self, row: Row) -> Row:
        if self.publish is not None and row.finding is not None:
            try:
                self.publish(row.finding)
            except TransientError as exc:
                self.reads.problems.append(f"publishing the finding for {row.resource.name}: {exc.reason}")
        return row

    def _advance(self, row: Row) -> Row:
        self.progress.advance(row.resource.name)
        return row

    # -- ensure_nat: one project and region at once

    def _nat_region(self, project: str, region: str, subjects: Sequence[NatSubject], inventory: Inventory) -> list[Row]:
        if project in inventory.failed_projects:
            error = PermanentError(f"the routers of project {project} could not be read")
            return [self._advance(self._failed(NAT, s.ref, s.point, error)) for s in subjects]
        try:
            decided = converge_nat_region(self.clients, project, region, subjects, self.policy, timeout=self.timeout,
                                          enforce=self.mode(NAT) is Mode.ENFORCE,
                                          first=lambda: inventory.routers_of(project, region))
        except EgressGuardError as exc:
            return [self._advance(self._failed(NAT, s.ref, s.point, exc)) for s in subjects]
        return [self._advance(self._row(NAT, decision.plan, applied)) for decision, applied in decided]

    # -- replace_connector_firewalls: each connector on its own, several at once when writing

    def _all_firewalls(self, connectors: Sequence[Connector], inventory: Inventory) -> list[Row]:
        """Rows in connector order. Dry-run plans make no call: one thread. Enforce: the connectors'
        writes are independent (each writes its own rules), so ``SWEEP_FIREWALL_WRITERS`` connectors
        are written at once (assumptions.py)."""
        if self.mode(FIREWALLS) is not Mode.ENFORCE or len(connectors) < 2:
            return [self._advance(self._firewalls(c, inventory)) for c in connectors]
        from concurrent.futures import ThreadPoolExecutor

        from ..assumptions import SWEEP_FIREWALL_WRITERS

        # Built before the threads share them (cached properties are not built under a lock).
        self.clients.firewalls, self.clients.global_operations  # noqa: B018
        with ThreadPoolExecutor(SWEEP_FIREWALL_WRITERS, thread_name_prefix="sweep-firewalls") as pool:
            return [self._advance(row) for row in pool.map(lambda c: self._firewalls(c, inventory), connectors)]

    def _firewalls(self, connector: Connector, inventory: Inventory) -> Row:
        name = connector.name
        point = inventory_point(connector, inventory)  # a connector in ERROR or DELETING: skipped with the reason
        if isinstance(point, str):
            return skipped(name.ref, FIREWALLS, point)
        network = point.network
        if inventory.rules_unreadable(network.project):
            return self._failed(FIREWALLS, name.ref, point,
                                PermanentError(f"the firewall rules of project {network.project} could not be read"))
        try:
            done = converge(
                first=lambda: self._rule_index(inventory, network).rules_for(name, network),
                read=lambda: estate.firewalls_of(self.clients, network),
                plan=lambda rules: firewalls_guardrail.plan_firewalls(name, network, rules, self.policy),
                apply=lambda plan, applied: firewalls_guardrail.apply_firewalls(
                    self.clients, plan, network, timeout=self.timeout, applied=applied),
                enforce=self.mode(FIREWALLS) is Mode.ENFORCE,
                kept_changing=f"the rules of network {network.name} kept changing during {MAX_ATTEMPTS} attempts")
        except EgressGuardError as exc:
            return self._failed(FIREWALLS, name.ref, point, exc)
        return self._row(FIREWALLS, done.plan, done.applied)

    def _rule_index(self, inventory: Inventory, network: NetworkName) -> RuleIndex:
        with self._indexes_lock:  # writers share it; a network is unpacked once while it is being decided
            index = self._indexes.get(network.relative)
            if index is None:
                index = self._indexes[network.relative] = RuleIndex.from_json(
                    inventory.rule_bodies(network), self.policy, network.project)
                while len(self._indexes) > _OPEN_INDEXES:
                    self._indexes.popitem(last=False)
            else:
                self._indexes.move_to_end(network.relative)
            return index


# Networks whose rules are unpacked at once: the writers work on neighbouring connectors, in network order.
_OPEN_INDEXES = 4


def _network_key(connector: Connector, inventory: Inventory) -> str:
    point = inventory_point(connector, inventory)
    return "" if isinstance(point, str) else point.network.relative
