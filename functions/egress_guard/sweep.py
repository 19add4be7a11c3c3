"""``egress-guard sweep``: reconcile what already exists with the guardrails' own code (design §3).

The functions react to audit entries; a sweep covers what was there before they were deployed, or
what they missed. It runs the same pure planners (``plan_nat``, ``workload_plan``,
``plan_firewalls``) and the same executors (``apply_nat``, ``apply_firewalls``) as the guardrails,
in three steps:

1. **read** everything once (``Inventory.read``). The number of calls grows with regions and pages,
   never with the number of resources: no ``get`` per resource.

   | read                                    | calls                                                  |
   |-----------------------------------------|--------------------------------------------------------|
   | vpcaccess ``projects.locations.list``   | 1 per page, only without ``--region``                  |
   | vpcaccess ``connectors.list``           | 1 per region and page                                  |
   | compute ``subnetworks.aggregatedList``  | 1 per page, per network project                        |
   | run v2 ``services.list``, ``jobs.list`` | 1 per region and page, where a connector or subnet is  |
   | compute ``routers.aggregatedList``      | 1 per page, per network project                        |
   | compute ``firewalls.list``              | 1 per page, per network project (every network)        |

   Regions. Without ``--region`` they are the regions VPC Access offers the project
   (``projects.locations.list``): connectors.list has no ``-`` wildcard (its parent is
   ``projects/{project}/locations/{location}`` in the vpcaccess v1 discovery document, and
   localcloud refuses ``-`` as Google's v1 API does not document it). Cloud Run v2 services.list
   says its location "cannot be the '-' wildcard", so services and jobs are listed per region too,
   but only where traffic can enter a VPC: a region with a connector, or with a subnet (Direct VPC
   egress uses a subnet of the workload's region). The routers aggregated list is the one call for
   every region's NATs.

2. **plan** every subject from that snapshot, with no further I/O:

   - ensure_nat: every connector that can carry traffic (READY, CREATING, UPDATING; policy
     ``nat.on_connector_create``), every Cloud Run service and job (``workload_plan`` settles those
     that need no NAT: no VPC, private ranges only, exempt);
   - replace_connector_firewalls: every READY connector (its ``aet-*`` rules exist only then).

   The NAT subjects of one project and region are planned in order (range connectors first, as
   ensure_nat's drift handler does, so an ``ALL_SUBNETWORKS_*`` NAT they need is not blocked by a
   LIST NAT planned a moment earlier), each against the routers as the writes planned before it
   leave them, and the writes are merged into one per router: fifty subnets missing from one
   network's NAT cost one ``routers.patch``, not fifty. Firewall plans are independent (each
   connector has its own managed rules).

3. **apply** (enforce mode) each merged router write with ``apply_nat`` and each connector's rules
   with ``apply_firewalls``. A ``Conflict`` (the state changed since it was read) re-reads that one
   region's routers or that one network's rules and plans again, at most ``MAX_ATTEMPTS`` times,
   as the guardrails do.

Each decision is a ``Finding``, the same as the function would publish, with a trigger that names
the sweep (``methodName`` ``egress-guard.sweep``, ``operationId`` ``sweep/RUN``): a second sweep is
a new decision with a new finding id. What could not be decided (a connector whose subnet is gone,
a workload whose connector does not exist) is a ``skipped`` row with the reason, and no finding, as
the functions acknowledge such events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, Union

from . import estate
from .errors import EgressGuardError, InvalidName, PermanentError, TransientError, classify_api_error
from .estate import Connector, EgressPoint, FirewallRule, Router, Subnetwork, Via, Workload
from .events import NetworkInterface, thaw
from .findings import Change, Finding, Mode, Outcome, ResourceRef, Trigger
from .guardrails import connector_firewalls as firewalls_guardrail
from .guardrails import ensure_nat as nat_guardrail
from .guardrails._compute import MAX_ATTEMPTS, Conflict
from .names import (
    ConnectorName,
    NetworkName,
    RunJobName,
    RunServiceName,
    SubnetworkName,
    parse_network,
    parse_run_job,
    parse_run_service,
    parse_subnetwork,
)
from .plan import Plan, PlannedChange, Verdict, change_plan
from .policy import Policy

if TYPE_CHECKING:
    from .clients import Clients

NAT = nat_guardrail.GUARDRAIL_NAME
FIREWALLS = firewalls_guardrail.GUARDRAIL_NAME
SWEEP_METHOD = "egress-guard.sweep"
SKIPPED = "skipped"  # a row without a decision (nothing to act on), like an acknowledged event

# A list that keeps failing with 429/5xx is retried, but for READ_TIMEOUT_S at most: the client
# libraries' own default retries 503 for up to 600 s, which would stall a sweep on one region.
def _read_retry() -> Any:
    from google.api_core import retry

    return retry.Retry(initial=0.2, maximum=5.0, multiplier=2.0, predicate=retry.if_transient_error,
                       timeout=estate.READ_TIMEOUT_S)


# Compute's largest page (maxResults <= 500). VPC Access and Cloud Run document no maximum; the
# same number is asked for and the server may answer with less.
PAGE_SIZE = 500


# =========================================================================== progress


class Progress(Protocol):
    """Where a sweep reports what it is doing (a rich bar on a terminal, plain lines otherwise)."""

    def phase(self, description: str, total: int | None = None) -> None: ...

    def advance(self, note: str = "") -> None: ...


class NoProgress:
    def phase(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, note: str = "") -> None:
        pass


# =========================================================================== the snapshot


@dataclass
class Reads:
    """Every read call a sweep made (one per page), by API method, and the reads that failed."""

    calls: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def count(self, method: str, pages: int = 1) -> None:
        self.calls[method] = self.calls.get(method, 0) + pages

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class HttpCalls:
    """Counts every HTTP request the sweep's clients send (pages, writes, operation waits, retries),
    so the number a sweep reports is what the APIs saw.

    google-api-core's REST transports keep their ``requests`` session in ``_transport._session``
    (private); a response hook on it (public ``requests`` API) counts each request. A client
    without that attribute is simply not counted, and ``total`` says so by being None.
    """

    CLIENTS = ("connectors", "run_services", "run_jobs", "subnetworks", "routers", "firewalls",
               "region_operations", "global_operations")

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._count = 0
        self.complete = True

    def attach(self, clients: "Clients") -> "HttpCalls":
        for name in self.CLIENTS:
            session = getattr(getattr(getattr(clients, name), "_transport", None), "_session", None)
            hooks = getattr(session, "hooks", None)
            if not isinstance(hooks, dict):
                self.complete = False
                continue
            if self._hook not in hooks.setdefault("response", []):
                hooks["response"].append(self._hook)
        return self

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self._count += 1

    @property
    def total(self) -> int | None:
        return self._count if self.complete else None


@dataclass(frozen=True)
class Inventory:
    """What exists, read once: the input of every plan."""

    project: str
    regions: tuple[str, ...]  # where connectors were listed
    run_regions: tuple[str, ...]  # where services and jobs were listed
    connectors: Mapping[str, Connector]  # by relative name
    workloads: tuple[Workload, ...]
    subnetworks: Mapping[str, Subnetwork]  # by relative name, every network project read
    routers: Mapping[tuple[str, str], tuple[Router, ...]]  # (project, region) -> routers of every network
    firewalls: Mapping[str, tuple[FirewallRule, ...]]  # network relative name -> its rules
    network_projects: frozenset[str]  # projects whose subnets, routers and rules were read
    failed_projects: frozenset[str]  # network projects whose reads failed (their subjects are skipped)

    @classmethod
    def read(cls, clients: "Clients", project: str, regions: Sequence[str] | None, *, reads: Reads,
             progress: Progress = NoProgress(), keep_rule: Callable[[str], bool] = lambda name: True) -> "Inventory":
        """``keep_rule``: which firewall rules (by name) to keep; converting the thousands of rules
        a large VPC has costs more than listing them, and the planners look at few names."""
        reader = _Reader(clients, reads, progress, keep_rule)
        if regions:
            chosen = tuple(regions)
        else:
            chosen = reader.locations(project)
        connectors: dict[str, Connector] = {}
        for region in chosen:
            for connector in reader.connectors(project, region):
                connectors[connector.name.relative] = connector
        subnets = dict(reader.subnetworks(project))
        run_regions = tuple(chosen) if regions else tuple(sorted(
            {c.name.region for c in connectors.values()}
            | {s.name.region for s in subnets.values() if s.name.project == project}))
        workloads = [w for region in run_regions for w in reader.workloads(project, region)]

        # Connectors of other projects that workloads use (a Shared VPC host's connectors), and
        # every project whose network holds a connector or a Direct VPC interface.
        wanted = {(w.connector.project, w.connector.region) for w in workloads
                  if w.connector is not None and w.connector.relative not in connectors}
        for other_project, region in sorted(wanted - {(project, r) for r in chosen}):
            for connector in reader.connectors(other_project, region):
                connectors[connector.name.relative] = connector
        network_projects = {project} | {p for c in connectors.values() for p in _projects_of_connector(c)}
        network_projects |= {p for w in workloads for i in w.network_interfaces for p in _projects_of_interface(i)}
        for other in sorted(network_projects - {project}):
            subnets.update(reader.subnetworks(other))

        routers: dict[tuple[str, str], list[Router]] = {}
        rules: dict[str, list[FirewallRule]] = {}
        for network_project in sorted(network_projects):
            for router in reader.routers(network_project):
                routers.setdefault((router.project, router.region), []).append(router)
            for rule in reader.firewalls(network_project):
                rules.setdefault(rule.network, []).append(rule)
        return cls(project=project, regions=tuple(chosen), run_regions=run_regions, connectors=connectors,
                   workloads=tuple(workloads), subnetworks=subnets,
                   routers={k: tuple(sorted(v, key=lambda r: r.name)) for k, v in routers.items()},
                   firewalls={k: tuple(sorted(v, key=lambda r: r.name)) for k, v in rules.items()},
                   network_projects=frozenset(network_projects), failed_projects=frozenset(reader.failed_projects))

    def routers_of(self, project: str, region: str) -> tuple[Router, ...]:
        return self.routers.get((project, region), ())

    def rules_of(self, network: NetworkName) -> tuple[FirewallRule, ...]:
        return self.firewalls.get(network.relative, ())


def _projects_of_connector(connector: Connector) -> set[str]:
    if connector.subnet is not None:
        return {connector.subnet.project}
    return {connector.name.project}  # a range connector's network is in its own project


def _projects_of_interface(interface: NetworkInterface) -> set[str]:
    found = set()
    if interface.network is not None:
        found.add(interface.network.project)
    if interface.subnetwork is not None:
        found.add(interface.subnetwork.project)
    return found


class _Reader:
    """The list calls of a sweep. Each counts its pages; a failed list is recorded, not raised, so
    one region or project the caller may not read does not stop the rest of the sweep."""

    def __init__(self, clients: "Clients", reads: Reads, progress: Progress,
                 keep_rule: Callable[[str], bool]) -> None:
        self.clients = clients
        self.reads = reads
        self.progress = progress
        self.keep_rule = keep_rule
        self.failed_projects: set[str] = set()

    def _pages(self, method: str, what: str, start: Callable[[], Any]) -> Iterator[Any]:
        """Each page of a list (one call each), counted; API errors are classified."""
        try:
            pager = start()
            self.reads.count(method)
            first = True
            for page in pager.pages:
                if not first:
                    self.reads.count(method)
                first = False
                yield page
        except Exception as exc:
            if isinstance(exc, EgressGuardError) or not estate.is_api_error(exc):
                raise
            raise classify_api_error(exc, action=f"{method} {what}") from exc
        finally:
            self.progress.advance(f"{method} {what}")

    def _guarded(self, what: str, project: str | None, read: Callable[[], list[Any]]) -> list[Any]:
        try:
            return read()
        except EgressGuardError as exc:
            self.reads.problems.append(f"{what}: {exc.reason}")
            if project is not None:
                self.failed_projects.add(project)
            return []

    def locations(self, project: str) -> tuple[str, ...]:
        from google.cloud.location import locations_pb2

        def read() -> list[str]:
            regions: list[str] = []
            token = ""
            while True:  # the locations mixin answers one page at a time, without a pager
                request = locations_pb2.ListLocationsRequest(name=f"projects/{project}", page_size=PAGE_SIZE,
                                                              page_token=token)
                try:
                    response = self.clients.connectors.list_locations(request=request, timeout=estate.READ_TIMEOUT_S,
                                                                      retry=_read_retry())
                except Exception as exc:
                    if not estate.is_api_error(exc):
                        raise
                    raise classify_api_error(exc, action=f"vpcaccess.locations.list projects/{project}") from exc
                finally:
                    self.reads.count("vpcaccess.projects.locations.list")
                regions += [loc.location_id for loc in response.locations if loc.location_id]
                token = response.next_page_token
                if not token:
                    return sorted(set(regions))

        regions = self._guarded(f"the regions of project {project}", project, read)
        self.progress.advance(f"vpcaccess.locations.list projects/{project}")
        return tuple(regions)

    def connectors(self, project: str, region: str) -> list[Connector]:
        parent = f"projects/{project}/locations/{region}"

        def read() -> list[Connector]:
            pages = self._pages("vpcaccess.projects.locations.connectors.list", parent,
                                lambda: self.clients.connectors.list_connectors(
                                    request={"parent": parent, "page_size": PAGE_SIZE}, timeout=estate.READ_TIMEOUT_S,
                                    retry=_read_retry()))
            return [c for page in pages for c in map(estate.connector_from, page.connectors) if c is not None]

        return self._guarded(f"the connectors of {parent}", None, read)

    def workloads(self, project: str, region: str) -> list[Workload]:
        parent = f"projects/{project}/locations/{region}"

        def services() -> list[Workload]:
            pages = self._pages("run.projects.locations.services.list", parent,
                                lambda: self.clients.run_services.list_services(
                                    request={"parent": parent, "page_size": PAGE_SIZE}, timeout=estate.READ_TIMEOUT_S,
                                    retry=_read_retry()))
            return [w for page in pages for item in page.services
                    if (w := _workload(item, parse_run_service, project, region)) is not None]

        def jobs() -> list[Workload]:
            pages = self._pages("run.projects.locations.jobs.list", parent,
                                lambda: self.clients.run_jobs.list_jobs(
                                    request={"parent": parent, "page_size": PAGE_SIZE}, timeout=estate.READ_TIMEOUT_S,
                                    retry=_read_retry()))
            return [w for page in pages for item in page.jobs
                    if (w := _workload(item, parse_run_job, project, region)) is not None]

        return (self._guarded(f"the Cloud Run services of {parent}", None, services)
                + self._guarded(f"the Cloud Run jobs of {parent}", None, jobs))

    def subnetworks(self, project: str) -> list[tuple[str, Subnetwork]]:
        from google.cloud import compute_v1

        def read() -> list[tuple[str, Subnetwork]]:
            request = compute_v1.AggregatedListSubnetworksRequest(project=project, max_results=PAGE_SIZE)
            pages = self._pages("compute.subnetworks.aggregatedList", f"projects/{project}",
                                lambda: self.clients.subnetworks.aggregated_list(
                                    request=request, timeout=estate.READ_TIMEOUT_S, retry=_read_retry()))
            found = []
            for page in pages:
                for scoped in page.items.values():
                    for item in scoped.subnetworks:
                        subnet = _subnetwork(item, project)
                        if subnet is not None:
                            found.append((subnet.name.relative, subnet))
            return found

        return self._guarded(f"the subnetworks of project {project}", project, read)

    def routers(self, project: str) -> list[Router]:
        from google.cloud import compute_v1

        def read() -> list[Router]:
            request = compute_v1.AggregatedListRoutersRequest(project=project, max_results=PAGE_SIZE)
            pages = self._pages("compute.routers.aggregatedList", f"projects/{project}",
                                lambda: self.clients.routers.aggregated_list(
                                    request=request, timeout=estate.READ_TIMEOUT_S, retry=_read_retry()))
            found = []
            for page in pages:
                for scope, scoped in page.items.items():
                    region = scope.rpartition("/")[2]
                    for item in scoped.routers:
                        try:
                            found.append(estate.router_from_json(estate.to_json(item), project=project, region=region))
                        except InvalidName:
                            continue  # a router we could never name in a write: it covers nothing we plan
            return found

        return self._guarded(f"the routers of project {project}", project, read)

    def firewalls(self, project: str) -> list[FirewallRule]:
        from google.cloud import compute_v1

        def read() -> list[FirewallRule]:
            request = compute_v1.ListFirewallsRequest(project=project, max_results=PAGE_SIZE)
            pages = self._pages("compute.firewalls.list", f"projects/{project}/global/firewalls",
                                lambda: self.clients.firewalls.list(request=request, timeout=estate.READ_TIMEOUT_S,
                                                                            retry=_read_retry()))
            return [estate.firewall_from_json(estate.to_json(item)) for page in pages for item in page.items
                    if self.keep_rule(item.name)]

        return self._guarded(f"the firewall rules of project {project}", project, read)


def _workload(item: Any, parse: Callable[..., Union[RunServiceName, RunJobName]], project: str,
              region: str) -> Workload | None:
    try:
        return estate.workload_from(item, parse(item.name, field="name", default_project=project,
                                                default_region=region))
    except InvalidName:
        return None  # a name or reference no write could use; the function would acknowledge it too


def _subnetwork(item: Any, project: str) -> Subnetwork | None:
    try:
        name = parse_subnetwork(item.self_link or item.name, field="subnetwork.selfLink", default_project=project,
                                default_region=(item.region or "").rpartition("/")[2] or None)
        network = parse_network(item.network, field="subnetwork.network", default_project=project)
    except InvalidName:
        return None
    return Subnetwork(name=name, network=network, ip_cidr_range=item.ip_cidr_range or "")


# =========================================================================== subjects


@dataclass(frozen=True)
class NatSubject:
    """Something whose internet traffic leaves through ``point``: it needs a NAT there."""

    ref: ResourceRef
    point: EgressPoint


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


def _skip(ref: ResourceRef, guardrail: str, reason: str) -> Row:
    return Row(ref, guardrail, SKIPPED, reason)


def connector_point(connector: Connector, inventory: Inventory) -> EgressPoint | str:
    """Where a connector's traffic enters its VPC, from the snapshot; a reason when it cannot be told."""
    if connector.subnet is None:
        try:
            return estate.egress_point_of_range_connector(connector)
        except InvalidName as exc:
            return exc.reason
    subnet = inventory.subnetworks.get(connector.subnet.relative)
    if subnet is None:
        if connector.subnet.project in inventory.failed_projects:
            return f"the subnets of project {connector.subnet.project} could not be read"
        return f"its subnet {connector.subnet.relative} does not exist"
    return EgressPoint(project=subnet.network.project, region=connector.name.region, network=subnet.network,
                       subnetwork=connector.subnet, ip_cidr_range=None, via=Via.CONNECTOR, connector=connector.name)


