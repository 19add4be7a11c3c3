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


# --- one remediation reported by several findings (several instances per function) ----------------

TAGFW = {**AUTO, "name": "aet-x-tagfw", "sourceRanges": [], "sourceTags": ["vpc-connector-x"], "id": "124"}
PATCH_SBNTFW = Change("compute.firewalls.patch", FW + "aet-x-sbntfw", AUTO, {"disabled": True})
PATCH_TAGFW = Change("compute.firewalls.patch", FW + "aet-x-tagfw", TAGFW, {"disabled": True})
INSERT_DENY = Change("compute.firewalls.insert", FW + "egress-guard-deny", None, DENY)


def _from(trigger: str, time: str, *changes: Change) -> Finding:
    """A remediated finding of one event (its trigger), made at ``time``."""
    base = _finding(*changes)
    return dataclasses.replace(base, trigger=dataclasses.replace(base.trigger, insertId=trigger, operationId=""),
                               time=time, id="")


REMEDIATED = {FW + "egress-guard-deny": {**DENY, "id": "9"}, FW + "aet-x-sbntfw": {**AUTO, "disabled": True},
              FW + "aet-x-tagfw": {**TAGFW, "disabled": True}}
BACK = {FW + "aet-x-sbntfw": {**AUTO, "disabled": False}, FW + "aet-x-tagfw": TAGFW}


def test_findings_reporting_one_idempotent_patch_are_one_remediation_undone_together():
    # The connector's creation and its aet-* rule's insertion, handled at once by two instances:
    # both disabled the broad rules (a patch is idempotent), only one could insert the deny.
    creation = _from("connector-created", "2026-01-01T00:00:01.000Z", INSERT_DENY, PATCH_SBNTFW, PATCH_TAGFW)
    rule_seen = _from("aet-rule-inserted", "2026-01-01T00:00:02.000Z", PATCH_SBNTFW, PATCH_TAGFW)
    unrelated = _from("other", "2026-01-01T00:00:03.000Z",
                      Change("compute.routers.insert", ROUTER, None, {"name": "r", "nats": [NAT]}))
    archive = [creation, rule_seen, unrelated]
    assert creation.id != rule_seen.id
    from egress_guard.undo import duplicates_of

    assert duplicates_of(rule_seen, archive) == (creation,)
    assert duplicates_of(creation, archive) == (rule_seen,)

    plan = plan_undo(rule_seen, LiveState(REMEDIATED), duplicates_of(rule_seen, archive))
    assert plan.verdict is Verdict.CHANGE and creation.id in plan.reason
    assert [(c.action, c.short_name) for c in plan.changes] == [
        ("compute.firewalls.patch", "aet-x-tagfw"), ("compute.firewalls.patch", "aet-x-sbntfw"),
        ("compute.firewalls.delete", "egress-guard-deny")], "re-enable first, then the managed deny goes"

    # After that undo, undoing the other finding is not refused: it is already undone.
    again = plan_undo(creation, LiveState(BACK), duplicates_of(creation, archive))
    assert again.verdict is Verdict.COMPLIANT and not again.changes
    assert "already undone" in again.reason and "nothing was changed" in again.reason
    done = undone_finding(creation, again, (), principal="bob@x")
    assert done.outcome is Outcome.UNDONE and not done.changes and "already undone" in done.reason


def test_copies_of_one_finding_id_are_undone_as_the_union_of_their_changes():
    # One event handled by two instances: one id, one copy with the insert, the other without.
    first = _from("one-event", "2026-01-01T00:00:01.000Z", INSERT_DENY, PATCH_SBNTFW)
    second = _from("one-event", "2026-01-01T00:00:02.000Z", PATCH_SBNTFW)
    assert first.id == second.id
    from egress_guard.undo import duplicates_of, pick

    assert pick([first, second], first.id) is second, "the latest copy that made changes"
    plan = plan_undo(second, LiveState(REMEDIATED), duplicates_of(second, [first, second]))
    assert [(c.action, c.short_name) for c in plan.changes] == [
        ("compute.firewalls.patch", "aet-x-sbntfw"), ("compute.firewalls.delete", "egress-guard-deny")]


