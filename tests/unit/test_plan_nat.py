"""ensure_nat's pure planner over hand-built states: every branch, and the bodies it would send."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from egress_guard.egress import Egress, EgressPoint, NetworkInterface, Via
from egress_guard.estate import Router, Workload, router_from_json
from egress_guard.events import thaw
from egress_guard.findings import Mode, Outcome, Trigger
from egress_guard.guardrails.ensure_nat import covering, nat_body, plan_nat, router_name_for, workload_plan
from egress_guard.names import ConnectorName, NetworkName, RunJobName, RunServiceName, SubnetworkName
from egress_guard.plan import Verdict
from egress_guard.policy import Policy, parse_policy_text

P, R = "eg-demo-project", "europe-west2"
BASE = "https://www.googleapis.com/compute/v1"
NET = NetworkName(P, "net-a")
OTHER_NET = NetworkName(P, "net-b")
SUB = SubnetworkName(P, R, "sub28")
OTHER_SUB = SubnetworkName(P, R, "sub-other")
CONN = ConnectorName(P, R, "conn-a")
SUBJECT = CONN.ref
POLICY = Policy()


def subnet_point(subnet: SubnetworkName = SUB, via: Via = Via.CONNECTOR) -> EgressPoint:
    return EgressPoint(P, R, NET, subnet, None, via, CONN if via is Via.CONNECTOR else None)


def range_point() -> EgressPoint:
    return EgressPoint(P, R, NET, None, "10.8.0.0/28", Via.CONNECTOR, CONN)


def nat(name: str, option: str, *subnets: tuple[SubnetworkName, list[str]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "natIpAllocateOption": "AUTO_ONLY", "sourceSubnetworkIpRangesToNat": option,
                            "type": "PUBLIC", "endpointTypes": ["ENDPOINT_TYPE_VM"], **extra}
    if subnets:
        body["subnetworks"] = [{"name": f"{BASE}/{s.relative}", "sourceIpRangesToNat": ranges} for s, ranges in subnets]
    return body


def router(name: str, *nats: dict[str, Any], network: NetworkName = NET) -> Router:
    body: dict[str, Any] = {"kind": "compute#router", "id": "123", "name": name, "network": network.self_link,
                            "region": f"{BASE}/projects/{P}/regions/{R}",
                            "selfLink": f"{BASE}/projects/{P}/regions/{R}/routers/{name}",
                            "encryptedInterconnectRouter": False}
    if nats:
        body["nats"] = list(nats)
    return router_from_json(body, project=P, region=R)


# ---------------------------------------------------------------------------- compliant


@pytest.mark.parametrize("option", ["ALL_SUBNETWORKS_ALL_IP_RANGES", "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES"])
@pytest.mark.parametrize("point", [subnet_point(), range_point()], ids=["subnet", "range"])
def test_plan_nat_all_subnetworks_nat_covers_subnets_and_hidden_ranges(option, point):
    plan = plan_nat(SUBJECT, point, [router("user-router", nat("user-nat", option))], POLICY)
    assert plan.verdict is Verdict.COMPLIANT and not plan.changes
    assert "user-nat" in plan.reason and "user-router" in plan.reason


@pytest.mark.parametrize("ranges", [["PRIMARY_IP_RANGE"], ["ALL_IP_RANGES"],
                                    ["PRIMARY_IP_RANGE", "LIST_OF_SECONDARY_IP_RANGES"]])
def test_plan_nat_list_nat_naming_the_subnet_covers_it(ranges):
    routers = [router("r1", nat("n1", "LIST_OF_SUBNETWORKS", (OTHER_SUB, ["ALL_IP_RANGES"]), (SUB, ranges)))]
    assert plan_nat(SUBJECT, subnet_point(), routers, POLICY).verdict is Verdict.COMPLIANT


def test_plan_nat_ignores_routers_of_other_networks_and_private_nats():
    routers = [router("elsewhere", nat("n", "ALL_SUBNETWORKS_ALL_IP_RANGES"), network=OTHER_NET),
               router("r1", nat("private", "LIST_OF_SUBNETWORKS", (SUB, ["ALL_IP_RANGES"]), type="PRIVATE"))]
    assert covering(subnet_point(), routers) is None
    plan = plan_nat(SUBJECT, subnet_point(), routers, POLICY)
    assert plan.verdict is Verdict.CHANGE
    assert [c.resource for c in plan.changes] == [f"projects/{P}/regions/{R}/routers/r1"]


# ---------------------------------------------------------------------------- create router


def test_plan_nat_no_router_creates_the_router_with_its_nat_in_one_insert():
    plan = plan_nat(SUBJECT, subnet_point(), [], POLICY)
    assert plan.verdict is Verdict.CHANGE
    (change,) = plan.changes
    assert change.action == "compute.routers.insert"
    assert change.resource == f"projects/{P}/regions/{R}/routers/egress-guard-{R}"
    assert change.before is None
    body = change.after
    assert body["name"] == f"egress-guard-{R}"
    assert body["network"] == f"{BASE}/projects/{P}/global/networks/net-a"
    assert body["description"].startswith("managed-by: egress-guard")
    assert body["nats"] == [{
        "name": f"egress-guard-nat-{R}",
        "natIpAllocateOption": "AUTO_ONLY",
        "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
        "subnetworks": [{"name": f"{BASE}/projects/{P}/regions/{R}/subnetworks/sub28",
                         "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]}],
        "minPortsPerVm": 64,
        "logConfig": {"enable": True, "filter": "ERRORS_ONLY"},
    }]
    finding = plan.finding(guardrail="ensure_nat", mode=Mode.DRY_RUN, trigger=Trigger())
    assert finding.outcome is Outcome.PLANNED and finding.changes[0].after == body


def test_plan_nat_range_connector_without_any_nat_gets_all_subnetworks():
    plan = plan_nat(SUBJECT, range_point(), [], POLICY)
    (change,) = plan.changes
    nat_sent = change.after["nats"][0]
    assert nat_sent["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert "subnetworks" not in nat_sent
    assert "hidden" in plan.reason


def test_plan_nat_direct_vpc_subnet_gets_a_list_nat():
    point = subnet_point(SubnetworkName(P, R, "net-a"), via=Via.DIRECT_VPC)
    (change,) = plan_nat(RunJobName(P, R, "nightly").ref, point, [], POLICY).changes
    assert change.after["nats"][0]["subnetworks"][0]["name"].endswith("/subnetworks/net-a")
    assert plan_nat(RunJobName(P, R, "nightly").ref, point, [], POLICY).subject.type == "run.job"


# ---------------------------------------------------------------------------- add and extend


def test_plan_nat_adds_its_nat_to_an_existing_router_without_touching_user_nats():
    user_nat = nat("user-nat", "LIST_OF_SUBNETWORKS", (OTHER_SUB, ["ALL_IP_RANGES"]), minPortsPerVm=128)
    existing = router("user-router", user_nat)
    plan = plan_nat(SUBJECT, subnet_point(), [existing], POLICY)
    (change,) = plan.changes
    assert change.action == "compute.routers.patch"
    assert change.resource == existing.relative
    assert change.before == existing.body  # the whole router as read: undo by hand
    nats = thaw(change.after)["nats"]  # the body sent; parts read are kept read-only in the plan
    assert nats[0] == user_nat  # read-modify-write: the user's NAT is sent back unchanged
    assert nats[1]["name"] == f"egress-guard-nat-{R}"
    assert nats[1]["subnetworks"] == [{"name": SUB.self_link, "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]}]
    assert set(change.after) == {"nats"}


def test_plan_nat_prefers_its_own_router_name_when_several_routers_exist():
    routers = [router("aaa-router"), router(f"egress-guard-{R}")]
    (change,) = plan_nat(SUBJECT, subnet_point(), routers, POLICY).changes
    assert change.resource.endswith(f"/routers/egress-guard-{R}")
    (change,) = plan_nat(SUBJECT, subnet_point(), [router("bbb"), router("aaa")], POLICY).changes
    assert change.resource.endswith("/routers/aaa")


def test_plan_nat_extends_its_own_list_nat_with_the_subnet():
    own = nat(f"egress-guard-nat-{R}", "LIST_OF_SUBNETWORKS", (OTHER_SUB, ["PRIMARY_IP_RANGE"]), minPortsPerVm=64)
    user = nat("user-nat", "LIST_OF_SUBNETWORKS", (SubnetworkName(P, R, "third"), ["ALL_IP_RANGES"]))
    existing = router("shared-router", user, own)
    plan = plan_nat(SUBJECT, subnet_point(), [existing], POLICY)
    (change,) = plan.changes
    assert change.action == "compute.routers.patch"
    nats = thaw(change.after)["nats"]  # the body sent; parts read are kept read-only in the plan
    assert nats[0] == user
    assert nats[1]["name"] == own["name"] and nats[1]["minPortsPerVm"] == 64
    assert [s["name"] for s in nats[1]["subnetworks"]] == [OTHER_SUB.self_link, SUB.self_link]
    assert "add subnet sub28 to egress-guard's NAT" in plan.reason


def test_plan_nat_adds_the_primary_range_to_a_subnet_listed_with_secondary_ranges_only():
    own = nat(f"egress-guard-nat-{R}", "LIST_OF_SUBNETWORKS", (SUB, ["LIST_OF_SECONDARY_IP_RANGES"]))
    (change,) = plan_nat(SUBJECT, subnet_point(), [router("r", own)], POLICY).changes
    (entry,) = change.after["nats"][0]["subnetworks"]
    assert entry["sourceIpRangesToNat"] == ["LIST_OF_SECONDARY_IP_RANGES", "PRIMARY_IP_RANGE"]


# ---------------------------------------------------------------------------- blocked


def test_plan_nat_range_connector_with_another_nat_is_blocked_with_what_to_do():
    routers = [router("user-router", nat("user-nat", "LIST_OF_SUBNETWORKS", (OTHER_SUB, ["ALL_IP_RANGES"])))]
    plan = plan_nat(SUBJECT, range_point(), routers, POLICY)
    assert plan.verdict is Verdict.BLOCKED and plan.changes == ()
    reason = plan.reason
    assert "10.8.0.0/28" in reason and "user-nat on router user-router" in reason
    assert "only NAT" in reason or "sole NAT" in reason
    assert "--subnet=SUBNET" in reason and "gcloud compute routers nats update user-nat" in reason
    assert "changed nothing" in reason
    finding = plan.finding(guardrail="ensure_nat", mode=Mode.ENFORCE, trigger=Trigger())
    assert finding.outcome is Outcome.BLOCKED and finding.changes == ()


def test_plan_nat_own_nat_name_taken_by_a_nat_it_cannot_extend_is_blocked():
    taken = nat(f"egress-guard-nat-{R}", "LIST_OF_SUBNETWORKS", (OTHER_SUB, ["ALL_IP_RANGES"]), type="PRIVATE")
    plan = plan_nat(SUBJECT, subnet_point(), [router("r", taken)], Policy())
    # A private NAT of that name is "ours" by name and LIST: extended, never duplicated.
    assert plan.verdict is Verdict.CHANGE and len(plan.changes[0].after["nats"]) == 1


# ---------------------------------------------------------------------------- exempt, drift, policy


@pytest.mark.parametrize("exemptions, words", [
    ("{projects: [eg-demo-project]}", "exemptions.projects"),
    ("{networks: [net-a]}", "exemptions.networks"),
    ("{networks: [projects/eg-demo-project/global/networks/net-a]}", "exemptions.networks"),
    ("{connectors: [conn-a]}", "exemptions.connectors"),
])
def test_plan_nat_exemptions(exemptions, words):
    policy = parse_policy_text(f"exemptions: {exemptions}")
    plan = plan_nat(SUBJECT, subnet_point(), [], policy)
    assert plan.verdict is Verdict.EXEMPT and words in plan.reason and not plan.changes


def test_plan_nat_drift_puts_a_removed_nat_back_and_says_why():
    drift = "Router egress-guard-europe-west2 was changed (v1.compute.routers.patch)."
    plan = plan_nat(SUBJECT, subnet_point(), [router(f"egress-guard-{R}")], POLICY, drift=drift)
    assert plan.reason.startswith(drift)
    (change,) = plan.changes
    assert change.action == "compute.routers.patch"
    assert change.after["nats"][0]["name"] == f"egress-guard-nat-{R}"


def test_nat_body_follows_the_policy():
    policy = parse_policy_text("""