def interface_point(name: Union[RunServiceName, RunJobName], interface: NetworkInterface,
                    inventory: Inventory) -> EgressPoint | str:
    """``estate.egress_point_of_interface`` without its read: the subnet comes from the snapshot."""
    region = name.region
    if interface.subnetwork is not None:
        network = interface.network
        if network is None:
            subnet = inventory.subnetworks.get(interface.subnetwork.relative)
            if subnet is None:
                return f"its Direct VPC subnet {interface.subnetwork.relative} does not exist"
            network = subnet.network
        return EgressPoint(project=network.project, region=region, network=network,
                           subnetwork=interface.subnetwork, ip_cidr_range=None, via=Via.DIRECT_VPC)
    if interface.network is not None:
        same_name = SubnetworkName(interface.network.project, region, interface.network.name)
        return EgressPoint(project=interface.network.project, region=region, network=interface.network,
                           subnetwork=same_name, ip_cidr_range=None, via=Via.DIRECT_VPC)
    return "its Direct VPC interface names no network or subnet"


def nat_subjects(inventory: Inventory, policy: Policy) -> tuple[list[NatSubject], list[Plan], list[Row]]:
    """Every subject ensure_nat covers: (subjects needing a NAT check, plans already final, skipped rows)."""
    subjects: list[NatSubject] = []
    settled: list[Plan] = []
    skipped: list[Row] = []
    for connector in sorted(inventory.connectors.values(), key=lambda c: c.name.relative):
        if connector.name.project != inventory.project or not policy.nat.on_connector_create:
            continue  # another project's connector is that project's to sweep
        if connector.state not in nat_guardrail.ACTIVE_CONNECTOR_STATES:
            skipped.append(_skip(connector.name.ref, NAT, f"connector is {connector.state}: no traffic can leave "
                                                          "through it"))
            continue
        point = connector_point(connector, inventory)
        if isinstance(point, str):
            skipped.append(_skip(connector.name.ref, NAT, point))
        else:
            subjects.append(NatSubject(connector.name.ref, point))
    for workload in sorted(inventory.workloads, key=lambda w: w.name.relative):
        ref = workload.name.ref
        exempt = policy.exemptions.reason_for(project=workload.name.project)
        final = (Plan(ref, workload.name.project, workload.name.region, "", Verdict.EXEMPT,
                      f"{workload.name.name} is exempt: {exempt}.") if exempt
                 else nat_guardrail.workload_plan(workload, policy, project=workload.name.project))
        if final is not None:
            settled.append(final)
            continue
        if workload.connector is not None:
            connector = inventory.connectors.get(workload.connector.relative)
            if connector is None:
                skipped.append(_skip(ref, NAT, f"its connector {workload.connector.relative} does not exist: Cloud Run "
                                               "cannot send traffic through it"))
                continue
            if connector.state not in nat_guardrail.ACTIVE_CONNECTOR_STATES:
                skipped.append(_skip(ref, NAT, f"its connector {connector.name.name} is {connector.state}"))
                continue
            point = connector_point(connector, inventory)
        else:
            point = interface_point(workload.name, workload.network_interfaces[0], inventory)
        if isinstance(point, str):
            skipped.append(_skip(ref, NAT, point))
        else:
            subjects.append(NatSubject(ref, point))
    return subjects, settled, skipped


