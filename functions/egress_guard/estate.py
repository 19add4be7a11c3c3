"""Live state, read through the client factory: one function per read, one API call each.

Guardrails never trust the audit entry alone (design §1); they re-read what they decide on with
these functions. Every function here makes exactly one API call (a list may page, one call per
500 items), so the number of reads a decision costs is the number of calls below it; the contract
tests hold each scenario to that minimum.

| function                 | API method                                   | why                                   |
|--------------------------|----------------------------------------------|---------------------------------------|
| ``read_connector``       | vpcaccess.projects.locations.connectors.get  | network, subnet or ipCidrRange, state (JSON) |
| ``list_connectors``      | vpcaccess.projects.locations.connectors.list | drift: the connectors of a region     |
| ``read_subnetwork``      | compute.subnetworks.get                      | a subnet's network                    |
| ``routers_of``           | compute.routers.list (of a region)           | every router and NAT of the region    |
| ``firewalls_of``         | compute.firewalls.list (filter on network)   | managed and ``aet-*`` rules           |
| ``read_workload``        | run.projects.locations.services/jobs.get (v2)| labels, connector, egress, Direct VPC |
| ``read_function``        | cloudfunctions.projects.locations.functions.get (v2) | the same, for a Cloud Function |
| ``read_app_engine_version`` | appengine.apps.services.versions.get (v1) | connector, egress setting |

``connector_from`` and ``workload_from`` convert a connector, service or job as JSON, whichever
way it was read (a typed message through ``to_json``, or ``egress-guard sweep``'s JSON pages); ``function_workload_from`` a Cloud Function's JSON,
``app_engine_workload_from`` an App Engine version's.

Values come back as small frozen types; bodies that a guardrail writes back (a router's ``nats``,
a firewall rule) are kept as read-only JSON in Google's camelCase, the shape findings show.

Every call goes through ``api`` (the bounded read retry and timeout, and the classification): a 404
on a ``read_*`` is an answer (``None``: the resource is gone), not an error; anything else is
raised as ``TransientError`` (retried by the platform) or ``PermanentError``.

Where traffic leaves the VPC (``EgressPoint``) is decided in ``egress``, from these reads.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from . import api
from .errors import InvalidName
from .egress import Egress, EgressSetting, NetworkInterface, decode_egress
from .events import freeze
from .names import (
    AppEngineVersionName,
    ConnectorName,
    FunctionName,
    NetworkName,
    RunJobName,
    RunServiceName,
    SubnetworkName,
    parse_compute_name,
    parse_connector,
    parse_network,
    parse_router,
    parse_subnetwork,
    validate_network_tag,
)

if TYPE_CHECKING:
    from .clients import Clients



# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Connector:
    name: ConnectorName
    state: str  # READY | CREATING | DELETING | ERROR | UPDATING | STATE_UNSPECIFIED
    network: str  # as the API returns it (a name), "" when absent
    ip_cidr_range: str | None
    subnet: SubnetworkName | None  # subnet connectors: the subnet (host project for Shared VPC)

    @property
    def ready(self) -> bool:
        return self.state == "READY"


@dataclass(frozen=True)
class Subnetwork:
    name: SubnetworkName
    network: NetworkName
    ip_cidr_range: str


@dataclass(frozen=True)
class NatSubnet:
    subnetwork: str  # relative name, projects/P/regions/R/subnetworks/S
    ranges: tuple[str, ...]  # sourceIpRangesToNat


@dataclass(frozen=True)
class Nat:
    name: str
    option: str  # sourceSubnetworkIpRangesToNat
    subnetworks: tuple[NatSubnet, ...]
    body: Mapping[str, Any]  # as read (read-only), written back unchanged by read-modify-write

    @property
    def all_subnetworks(self) -> bool:
        return self.option.startswith("ALL_SUBNETWORKS_")


@dataclass(frozen=True)
class Router:
    project: str
    region: str
    name: str
    network: str  # relative network name
    nats: tuple[Nat, ...]
    body: Mapping[str, Any]  # as read (read-only)

    @property
    def relative(self) -> str:
        return f"projects/{self.project}/regions/{self.region}/routers/{self.name}"


@dataclass(frozen=True)
class FirewallRule:
    name: str
    network: str  # relative network name
    body: Mapping[str, Any]  # as read (read-only)

    @property
    def project(self) -> str:
        return self.network.split("/")[1] if self.network.startswith("projects/") else ""

    @property
    def priority(self) -> int:
        value = self.body.get("priority", 1000)
        return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else 1000

    @property
    def direction(self) -> str:
        return str(self.body.get("direction") or "INGRESS")

    @property
    def disabled(self) -> bool:
        return bool(self.body.get("disabled", False))

    @property
    def description(self) -> str:
        return str(self.body.get("description") or "")


@dataclass(frozen=True)
class Workload:
    """A serverless workload as it is now (a Cloud Run service or job, v2 view; a Cloud Function),
    reduced to what egress-guard needs."""

    name: Union[RunServiceName, RunJobName, FunctionName, AppEngineVersionName]
    labels: Mapping[str, str]
    connector: ConnectorName | None
    egress: Egress
    network_interfaces: tuple[NetworkInterface, ...]

    @property
    def uses_vpc(self) -> bool:
        return self.connector is not None or bool(self.network_interfaces)


# --------------------------------------------------------------------------- helpers


def to_json(message: Any) -> dict[str, Any]:
    """A proto-plus message as Google's JSON (camelCase), without empty lists and objects."""
    text = type(message).to_json(message, use_integers_for_enums=False, indent=None)
    return _prune(json.loads(text))


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ([], {})}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


