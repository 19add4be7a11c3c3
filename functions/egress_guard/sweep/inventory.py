"""A sweep's first step: read everything once, into an ``Inventory`` every plan is made from.

The number of calls grows with regions and pages, never with the number of resources: no ``get``
per resource (the table of reads is in the package docstring). A list that fails is recorded in
``Reads.problems``, not raised, so one region or project the caller may not read does not stop
the rest of the sweep; the subjects that needed it are reported as failed or skipped.
"""

from __future__ import annotations

import json
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, method: str, pages: int = 1) -> None:
        with self._lock:  # lists are read on two threads (Inventory.read)
            self.calls[method] = self.calls.get(method, 0) + pages

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class HttpCalls:
    """Counts every HTTP request the sweep's clients send (pages, writes, operation waits, retries),
    so the number a sweep reports is what the APIs saw: a response hook on every client's session
    (``Clients.on_response``). ``total`` is None when some client's requests could not be seen."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._count = 0
        self._clients: "Clients | None" = None
        self.complete = False

    def attach(self, clients: "Clients") -> "HttpCalls":
        if self._clients is not clients:
            self._clients = clients
            observe = getattr(clients, "on_response", None)  # a stand-in for Clients may not have it
            self.complete = callable(observe)
            if callable(observe):
                observe(self._hook)
        return self

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self._count += 1

    @property
    def total(self) -> int | None:
        if not self.complete or getattr(self._clients, "unobserved", None):
            return None
        return self._count


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
    # network relative name -> its rules as one compact JSON array, compressed (``rule_bodies``):
    # parsed network by network, converted when a plan picks them (``RuleIndex.from_json``). 70,000
    # rules as objects were most of a 10,000-connector sweep's memory; as text 46 MiB; compressed
    # about a tenth of that. One array per network, written once per list page, not a text per rule:
    # 70,000 json.dumps and json.loads calls were a fifth of a 10,000-connector dry-run's CPU.
    firewalls: Mapping[str, bytes]
    network_projects: frozenset[str]  # projects whose subnets, routers and rules were read
    failed_projects: frozenset[str]  # network projects whose reads failed (their subjects are skipped)

    @classmethod
    def read(cls, clients: "Clients", project: str, regions: Sequence[str] | None, *, reads: Reads,
             progress: Progress = NoProgress(), keep_rule: Callable[[str], bool] = lambda name: True) -> "Inventory":
        """``keep_rule``: which firewall rules (by name) to keep; converting the thousands of rules
        a large VPC has costs more than listing them, and the planners look at few names."""
        reader = _Reader(clients, reads, progress, keep_rule)
        with ThreadPoolExecutor(1, thread_name_prefix="sweep-reads") as beside:
            return cls._read(reader, project, regions, beside)

    @classmethod
    def _read(cls, reader: "_Reader", project: str, regions: Sequence[str] | None,
              beside: ThreadPoolExecutor) -> "Inventory":
        # The project's own routers and rules are needed whatever else is found (its networks are
        # always read) and only at the end: they are listed on a second thread while this one lists
        # connectors, subnets and workloads. The pages' parsing overlaps the API's answering the
        # next page: against Google each page is a round trip; the firewall list is most of them.
        reader.clients.json  # noqa: B018 - built once, before two threads share it
        early: dict[str, Future[Any]] = {"routers": beside.submit(reader.routers, project),
                                         "firewalls": beside.submit(reader.firewalls, project)}
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
        rules: dict[str, list[str]] = {}
        for network_project in sorted(network_projects):
            mine = network_project == project
            for router in early["routers"].result() if mine else reader.routers(network_project):
                routers.setdefault((router.project, router.region), []).append(router)
            for network, items in early["firewalls"].result() if mine else reader.firewalls(network_project):
                rules.setdefault(network, []).append(items)
        return cls(project=project, regions=tuple(chosen), run_regions=run_regions, connectors=connectors,
                   workloads=tuple(workloads), subnetworks=subnets,
                   routers={k: tuple(sorted(v, key=lambda r: r.name)) for k, v in routers.items()},
                   firewalls={network: pack_rules(parts) for network, parts in rules.items()},
                   network_projects=frozenset(network_projects), failed_projects=frozenset(reader.failed_projects))

    def routers_of(self, project: str, region: str) -> tuple[Router, ...]:
        return self.routers.get((project, region), ())

    def rule_bodies(self, network: NetworkName) -> dict[str, dict[str, Any]]:
        """The network's rules (kept by ``keep_rule``): name -> the rule as Google's JSON (not frozen:
        ``RuleIndex`` freezes those a plan picks)."""
        packed = self.firewalls.get(network.relative)
        if not packed:
            return {}
        return {str(item.get("name", "")): item for item in json.loads(zlib.decompress(packed))}

    def rules_of(self, network: NetworkName) -> tuple[FirewallRule, ...]:
        """The network's rules (kept by ``keep_rule``), by name."""
        bodies = self.rule_bodies(network)
        return tuple(estate.firewall_from_json(bodies[name]) for name in sorted(bodies))


