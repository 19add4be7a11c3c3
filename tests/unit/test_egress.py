"""egress: where traffic enters a VPC, with the lookups injected (live reads for a guardrail, the
inventory for sweep), and the one decoder of Cloud Run's VPC egress setting."""

from __future__ import annotations

import pytest

from egress_guard.egress import (
    Egress,
    NetworkInterface,
    NoEgressPoint,
    Via,
    connector_point,
    decode_egress,
    interface_point,
    workload_point,
)
from egress_guard.estate import Connector, Subnetwork, Workload
from egress_guard.names import ConnectorName, NetworkName, RunJobName, SubnetworkName

P, HOST, R = "svc-project", "host-project", "europe-west2"
NET = NetworkName(HOST, "shared")
SUB = SubnetworkName(HOST, R, "conn-28")
CONN = ConnectorName(P, R, "conn-a")
JOB = RunJobName(P, R, "nightly")
SUBNETS = {SUB: Subnetwork(SUB, NET, "10.0.0.0/28")}


def connector(state: str = "READY", *, subnet: SubnetworkName | None = SUB, network: str = "",
              cidr: str | None = None) -> Connector:
    return Connector(CONN, state, network, cidr, subnet)


def test_a_subnet_connector_leaves_through_its_subnet_in_the_subnets_network():
    looked_up = []
    point = connector_point(connector(), lambda name: looked_up.append(name) or SUBNETS.get(name))
    assert looked_up == [SUB]  # the lookup is the caller's: one read, or the inventory
    assert (point.project, point.network, point.subnetwork, point.via, point.connector) == (
        HOST, NET, SUB, Via.CONNECTOR, CONN)


def test_a_range_connector_needs_no_lookup_and_needs_all_subnetworks():
    point = connector_point(connector(subnet=None, network="vpc-a", cidr="10.8.0.0/28"), lambda name: 1 / 0)
    assert point.network == NetworkName(P, "vpc-a") and point.needs_all_subnetworks
    assert point.ip_cidr_range == "10.8.0.0/28"


@pytest.mark.parametrize("made,words", [
    (connector(state="ERROR"), "is ERROR: no traffic can leave"),
    (connector(subnet=SubnetworkName(HOST, R, "gone")), "subnetworks/gone of connector conn-a does not exist"),
    (connector(subnet=None), "neither a subnet nor a network"),
])
def test_no_point_says_why(made: Connector, words: str):
    with pytest.raises(NoEgressPoint, match=words):
        connector_point(made, SUBNETS.get)


def test_direct_vpc_with_a_network_only_uses_the_subnet_of_the_same_name():
    point = interface_point(JOB, NetworkInterface(NET, None), lambda name: 1 / 0)
    assert point.subnetwork == SubnetworkName(HOST, R, "shared") and point.via is Via.DIRECT_VPC


def test_direct_vpc_with_a_subnet_only_looks_up_its_network():
    assert interface_point(JOB, NetworkInterface(None, SUB), SUBNETS.get).network == NET
    with pytest.raises(NoEgressPoint, match="Direct VPC subnet"):
        interface_point(JOB, NetworkInterface(None, SubnetworkName(HOST, R, "gone")), SUBNETS.get)


def test_a_workload_goes_through_its_connector_or_says_it_is_missing():
    workload = Workload(JOB, {}, CONN, Egress.ALL_TRAFFIC, ())
    assert workload_point(workload, {CONN: connector()}.get, SUBNETS.get).connector == CONN
    with pytest.raises(NoEgressPoint, match="its connector .* does not exist"):
        workload_point(workload, {}.get, SUBNETS.get)


@pytest.mark.parametrize("value,egress", [
    (None, Egress.PRIVATE_RANGES_ONLY), (0, Egress.PRIVATE_RANGES_ONLY), (1, Egress.ALL_TRAFFIC),
    (2, Egress.PRIVATE_RANGES_ONLY), ("ALL_TRAFFIC", Egress.ALL_TRAFFIC),
])
def test_decode_egress(value: object, egress: Egress):
    assert decode_egress(value) is egress


def test_decode_egress_refuses_what_it_does_not_know():
    with pytest.raises(Exception, match="is not a VPC egress setting"):
        decode_egress(7)