@functools.lru_cache(maxsize=65536)
def relative_link(link: str, *, collection: str | None = None) -> str:
    """``https://www.googleapis.com/compute/v1/projects/...`` (any host) -> ``projects/...``.

    A link that does not parse is returned unchanged: it then simply matches nothing we look for.
    Cached (pure, and a sweep converts the same few network links once per rule: 60,000 times for
    1,000 connectors, most of its planning time before). Room for every subnet of a large estate:
    a NAT's subnet links are converted again each time the sweep folds a planned write into its
    router, and at 8,192 entries a 10,000-subnet sweep evicted them before their next use.
    """
    try:
        return parse_compute_name(link, field="link", collection=collection).relative
    except InvalidName:
        return link


def network_filter(network: NetworkName) -> str:
    """Compute's list filter on a resource's network link, in the regular-expression form that
    gcloud itself sends (``network eq ".*(net-a).*"``, docs/gcp-facts.md §10), anchored on the network's
    path so that net-a does not match net-ab. Results are also checked on the client."""
    path = re.sub(r"([.\\])", r"\\\1", f"/projects/{network.project}/global/networks/{network.name}")
    return f'network eq ".*{path}"'


# --------------------------------------------------------------------------- reads


def read_connector(clients: "Clients", name: ConnectorName) -> Connector | None:
    """vpcaccess connectors.get; None when the connector does not exist (any more)."""
    # As JSON (Clients.json): the first event of a cold instance then does not import vpcaccess_v1.
    found = api.get_json_or_none(f"vpcaccess.connectors.get {name.relative}", clients.json,
                                 f"{clients.api_root('vpcaccess')}/{name.relative}")
    return None if found is None else _connector(found, name)


def list_connectors(clients: "Clients", project: str, region: str) -> tuple[Connector, ...]:
    """vpcaccess connectors.list of one project and region."""
    parent = f"projects/{project}/locations/{region}"
    with api.classified(f"vpcaccess.connectors.list {parent}"):
        items = list(clients.connectors.list_connectors(parent=parent, **api.read_options()))
    return tuple(c for c in (connector_from(to_json(item)) for item in items) if c is not None)


def connector_from(body: Mapping[str, Any]) -> Connector | None:
    """A VPC Access v1 Connector as JSON (from a get or a list) -> ``Connector``; None when its name
    is not one we could ever act on (nothing else depends on it)."""
    try:
        name = parse_connector(str(body.get("name", "")), field="connector.name")
    except InvalidName:
        return None
    return _connector(body, name)