nat:
  name_prefix: corp
  ip_allocation: [nat-ip-1, projects/eg-demo-project/regions/us-east1/addresses/elsewhere]
  min_ports_per_vm: 1024
  log_filter: null
""")
    body = nat_body(subnet_point(), policy, all_subnetworks=False)
    assert body["name"] == f"corp-nat-{R}"
    assert body["natIpAllocateOption"] == "MANUAL_ONLY"
    assert body["natIps"] == [f"{BASE}/projects/{P}/regions/{R}/addresses/nat-ip-1"]  # only this region's
    assert body["minPortsPerVm"] == 1024
    assert body["logConfig"] == {"enable": False}
    (change,) = plan_nat(SUBJECT, subnet_point(), [], policy).changes
    assert change.after["name"] == f"corp-{R}"


# ---------------------------------------------------------------------------- workloads


def workload(**kw: Any) -> Workload:
    fields: dict[str, Any] = dict(name=RunServiceName(P, R, "web"), labels=MappingProxyType({}), connector=CONN,
                                  egress=Egress.ALL_TRAFFIC, network_interfaces=())
    fields.update(kw)
    return Workload(**fields)


def test_workload_plan_private_ranges_only_is_compliant_without_reading_more():
    plan = workload_plan(workload(egress=Egress.PRIVATE_RANGES_ONLY), POLICY, project=P)
    assert plan is not None and plan.verdict is Verdict.COMPLIANT and "private-ranges-only" in plan.reason


def test_workload_plan_without_vpc_is_compliant():
    plan = workload_plan(workload(connector=None), POLICY, project=P)
    assert plan is not None and plan.verdict is Verdict.COMPLIANT and "no connector" in plan.reason


def test_workload_plan_label_and_connector_exemptions():
    plan = workload_plan(workload(labels=MappingProxyType({"egress-guard": "skip"})), POLICY, project=P)
    assert plan is not None and plan.verdict is Verdict.EXEMPT and "egress-guard=skip" in plan.reason
    policy = parse_policy_text("exemptions: {connectors: [conn-a]}")
    plan = workload_plan(workload(), policy, project=P)
    assert plan is not None and plan.verdict is Verdict.EXEMPT


def test_workload_plan_all_traffic_needs_the_nat_check():
    assert workload_plan(workload(), POLICY, project=P) is None
    direct = workload(connector=None, network_interfaces=(NetworkInterface(NET, None),))
    assert workload_plan(direct, POLICY, project=P) is None


# ---------------------------------------------------------------------------- router names across networks


def test_plan_nat_router_name_taken_by_another_network_gets_the_network_in_its_name():
    elsewhere = router(f"egress-guard-{R}", nat(f"egress-guard-nat-{R}", "ALL_SUBNETWORKS_ALL_IP_RANGES"),
                       network=OTHER_NET)
    plan = plan_nat(SUBJECT, subnet_point(), [elsewhere], POLICY)
    (change,) = plan.changes
    assert change.action == "compute.routers.insert"
    assert change.after["name"] == f"egress-guard-{R}-net-a" and change.after["network"] == NET.self_link


def test_plan_nat_uses_its_network_named_router_when_it_exists():
    routers = [router(f"egress-guard-{R}", network=OTHER_NET), router(f"egress-guard-{R}-net-a"), router("aaa")]
    (change,) = plan_nat(SUBJECT, subnet_point(), routers, POLICY).changes
    assert change.action == "compute.routers.patch" and change.resource.endswith(f"/routers/egress-guard-{R}-net-a")


def test_plan_nat_both_router_names_taken_elsewhere_is_blocked():
    routers = [router(f"egress-guard-{R}", network=OTHER_NET), router(f"egress-guard-{R}-net-a", network=OTHER_NET)]
    plan = plan_nat(SUBJECT, subnet_point(), routers, POLICY)
    assert plan.verdict is Verdict.BLOCKED and "gcloud compute routers create" in plan.reason


def test_router_names_stay_within_63_characters():
    long_net = NetworkName(P, "n" * 63)
    point = EgressPoint(P, "northamerica-northeast1", long_net, SubnetworkName(P, "northamerica-northeast1", "s"),
                        None, Via.DIRECT_VPC)
    taken = [router("egress-guard-northamerica-northeast1", network=OTHER_NET)]
    name = router_name_for(point, parse_policy_text("nat: {name_prefix: abcdefghijklmnopqrstuvwxyzabcd}"), taken=[
        Router(P, "northamerica-northeast1", "abcdefghijklmnopqrstuvwxyzabcd-northamerica-northeast1", OTHER_NET.relative,
               (), {})] + taken)
    assert name is not None and len(name) <= 63
