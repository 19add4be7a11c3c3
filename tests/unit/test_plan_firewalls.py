"""replace_connector_firewalls: names, the pure planner over hand-built rule sets, and the
make-before-break order of the executor (with a small fake of the client factory)."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace
from typing import Any

import pytest

from egress_guard.errors import EgressGuardError
from egress_guard.estate import FirewallRule, firewall_from_json
from egress_guard.events import thaw
from egress_guard.findings import Mode, Outcome, Trigger
from egress_guard.guardrails.connector_firewalls import (
    STAGE_DISABLE_AUTO,
    STAGE_INGRESS_ALLOW,
    STAGE_INGRESS_DENY,
    STAGE_REMOVE_STALE,
    apply_firewalls,
    compact_region,
    decode_aet_name,
    decode_managed_name,
    desired_rules,
    expand_region,
    managed_kinds,
    managed_name,
    plan_firewalls,
)
from egress_guard.names import ConnectorName, NetworkName
from egress_guard.plan import Verdict
from egress_guard.policy import parse_policy_text
from localcloud.backends.compute import KNOWN_REGIONS
from localcloud.backends.vpcaccess import ConnectorSpec, Scaling, plan_firewall_rules

P, R = "eg-demo-project", "europe-west2"
BASE = "https://www.googleapis.com/compute/v1"
NET = NetworkName(P, "net-a")
CONN = ConnectorName(P, R, "conn-a")
TAG = "vpc-connector-europe-west2-conn-a"

ENFORCE = parse_policy_text("""
firewall:
  mode: enforce
  allow: [{target_tags: [db], ports: [tcp:5432, tcp:8000-8100, udp]}, {target_tags: [cache], ports: [tcp:6379]}]
""")
DISABLE = parse_policy_text("""
firewall:
  mode: enforce
  allow: [{target_tags: [db], ports: [tcp:5432]}]
  auto_rules: disable
""")


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize("region", sorted(KNOWN_REGIONS) + ["mexico-central1", "europe-west12"])
def test_region_codes_round_trip_for_every_region(region):
    code = compact_region(region)
    assert "-" not in code and expand_region(code) == region


def test_region_codes_are_short():
    assert compact_region("europe-west2") == "euw2"
    assert compact_region("northamerica-northeast1") == "nane1"
    assert compact_region("asia-southeast1") == "asse1"
    assert compact_region("us-central1") == "usc1"
    assert max(len(compact_region(r)) for r in KNOWN_REGIONS) <= 6


def test_managed_names_decode_back_to_the_connector():
    name = managed_name("egress-guard-", CONN, "deny")
    assert name == "egress-guard-conn-a-euw2-deny"
    decoded = decode_managed_name("egress-guard-", name, P)
    assert decoded is not None and decoded.connector == CONN and decoded.kind == "deny"
    for kind in ("allow0", "allow12", "eallow3", "edeny"):
        assert decode_managed_name("egress-guard-", managed_name("egress-guard-", CONN, kind), P).kind == kind


def test_managed_names_fit_in_63_characters_at_the_limits():
    longest = ConnectorName(P, "northamerica-northeast1", "abcdefghijklmnopqrst")  # 20 characters
    name = managed_name("abcdefghijklmnopqrs-", longest, "eallow99")  # a 20-character prefix
    assert len(name) <= 63
    assert decode_managed_name("abcdefghijklmnopqrs-", name, P).connector == longest


@pytest.mark.parametrize("name", ["egress-guard-conn-a-euw2-other", "egress-guard-conn-a-zz9-deny", "other-conn-a-euw2-deny",
                                  "egress-guard-deny", "egress-guard-Conn-euw2-deny", "aet-europewest2-conn--a-hcfw"])
def test_other_names_do_not_decode_as_managed(name):
    assert decode_managed_name("egress-guard-", name, P) is None


def test_aet_names_decode_like_googles_examples():
    assert decode_aet_name("aet-europewest2-conn--a-sbntfw", P).connector == CONN
    assert decode_aet_name("aet-uscentral1-subnet--1-egrfw", P).connector.name == "subnet-1"
    auto = decode_aet_name("aet-europewest9-webplat--stage--vpc-rsgfw", P)
    assert (auto.connector.region, auto.connector.name, auto.suffix) == ("europe-west9", "webplat-stage-vpc", "rsgfw")
    assert decode_aet_name("aet-europewest2-conn-a-sbntfw", P) is None  # a single hyphen: not Google's encoding
    assert decode_aet_name("aet-europewest2-conn--a-other", P) is None


# ---------------------------------------------------------------------------- states


def google_aet_rules(*, broad: bool = True, disabled: bool = False) -> list[FirewallRule]:
    """The aet-* rules as localcloud's VPC Access creates them (the docs/gcp-facts.md §1.2 table), as Compute returns them."""
    spec = ConnectorSpec(project=P, region=R, name="conn-a", machine_type="e2-micro", scaling=Scaling(2, 3),
                         network="net-a", network_project=P, subnet="sub28", source_cidr="10.0.1.0/28")
    rules = []
    for body in plan_firewall_rules(spec, NET.self_link, broad_visible=broad):
        body = {"kind": "compute#firewall", "id": "1", "selfLink": f"{BASE}/projects/{P}/global/firewalls/{body['name']}",
                "creationTimestamp": "2026-03-02T10:00:00.000-08:00", "logConfig": {"enable": False},
                "description": "", "disabled": disabled and body["name"].endswith(("sbntfw", "tagfw")), **body}
        rules.append(firewall_from_json(body))
    return rules


