"""plan_undo (pure): what undoing a finding writes, and when it refuses."""

from __future__ import annotations

import dataclasses

import pytest

from egress_guard.findings import Change, Finding, Mode, Outcome
from egress_guard.plan import Verdict
from egress_guard.undo import LiveState, NotUndoable, plan_undo, undone_finding
from tests.slack_helpers import load_finding

FW = "projects/proj-1/global/firewalls/"
ROUTER = "projects/proj-1/regions/europe-west2/routers/egress-guard-europe-west2"
DENY = {"name": "egress-guard-deny", "network": "projects/proj-1/global/networks/n", "direction": "INGRESS",
        "priority": 990, "denied": [{"IPProtocol": "all"}], "sourceTags": ["vpc-connector-x"],
        "description": "managed-by: egress-guard"}
AUTO = {"name": "aet-x-sbntfw", "network": "projects/proj-1/global/networks/n", "priority": 1000,
        "allowed": [{"IPProtocol": "all"}], "sourceRanges": ["10.8.0.0/28"], "id": "123"}
NAT = {"name": "egress-guard-nat-europe-west2", "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
       "subnetworks": [{"name": "projects/proj-1/regions/europe-west2/subnetworks/a",
                        "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]}]}


def _finding(*changes: Change, outcome: Outcome = Outcome.REMEDIATED, mode: Mode = Mode.ENFORCE) -> Finding:
    return dataclasses.replace(load_finding("remediated-firewalls"), changes=changes, outcome=outcome, mode=mode,
                               project="proj-1", network="projects/proj-1/global/networks/n", region="europe-west2")


def test_undo_plan_deletes_created_rules_and_re_enables_disabled_ones_newest_first():
    finding = _finding(Change("compute.firewalls.insert", FW + "egress-guard-deny", None, DENY),
                       Change("compute.firewalls.patch", FW + "aet-x-sbntfw", AUTO, {"disabled": True}))
    live = LiveState({FW + "egress-guard-deny": {**DENY, "id": "9", "selfLink": "x"},
                      FW + "aet-x-sbntfw": {**AUTO, "disabled": True}})
    plan = plan_undo(finding, live)
    assert plan.verdict is Verdict.CHANGE
    assert [(c.action, c.short_name, c.after) for c in plan.changes] == [
        ("compute.firewalls.patch", "aet-x-sbntfw", {"disabled": False}),
        ("compute.firewalls.delete", "egress-guard-deny", None)]


def test_undo_plan_removes_the_router_it_created_or_puts_the_nats_back():
    created = _finding(Change("compute.routers.insert", ROUTER, None, {"name": "r", "nats": [NAT]}))
    plan = plan_undo(created, LiveState({ROUTER: {"name": "r", "nats": [NAT], "id": "5"}}))
    assert [(c.action, c.after) for c in plan.changes] == [("compute.routers.delete", None)]

    extended = {**NAT, "subnetworks": NAT["subnetworks"] + [
        {"name": "projects/proj-1/regions/europe-west2/subnetworks/b", "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]}]}
    patched = _finding(Change("compute.routers.patch", ROUTER, {"name": "r", "nats": [NAT]}, {"nats": [extended]}))
    live = {ROUTER: {"name": "r", "nats": [extended], "bgp": {"asn": 64514}, "selfLink": "s"}}
    (change,) = plan_undo(patched, LiveState(live)).changes
    assert change.action == "compute.routers.update"
    assert change.after == {"name": "r", "nats": [NAT], "bgp": {"asn": 64514}}, "only the NATs go back"


def test_undo_plan_refuses_when_the_state_no_longer_matches_and_says_what_differs():
    finding = _finding(Change("compute.firewalls.insert", FW + "egress-guard-deny", None, DENY),
                       Change("compute.routers.insert", ROUTER, None, {"name": "r", "nats": [NAT]}))
    live = LiveState({FW + "egress-guard-deny": {**DENY, "priority": 500}})  # edited, and the router is gone
    plan = plan_undo(finding, live)
    assert plan.verdict is Verdict.BLOCKED and not plan.changes
    assert "egress-guard-deny: changed priority" in plan.reason
    assert "egress-guard-europe-west2: it no longer exists" in plan.reason
    assert "nothing was changed" in plan.reason


@pytest.mark.parametrize("outcome, mode", [(Outcome.PLANNED, Mode.DRY_RUN), (Outcome.COMPLIANT, Mode.ENFORCE),
                                           (Outcome.UNDONE, Mode.ENFORCE)])
def test_undo_plan_refuses_a_finding_that_changed_nothing(outcome, mode):
    finding = _finding(Change("compute.firewalls.insert", FW + "egress-guard-deny", None, DENY),
                       outcome=outcome, mode=mode)
    with pytest.raises(NotUndoable, match="nothing to undo"):
        plan_undo(finding, LiveState({}))


def test_undone_finding_has_a_stable_id_and_keeps_the_labels():
    original = dataclasses.replace(_finding(Change("compute.routers.insert", ROUTER, None, {"nats": [NAT]})),
                                   labels={"team": "payments"})
    plan = plan_undo(original, LiveState({ROUTER: {"nats": [NAT]}}))
    applied = [c.to_change() for c in plan.changes]
    first, again = (undone_finding(original, plan, applied, principal="bob@x") for _ in range(2))
    assert first.outcome is Outcome.UNDONE and first.id == again.id != original.id
    assert first.labels == {"team": "payments"} and "bob@x undid finding" in first.reason


def test_undo_warns_when_the_guardrail_would_redo_it():
    from egress_guard.policy import parse_policy_text
    from egress_guard.undo import redo_warning

    finding = _finding(Change("compute.firewalls.insert", FW + "egress-guard-deny", None, DENY))
    assert finding.guardrail == "replace_connector_firewalls"
    enforce = parse_policy_text("firewall: {mode: enforce, allow: [{target_tags: [db], ports: [tcp:5432]}]}")
    assert "will remediate again" in redo_warning(enforce, finding)
    exempt = parse_policy_text("firewall: {mode: enforce, allow: [{target_tags: [db], ports: [tcp:5432]}]}\n"
                               "exemptions: {networks: [n]}")
    assert redo_warning(exempt, finding) is None
    assert redo_warning(parse_policy_text(""), finding) is None, "the firewall guardrail starts in dry-run"