# =========================================================================== NAT: plan a region at once


@dataclass(frozen=True)
class NatDecision:
    subject: NatSubject
    plan: Plan  # what the finding shows: its own plan, or a change plan holding the merged router write
    router: str | None  # relative name of the router write this subject waits for, if any


def plan_nat_region(subjects: Sequence[NatSubject], routers: Sequence[Router],
                    policy: Policy) -> tuple[list[NatDecision], dict[str, PlannedChange]]:
    """Plan the NAT subjects of one project and region from its routers (pure).

    Each subject is planned with ``plan_nat`` against the routers as the writes planned before it
    leave them; the writes are merged into one per router. Returns the decisions, in subject order,
    and the merged writes by router.
    """
    ordered = sorted(subjects, key=lambda s: (not s.point.needs_all_subnetworks, s.ref.name))
    virtual = tuple(routers)
    writes: dict[str, PlannedChange] = {}
    planned: list[tuple[NatSubject, Plan, str | None]] = []
    for subject in ordered:
        plan = nat_guardrail.plan_nat(subject.ref, subject.point, virtual, policy)
        if plan.needs_change:
            (change,) = plan.changes  # the planner makes one router write per plan
            writes[change.resource] = _merge(writes.get(change.resource), change)
            virtual = _fold(virtual, change)
            planned.append((subject, plan, change.resource))
            continue
        router = None
        if plan.verdict is Verdict.COMPLIANT and writes:
            found = nat_guardrail.covering(subject.point, virtual)
            if found is not None and found[0].relative in writes:
                router = found[0].relative  # covered only by a write planned above
        planned.append((subject, plan, router))

    decisions = []
    for subject, plan, router in planned:
        if router is None:
            decisions.append(NatDecision(subject, plan, None))
            continue
        write = writes[router]
        reason = plan.reason if plan.needs_change else (
            f"{subject.point.describe()} and no NAT covers it yet; the sweep's write to router "
            f"{write.short_name} covers it: {write.reason}.")
        decisions.append(NatDecision(subject, change_plan(
            subject.ref, project=plan.project, region=plan.region, network=plan.network, reason=reason,
            changes=[write]), router))
    return decisions, writes