def as_google_returns(body: dict[str, Any]) -> FirewallRule:
    out = {"kind": "compute#firewall", "id": "2", "creationTimestamp": "2026-03-02T10:00:00.000-08:00",
           "selfLink": f"{BASE}/projects/{P}/global/firewalls/{body['name']}", "logConfig": {"enable": False},
           "disabled": False, **copy.deepcopy(body)}
    return firewall_from_json(out)


def managed_in_place(policy) -> list[FirewallRule]:
    return [as_google_returns(dict(d.body)) for d in desired_rules(CONN, NET, policy.firewall)]


def by_action(plan) -> list[tuple[str, str, int]]:
    return [(c.action.rsplit(".", 1)[1], c.short_name, c.stage) for c in plan.changes]


# ---------------------------------------------------------------------------- the planner


def test_plan_firewalls_new_connector_gets_allow_then_deny_rules():
    plan = plan_firewalls(CONN, NET, google_aet_rules(), ENFORCE)
    assert plan.verdict is Verdict.CHANGE
    assert by_action(plan) == [
        ("insert", "egress-guard-conn-a-euw2-allow0", STAGE_INGRESS_ALLOW),
        ("insert", "egress-guard-conn-a-euw2-allow1", STAGE_INGRESS_ALLOW),
        ("insert", "egress-guard-conn-a-euw2-deny", STAGE_INGRESS_DENY),
    ]
    allow0, allow1, deny = (c.after for c in plan.changes)
    assert allow0 == {
        "name": "egress-guard-conn-a-euw2-allow0", "network": NET.self_link,
        "description": allow0["description"], "direction": "INGRESS", "priority": 980, "sourceTags": [TAG],
        "targetTags": ["db"], "allowed": [{"IPProtocol": "tcp", "ports": ["5432", "8000-8100"]}, {"IPProtocol": "udp"}],
    }
    assert allow1["targetTags"] == ["cache"] and allow1["allowed"] == [{"IPProtocol": "tcp", "ports": ["6379"]}]
    assert deny["direction"] == "INGRESS" and deny["priority"] == 990 and deny["sourceTags"] == [TAG]
    assert deny["denied"] == [{"IPProtocol": "all"}] and "targetTags" not in deny
    for body in (allow0, allow1, deny):
        assert body["description"].startswith(f"managed-by: egress-guard; connector: {CONN.relative};")
    # keep: Google's rules are left exactly as they are
    assert not any(c.short_name.startswith("aet-") for c in plan.changes)


