"""A sweep's first step: read everything once, into an ``Inventory`` every plan is made from.

The number of calls grows with regions and pages, never with the number of resources: no ``get``
per resource (the table of reads is in the package docstring). A list that fails is recorded in
``Reads.problems``, not raised, so one region or project the caller may not read does not stop
the rest of the sweep; the subjects that needed it are reported as failed or skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from .. import api, estate
from ..egress import NetworkInterface
from ..errors import EgressGuardError, InvalidName
from ..estate import Connector, FirewallRule, Router, Subnetwork, Workload
from ..names import (
    NetworkName,
    RunJobName,
    RunServiceName,
    parse_app_engine_version,
    parse_function,
    parse_network,
    parse_run_job,
    parse_run_service,
    parse_subnetwork,
)
from ..guardrails.ensure_nat import managed_by_functions
from .progress import NoProgress, Progress

if TYPE_CHECKING:
    from ..clients import Clients

# Compute's largest page (maxResults <= 500). VPC Access and Cloud Run document no maximum; the
# same number is asked for and the server may answer with less.
PAGE_SIZE = 500



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

    CLIENTS = ("connectors", "run_services", "run_jobs", "functions_json", "appengine", "subnetworks", "routers", "firewalls",
               "region_operations", "global_operations")

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._count = 0
        self.complete = True

    def attach(self, clients: "Clients") -> "HttpCalls":
        for name in self.CLIENTS:
            client = getattr(clients, name)
            # google-api-core's REST transports, or egress-guard's JsonApi (Cloud Functions).
            session = getattr(getattr(client, "_transport", None), "_session", None) or getattr(client, "session", None)
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
        # App Engine versions are not regional: listed once, kept when their connector is in a swept region.
        workloads += [w for w in reader.app_engine_versions(project)
                      if w.connector is not None and w.connector.region in run_regions]

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
            with api.classified(f"{method} {what}"):
                pager = start()
                self.reads.count(method)
                first = True
                for page in pager.pages:
                    if not first:
                        self.reads.count(method)
                    first = False
                    yield page
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
                    response = api.call(f"vpcaccess.locations.list projects/{project}",
                                        self.clients.connectors.list_locations, request=request, **api.read_options())
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
                                    request={"parent": parent, "page_size": PAGE_SIZE}, **api.read_options()))
            return [c for page in pages for c in map(estate.connector_from, page.connectors) if c is not None]

        return self._guarded(f"the connectors of {parent}", None, read)

    def workloads(self, project: str, region: str) -> list[Workload]:
        parent = f"projects/{project}/locations/{region}"

        def services() -> list[Workload]:
            pages = self._pages("run.projects.locations.services.list", parent,
                                lambda: self.clients.run_services.list_services(
                                    request={"parent": parent, "page_size": PAGE_SIZE}, **api.read_options()))
            return [w for page in pages for item in page.services
                    if (w := _workload(item, parse_run_service, project, region)) is not None]

        def jobs() -> list[Workload]:
            pages = self._pages("run.projects.locations.jobs.list", parent,
                                lambda: self.clients.run_jobs.list_jobs(
                                    request={"parent": parent, "page_size": PAGE_SIZE}, **api.read_options()))
            return [w for page in pages for item in page.jobs
                    if (w := _workload(item, parse_run_job, project, region)) is not None]

        def functions() -> list[Workload]:
            method = "cloudfunctions.projects.locations.functions.list"
            with api.classified(f"{method} {parent}"):
                items = self.clients.functions_json.list(parent=parent, collection="functions",
                                                    on_page=lambda: self.reads.count(method), **api.read_options())
            self.progress.advance(f"{method} {parent}")
            return [w for item in items if (w := _function(item, project, region)) is not None]

        # A 2nd gen function's own Cloud Run service is decided through its function, never twice.
        run = [w for w in self._guarded(f"the Cloud Run services of {parent}", None, services)
               + self._guarded(f"the Cloud Run jobs of {parent}", None, jobs) if not managed_by_functions(w)]
        return run + self._guarded(f"the Cloud Functions of {parent}", None, functions)

    def app_engine_versions(self, project: str) -> list[Workload]:
        """Every version of every service of the project's App Engine app (none without an app: 404)."""
        from google.api_core import exceptions as gexc

        app = f"apps/{project}"

        def listed(parent: str, collection: str, method: str) -> list[dict[str, Any]]:
            with api.classified(f"{method} {parent}"):
                return self.clients.appengine.list(parent=parent, collection=collection,
                                                   on_page=lambda: self.reads.count(method), **api.read_options())

        def read() -> list[Workload]:
            try:
                services = listed(app, "services", "appengine.apps.services.list")
            except EgressGuardError as exc:
                if isinstance(exc.__cause__, gexc.NotFound):
                    return []  # the project has no App Engine app
                raise
            found = []
            for service in services:
                parent = f"{app}/services/{service.get('id', '')}"
                for item in listed(parent, "versions", "appengine.apps.services.versions.list"):
                    try:
                        name = parse_app_engine_version(item.get("name"), field="version.name")
                        found.append(estate.app_engine_workload_from(item, name))
                    except InvalidName:
                        continue
            return found

        versions = self._guarded(f"the App Engine versions of {app}", None, read)
        self.progress.advance(f"appengine.apps.services.versions.list {app}")
        return versions

    def subnetworks(self, project: str) -> list[tuple[str, Subnetwork]]:
        from google.cloud import compute_v1

        def read() -> list[tuple[str, Subnetwork]]:
            request = compute_v1.AggregatedListSubnetworksRequest(project=project, max_results=PAGE_SIZE)
            pages = self._pages("compute.subnetworks.aggregatedList", f"projects/{project}",
                                lambda: self.clients.subnetworks.aggregated_list(
                                    request=request, **api.read_options()))
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
                                    request=request, **api.read_options()))
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
                                lambda: self.clients.firewalls.list(request=request, **api.read_options()))
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


def _function(item: Any, project: str, region: str) -> Workload | None:
    """A listed function; None when no write could use it or it sends no traffic (FAILED, DELETING)."""
    from ..egress import NoEgressPoint

    try:
        name = parse_function(item.get("name"), field="function.name", default_project=project, default_region=region)
        return estate.function_workload_from(item, name)
    except (InvalidName, NoEgressPoint):
        return None


def _subnetwork(item: Any, project: str) -> Subnetwork | None:
    try:
        name = parse_subnetwork(item.self_link or item.name, field="subnetwork.selfLink", default_project=project,
                                default_region=(item.region or "").rpartition("/")[2] or None)
        network = parse_network(item.network, field="subnetwork.network", default_project=project)
    except InvalidName:
        return None
    return Subnetwork(name=name, network=network, ip_cidr_range=item.ip_cidr_range or "")
