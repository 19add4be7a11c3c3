"""sweep's pure parts: one region's NAT subjects planned together (writes merged per router), the
rule index giving each connector's plan exactly what the planner would pick from every rule, and
backfill's window parsing and deduplication."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from egress_guard.backfill import audit_filter, deduplicate, parse_since
from egress_guard.egress import EgressPoint, Via
from egress_guard.estate import firewall_from_json
from egress_guard.events import thaw
from egress_guard.guardrails.connector_firewalls import auto_rule_name, desired_rules, managed_name, plan_firewalls
from egress_guard.names import ConnectorName, NetworkName, SubnetworkName
from egress_guard.plan import Verdict
from egress_guard.policy import Policy, parse_policy_text
from egress_guard.sweep import NatSubject, RuleIndex, plan_nat_region
from localcloud.backends.vpcaccess import ConnectorSpec, Scaling, plan_firewall_rules
from tests.unit.test_plan_nat import BASE, NET, OTHER_NET, P, R, nat, router

POLICY = Policy()


def subnet_subject(name: str, network: NetworkName = NET) -> NatSubject:
    connector = ConnectorName(P, R, name)
    return NatSubject(connector.ref, EgressPoint(P, R, network, SubnetworkName(P, R, f"s-{name}"), None,
                                                 Via.CONNECTOR, connector))


def range_subject(name: str) -> NatSubject:
    connector = ConnectorName(P, R, name)
    return NatSubject(connector.ref, EgressPoint(P, R, NET, None, "10.8.0.0/28", Via.CONNECTOR, connector))


# ---------------------------------------------------------------------------- NAT, one region at once


def test_plan_nat_region_merges_three_subnets_into_one_router_insert():
    decisions, writes = plan_nat_region([subnet_subject(n) for n in ("c1", "c2", "c3")], [], POLICY)
    (write,) = writes.values()
    assert write.action == "compute.routers.insert"
    (nat_body,) = write.after["nats"]
    assert [s["name"].rsplit("/", 1)[1] for s in nat_body["subnetworks"]] == ["s-c1", "s-c2", "s-c3"]
    assert [d.plan.verdict for d in decisions] == [Verdict.CHANGE] * 3
    assert all(d.router == write.resource for d in decisions)
    # The first subject's finding carries the write; the others name the router, not its body again.
    assert decisions[0].plan.changes == (write,)
    assert [(c.action, c.resource, c.before, c.after) for d in decisions[1:] for c in d.plan.changes] == [
        (write.action, write.resource, None, None)] * 2
    assert all("shown in full in the finding of c1" in d.plan.reason for d in decisions[1:])


def test_plan_nat_region_extends_an_existing_router_with_one_patch_keeping_the_body_read():
    existing = router("r1")
    decisions, writes = plan_nat_region([subnet_subject("c1"), subnet_subject("c2")], [existing], POLICY)
    (write,) = writes.values()
    assert write.action == "compute.routers.patch" and write.before == existing.body
    (nat_body,) = write.after["nats"]
    assert len(nat_body["subnetworks"]) == 2


def test_plan_nat_region_plans_range_connectors_first_and_covers_the_rest_with_that_write():
    decisions, writes = plan_nat_region([subnet_subject("a-subnet"), range_subject("z-range")], [], POLICY)
    (write,) = writes.values()
    assert write.after["nats"][0]["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    by_name = {d.subject.ref.name.rsplit("/", 1)[1]: d for d in decisions}
    assert by_name["a-subnet"].router == write.resource  # covered by the write planned for the range connector
    assert by_name["z-range"].plan.changes == (write,)
    assert [(c.resource, c.after) for c in by_name["a-subnet"].plan.changes] == [(write.resource, None)]
    assert "covers it" in by_name["a-subnet"].plan.reason


def test_plan_nat_region_leaves_compliant_and_blocked_subjects_alone():
    covered = router("r1", nat("user-nat", "LIST_OF_SUBNETWORKS",
                               (SubnetworkName(P, R, "s-c1"), ["PRIMARY_IP_RANGE"])))
    decisions, writes = plan_nat_region([subnet_subject("c1"), range_subject("c2")], [covered], POLICY)
    verdicts = {d.subject.ref.name.rsplit("/", 1)[1]: d.plan.verdict for d in decisions}
    assert verdicts == {"c1": Verdict.COMPLIANT, "c2": Verdict.BLOCKED}
    assert writes == {}


def test_plan_nat_region_keeps_networks_apart():
    decisions, writes = plan_nat_region([subnet_subject("c1"), subnet_subject("c2", OTHER_NET)], [], POLICY)
    assert len(writes) == 2  # one router per network; the second is named after its network
    assert len({w.resource for w in writes.values()}) == 2


# ---------------------------------------------------------------------------- the rule index


ENFORCE_DISABLE = parse_policy_text("""
firewall:
  mode: enforce
  allow: [{target_tags: [db], ports: [tcp:5432]}]
  auto_rules: disable