def test_plan_firewalls_disable_patches_only_the_broad_rules_and_last():
    plan = plan_firewalls(CONN, NET, google_aet_rules(), DISABLE)
    assert by_action(plan) == [
        ("insert", "egress-guard-conn-a-euw2-allow0", STAGE_INGRESS_ALLOW),
        ("insert", "egress-guard-conn-a-euw2-deny", STAGE_INGRESS_DENY),
        ("patch", "aet-europewest2-conn--a-sbntfw", STAGE_DISABLE_AUTO),
        ("patch", "aet-europewest2-conn--a-tagfw", STAGE_DISABLE_AUTO),
    ]
    live = {r.name: r for r in google_aet_rules()}
    for change in plan.changes[2:]:
        assert change.after == {"disabled": True}
        assert change.before == live[change.short_name].body  # the previous body, to undo by hand
    assert [stage for stage, _ in plan.stages()] == sorted(stage for stage, _ in plan.stages())


def test_plan_firewalls_never_touches_the_priority_100_rules():
    for policy in (ENFORCE, DISABLE):
        rules = google_aet_rules() + managed_in_place(policy)
        for suffix in ("hcfw", "rsgfw", "earfw", "egrfw"):
            rules = [r if not r.name.endswith(suffix) else firewall_from_json({**r.body, "disabled": True})
                     for r in rules]
        plan = plan_firewalls(CONN, NET, rules, policy)
        assert not any(c.short_name.endswith(("hcfw", "rsgfw", "earfw", "egrfw")) for c in plan.changes)


def test_plan_firewalls_in_place_is_compliant():
    plan = plan_firewalls(CONN, NET, google_aet_rules() + managed_in_place(ENFORCE), ENFORCE)
    assert plan.verdict is Verdict.COMPLIANT and "are in place" in plan.reason
    plan = plan_firewalls(CONN, NET, google_aet_rules(disabled=True) + managed_in_place(DISABLE), DISABLE)
    assert plan.verdict is Verdict.COMPLIANT and "disabled" in plan.reason


def test_plan_firewalls_drift_edited_rule_is_put_back_with_its_previous_body():
    rules = managed_in_place(ENFORCE)
    edited = firewall_from_json({**rules[2].body, "priority": 2000, "sourceTags": ["anything"]})
    plan = plan_firewalls(CONN, NET, google_aet_rules() + rules[:2] + [edited], ENFORCE,
                          context="Managed rule egress-guard-conn-a-euw2-deny was edited by mallory@example.com.")
    (change,) = plan.changes
    assert change.action == "compute.firewalls.update" and change.short_name == "egress-guard-conn-a-euw2-deny"
    assert change.before == edited.body and change.after["priority"] == 990
    assert plan.reason.startswith("Managed rule egress-guard-conn-a-euw2-deny was edited")


def test_plan_firewalls_drift_deleted_rule_is_inserted_again():
    rules = managed_in_place(ENFORCE)
    plan = plan_firewalls(CONN, NET, google_aet_rules() + rules[1:], ENFORCE)
    assert by_action(plan) == [("insert", "egress-guard-conn-a-euw2-allow0", STAGE_INGRESS_ALLOW)]


def test_plan_firewalls_drift_reenabled_broad_rule_is_disabled_again():
    rules = google_aet_rules(disabled=True)
    rules = [firewall_from_json({**r.body, "disabled": False}) if r.name.endswith("tagfw") else r for r in rules]
    plan = plan_firewalls(CONN, NET, rules + managed_in_place(DISABLE), DISABLE)
    assert by_action(plan) == [("patch", "aet-europewest2-conn--a-tagfw", STAGE_DISABLE_AUTO)]


def test_plan_firewalls_implicit_broad_rules_say_there_is_nothing_to_disable():
    plan = plan_firewalls(CONN, NET, google_aet_rules(broad=False), DISABLE)
    assert [a for a, _, _ in by_action(plan)] == ["insert", "insert"]
    assert "implicit" in plan.full_reason() and "nothing to disable" in plan.full_reason()
    plan = plan_firewalls(CONN, NET, google_aet_rules(broad=False) + managed_in_place(DISABLE), DISABLE)
    assert plan.verdict is Verdict.COMPLIANT and "nothing to disable" in plan.full_reason()
    finding = plan.finding(guardrail="replace_connector_firewalls", mode=Mode.ENFORCE, trigger=Trigger())
    assert "implicit" in finding.reason


