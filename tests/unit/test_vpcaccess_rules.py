"""Google's rules for connectors, as localcloud's VPC Access backend applies them (pure functions)."""

from __future__ import annotations

import pytest

from localcloud.backends import vpcaccess as va
from localcloud.errors import ApiError


def _spec(**overrides) -> va.ConnectorSpec:
    fields = dict(project="eg-demo-project", region="europe-west2", name="conn-a", machine_type="e2-micro",
                  scaling=va.Scaling(2, 10), network="net-a", network_project="eg-demo-project",
                  subnet="sub28", source_cidr="10.0.1.0/28")
    fields.update(overrides)
    return va.ConnectorSpec(**fields)


def test_aet_name_drops_region_hyphens_and_doubles_name_hyphens():
    assert va.aet_name("us-central1", "subnet-1", "egrfw") == "aet-uscentral1-subnet--1-egrfw"  # Google's own text
    assert va.aet_name("europe-west9", "webplat-stage-vpc", "rsgfw") == "aet-europewest9-webplat--stage--vpc-rsgfw"


def test_connector_tag_is_region_and_name():
    assert va.connector_tag("europe-west2", "foo") == "vpc-connector-europe-west2-foo"


@pytest.mark.parametrize("name", ["a1", "conn-a", "abcdefghijklmnopqrst", "a-b-c-d-e-f"])
def test_connector_id_accepted(name):
    assert va.check_connector_id(name) == name


@pytest.mark.parametrize("name, why", [
    (None, "pattern"), ("", "pattern"), ("A1", "pattern"), ("1a", "pattern"), ("a-", "pattern"), ("a", "pattern"),
    ("a_b", "pattern"), ("a" * 26, "pattern"),
    ("abcdefghijklmnopqrstu", "21 characters"),  # 21 characters
    ("abcdefghi-jklmnopqrs", "21 characters"),  # 20 characters, but the hyphen counts twice
])
def test_connector_id_refused(name, why):
    with pytest.raises(ApiError) as err:
        va.check_connector_id(name)
    assert err.value.code == 400 and why in err.value.message


def test_longest_accepted_name_keeps_every_rule_name_within_63_characters():
    name = "a-b-c-d-e-f-g"  # 13 characters + 6 hyphens = 19
    va.check_connector_id(name)
    longest_region = "northamerica-northeast2"
    assert all(len(va.aet_name(longest_region, name, s.suffix)) <= 63 for s in va.RULE_SHAPES)


def test_scaling_defaults_and_throughput_follow_instances():
    scaling = va.parse_scaling({"minInstances": 2, "maxInstances": 10})
    assert scaling.fields() == {"minInstances": 2, "minThroughput": 200, "maxInstances": 10, "maxThroughput": 1000}
    assert va.parse_scaling({"minThroughput": 300, "maxThroughput": 400}).fields()["maxInstances"] == 4
    assert va.parse_scaling({"maxInstances": 3}).min_instances == 2
    assert va.parse_scaling({}).max_instances is None  # the operation fails later, as Google's does


@pytest.mark.parametrize("body", [
    {"minInstances": 1, "maxInstances": 3}, {"minInstances": 2, "maxInstances": 11}, {"minInstances": 5, "maxInstances": 4},
    {"minThroughput": 250, "maxThroughput": 400}, {"minThroughput": 200, "maxThroughput": 2000},
    {"minThroughput": 500, "maxThroughput": 300},
])
def test_scaling_refused(body):
    with pytest.raises(ApiError) as err:
        va.parse_scaling(body)
    assert err.value.code == 400


@pytest.mark.parametrize("cidr", ["10.8.0.0/24", "10.8.0.1/28", "banana", "10.8.0.0/33", "fd00::/28"])
def test_ip_cidr_range_must_be_a_28_network(cidr):
    with pytest.raises(ApiError):
        va.parse_cidr_28(cidr)


def test_firewall_plan_matches_the_documented_table():
    rules = va.plan_firewall_rules(_spec(), "https://www.googleapis.com/compute/v1/projects/p/global/networks/net-a",
                                   broad_visible=True)
    by_suffix = {r["name"].rsplit("-", 1)[1]: r for r in rules}
    assert list(by_suffix) == ["hcfw", "rsgfw", "earfw", "egrfw", "sbntfw", "tagfw"]
    tag = "vpc-connector-europe-west2-conn-a"
    assert by_suffix["hcfw"] == {
        "name": "aet-europewest2-conn--a-hcfw", "network": rules[0]["network"], "direction": "INGRESS",
        "priority": 100, "allowed": [{"IPProtocol": "tcp", "ports": ["667"]}],
        "sourceRanges": ["35.191.0.0/16", "35.191.192.0/18", "130.211.0.0/22"], "targetTags": [tag]}
    assert by_suffix["rsgfw"]["sourceRanges"] == ["35.199.224.0/19"]
    assert by_suffix["rsgfw"]["allowed"] == [{"IPProtocol": "tcp", "ports": ["667"]},
                                             {"IPProtocol": "udp", "ports": ["665-666"]}, {"IPProtocol": "icmp"}]
    assert (by_suffix["earfw"]["direction"], by_suffix["earfw"]["destinationRanges"]) == ("EGRESS", ["35.199.224.0/19"])
    assert by_suffix["egrfw"]["denied"] == [{"IPProtocol": "tcp", "ports": ["1-666", "668-65535"]},
                                            {"IPProtocol": "udp", "ports": ["1-664", "667-65535"]}]
    assert [r["priority"] for r in rules] == [100, 100, 100, 100, 1000, 1000]
    assert by_suffix["sbntfw"]["sourceRanges"] == ["10.0.1.0/28"] and "targetTags" not in by_suffix["sbntfw"]
    assert by_suffix["tagfw"]["sourceTags"] == [tag] and "targetTags" not in by_suffix["tagfw"]


def test_implicit_broad_rules_are_not_planned():
    rules = va.plan_firewall_rules(_spec(), "net", broad_visible=False)
    assert [r["name"].rsplit("-", 1)[1] for r in rules] == ["hcfw", "rsgfw", "earfw", "egrfw"]


def test_v1_view_drops_v1beta1_only_fields_and_empty_connected_projects():
    stored = {"name": "n", "state": "READY", "createTime": "t", "connectedProjects": []}
    assert va.view(stored, "v1") == {"name": "n", "state": "READY"}
    assert va.view(stored, "v1beta1") == {"name": "n", "state": "READY", "createTime": "t"}


def test_project_number_is_stable_and_twelve_digits():
    assert va.project_number("eg-demo-project") == va.project_number("eg-demo-project")
    assert len(va.project_number("x-project")) == 12
