"""A project's ``Inventory`` built from Cloud Asset Inventory's results instead of its own list calls,
so the sweep's own planners can judge it without one more read.

The resources come as their APIs' JSON (``versionedResources``), and each is parsed by the same
function ``sweep.inventory`` uses on a list page. A resource whose version this code does not read
(``assumptions.ASSET_RESOURCE_VERSIONS``) or that does not parse makes the snapshot unusable for its
project (``Unreadable``): that project is then swept live, as ``sweep --project`` would, never
judged from a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import estate
from ..assumptions import ASSET_RESOURCE_VERSIONS
from ..errors import InvalidName
from ..estate import Connector, Router, Subnetwork, Workload
from ..guardrails.ensure_nat import managed_by_functions
from ..names import parse_app_engine_version, parse_run_job, parse_run_service
from ..sweep.inventory import Inventory, RulePacker, Rules, _function, _projects_of_connector, _projects_of_interface, _subnetwork, _workload
from .discovery import Asset, Discovery

CONNECTOR, SUBNETWORK, ROUTER, FIREWALL = ("vpcaccess.googleapis.com/Connector", "compute.googleapis.com/Subnetwork",
                                           "compute.googleapis.com/Router", "compute.googleapis.com/Firewall")
SERVICE, JOB, WORKER_POOL = "run.googleapis.com/Service", "run.googleapis.com/Job", "run.googleapis.com/WorkerPool"
FUNCTION, APP_ENGINE_VERSION = "cloudfunctions.googleapis.com/Function", "appengine.googleapis.com/Version"
FUNCTION_V1 = "cloudfunctions.googleapis.com/CloudFunction"  # 1st gen
# The asset types that are subjects of a decision (a project holding none has nothing to do).
SUBJECT_TYPES = (CONNECTOR, SERVICE, JOB, WORKER_POOL, FUNCTION, FUNCTION_V1, APP_ENGINE_VERSION)


@dataclass(frozen=True)
class Unreadable:
    """Why a project's snapshot cannot be judged (it is swept live instead)."""

    reason: str


def _workload_of(asset: Asset) -> Workload | None:
    resource = asset.resource or {}
    region = asset.location
    if asset.asset_type == SERVICE:
        return _workload(resource, parse_run_service, asset.project, region)
    if asset.asset_type == JOB:
        return _workload(resource, parse_run_job, asset.project, region)
    if asset.asset_type == FUNCTION:
        return _function(resource, asset.project, region)
    if asset.asset_type == FUNCTION_V1:
        return _function(resource, asset.project, region, v1=True)
    if asset.asset_type == APP_ENGINE_VERSION:
        try:
            name = parse_app_engine_version(resource.get("name"), field="version.name")
        except InvalidName:
            return None
        return estate.app_engine_workload_from(resource, name)
    raise _Unparsed(f"{asset.asset_type} is not planned from a snapshot")


class _Unparsed(Exception):
    pass


class Snapshots:
    """Every project's inventory from one discovery. Connectors are parsed once for all projects (a
    workload may use another project's, a Shared VPC host's), the rest per project: judging 1,000
    projects stays linear in the results."""

    def __init__(self, found: Discovery, *, keep_rule: Callable[[str], bool]) -> None:
        self.found = found
        self.keep_rule = keep_rule
        self.connectors: dict[str, Connector] = {}
        self.unreadable: dict[str, str] = {}  # project -> why its own connectors could not be read
        for asset in found.of_type(CONNECTOR):
            try:
                connector = estate.connector_from(_resource(asset))
            except _Unparsed as exc:
                self.unreadable.setdefault(asset.project, str(exc))
                continue
            if connector is not None:
                self.connectors[connector.name.relative] = connector

    def inventory(self, project: str) -> "Inventory | Unreadable":
        """``project``'s inventory, or why it cannot be built from the snapshot."""
        if project in self.unreadable:
            return Unreadable(self.unreadable[project])
        try:
            return _build(project, self.found, self.connectors, self.keep_rule)
        except _Unparsed as exc:
            return Unreadable(str(exc))