def _merge(previous: PlannedChange | None, change: PlannedChange) -> PlannedChange:
    """Two writes to one router -> one: an insert stays an insert with the later ``nats``; patches
    keep the body first read as ``before`` and the last ``nats`` as ``after``."""
    if previous is None:
        return change
    after = {**thaw(previous.after or {}), **thaw(change.after or {})}
    return PlannedChange(previous.action, previous.resource, previous.before, after,
                         f"{previous.reason}; {change.reason}", previous.stage)


def _fold(routers: tuple[Router, ...], change: PlannedChange) -> tuple[Router, ...]:
    """The routers as they will be once ``change`` is made."""
    project, region = change.resource.split("/")[1], change.resource.split("/")[3]
    if change.verb == "insert":
        return routers + (estate.router_from_json(thaw(change.after), project=project, region=region),)
    return tuple(estate.router_from_json({**thaw(r.body), **thaw(change.after)}, project=project, region=region)
                 if r.relative == change.resource else r for r in routers)


# =========================================================================== firewalls: the rules a plan reads


class RuleIndex:
    """A network's rules, indexed so that each connector's plan gets only the rules it reads.

    ``plan_firewalls`` looks rules up by name: the connector's managed rule names, its ``aet-*``
    names, and the managed rules whose names decode to the connector (stale ones to delete).
    Handing it those instead of a large VPC's every rule gives the same plan (a unit test holds
    the two equal) without a scan of every rule per connector.
    """

    def __init__(self, rules: Sequence[FirewallRule], policy: Policy, project: str) -> None:
        prefix = policy.firewall.name_prefix
        self._by_name = {r.name: r for r in rules}
        self._managed: dict[str, list[FirewallRule]] = {}
        for rule in rules:
            decoded = firewalls_guardrail.decode_managed_name(prefix, rule.name, project)
            if decoded is not None:
                self._managed.setdefault(decoded.connector.relative, []).append(rule)
        self._policy = policy

    def rules_for(self, connector: ConnectorName, network: NetworkName) -> tuple[FirewallRule, ...]:
        names = {d.name for d in firewalls_guardrail.desired_rules(connector, network, self._policy.firewall)}
        names |= {firewalls_guardrail.auto_rule_name(connector, s) for s in firewalls_guardrail.AUTO_SUFFIXES}
        picked = {n: self._by_name[n] for n in names if n in self._by_name}
        for rule in self._managed.get(connector.relative, ()):
            picked[rule.name] = rule
        return tuple(sorted(picked.values(), key=lambda r: r.name))