def _connector(body: Mapping[str, Any], name: ConnectorName) -> Connector:
    subnet = None
    found_subnet = body.get("subnet") or {}
    if found_subnet.get("name"):
        subnet = parse_subnetwork(str(found_subnet["name"]), field="connector.subnet.name",
                                  default_project=found_subnet.get("projectId") or name.project,
                                  default_region=name.region)
    return Connector(name=name, state=str(body.get("state") or "STATE_UNSPECIFIED"), network=body.get("network") or "",
                     ip_cidr_range=body.get("ipCidrRange") or None, subnet=subnet)


def read_subnetwork(clients: "Clients", name: SubnetworkName) -> Subnetwork | None:
    """compute subnetworks.get; None when it does not exist."""
    found = api.read_or_none(f"compute.subnetworks.get {name.relative}", clients.subnetworks.get,
                             project=name.project, region=name.region, subnetwork=name.name)
    if found is None:
        return None
    network = parse_network(found.network, field="subnetwork.network", default_project=name.project)
    return Subnetwork(name=name, network=network, ip_cidr_range=found.ip_cidr_range or "")


def subnetworks_of(clients: "Clients", project: str, region: str) -> dict[str, Subnetwork]:
    """compute subnetworks.list of one project and region (one call per 500), by relative name: the
    subnets of many connectors for the price of one read (ensure_nat's drift re-check)."""
    action = f"compute.subnetworks.list projects/{project}/regions/{region}"
    with api.classified(action):
        items = list(clients.subnetworks.list(project=project, region=region, **api.read_options()))
    found: dict[str, Subnetwork] = {}
    for item in items:
        name = parse_subnetwork(f"projects/{project}/regions/{region}/subnetworks/{item.name}", field=action)
        network = parse_network(item.network, field="subnetwork.network", default_project=project)
        found[name.relative] = Subnetwork(name=name, network=network, ip_cidr_range=item.ip_cidr_range or "")
    return found


def routers_of(clients: "Clients", project: str, region: str, network: NetworkName | None = None) -> tuple[Router, ...]:
    """compute routers.list of a region, filtered on ``network`` when given (one call).

    ensure_nat lists the whole region: router names are unique per project and region across
    networks, so choosing a free name for a new router needs the other networks' routers too.
    """
    from google.cloud import compute_v1

    action = f"compute.routers.list projects/{project}/regions/{region}"
    request = compute_v1.ListRoutersRequest(project=project, region=region)
    if network is not None:
        request.filter = network_filter(network)
    with api.classified(action):
        items = list(clients.routers.list(request=request, **api.read_options()))
    routers = [router_from_json(to_json(item), project=project, region=region) for item in items]
    if network is not None:
        routers = [r for r in routers if r.network == network.relative]
    return tuple(sorted(routers, key=lambda r: r.name))


def router_from_json(body: Mapping[str, Any], *, project: str, region: str, before: Router | None = None) -> Router:
    """A router body as Compute returns it -> ``Router`` (also used by unit tests).

    ``before``: the router this body was made from (a planned write folded into it, sweep's
    ``fold``): the NATs and subnet entries it kept unchanged (the same frozen objects) are taken
    from it rather than parsed again, so extending a NAT by n subnets one at a time costs n, not n².
    """
    frozen = freeze(body)  # once: each NAT's body is the frozen router's own
    known_nats: dict[int, Nat] = {}
    known_subnets: dict[int, NatSubnet] = {}
    if before is not None:
        for nat in before.nats:
            known_nats[id(nat.body)] = nat
            known_subnets.update(zip(map(id, nat.body.get("subnetworks") or ()), nat.subnetworks))
    nats = []
    for raw in frozen.get("nats") or ():
        kept = known_nats.get(id(raw))
        if kept is not None and kept.body is raw:
            nats.append(kept)
            continue
        subnets = tuple(
            known_subnets.get(id(s)) or
            NatSubnet(relative_link(str(s.get("name", "")), collection="subnetworks"),
                      tuple(str(r) for r in s.get("sourceIpRangesToNat") or ()))
            for s in raw.get("subnetworks") or ())
        nats.append(Nat(name=str(raw.get("name", "")), option=str(raw.get("sourceSubnetworkIpRangesToNat", "")),
                        subnetworks=subnets, body=raw))
    name = str(frozen.get("name", ""))
    if frozen.get("selfLink"):
        parsed = parse_router(frozen["selfLink"], field="router.selfLink")
        project, region, name = parsed.project, parsed.region, parsed.name
    return Router(project=project, region=region, name=name,
                  network=relative_link(str(frozen.get("network", "")), collection="networks"),
                  nats=tuple(nats), body=frozen)


