"""A sweep's first step: read everything once, into an ``Inventory`` every plan is made from.

The number of calls grows with regions and pages, never with the number of resources: no ``get``
per resource (the table of reads is in the package docstring). A list that fails is recorded in
``Reads.problems``, not raised, so one region or project the caller may not read does not stop
the rest of the sweep; the subjects that needed it are reported as failed or skipped.
"""

from __future__ import annotations

import contextlib
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
    RunWorkerPoolName,
    parse_app_engine_version,
    parse_function,
    parse_network,
    parse_run_job,
    parse_run_service,
    parse_run_worker_pool,
    parse_subnetwork,
)
from ..guardrails.ensure_nat import managed_by_functions
from .progress import NoProgress, Progress

if TYPE_CHECKING:
    from ..clients import Clients

# Compute's largest page (maxResults <= 500). VPC Access and Cloud Run document no maximum; the
# same number is asked for and the server may answer with less.
PAGE_SIZE = 500

# Lists read at once. Each page is a round trip (against Google 100 ms or more), and the regions'
# connectors and workloads do not depend on each other; two of the threads start with the project's
# routers and its firewall rules, the longest read. Our choice, not a Google limit: a sweep stays far
# below any read quota (tens of calls, not thousands).
READS_AT_ONCE = 4



@dataclass
class Reads:
    """Every read call a sweep made (one per page), by API method, and the reads that failed."""

    calls: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, method: str, pages: int = 1) -> None:
        with self._lock:  # lists are read on several threads (Inventory.reading)
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
    # network relative name -> its rules as compressed JSON (``RulePacker``, ``rule_bodies``):
    # parsed network by network, converted when a plan picks them (``RuleIndex.from_json``). 70,000
    # rules as objects were most of a 10,000-connector sweep's memory; as text 46 MiB; compressed
    # about a tenth of that.
    firewalls: "Rules"
    network_projects: frozenset[str]  # projects whose subnets, routers and rules were read
    # network projects whose subnets or routers could not be read (their subjects fail); those whose
    # rules could not be read are ``firewalls.failed_projects`` (their connectors' firewalls fail)
    failed_projects: frozenset[str]

    @classmethod
    @contextlib.contextmanager
    def reading(cls, clients: "Clients", project: str, regions: Sequence[str] | None, *, reads: Reads,
                progress: Progress = NoProgress(), keep_rule: Callable[[str], bool] = lambda name: True
                ) -> Iterator["Inventory"]:
        """The inventory, as soon as all but the firewall rules are read; the rules (most of a
        sweep's pages, and no NAT plan needs them) are still being listed: ``firewalls`` waits for
        them at its first look. Leaving the block waits for every read.

        ``keep_rule``: which firewall rules (by name) to keep; converting the thousands of rules
        a large VPC has costs more than listing them, and the planners look at few names."""
        reader = _Reader(clients, reads, progress, keep_rule)
        with ThreadPoolExecutor(READS_AT_ONCE, thread_name_prefix="sweep-reads") as pool:
            yield cls._read(reader, project, regions, pool)

    @classmethod
    def _read(cls, reader: "_Reader", project: str, regions: Sequence[str] | None,
              pool: ThreadPoolExecutor) -> "Inventory":
        # The project's own routers and rules are needed whatever else is found (its networks are
        # always read): listed first, each on a thread of its own, while the others list connectors,
        # subnets and workloads, region by region at once.
        reader.clients.json  # noqa: B018 - built once, before the threads share it
        own_routers = pool.submit(reader.routers, project)
        packer = RulePacker()
        own_rules = pool.submit(reader.firewalls, project, packer)
        chosen = tuple(regions) if regions else reader.locations(project)
        subnets_read = pool.submit(reader.subnetworks, project)
        connectors: dict[str, Connector] = {}
        for listed in list(pool.map(lambda region: reader.connectors(project, region), chosen)):
            for connector in listed:
                connectors[connector.name.relative] = connector
        subnets = dict(subnets_read.result())
        run_regions = tuple(chosen) if regions else tuple(sorted(
            {c.name.region for c in connectors.values()}
            | {s.name.region for s in subnets.values() if s.name.project == project}))
        app_engine = pool.submit(reader.app_engine_versions, project)
        workloads = [w for listed in list(pool.map(lambda region: reader.workloads(project, region), run_regions))
                     for w in listed]
        # App Engine versions are not regional: listed once, kept when their connector is in a swept region.
        workloads += [w for w in app_engine.result() if w.connector is not None and w.connector.region in run_regions]

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
        for network_project in sorted(network_projects):
            for router in own_routers.result() if network_project == project else reader.routers(network_project):
                routers.setdefault((router.project, router.region), []).append(router)
        failed = frozenset(reader.failed_projects)  # before the rules, which are still being read

        def rules() -> tuple[dict[str, tuple[bytes, ...]], frozenset[str]]:
            own_rules.result()  # one writer to the packer at a time: the project's own rules first
            for other in sorted(network_projects - {project}):
                reader.firewalls(other, packer)
            return packer.packed(), frozenset(reader.failed_rules) & frozenset(network_projects)

        return cls(project=project, regions=tuple(chosen), run_regions=run_regions, connectors=connectors,
                   workloads=tuple(workloads), subnetworks=subnets,
                   routers={k: tuple(sorted(v, key=lambda r: r.name)) for k, v in routers.items()},
                   firewalls=Rules(pool.submit(rules)),
                   network_projects=frozenset(network_projects), failed_projects=failed)

    def routers_of(self, project: str, region: str) -> tuple[Router, ...]:
        return self.routers.get((project, region), ())

    def rules_unreadable(self, project: str) -> bool:
        """The project's subnets, routers or firewall rules could not be read (waits for the rules)."""
        return project in self.failed_projects or project in self.firewalls.failed_projects

    def rule_bodies(self, network: NetworkName) -> dict[str, dict[str, Any]]:
        """The network's rules (kept by ``keep_rule``): name -> the rule as Google's JSON (not frozen:
        ``RuleIndex`` freezes those a plan picks)."""
        chunks = self.firewalls.get(network.relative)
        if not chunks:
            return {}
        items = ",".join(zlib.decompress(chunk).decode() for chunk in chunks)
        return {str(item.get("name", "")): item for item in json.loads(f"[{items}]")}

    def rules_of(self, network: NetworkName) -> tuple[FirewallRule, ...]:
        """The network's rules (kept by ``keep_rule``), by name."""
        bodies = self.rule_bodies(network)
        return tuple(estate.firewall_from_json(bodies[name]) for name in sorted(bodies))