# =========================================================================== the sweep


@dataclass(frozen=True)
class SweepReport:
    project: str
    regions: tuple[str, ...]
    rows: tuple[Row, ...]
    reads: Mapping[str, int]  # read calls by method (one per page)
    calls: int | None  # every API call, counted at the HTTP layer (None when it could not be counted)
    problems: tuple[str, ...]
    seconds: float
    counts: Mapping[str, int]  # connectors, services, jobs

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
        counted: dict[str, int] = {}
        for row in self.rows:
            counted[row.outcome] = counted.get(row.outcome, 0) + 1
        return counted


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
        self._indexes: dict[str, RuleIndex] = {}

    def run(self, project: str, regions: Sequence[str] | None = None) -> SweepReport:
        started = time.monotonic()
        self.started_at = self._now()
        self.http.attach(self.clients)
        before = self.http.total
        self.progress.phase(f"reading project {project}", None)
        prefix = self.policy.firewall.name_prefix
        inventory = Inventory.read(self.clients, project, regions, reads=self.reads, progress=self.progress,
                                   keep_rule=lambda name: name.startswith(("aet-", prefix)))
        rows = self.reconcile(inventory)
        counts = {"connectors": sum(1 for c in inventory.connectors.values() if c.name.project == project),
                  "services": sum(1 for w in inventory.workloads if isinstance(w.name, RunServiceName)),
                  "jobs": sum(1 for w in inventory.workloads if isinstance(w.name, RunJobName))}
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
        subjects, settled, skipped = nat_subjects(inventory, self.policy)
        firewall_connectors = [c for c in sorted(inventory.connectors.values(), key=lambda c: c.name.relative)
                               if c.name.project == inventory.project]
        regions = sorted({(s.point.project, s.point.region) for s in subjects})
        self.progress.phase("reconciling", len(subjects) + len(settled) + len(firewall_connectors))
        rows: list[Row] = list(skipped)
        for plan in settled:
            rows.append(self._row(NAT, plan, []))
            self.progress.advance(plan.subject.name)
        for project, region in regions:
            in_region = [s for s in subjects if (s.point.project, s.point.region) == (project, region)]
            rows += self._nat_region(project, region, in_region, inventory)
        for connector in firewall_connectors:
            rows.append(self._firewalls(connector, inventory))
            self.progress.advance(connector.name.relative)
        return rows

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

    # -- ensure_nat

    def _nat_region(self, project: str, region: str, subjects: Sequence[NatSubject], inventory: Inventory) -> list[Row]:
        routers = inventory.routers_of(project, region)
        if project in inventory.failed_projects:
            error = PermanentError(f"the routers of project {project} could not be read")
            return [self._advance(self._failed(NAT, s.ref, s.point, error)) for s in subjects]
        applied: dict[str, list[Change]] = {}
        dry_run = self.mode(NAT) is Mode.DRY_RUN
        first: dict[str, str | None] = {}  # subject -> the router write it needed when first planned
        for _attempt in range(MAX_ATTEMPTS):
            decisions, writes = plan_nat_region(subjects, routers, self.policy)
            first = first or {d.subject.ref.name: d.router for d in decisions}
            if dry_run or not writes:
                break
            try:
                for resource, write in writes.items():
                    plan = change_plan(ResourceRef("compute.router", resource), project=project, region=region,
                                       network="", reason=write.reason, changes=[write])
                    applied.setdefault(resource, []).extend(
                        nat_guardrail.apply_nat(self.clients, plan, timeout=self.timeout))
            except Conflict:
                routers = self._reread_routers(project, region)  # someone changed them: read and plan again
                continue
            except EgressGuardError as exc:
                return [self._advance(self._failed(NAT, s.ref, s.point, exc)) for s in subjects]
            break
        else:
            error = TransientError(f"the routers of {project}/{region} kept changing during {MAX_ATTEMPTS} attempts")
            return [self._advance(self._failed(NAT, s.ref, s.point, error)) for s in subjects]

        rows = []
        for decision in decisions:
            # A write made before a conflict still counts: the replan then finds the subject covered.
            router = decision.router or first.get(decision.subject.ref.name)
            rows.append(self._advance(self._row(NAT, decision.plan, applied.get(router or "", []))))
        return rows

    def _rule_index(self, inventory: Inventory, network: NetworkName) -> RuleIndex:
        index = self._indexes.get(network.relative)
        if index is None:
            index = self._indexes[network.relative] = RuleIndex(inventory.rules_of(network), self.policy,
                                                                network.project)
        return index

    def _reread_routers(self, project: str, region: str) -> tuple[Router, ...]:
        return estate.routers_of(self.clients, project, region)

    def _advance(self, row: Row) -> Row:
        self.progress.advance(row.resource.name)
        return row

    # -- replace_connector_firewalls

    def _firewalls(self, connector: Connector, inventory: Inventory) -> Row:
        name = connector.name
        if connector.state != "READY":
            return _skip(name.ref, FIREWALLS, f"connector is {connector.state}, not READY: its aet-* rules do not "
                                              "exist yet; sweep again once it is READY")
        point = connector_point(connector, inventory)
        if isinstance(point, str):
            return _skip(name.ref, FIREWALLS, point)
        network = point.network
        if network.project in inventory.failed_projects:
            return self._failed(FIREWALLS, name.ref, point,
                                PermanentError(f"the firewall rules of project {network.project} could not be read"))
        rules = self._rule_index(inventory, network).rules_for(name, network)
        applied: list[Change] = []
        mode = self.mode(FIREWALLS)
        for _attempt in range(MAX_ATTEMPTS):
            plan = firewalls_guardrail.plan_firewalls(name, network, rules, self.policy)
            if mode is Mode.DRY_RUN or not plan.needs_change:
                return self._row(FIREWALLS, plan, applied)
            desired = firewalls_guardrail.desired_rules(name, network, self.policy.firewall)
            try:
                applied += firewalls_guardrail.apply_firewalls(self.clients, plan, network, timeout=self.timeout,
                                                               desired=desired)
            except Conflict:
                rules = estate.firewalls_of(self.clients, network)
                continue
            except EgressGuardError as exc:
                return self._failed(FIREWALLS, name.ref, point, exc)
            return self._row(FIREWALLS, plan, applied)
        return self._failed(FIREWALLS, name.ref, point, TransientError(
            f"the rules of network {network.name} kept changing during {MAX_ATTEMPTS} attempts"))