def firewalls_of(clients: "Clients", network: NetworkName) -> tuple[FirewallRule, ...]:
    """compute firewalls.list of the network's project, filtered on the network (one call)."""
    from google.cloud import compute_v1

    action = f"compute.firewalls.list projects/{network.project}/global/firewalls"
    request = compute_v1.ListFirewallsRequest(project=network.project, filter=network_filter(network))
    with api.classified(action):
        items = list(clients.firewalls.list(request=request, **api.read_options()))
    rules = [firewall_from_json(to_json(item)) for item in items]
    return tuple(sorted((r for r in rules if r.network == network.relative), key=lambda r: r.name))


def firewall_from_json(body: Mapping[str, Any]) -> FirewallRule:
    return FirewallRule(name=str(body.get("name", "")),
                        network=relative_link(str(body.get("network", "")), collection="networks"),
                        body=freeze(body))


def read_workload(clients: "Clients", name: Union[RunServiceName, RunJobName]) -> Workload | None:
    """Cloud Run v2 services.get / jobs.get; None when it does not exist (any more)."""
    if isinstance(name, RunServiceName):
        found = api.read_or_none(f"run.services.get {name.relative}", clients.run_services.get_service,
                                 name=name.relative)
    else:
        found = api.read_or_none(f"run.jobs.get {name.relative}", clients.run_jobs.get_job, name=name.relative)
    return None if found is None else workload_from(to_json(found), name)


def workload_from(body: Mapping[str, Any], name: Union[RunServiceName, RunJobName]) -> Workload:
    """A Cloud Run v2 Service or Job as JSON (from a get or a list) -> ``Workload``."""
    template = body.get("template") or {}
    if not isinstance(name, RunServiceName):
        template = template.get("template") or {}  # Job -> ExecutionTemplate -> TaskTemplate
    vpc = template.get("vpcAccess") or {}
    field = "template.vpcAccess"
    connector = None
    if vpc.get("connector"):
        # A project number in the reference is kept: the VPC Access API accepts numbers in names.
        connector = parse_connector(str(vpc["connector"]), field=f"{field}.connector", default_project=name.project,
                                    default_region=name.region)
    egress = decode_egress(vpc.get("egress"), field=f"{field}.egress")
    interfaces = []
    for index, iface in enumerate(vpc.get("networkInterfaces") or ()):
        where = f"{field}.networkInterfaces[{index}]"
        interfaces.append(NetworkInterface(
            network=parse_network(str(iface["network"]), field=f"{where}.network", default_project=name.project)
            if iface.get("network") else None,
            subnetwork=parse_subnetwork(str(iface["subnetwork"]), field=f"{where}.subnetwork",
                                        default_project=name.project, default_region=name.region)
            if iface.get("subnetwork") else None,
            tags=tuple(validate_network_tag(t, f"{where}.tags") for t in iface.get("tags") or ())))
    return Workload(name=name, labels=freeze(dict(body.get("labels") or {})), connector=connector, egress=egress,
                    network_interfaces=tuple(interfaces))