def snapshot_inventory(project: str, found: Discovery, *, keep_rule: Callable[[str], bool]) -> Inventory | Unreadable:
    """One project's inventory (``Snapshots`` for many)."""
    return Snapshots(found, keep_rule=keep_rule).inventory(project)


def _resource(asset: Asset) -> Mapping[str, Any]:
    wanted = ASSET_RESOURCE_VERSIONS.get(asset.asset_type)
    if asset.resource is None or wanted is None or asset.version != wanted:
        raise _Unparsed(f"{asset.asset_type} came as version {asset.version or 'none'!r}, "
                        f"read only as {wanted or 'nothing'!r}")
    return asset.resource


def _build(project: str, found: Discovery, every_connector: Mapping[str, Connector],
           keep_rule: Callable[[str], bool]) -> Inventory:
    workloads: list[Workload] = []
    for asset in (a for a in found.assets.get(project, ()) if a.asset_type in SUBJECT_TYPES and a.asset_type != CONNECTOR):
        _resource(asset)
        workload = _workload_of(asset)
        if workload is not None and not managed_by_functions(workload):
            workloads.append(workload)

    mine = [every_connector[a_name] for a_name in _connector_names(project, found) if a_name in every_connector]
    used = [every_connector[w.connector.relative] for w in workloads
            if w.connector is not None and w.connector.relative in every_connector]
    connectors = {c.name.relative: c for c in mine + used}
    network_projects = {project} | {p for c in mine + used for p in _projects_of_connector(c)}
    network_projects |= {p for w in workloads for i in w.network_interfaces for p in _projects_of_interface(i)}
    for missing in sorted(network_projects - set(found.assets)):
        # A network project outside the searched scope (or holding nothing): the snapshot cannot say
        # what its routers and rules are.
        raise _Unparsed(f"network project {missing} is not in the searched scope")

    subnets: dict[str, Subnetwork] = {}
    for asset in found.of_type(SUBNETWORK, network_projects):
        subnet = _subnetwork(_resource(asset), asset.project)
        if subnet is not None:
            subnets[subnet.name.relative] = subnet
    routers: dict[tuple[str, str], list[Router]] = {}
    for asset in found.of_type(ROUTER, network_projects):
        try:
            router = estate.router_from_json(_resource(asset), project=asset.project, region=asset.location)
        except InvalidName:
            continue
        routers.setdefault((router.project, router.region), []).append(router)
    rules: dict[str, list[Any]] = {}
    for asset in found.of_type(FIREWALL, network_projects):
        item = _resource(asset)
        if keep_rule(str(item.get("name", ""))):
            network = estate.relative_link(str(item.get("network", "")), collection="networks")
            rules.setdefault(network, []).append(item)
    packer = RulePacker()
    for network, items in rules.items():
        packer.add(network, items)

    regions = tuple(sorted({c.name.region for c in mine}))
    run_regions = tuple(sorted({c.name.region for c in mine} | {r for w in workloads if (r := getattr(w.name, 'region', ''))}
                               | {s.name.region for s in subnets.values() if s.name.project == project}))
    return Inventory(project=project, regions=regions, run_regions=run_regions, connectors=connectors,
                     workloads=tuple(workloads), subnetworks=subnets,
                     routers={k: tuple(sorted(v, key=lambda r: r.name)) for k, v in routers.items()},
                     firewalls=Rules.ready(packer.packed()),
                     network_projects=frozenset(network_projects), failed_projects=frozenset())


def _connector_names(project: str, found: Discovery) -> list[str]:
    return [str((a.resource or {}).get("name", "")) for a in found.assets.get(project, ()) if a.asset_type == CONNECTOR]


def has_subjects(project: str, found: Discovery) -> bool:
    """Whether the project holds anything a sweep decides on (a connector or a workload)."""
    return any(a.asset_type in SUBJECT_TYPES for a in found.assets.get(project, ()))
