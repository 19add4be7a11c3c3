"""Where a workload's internet traffic enters a VPC: decided once, for the guardrails and ``sweep``.

A Cloud Run service, job or worker pool sends its traffic into a VPC through a Serverless VPC Access connector
or through Direct VPC egress (a network interface); the place a NAT must cover is an
``EgressPoint``:

- a connector created on a subnet: that subnet. The connector's ``network`` field is not used for
  it: gcloud sends ``"network": "default"`` together with ``--subnet`` (docs/gcp-facts.md §10) and the
  recorded subnet-form connector has no ``network`` at all (reference/gcp-http-logs/NOTES.md §3), so
  the subnet is looked up and its network taken from there;
- a connector created from an ``ipCidrRange``: its network, and the range, whose hidden subnet
  only an ``ALL_SUBNETWORKS_*`` NAT can cover (docs/gcp-facts.md §6);
- Direct VPC egress (``template.vpcAccess.networkInterfaces``): the interface's subnetwork; with a
  network only, the subnetwork of the same name in the workload's region, which is what Cloud Run
  itself picks ("If subnetwork is not specified, the subnetwork with the same name as the network
  will be used", Cloud Run v2 NetworkInterface reference); with a subnetwork only, its network is
  looked up from the subnetwork.

The lookups are injected: a guardrail passes live reads (``estate.read_connector``,
``estate.read_subnetwork``), ``sweep`` passes its inventory. When no point can be told (the subnet
or connector is gone, the connector cannot carry traffic), ``NoEgressPoint`` says why, in words
that follow the subject's name.

``Egress`` (which traffic goes through the VPC) is decoded here too, once: ``decode_egress``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Union

from .errors import InvalidName, NothingToDo
from .names import (
    ConnectorName,
    FunctionName,
    NetworkName,
    RunJobName,
    RunServiceName,
    RunWorkerPoolName,
    SubnetworkName,
    parse_network,
)

if TYPE_CHECKING:
    from .estate import Connector, Subnetwork, Workload

# Connector states in which its traffic source is known and worth covering. CREATING counts: the
# network and the subnet or range are set from the create call on, and NAT needs nothing else.
ACTIVE_CONNECTOR_STATES = frozenset({"READY", "CREATING", "UPDATING"})


class Egress(str, enum.Enum):
    """Which traffic of a serverless workload goes through the VPC (only ALL_TRAFFIC reaches NAT)."""

    ALL_TRAFFIC = "ALL_TRAFFIC"
    PRIVATE_RANGES_ONLY = "PRIVATE_RANGES_ONLY"


class EgressSetting(str, enum.Enum):
    """Which API field holds the setting: each spells "all traffic" its own way and numbers its enum
    its own way (docs/gcp-facts.md §12.6, from the discovery documents), so a number means nothing
    without the field it came from."""

    RUN = "Cloud Run v2 VpcAccess.egress"  # services, jobs, worker pools
    RUN_ANNOTATION = "Cloud Run v1 annotation run.googleapis.com/vpc-access-egress"
    FUNCTIONS_CONNECTOR = "Cloud Functions vpcConnectorEgressSettings"  # v1 CloudFunction, v2 ServiceConfig
    FUNCTIONS_DIRECT_VPC = "Cloud Functions v2 ServiceConfig.directVpcEgress"
    APP_ENGINE = "App Engine VpcAccessConnector.egressSetting"


_ALL, _PRIVATE = Egress.ALL_TRAFFIC, Egress.PRIVATE_RANGES_ONLY
# Every spelling of each setting, by enum name and by enum number (what a REST client hands back with
# integers for enums). Unspecified or absent means private ranges only: each API documents that default.
_SPELLINGS: Mapping[EgressSetting, Mapping[object, Egress]] = MappingProxyType({
    EgressSetting.RUN: MappingProxyType({
        "VPC_EGRESS_UNSPECIFIED": _PRIVATE, "ALL_TRAFFIC": _ALL, "PRIVATE_RANGES_ONLY": _PRIVATE,
        0: _PRIVATE, 1: _ALL, 2: _PRIVATE}),
    EgressSetting.RUN_ANNOTATION: MappingProxyType({
        "all-traffic": _ALL, "all": _ALL, "private-ranges-only": _PRIVATE}),  # "all": deprecated (§5)
    EgressSetting.FUNCTIONS_CONNECTOR: MappingProxyType({
        "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED": _PRIVATE, "PRIVATE_RANGES_ONLY": _PRIVATE, "ALL_TRAFFIC": _ALL,
        0: _PRIVATE, 1: _PRIVATE, 2: _ALL}),
    EgressSetting.FUNCTIONS_DIRECT_VPC: MappingProxyType({
        "DIRECT_VPC_EGRESS_UNSPECIFIED": _PRIVATE, "VPC_EGRESS_PRIVATE_RANGES_ONLY": _PRIVATE,
        "VPC_EGRESS_ALL_TRAFFIC": _ALL, 0: _PRIVATE, 1: _PRIVATE, 2: _ALL}),
    EgressSetting.APP_ENGINE: MappingProxyType({
        "EGRESS_SETTING_UNSPECIFIED": _PRIVATE, "ALL_TRAFFIC": _ALL, "PRIVATE_IP_RANGES": _PRIVATE,
        0: _PRIVATE, 1: _ALL, 2: _PRIVATE}),
})


def decode_egress(value: object, *, setting: EgressSetting = EgressSetting.RUN,
                  field: str = "template.vpcAccess.egress") -> Egress:
    """Any API's egress setting (a proto enum, its number or its name) -> ``Egress``; the one place the
    spellings are read. An unknown value is ``InvalidName`` (a permanent error: acknowledged, nothing
    changed), never a guess."""
    if value is None or value == "":
        return Egress.PRIVATE_RANGES_ONLY
    spellings = _SPELLINGS[setting]
    if isinstance(value, enum.Enum):  # a proto-plus enum: its name is unambiguous, its number is not
        value = value.name
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value not in spellings:
        raise InvalidName(f"{field}: {str(value)[:40]!r} is not a {setting.value} value", field=field)
    return spellings[value]


@dataclass(frozen=True)
class NetworkInterface:
    """A Direct VPC egress interface; network or subnetwork may be absent (the API infers one)."""

    network: NetworkName | None
    subnetwork: SubnetworkName | None
    tags: tuple[str, ...] = ()


class Via(str, enum.Enum):
    CONNECTOR = "connector"
    DIRECT_VPC = "direct-vpc"


@dataclass(frozen=True)
class EgressPoint:
    """Where a workload's traffic enters the VPC, so where a NAT must cover it."""

    project: str  # the network's project (Shared VPC: the host project)
    region: str
    network: NetworkName
    subnetwork: SubnetworkName | None  # None for an ipCidrRange connector (hidden subnet)
    ip_cidr_range: str | None  # the connector's range, for ipCidrRange connectors
    via: Via
    connector: ConnectorName | None = None

    @property
    def needs_all_subnetworks(self) -> bool:
        """An ipCidrRange connector's hidden subnet cannot be named in a NAT (docs/gcp-facts.md §6)."""
        return self.subnetwork is None

    def describe(self) -> str:
        if self.subnetwork is not None:
            where = f"subnet {self.subnetwork.name}"
        else:
            where = f"range {self.ip_cidr_range} (the connector's hidden subnet)"
        via = f"connector {self.connector.name}" if self.connector else "Direct VPC egress"
        return f"{via} sends traffic from {where} of network {self.network.name} in {self.region}"