# Function states in which it sends no traffic (or never will): nothing to cover. A function whose
# deploy failed (FAILED) never ran with these settings; the failed call itself is screened earlier.
INACTIVE_FUNCTION_STATES = frozenset({"FAILED", "DELETING", "DETACHING", "DETACH_FAILED"})


def read_function(clients: "Clients", name: FunctionName) -> Workload | None:
    """Cloud Functions v2 functions.get (as JSON); None when it does not exist (any more)."""
    found = api.read_or_none(f"cloudfunctions.functions.get {name.relative}", clients.functions_json.get,
                             name=name.relative)
    return None if found is None else function_workload_from(found, name)


def function_workload_from(found: Mapping[str, Any], name: FunctionName) -> Workload:
    """A v2 ``Function`` (JSON, from a get or a list) -> ``Workload``. Its egress comes from the
    field that carries it: ``vpcConnectorEgressSettings`` with a connector, ``directVpcEgress`` with
    Direct VPC, each spelled its own way (docs/gcp-facts.md §12.6)."""
    from .egress import NoEgressPoint

    state = str(found.get("state") or "")
    if state in INACTIVE_FUNCTION_STATES:
        raise NoEgressPoint(f"function {name.name} is {state}: it sends no traffic with these settings")
    config = found.get("serviceConfig") or {}
    field = "serviceConfig"
    connector = None
    if config.get("vpcConnector"):
        connector = parse_connector(config["vpcConnector"], field=f"{field}.vpcConnector",
                                    default_project=name.project, default_region=name.region)
        egress = decode_egress(config.get("vpcConnectorEgressSettings"), setting=EgressSetting.FUNCTIONS_CONNECTOR,
                               field=f"{field}.vpcConnectorEgressSettings")
    else:
        egress = decode_egress(config.get("directVpcEgress"), setting=EgressSetting.FUNCTIONS_DIRECT_VPC,
                               field=f"{field}.directVpcEgress")
    interfaces = []
    for index, iface in enumerate(config.get("directVpcNetworkInterface") or ()):
        where = f"{field}.directVpcNetworkInterface[{index}]"
        interfaces.append(NetworkInterface(
            network=parse_network(iface["network"], field=f"{where}.network", default_project=name.project)
            if iface.get("network") else None,
            subnetwork=parse_subnetwork(iface["subnetwork"], field=f"{where}.subnetwork", default_project=name.project,
                                        default_region=name.region) if iface.get("subnetwork") else None,
            tags=tuple(validate_network_tag(t, f"{where}.tags") for t in iface.get("tags") or ())))
    labels = {str(k): str(v) for k, v in (found.get("labels") or {}).items()}
    return Workload(name=name, labels=freeze(labels), connector=connector, egress=egress,
                    network_interfaces=tuple(interfaces))


def read_app_engine_version(clients: "Clients", name: AppEngineVersionName) -> Workload | None:
    """App Engine Admin v1 versions.get (as JSON); None when the version does not exist (any more)."""
    found = api.read_or_none(f"appengine.versions.get {name.relative}", clients.appengine.get, name=name.relative)
    return None if found is None else app_engine_workload_from(found, name)


def app_engine_workload_from(found: Mapping[str, Any], name: AppEngineVersionName) -> Workload:
    """A v1 ``Version`` (JSON) -> ``Workload``: its ``vpcAccessConnector {name, egressSetting}``, with App
    Engine's own spelling of the egress setting (docs/gcp-facts.md §12.6). Direct VPC for App Engine
    (``vpcAccess``) is not read yet."""
    vpc = found.get("vpcAccessConnector") or {}
    connector = None
    if vpc.get("name"):
        connector = parse_connector(vpc["name"], field="vpcAccessConnector.name", default_project=name.project)
    egress = decode_egress(vpc.get("egressSetting"), setting=EgressSetting.APP_ENGINE,
                           field="vpcAccessConnector.egressSetting")
    # A Version has no labels (appengine v1 discovery document): the label exemption cannot apply;
    # connector, network and project exemptions do.
    return Workload(name=name, labels=freeze({}), connector=connector, egress=egress, network_interfaces=())
