"""egress: where traffic enters a VPC, with the lookups injected (live reads for a guardrail, the
inventory for sweep), and the one decoder of every API's VPC egress setting."""

from __future__ import annotations

import pytest

from egress_guard.egress import (
    Egress,
    NetworkInterface,
    NoEgressPoint,
    Via,
    connector_point,
    EgressSetting,
    decode_egress,
    interface_point,
    workload_point,
)
from egress_guard.estate import Connector, Subnetwork, Workload
from egress_guard.errors import InvalidName
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
    with pytest.raises(Exception, match="is not a Cloud Run v2 VpcAccess.egress value"):
        decode_egress(7)
    with pytest.raises(InvalidName, match="egressSetting: 'ALL' is not a App Engine"):
        decode_egress("ALL", setting=EgressSetting.APP_ENGINE, field="egressSetting")
    with pytest.raises(InvalidName):  # Cloud Run's spelling is not the Direct VPC field's
        decode_egress("ALL_TRAFFIC", setting=EgressSetting.FUNCTIONS_DIRECT_VPC)
    with pytest.raises(InvalidName):
        decode_egress(True)


# The three spellings of "all traffic" (docs/gcp-facts.md §12.6), and the default each field documents.
@pytest.mark.parametrize("setting,all_traffic,private,unspecified", [
    (EgressSetting.RUN, "ALL_TRAFFIC", "PRIVATE_RANGES_ONLY", "VPC_EGRESS_UNSPECIFIED"),
    (EgressSetting.RUN_ANNOTATION, "all-traffic", "private-ranges-only", None),
    (EgressSetting.FUNCTIONS_CONNECTOR, "ALL_TRAFFIC", "PRIVATE_RANGES_ONLY", "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED"),
    (EgressSetting.FUNCTIONS_DIRECT_VPC, "VPC_EGRESS_ALL_TRAFFIC", "VPC_EGRESS_PRIVATE_RANGES_ONLY",
     "DIRECT_VPC_EGRESS_UNSPECIFIED"),
    (EgressSetting.APP_ENGINE, "ALL_TRAFFIC", "PRIVATE_IP_RANGES", "EGRESS_SETTING_UNSPECIFIED"),
])
def test_every_spelling_of_all_traffic_decodes_in_one_place(setting, all_traffic, private, unspecified):
    assert decode_egress(all_traffic, setting=setting) is Egress.ALL_TRAFFIC
    assert decode_egress(private, setting=setting) is Egress.PRIVATE_RANGES_ONLY
    assert decode_egress(None, setting=setting) is Egress.PRIVATE_RANGES_ONLY
    if unspecified:
        assert decode_egress(unspecified, setting=setting) is Egress.PRIVATE_RANGES_ONLY


# Each enum's numbers, as Google's discovery documents order the values (index = proto number).
DISCOVERY_ENUMS = {
    EgressSetting.RUN: ("run.v2.json", "GoogleCloudRunV2VpcAccess", "egress"),
    EgressSetting.FUNCTIONS_CONNECTOR: ("cloudfunctions.v2.json", "ServiceConfig", "vpcConnectorEgressSettings"),
    EgressSetting.FUNCTIONS_DIRECT_VPC: ("cloudfunctions.v2.json", "ServiceConfig", "directVpcEgress"),
    EgressSetting.APP_ENGINE: ("appengine.v1.json", "VpcAccessConnector", "egressSetting"),
}


@pytest.mark.parametrize("setting", list(DISCOVERY_ENUMS))
def test_enum_numbers_follow_the_discovery_documents(setting):
    import json

    import googleapiclient

    from pathlib import Path

    document, schema, prop = DISCOVERY_ENUMS[setting]
    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / document
    values = json.loads(path.read_text())["schemas"][schema]["properties"][prop]["enum"]
    for number, name in enumerate(values):
        assert decode_egress(number, setting=setting) is decode_egress(name, setting=setting), (number, name)


def test_functions_v1_egress_numbers_match_v2():
    import json
    from pathlib import Path

    import googleapiclient

    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "cloudfunctions.v1.json"
    values = json.loads(path.read_text())["schemas"]["CloudFunction"]["properties"]["vpcConnectorEgressSettings"]
    assert values["enum"] == ["VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED", "PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"]