def changes_text(changes: Iterable[Change]) -> str:
    """``routers.patch egress-guard-europe-west2`` per change, one per line (for the table)."""
    return "\n".join(f"{c.action.removeprefix('compute.')} {c.resource.rsplit('/', 1)[-1]}" for c in changes)


# =========================================================================== terminal output

OUTCOME_STYLES: Mapping[str, str] = {
    "remediated": "green", "compliant": "dim", "planned": "cyan", "exempt": "blue", "blocked": "yellow",
    "failed": "bold red", SKIPPED: "magenta",
}
# Compliant rows are listed one by one only in small sweeps; above this they are counted.
LIST_COMPLIANT_UP_TO = 50


class RichProgress:
    """A rich progress bar on the terminal (stderr): one bar per phase, the current item beside it."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("[dim]{task.fields[note]}"), console=console)
        self._task: Any = None

    def __enter__(self) -> "RichProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self._bar.stop()

    def _finish(self) -> None:
        if self._task is not None:
            task = self._bar.tasks[-1]
            self._bar.update(self._task, total=task.completed, note="")

    def phase(self, description: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._bar.add_task(description, total=total, note="")

    def advance(self, note: str = "") -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=1, note=note[-70:])


class LineProgress:
    """Plain progress lines (not a terminal): each phase, and about every tenth of its items."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._name = ""
        self._total: int | None = None
        self._done = 0

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def phase(self, description: str, total: int | None = None) -> None:
        self._name, self._total, self._done = description, total, 0
        self._write(f"sweep: {description}" + (f" ({total} items)" if total is not None else ""))

    def advance(self, note: str = "") -> None:
        self._done += 1
        if self._total is None:
            self._write(f"sweep: {self._name}: {note}")
        elif self._done == self._total or self._done % max(1, self._total // 10) == 0:
            self._write(f"sweep: {self._name}: {self._done}/{self._total}")


def short_resource(ref: ResourceRef) -> str:
    """``connector europe-west2/conn-a``, ``job europe-west2/nightly`` (the table's first column)."""
    parts = ref.name.split("/")
    kind = {"connectors": "connector", "services": "service", "jobs": "job"}.get(parts[-2] if len(parts) > 1 else "",
                                                                                  ref.type)
    where = parts[3] if len(parts) > 4 and parts[2] == "locations" else ""
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
    console.print(f"{_many(counts.get('connectors', 0), 'connector')}, {_many(counts.get('services', 0), 'service')} "
                  f"and {_many(counts.get('jobs', 0), 'job')} in {_many(len(report.regions), 'region')}: "
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