""")


def _aet_rules(connector: str) -> list[dict[str, Any]]:
    spec = ConnectorSpec(project=P, region=R, name=connector, machine_type="e2-micro", scaling=Scaling(2, 3),
                         network="net-a", network_project=P, subnet=f"s-{connector}", source_cidr="10.0.0.0/28")
    return plan_firewall_rules(spec, f"{BASE}/{NET.relative}", broad_visible=True)


def _estate(policy: Policy) -> list[Any]:
    """aet-* rules of five connectors, the managed rules of some (one edited, one stale, one
    foreign with a managed name), and unrelated rules."""
    bodies: list[dict[str, Any]] = []
    for name in ("c1", "c2", "c3", "c4", "c5"):
        bodies += _aet_rules(name)
    c1, c2 = ConnectorName(P, R, "c1"), ConnectorName(P, R, "c2")
    for rule in desired_rules(c1, NET, policy.firewall):
        bodies.append(dict(rule.body))
    edited = dict(desired_rules(c2, NET, policy.firewall)[0].body)
    edited["priority"] = 5
    bodies.append(edited)
    bodies.append({"name": managed_name(policy.firewall.name_prefix, c2, "allow7"), "network": f"{BASE}/{NET.relative}",
                   "description": "managed-by: egress-guard; stale", "direction": "INGRESS", "priority": 980,
                   "sourceTags": ["x"], "allowed": [{"IPProtocol": "tcp"}]})
    bodies.append({"name": managed_name(policy.firewall.name_prefix, ConnectorName(P, R, "c3"), "deny"),
                   "network": f"{BASE}/{NET.relative}", "description": "someone else's", "direction": "INGRESS",
                   "priority": 990, "sourceTags": ["x"], "denied": [{"IPProtocol": "all"}]})
    bodies.append({"name": "allow-ssh", "network": f"{BASE}/{NET.relative}", "direction": "INGRESS",
                   "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]})
    bodies.append({"name": auto_rule_name(ConnectorName(P, R, "c1"), "sbntfw"),
                   "network": f"{BASE}/{OTHER_NET.relative}", "direction": "INGRESS",
                   "sourceRanges": ["10.0.0.0/28"], "allowed": [{"IPProtocol": "all"}]})
    return [firewall_from_json(b) for b in bodies]


@pytest.mark.parametrize("policy", [POLICY, ENFORCE_DISABLE], ids=["default", "enforce-disable"])
@pytest.mark.parametrize("name", ["c1", "c2", "c3", "c4", "c5", "c9"])
def test_rule_index_gives_each_connector_the_plan_all_rules_give(policy, name):
    rules = _estate(policy)
    connector = ConnectorName(P, R, name)
    mine = [r for r in rules if r.network == NET.relative]
    from_json = RuleIndex.from_json({r.name: json.dumps(thaw(r.body)) for r in mine}, policy, P)
    parsed = RuleIndex.from_json({r.name: thaw(r.body) for r in mine}, policy, P)  # as sweep keeps them
    for index in (RuleIndex(mine, policy, P), from_json, parsed):
        assert plan_firewalls(connector, NET, index.rules_for(connector, NET), policy) == \
            plan_firewalls(connector, NET, rules, policy)


# ---------------------------------------------------------------------------- backfill's window

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, back", [("2h", timedelta(hours=2)), ("90m", timedelta(minutes=90)),
                                        ("1d12h", timedelta(days=1, hours=12)), ("45s", timedelta(seconds=45))])
def test_parse_since_reads_durations(text, back):
    assert parse_since(text, now=NOW) == NOW - back


def test_parse_since_reads_an_rfc3339_time():
    assert parse_since("2026-01-31T08:00:00Z", now=NOW) == datetime(2026, 1, 31, 8, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, says", [("2x", "neither a duration"), ("", "neither a duration"), ("0h", "empty"),
                                        ("401d", "400 days"), ("2026-02-01T00:00:00Z", "future"), ("h", "neither")])
def test_parse_since_refuses_what_it_cannot_read(text, says):
    with pytest.raises(ValueError, match=says):
        parse_since(text, now=NOW)


def test_audit_filter_names_every_trigger_method_and_the_window():
    text = audit_filter(P, NOW)
    assert text.startswith(f'logName="projects/{P}/logs/cloudaudit.googleapis.com%2Factivity"')
    assert '"v1.compute.firewalls.delete"' in text
    assert '"google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"' in text
    assert 'timestamp>="2026-01-31T12:00:00.000000Z"' in text and "principalEmail" not in text
    own = audit_filter(P, NOW, exclude_principals=["b@x.iam.gserviceaccount.com", "a@x.iam.gserviceaccount.com"])
    assert own.endswith(' AND NOT protoPayload.authenticationInfo.principalEmail=("a@x.iam.gserviceaccount.com" OR '
                        '"b@x.iam.gserviceaccount.com")')


def _entry(insert_id: str, op: str | None = None, *, first: bool = False, last: bool = False,
           code: int = 0) -> dict[str, Any]:
    entry: dict[str, Any] = {"insertId": insert_id, "logName": f"projects/{P}/logs/x", "timestamp": insert_id,
                             "protoPayload": {"methodName": "m", **({"status": {"code": code}} if code else {})}}
    if op:
        entry["operation"] = {"id": op, "producer": "compute.googleapis.com", **({"first": True} if first else {}),
                              **({"last": True} if last else {})}
    return entry


def test_deduplicate_keeps_one_entry_per_operation_the_one_that_tells_how_it_ended():
    entries = [_entry("1", "op-a", first=True), _entry("2", "op-b", first=True), _entry("3"),
               _entry("4", "op-a", last=True), _entry("5", "op-b", last=True, code=3), _entry("3")]
    assert [e["insertId"] for e in deduplicate(entries)] == ["4", "5", "3"]


# ---------------------------------------------------------------------------------------------
# the rules a sweep holds: compressed chunks, gathered page by page
# ---------------------------------------------------------------------------------------------
def test_rule_packer_keeps_every_rule_of_each_network_across_chunks(monkeypatch):
    """Pages add each network's rules; text is compressed whenever CHUNK_CHARS gathers, so a network
    ends with several chunks: reading them back gives every rule once, on its own network."""
    from egress_guard.sweep.inventory import Inventory, RulePacker, Rules

    monkeypatch.setattr(RulePacker, "CHUNK_CHARS", 1000)  # a chunk every few pages
    packer = RulePacker()
    networks = [NET, OTHER_NET]
    for page in range(6):
        for n, network in enumerate(networks):
            packer.add(network.relative, [{"name": f"r{page}-{n}-{k}", "network": network.relative, "priority": k}
                                          for k in range(3)])
        packer.add(NET.relative, [])  # a page with nothing kept on a network adds nothing
    packer.add(NET.relative, [{"name": "last", "network": NET.relative}])  # below CHUNK_CHARS: packed at the end
    packed = packer.packed()
    assert all(len(chunks) > 1 for chunks in packed.values())

    inventory = Inventory(project=P, regions=(R,), run_regions=(R,), connectors={}, workloads=(), subnetworks={},
                          routers={}, firewalls=Rules.ready(packed), network_projects=frozenset({P}),
                          failed_projects=frozenset())
    for n, network in enumerate(networks):
        bodies = inventory.rule_bodies(network)
        assert sorted(bodies) == sorted([f"r{page}-{n}-{k}" for page in range(6) for k in range(3)]
                                        + (["last"] if network == NET else []))
        assert {b["network"] for b in bodies.values()} == {network.relative}
    assert not inventory.rules_unreadable(P)