class NoEgressPoint(NothingToDo):
    """No traffic can leave here: ``reason`` says why, after the subject's name ("its subnet ...")."""


SubnetLookup = Callable[[SubnetworkName], "Subnetwork | None"]  # None: the subnet does not exist
ConnectorLookup = Callable[[ConnectorName], "Connector | None"]


def connector_point(connector: "Connector", subnet_of: SubnetLookup) -> EgressPoint:
    """The connector's network and subnet or range (an active connector only)."""
    name = connector.name
    if connector.state not in ACTIVE_CONNECTOR_STATES:
        raise NoEgressPoint(f"connector {name.name} is {connector.state}: no traffic can leave through it")
    if connector.subnet is None:
        return range_connector_point(connector)
    subnet = subnet_of(connector.subnet)
    if subnet is None:
        raise NoEgressPoint(f"the subnet {connector.subnet.relative} of connector {name.name} does not exist")
    return EgressPoint(project=subnet.network.project, region=name.region, network=subnet.network,
                       subnetwork=connector.subnet, ip_cidr_range=None, via=Via.CONNECTOR, connector=name)


def range_connector_point(connector: "Connector") -> EgressPoint:
    """An ipCidrRange connector needs no lookup: its network is in the connector, in its project."""
    name = connector.name
    if not connector.network:
        raise NoEgressPoint(f"connector {name.name} has neither a subnet nor a network")
    try:
        network = parse_network(connector.network, field="connector.network", default_project=name.project)
    except InvalidName as exc:
        raise NoEgressPoint(f"connector {name.name}: {exc.reason}") from exc
    return EgressPoint(project=network.project, region=name.region, network=network, subnetwork=None,
                       ip_cidr_range=connector.ip_cidr_range, via=Via.CONNECTOR, connector=name)


def interface_point(workload: Union[RunServiceName, RunJobName, RunWorkerPoolName, FunctionName],
                    interface: NetworkInterface,
                    subnet_of: SubnetLookup) -> EgressPoint:
    """A Direct VPC interface's subnet and network (the subnet is looked up when no network is given)."""
    region = workload.region
    if interface.subnetwork is not None:
        network = interface.network
        if network is None:
            subnet = subnet_of(interface.subnetwork)
            if subnet is None:
                raise NoEgressPoint(f"its Direct VPC subnet {interface.subnetwork.relative} does not exist")
            network = subnet.network
        return EgressPoint(project=network.project, region=region, network=network,
                           subnetwork=interface.subnetwork, ip_cidr_range=None, via=Via.DIRECT_VPC)
    if interface.network is not None:
        same_name = SubnetworkName(interface.network.project, region, interface.network.name)
        return EgressPoint(project=interface.network.project, region=region, network=interface.network,
                           subnetwork=same_name, ip_cidr_range=None, via=Via.DIRECT_VPC)
    raise NoEgressPoint("its Direct VPC interface names no network or subnet")


def workload_point(workload: "Workload", connector_of: ConnectorLookup, subnet_of: SubnetLookup) -> EgressPoint:
    """Where a workload that uses a VPC sends its traffic: through its connector, or its first
    Direct VPC interface (Cloud Run allows one)."""
    if workload.connector is not None:
        connector = connector_of(workload.connector)
        if connector is None:
            raise NoEgressPoint(f"its connector {workload.connector.relative} does not exist: no traffic can be "
                                "sent through it")
        return connector_point(connector, subnet_of)
    if not workload.network_interfaces:
        raise NoEgressPoint("it sends no traffic through a VPC")
    return interface_point(workload.name, workload.network_interfaces[0], subnet_of)