def test_a_function_is_read_with_its_own_spellings_and_an_unknown_value_is_refused():
    from egress_guard.errors import PermanentError
    from egress_guard.estate import function_workload_from
    from egress_guard.names import FunctionName

    name = FunctionName(P, R, "fn")
    connector = {"state": "ACTIVE", "labels": {"team": "a"}, "serviceConfig": {
        "vpcConnector": "conn-a", "vpcConnectorEgressSettings": "ALL_TRAFFIC"}}
    workload = function_workload_from(connector, name)
    assert (workload.connector, workload.egress, workload.labels["team"]) == (CONN, Egress.ALL_TRAFFIC, "a")
    direct = {"serviceConfig": {"directVpcNetworkInterface": [{"subnetwork": f"projects/{HOST}/regions/{R}/subnetworks/conn-28"}],
                                "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC"}}
    workload = function_workload_from(direct, name)
    assert workload.egress is Egress.ALL_TRAFFIC and workload.network_interfaces[0].subnetwork == SUB
    newer = {"serviceConfig": {"directVpcNetworkInterface": [{"network": "shared"}], "directVpcEgress": "VPC_EGRESS_SOME_NEW"}}
    with pytest.raises(PermanentError, match="serviceConfig.directVpcEgress: 'VPC_EGRESS_SOME_NEW' is not"):
        function_workload_from(newer, name)
    with pytest.raises(NoEgressPoint, match="FAILED"):
        function_workload_from({**connector, "state": "FAILED"}, name)


def test_a_worker_pool_is_read_like_a_service_and_an_unknown_egress_is_refused_not_guessed():
    from egress_guard.estate import workload_from
    from egress_guard.names import RunWorkerPoolName

    name = RunWorkerPoolName("proj-a", "europe-west2", "pool-a")
    body = {"labels": {"team": "a"}, "template": {"vpcAccess": {
        "networkInterfaces": [{"network": "net-a", "subnetwork": "sub-a", "tags": ["pool"]}], "egress": 1}}}
    pool = workload_from(body, name)
    assert pool.egress is Egress.ALL_TRAFFIC  # enum number 1 of Cloud Run's VpcAccess.egress
    assert pool.network_interfaces[0].subnetwork.relative == "projects/proj-a/regions/europe-west2/subnetworks/sub-a"
    body["template"]["vpcAccess"]["egress"] = "VPC_EGRESS_SOMETHING_NEW"
    with pytest.raises(InvalidName, match="template.vpcAccess.egress"):
        workload_from(body, name)


def test_a_1st_gen_function_is_the_same_workload_with_its_fields_at_the_top_level():
    """v1 ``CloudFunction`` keeps the connector and its egress at the top level, spelled as 2nd gen's
    connector setting; a failed deploy (OFFLINE) sends nothing; an unknown value is refused."""
    from egress_guard.errors import PermanentError
    from egress_guard.estate import function_v1_workload_from
    from egress_guard.names import FunctionName

    name = FunctionName(P, R, "helloWorld_1")  # 1st gen names may hold upper case and underscores
    found = {"status": "ACTIVE", "labels": {"egress-guard": "skip"}, "vpcConnector": "conn-a",
             "vpcConnectorEgressSettings": "ALL_TRAFFIC"}
    workload = function_v1_workload_from(found, name)
    assert (workload.connector, workload.egress, workload.labels["egress-guard"]) == (CONN, Egress.ALL_TRAFFIC, "skip")
    assert function_v1_workload_from({"status": "ACTIVE", "vpcConnector": "conn-a"}, name).egress is \
        Egress.PRIVATE_RANGES_ONLY  # the documented default
    assert not function_v1_workload_from({"status": "ACTIVE"}, name).uses_vpc
    with pytest.raises(PermanentError, match="vpcConnectorEgressSettings: 'VPC_EGRESS_ALL_TRAFFIC' is not"):
        function_v1_workload_from({**found, "vpcConnectorEgressSettings": "VPC_EGRESS_ALL_TRAFFIC"}, name)
    with pytest.raises(NoEgressPoint, match="OFFLINE"):
        function_v1_workload_from({**found, "status": "OFFLINE"}, name)


def test_sweep_leaves_a_gen1_function_of_a_v2_list_to_the_v1_list():
    """The v2 Function can say environment GEN_1 (assumptions.FUNCTIONS_V2_LISTS_GEN1): decided once, from v1."""
    from egress_guard.sweep.inventory import _function

    item = {"name": f"projects/{P}/locations/{R}/functions/old", "environment": "GEN_1", "state": "ACTIVE",
            "serviceConfig": {"vpcConnector": "conn-a", "vpcConnectorEgressSettings": "ALL_TRAFFIC"}}
    assert _function(item, P, R) is None
    assert _function({**item, "environment": "GEN_2"}, P, R).egress is Egress.ALL_TRAFFIC
    v1 = {"name": item["name"], "status": "ACTIVE", "vpcConnector": "conn-a", "vpcConnectorEgressSettings": "ALL_TRAFFIC"}
    assert _function(v1, P, R, v1=True).connector == CONN