def pack_rules(parts: Sequence[str]) -> bytes:
    """One network's rules as ``Inventory.firewalls`` holds them: ``parts`` are the items of compact
    JSON arrays without their brackets (``rule_json_items``), joined into one array, compressed."""
    return zlib.compress(f"[{','.join(p for p in parts if p)}]".encode(), 1)


def rule_json_items(items: Sequence[Any]) -> str:
    """Rules as Google's JSON, as the items of one compact JSON array without its brackets."""
    return json.dumps(list(items), separators=(",", ":"))[1:-1]


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

    def _pages(self, method: str, what: str, api_name: str, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Each page of a list as JSON (one call each, through ``api.pages``), counted; API errors
        are classified."""
        url = f"{self.clients.api_root(api_name)}/{path}"
        try:
            for page in api.pages(f"{method} {what}", self.clients.json, url, params):
                self.reads.count(method)
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
        def read() -> list[str]:
            pages = self._pages("vpcaccess.projects.locations.list", f"projects/{project}", "vpcaccess",
                                f"projects/{project}/locations", {"pageSize": PAGE_SIZE})
            return sorted({str(loc["locationId"]) for page in pages for loc in page.get("locations") or ()
                           if loc.get("locationId")})

        return tuple(self._guarded(f"the regions of project {project}", project, read))

    def connectors(self, project: str, region: str) -> list[Connector]:
        parent = f"projects/{project}/locations/{region}"

        def read() -> list[Connector]:
            pages = self._pages("vpcaccess.projects.locations.connectors.list", parent, "vpcaccess",
                                f"{parent}/connectors", {"pageSize": PAGE_SIZE})
            return [c for page in pages for c in map(estate.connector_from, page.get("connectors") or ())
                    if c is not None]

        return self._guarded(f"the connectors of {parent}", None, read)

    def workloads(self, project: str, region: str) -> list[Workload]:
        parent = f"projects/{project}/locations/{region}"

        def listed(kind: str, parse: Callable[..., Union[RunServiceName, RunJobName]]) -> Callable[[], list[Workload]]:
            def read() -> list[Workload]:
                pages = self._pages(f"run.projects.locations.{kind}.list", parent, "run", f"{parent}/{kind}",
                                    {"pageSize": PAGE_SIZE})
                return [w for page in pages for item in page.get(kind) or ()
                        if (w := _workload(item, parse, project, region)) is not None]
            return read

        def functions() -> list[Workload]:
            pages = self._pages("cloudfunctions.projects.locations.functions.list", parent, "cloudfunctions",
                                f"{parent}/functions", {"pageSize": PAGE_SIZE})
            return [w for page in pages for item in page.get("functions") or ()
                    if (w := _function(item, project, region)) is not None]

        # A 2nd gen function's own Cloud Run service is decided through its function, never twice.
        run = [w for w in self._guarded(f"the Cloud Run services of {parent}", None, listed("services", parse_run_service))
               + self._guarded(f"the Cloud Run jobs of {parent}", None, listed("jobs", parse_run_job))
               if not managed_by_functions(w)]
        return run + self._guarded(f"the Cloud Functions of {parent}", None, functions)

    def app_engine_versions(self, project: str) -> list[Workload]:
        """Every version of every service of the project's App Engine app (none without an app: 404)."""
        from google.api_core import exceptions as gexc

        app = f"apps/{project}"

        def listed(path: str, collection: str, method: str) -> list[dict[str, Any]]:
            return [item for page in self._pages(method, path, "appengine", path, {"pageSize": PAGE_SIZE})
                    for item in page.get(collection) or ()]

        def read() -> list[Workload]:
            try:
                services = listed(f"{app}/services", "services", "appengine.apps.services.list")
            except EgressGuardError as exc:
                if isinstance(exc.__cause__, gexc.NotFound):
                    return []  # the project has no App Engine app
                raise
            found = []
            for service in services:
                path = f"{app}/services/{service.get('id', '')}/versions"
                for item in listed(path, "versions", "appengine.apps.services.versions.list"):
                    try:
                        name = parse_app_engine_version(item.get("name"), field="version.name")
                        found.append(estate.app_engine_workload_from(item, name))
                    except InvalidName:
                        continue
            return found

        return self._guarded(f"the App Engine versions of {app}", None, read)

    def subnetworks(self, project: str) -> list[tuple[str, Subnetwork]]:
        def read() -> list[tuple[str, Subnetwork]]:
            pages = self._pages("compute.subnetworks.aggregatedList", f"projects/{project}", "compute",
                                f"projects/{project}/aggregated/subnetworks", {"maxResults": PAGE_SIZE})
            found = []
            for page in pages:
                for scoped in (page.get("items") or {}).values():
                    for item in scoped.get("subnetworks") or ():
                        subnet = _subnetwork(item, project)
                        if subnet is not None:
                            found.append((subnet.name.relative, subnet))
            return found

        return self._guarded(f"the subnetworks of project {project}", project, read)

    def routers(self, project: str) -> list[Router]:
        def read() -> list[Router]:
            pages = self._pages("compute.routers.aggregatedList", f"projects/{project}", "compute",
                                f"projects/{project}/aggregated/routers", {"maxResults": PAGE_SIZE})
            found = []
            for page in pages:
                for scope, scoped in (page.get("items") or {}).items():
                    region = scope.rpartition("/")[2]
                    for item in scoped.get("routers") or ():
                        try:
                            found.append(estate.router_from_json(item, project=project, region=region))
                        except InvalidName:
                            continue  # a router we could never name in a write: it covers nothing we plan
            return found

        return self._guarded(f"the routers of project {project}", project, read)

    def firewalls(self, project: str) -> list[tuple[str, str]]:
        """(network relative name, the rules ``keep_rule`` keeps of one page on that network, as the
        items of a compact JSON array without its brackets): one ``json.dumps`` per page and network."""
        def read() -> list[tuple[str, str]]:
            pages = self._pages("compute.firewalls.list", f"projects/{project}/global/firewalls", "compute",
                                f"projects/{project}/global/firewalls", {"maxResults": PAGE_SIZE})
            found = []
            for page in pages:
                by_network: dict[str, list[Any]] = {}
                for item in page.get("items") or ():
                    if self.keep_rule(str(item.get("name", ""))):
                        network = estate.relative_link(str(item.get("network", "")), collection="networks")
                        by_network.setdefault(network, []).append(item)
                found += [(network, rule_json_items(items)) for network, items in by_network.items()]
            return found

        return self._guarded(f"the firewall rules of project {project}", project, read)


def _workload(item: Mapping[str, Any], parse: Callable[..., Union[RunServiceName, RunJobName]], project: str,
              region: str) -> Workload | None:
    try:
        return estate.workload_from(item, parse(str(item.get("name", "")), field="name", default_project=project,
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


def _subnetwork(item: Mapping[str, Any], project: str) -> Subnetwork | None:
    try:
        name = parse_subnetwork(str(item.get("selfLink") or item.get("name", "")), field="subnetwork.selfLink",
                                default_project=project,
                                default_region=str(item.get("region") or "").rpartition("/")[2] or None)
        network = parse_network(str(item.get("network", "")), field="subnetwork.network", default_project=project)
    except InvalidName:
        return None
    return Subnetwork(name=name, network=network, ip_cidr_range=str(item.get("ipCidrRange") or ""))