class Rules(Mapping[str, tuple[bytes, ...]]):
    """``Inventory.firewalls``: network relative name -> its rules' compressed chunks (``RulePacker``),
    which may still be being listed on another thread: every look waits for the list.
    ``failed_projects``: the network projects whose rules could not be read."""

    def __init__(self, listed: "Future[tuple[dict[str, tuple[bytes, ...]], frozenset[str]]]") -> None:
        self._listed = listed

    @classmethod
    def ready(cls, packed: Mapping[str, tuple[bytes, ...]], failed_projects: frozenset[str] = frozenset()) -> "Rules":
        done: Future[tuple[dict[str, tuple[bytes, ...]], frozenset[str]]] = Future()
        done.set_result((dict(packed), failed_projects))
        return cls(done)

    @property
    def failed_projects(self) -> frozenset[str]:
        return self._listed.result()[1]

    def __getitem__(self, network: str) -> tuple[bytes, ...]:
        return self._listed.result()[0][network]

    def __iter__(self) -> Iterator[str]:
        return iter(self._listed.result()[0])

    def __len__(self) -> int:
        return len(self._listed.result()[0])


class RulePacker:
    """Firewall rules, as they are listed, into ``Rules``' chunks: each network's rules as the items
    of a compact JSON array (no brackets), compressed whenever ``CHUNK_CHARS`` of text has gathered,
    so the text of a large VPC's rules (46 MiB for 70,000) is never held at once, while the sweep
    is already writing NATs. One ``json.dumps`` per page and network, not one per rule: 70,000
    dumps and loads were a fifth of a 10,000-connector dry-run's CPU. One writer at a time."""

    CHUNK_CHARS = 4 << 20

    def __init__(self) -> None:
        self._text: dict[str, list[str]] = {}
        self._chars = 0
        self._chunks: dict[str, list[bytes]] = {}

    def add(self, network: str, items: Sequence[Any]) -> None:
        text = json.dumps(list(items), separators=(",", ":"))[1:-1]
        if text:
            self._text.setdefault(network, []).append(text)
            self._chars += len(text)
            if self._chars >= self.CHUNK_CHARS:
                self._compress()

    def _compress(self) -> None:
        for network, parts in self._text.items():
            self._chunks.setdefault(network, []).append(zlib.compress(",".join(parts).encode(), 1))
        self._text, self._chars = {}, 0

    def packed(self) -> dict[str, tuple[bytes, ...]]:
        self._compress()
        return {network: tuple(chunks) for network, chunks in self._chunks.items()}


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
        self.failed_projects: set[str] = set()  # subnets or routers unreadable
        self.failed_rules: set[str] = set()  # firewall rules unreadable

    def _pages(self, method: str, what: str, api_name: str, path: str, params: dict[str, Any],
               announce: bool = True) -> Iterator[dict[str, Any]]:
        """Each page of a list as JSON (one call each, through ``api.pages``), counted; API errors
        are classified. ``announce``: advance the progress when done (not for a list that may end
        after the reading phase: it would count as a reconciled item)."""
        url = f"{self.clients.api_root(api_name)}/{path}"
        try:
            for page in api.pages(f"{method} {what}", self.clients.json, url, params):
                self.reads.count(method)
                yield page
        finally:
            if announce:
                self.progress.advance(f"{method} {what}")

    def _guarded(self, what: str, project: str | None, read: Callable[[], list[Any]],
                 failed: set[str] | None = None) -> list[Any]:
        """``read()``, or [] with the problem recorded and ``project`` added to ``failed`` (by default
        ``failed_projects``) when it fails."""
        try:
            return read()
        except EgressGuardError as exc:
            self.reads.problems.append(f"{what}: {exc.reason}")
            if project is not None:
                (self.failed_projects if failed is None else failed).add(project)
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

        def listed(kind: str, parse: Callable[..., Union[RunServiceName, RunJobName, RunWorkerPoolName]]
                   ) -> Callable[[], list[Workload]]:
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

        def functions_v1() -> list[Workload]:
            # 1st gen functions through the API that holds their connector at the top level (docs/gcp-facts.md §12.2).
            pages = self._pages("cloudfunctions.v1.projects.locations.functions.list", parent, "cloudfunctions_v1",
                                f"{parent}/functions", {"pageSize": PAGE_SIZE})
            return [w for page in pages for item in page.get("functions") or ()
                    if (w := _function(item, project, region, v1=True)) is not None]

        # A 2nd gen function's own Cloud Run service is decided through its function, never twice.
        run = [w for w in self._guarded(f"the Cloud Run services of {parent}", None, listed("services", parse_run_service))
               + self._guarded(f"the Cloud Run jobs of {parent}", None, listed("jobs", parse_run_job))
               if not managed_by_functions(w)]
        # Cloud Run worker pools (v2 only): a connector or a Direct VPC subnet, as services and jobs.
        run += self._guarded(f"the Cloud Run worker pools of {parent}", None,
                             listed("workerPools", parse_run_worker_pool))
        return (run + self._guarded(f"the Cloud Functions of {parent}", None, functions)
                + self._guarded(f"the 1st gen Cloud Functions of {parent}", None, functions_v1))

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

    def firewalls(self, project: str, packer: RulePacker) -> None:
        """The project's rules that ``keep_rule`` keeps, into ``packer``, page by page."""
        def read() -> list[None]:
            pages = self._pages("compute.firewalls.list", f"projects/{project}/global/firewalls", "compute",
                                f"projects/{project}/global/firewalls", {"maxResults": PAGE_SIZE}, announce=False)
            for page in pages:
                by_network: dict[str, list[Any]] = {}
                for item in page.get("items") or ():
                    if self.keep_rule(str(item.get("name", ""))):
                        network = estate.relative_link(str(item.get("network", "")), collection="networks")
                        by_network.setdefault(network, []).append(item)
                for network, items in by_network.items():
                    packer.add(network, items)
            return []

        self._guarded(f"the firewall rules of project {project}", project, read, self.failed_rules)


def _workload(item: Mapping[str, Any], parse: Callable[..., Union[RunServiceName, RunJobName, RunWorkerPoolName]],
              project: str, region: str) -> Workload | None:
    try:
        return estate.workload_from(item, parse(str(item.get("name", "")), field="name", default_project=project,
                                                default_region=region))
    except InvalidName:
        return None  # a name or reference no write could use; the function would acknowledge it too


def _function(item: Any, project: str, region: str, *, v1: bool = False) -> Workload | None:
    """A listed function; None when no write could use it or it sends no traffic (FAILED, DELETING,
    OFFLINE). A 1st gen function in a v2 list (``environment: GEN_1``, which the v2 Function can say) is
    left to the v1 list, so it is decided once, from the fields its own API documents
    (``assumptions.FUNCTIONS_V2_LISTS_GEN1``)."""
    from ..egress import NoEgressPoint

    if not v1 and item.get("environment") == "GEN_1":
        return None
    try:
        name = parse_function(item.get("name"), field="function.name", default_project=project, default_region=region)
        return (estate.function_v1_workload_from if v1 else estate.function_workload_from)(item, name)
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