def test_plan_firewalls_a_foreign_rule_with_a_managed_name_blocks():
    foreign = as_google_returns({"name": "egress-guard-conn-a-euw2-deny", "network": NET.self_link,
                                 "description": "hand-made", "direction": "INGRESS", "priority": 500,
                                 "allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["10.0.0.0/8"]})
    plan = plan_firewalls(CONN, NET, google_aet_rules() + [foreign], ENFORCE)
    assert plan.verdict is Verdict.BLOCKED and not plan.changes
    assert "egress-guard-conn-a-euw2-deny" in plan.reason and "managed-by: egress-guard" in plan.reason


def test_plan_firewalls_removes_only_its_own_stale_rules_and_last():
    old_policy_rules = managed_in_place(ENFORCE)  # allow0, allow1, deny
    other = ConnectorName(P, R, "conn-b")
    others = [as_google_returns(dict(d.body)) for d in desired_rules(other, NET, ENFORCE.firewall)]
    hand_made = as_google_returns({"name": "egress-guard-conn-a-euw2-allow7", "network": NET.self_link,
                                   "description": "someone's", "allowed": [{"IPProtocol": "tcp"}],
                                   "sourceRanges": ["10.0.0.0/8"]})
    current = parse_policy_text("""
firewall: {mode: enforce, allow: [{target_tags: [db], ports: [tcp:5432, tcp:8000-8100, udp]}]}
""")
    plan = plan_firewalls(CONN, NET, google_aet_rules() + old_policy_rules + others + [hand_made], current)
    assert by_action(plan) == [("delete", "egress-guard-conn-a-euw2-allow1", STAGE_REMOVE_STALE)]
    assert plan.changes[0].before == old_policy_rules[1].body and plan.changes[0].after is None


def test_plan_firewalls_egress_rules_allow_then_deny():
    policy = parse_policy_text("""
firewall:
  mode: enforce
  allow: [{target_tags: [db], ports: [tcp:5432]}]
  egress_allow: [{destination_ranges: [10.0.0.0/8], ports: [tcp:443]}]
""")
    plan = plan_firewalls(CONN, NET, google_aet_rules(), policy)
    assert [(a, n.rsplit("-", 1)[1]) for a, n, _ in by_action(plan)] == [
        ("insert", "allow0"), ("insert", "deny"), ("insert", "eallow0"), ("insert", "edeny")]
    eallow, edeny = plan.changes[2].after, plan.changes[3].after
    assert eallow["direction"] == "EGRESS" and eallow["targetTags"] == [TAG] and eallow["priority"] == 980
    assert eallow["destinationRanges"] == ["10.0.0.0/8"] and "sourceTags" not in eallow
    assert edeny["direction"] == "EGRESS" and edeny["priority"] == 990 and edeny["denied"] == [{"IPProtocol": "all"}]
    assert plan.changes[2].stage < plan.changes[3].stage


@pytest.mark.parametrize("text", ["firewall: {mode: enforce}", "firewall: {mode: enforce, allow: [{target_tags: [db], "
                                  "ports: [tcp:5432]}, {target_tags: [c], ports: [udp]}], egress_allow: "
                                  "[{destination_ranges: [10.0.0.0/8], ports: [tcp:443]}]}"], ids=["default", "egress"])
def test_managed_kinds_name_exactly_the_rules_desired_rules_makes(text):
    policy = parse_policy_text(text).firewall  # RuleIndex.rules_for picks a connector's rules by these names
    assert [rule.name for rule in desired_rules(CONN, NET, policy)] == \
        [managed_name(policy.name_prefix, CONN, kind) for kind in managed_kinds(policy)]


def test_plan_firewalls_exemptions():
    policy = parse_policy_text("exemptions: {connectors: [conn-a]}")
    plan = plan_firewalls(CONN, NET, google_aet_rules(), policy)
    assert plan.verdict is Verdict.EXEMPT and not plan.changes
    policy = parse_policy_text("exemptions: {networks: [net-a]}")
    assert plan_firewalls(CONN, NET, google_aet_rules(), policy).verdict is Verdict.EXEMPT


def test_plan_firewalls_dry_run_finding_lists_exactly_the_planned_changes():
    plan = plan_firewalls(CONN, NET, google_aet_rules(), DISABLE)
    finding = plan.finding(guardrail="replace_connector_firewalls", mode=Mode.DRY_RUN, trigger=Trigger())
    assert finding.outcome is Outcome.PLANNED
    assert [(c.action, c.resource) for c in finding.changes] == [(c.action, c.resource) for c in plan.changes]


# ---------------------------------------------------------------------------- the executor's order


class FakeFirewalls:
    """Records the order of writes; ``listing`` is what a re-read returns."""

    def __init__(self, journal: list[str], listing: list[FirewallRule]) -> None:
        self.journal = journal
        self.listing = listing

    def _op(self, what: str) -> Any:
        self.journal.append(what)
        return SimpleNamespace(name=f"op-{len(self.journal)}")

    def insert(self, *, project, firewall_resource, timeout=None):
        return self._op(f"insert {firewall_resource.name}")

    def update(self, *, project, firewall, firewall_resource, timeout=None):
        return self._op(f"update {firewall}")

    def patch(self, *, project, firewall, firewall_resource, timeout=None):
        return self._op(f"patch {firewall}")

    def delete(self, *, project, firewall, timeout=None):
        return self._op(f"delete {firewall}")

    def list(self, *, request, timeout, retry=None):
        from google.cloud import compute_v1

        self.journal.append("list")
        return [compute_v1.Firewall.from_json(json.dumps(thaw(r.body)), ignore_unknown_fields=True) for r in self.listing]


class FakeOperations:
    def __init__(self, journal: list[str]) -> None:
        self.journal = journal

    def wait(self, *, project, operation, timeout):
        from google.cloud import compute_v1

        self.journal.append(f"wait {operation}")
        return compute_v1.Operation(name=operation, status=compute_v1.Operation.Status.DONE)


def fake_clients(journal: list[str], listing: list[FirewallRule]) -> Any:
    return SimpleNamespace(firewalls=FakeFirewalls(journal, listing), global_operations=FakeOperations(journal))


def test_apply_firewalls_makes_before_it_breaks():
    plan = plan_firewalls(CONN, NET, google_aet_rules(), DISABLE)
    journal: list[str] = []
    applied = apply_firewalls(fake_clients(journal, []), plan, NET, timeout=5)
    assert journal == [
        "insert egress-guard-conn-a-euw2-allow0", "wait op-1",
        "insert egress-guard-conn-a-euw2-deny", "wait op-3",  # both managed rules DONE (no re-read: the wait says so)
        "patch aet-europewest2-conn--a-sbntfw", "patch aet-europewest2-conn--a-tagfw",  # ... before any auto rule goes
        "wait op-5", "wait op-6",
    ]
    assert [c.action for c in applied] == ["compute.firewalls.insert"] * 2 + ["compute.firewalls.patch"] * 2


class FailingOperations(FakeOperations):
    """The deny rule's insert ends in error (quota, a conflicting rule): its wait raises."""

    def wait(self, *, project, operation, timeout):
        from google.cloud import compute_v1

        self.journal.append(f"wait {operation}")
        failed = operation == "op-3"
        return compute_v1.Operation(name=operation, status=compute_v1.Operation.Status.DONE, error=compute_v1.Error(
            errors=[compute_v1.Errors(code="QUOTA_EXCEEDED", message="no quota")]) if failed else None)


def test_apply_firewalls_keeps_the_broad_rules_when_a_managed_rule_was_not_made():
    plan = plan_firewalls(CONN, NET, google_aet_rules(), DISABLE)
    journal: list[str] = []
    clients = SimpleNamespace(firewalls=FakeFirewalls(journal, []), global_operations=FailingOperations(journal))
    with pytest.raises(EgressGuardError):
        apply_firewalls(clients, plan, NET, timeout=5)
    assert journal[-1] == "wait op-3" and not any(entry.startswith("patch") for entry in journal)