def test_an_undo_still_refuses_a_manual_edit_of_a_duplicate_and_a_finding_undone_part_way():
    creation = _from("connector-created", "2026-01-01T00:00:01.000Z", INSERT_DENY, PATCH_SBNTFW)
    rule_seen = _from("aet-rule-inserted", "2026-01-01T00:00:02.000Z", PATCH_SBNTFW)
    edited = {**REMEDIATED, FW + "egress-guard-deny": {**DENY, "priority": 985}}
    plan = plan_undo(rule_seen, LiveState(edited), (creation,))
    assert plan.verdict is Verdict.BLOCKED and "egress-guard-deny: changed priority" in plan.reason

    # Its own changes partly back (an undo that stopped part-way): refused, not finished blindly.
    part_way = {**REMEDIATED, FW + "aet-x-sbntfw": AUTO}
    plan = plan_undo(creation, LiveState(part_way))
    assert plan.verdict is Verdict.BLOCKED and "aet-x-sbntfw: changed disabled (as before the remediation)" in \
        plan.reason


def test_a_duplicate_change_already_back_is_skipped_and_the_rest_undone():
    # An older remediation of the same rule, undone since and made again by the finding asked for.
    older = _from("older", "2026-01-01T00:00:01.000Z", PATCH_SBNTFW,
                  Change("compute.firewalls.insert", FW + "egress-guard-old", None, {**DENY, "name": "egress-guard-old"}))
    newer = _from("newer", "2026-01-02T00:00:01.000Z", PATCH_SBNTFW, INSERT_DENY)
    plan = plan_undo(newer, LiveState(REMEDIATED), (older,))
    assert plan.verdict is Verdict.CHANGE
    assert [c.short_name for c in plan.changes] == ["aet-x-sbntfw", "egress-guard-deny"]


def test_the_findings_of_one_remediation_are_undone_make_before_break_backwards_whatever_their_times():
    # The finding with only the patches may be made before the one with the inserts: its time says
    # nothing of the order of the writes. The broad rules still come back before the deny goes.
    rule_seen = _from("aet-rule-inserted", "2026-01-01T00:00:00.500Z", PATCH_SBNTFW, PATCH_TAGFW)
    creation = _from("connector-created", "2026-01-01T00:00:01.000Z", INSERT_DENY, PATCH_SBNTFW, PATCH_TAGFW)
    for target, other in ((rule_seen, creation), (creation, rule_seen)):
        plan = plan_undo(target, LiveState(REMEDIATED), (other,))
        assert [c.action for c in plan.changes] == ["compute.firewalls.patch"] * 2 + ["compute.firewalls.delete"]


def test_findings_of_another_network_or_other_changes_are_not_duplicates():
    from egress_guard.undo import duplicates_of

    mine = _from("a", "2026-01-01T00:00:01.000Z", PATCH_SBNTFW)
    elsewhere = dataclasses.replace(_from("b", "2026-01-01T00:00:02.000Z", PATCH_SBNTFW),
                                    network="projects/proj-1/global/networks/other")
    other_change = _from("c", "2026-01-01T00:00:03.000Z", PATCH_TAGFW)
    dry_run = dataclasses.replace(_from("d", "2026-01-01T00:00:04.000Z", PATCH_SBNTFW), mode=Mode.DRY_RUN,
                                  outcome=Outcome.PLANNED)
    assert duplicates_of(mine, [mine, elsewhere, other_change, dry_run]) == ()


def test_a_copy_of_a_duplicate_is_taken_in_with_it():
    # One event's two entries (one id): the first made the inserts while the connector was CREATING,
    # the last the patches once its aet-* rules existed. Another instance's finding reports the same
    # patches. Undoing that one takes back the inserts too, so the event's finding is then already
    # undone (seen in make test: it was refused, its patches back and its inserts not).
    from egress_guard.undo import duplicates_of, pick

    inserts = _from("connector-created", "2026-01-01T00:00:01.000Z", INSERT_DENY)
    patches = _from("connector-created", "2026-01-01T00:00:02.000Z", PATCH_SBNTFW, PATCH_TAGFW)
    other = _from("aet-rule-inserted", "2026-01-01T00:00:03.000Z", PATCH_SBNTFW, PATCH_TAGFW)
    archive = [inserts, patches, other]
    assert inserts.id == patches.id != other.id
    assert [f.time for f in duplicates_of(other, archive)] == [inserts.time, patches.time]
    plan = plan_undo(other, LiveState(REMEDIATED), duplicates_of(other, archive))
    assert [c.action for c in plan.changes] == ["compute.firewalls.patch"] * 2 + ["compute.firewalls.delete"]
    event = pick(archive, inserts.id)
    assert plan_undo(event, LiveState(BACK), duplicates_of(event, archive)).verdict is Verdict.COMPLIANT
