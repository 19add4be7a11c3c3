"""The make-before-break check (localcloud/auditlog/invariants.py) fails on executors that break it.

The real guardrail runs against localcloud, once with its own executor and once with an executor
that applies the same plan in a wrong order; the audit log localcloud wrote is then checked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from egress_guard.guardrails import connector_firewalls as fw
from localcloud.auditlog.invariants import make_before_break_held, make_before_break_violations
from tests.contract.test_guardrails_localcloud import (  # noqa: F401 - fixtures
    DISABLE_AUTO_RULES, FW_SA, NAT_SA, P, Guardrails, guardrails, managed, state, subnet_connector, user,
)

REAL_APPLY = fw.apply_firewalls


def _entries(localcloud) -> list[dict[str, Any]]:
    return localcloud.request("GET", "entries")["entries"]


def _reordered(stage_of):
    """An executor that gives each change the stage ``stage_of(change)`` and then applies as usual."""
    def apply(clients, plan, network, **kw):
        changes = tuple(dataclasses.replace(c, stage=stage_of(c)) for c in plan.changes)
        return REAL_APPLY(clients, dataclasses.replace(plan, changes=changes), network, **kw)
    return apply


def _kind(change) -> str:
    name = change.resource.rsplit("/", 1)[-1]
    if change.action.endswith("firewalls.patch"):
        return "disable"
    return "deny" if name.endswith("-deny") else "allow"


MISORDERED = {
    "deny before allow": _reordered(lambda c: {"deny": 0, "allow": 1, "disable": 4}[_kind(c)]),
    "disable before deny": _reordered(lambda c: {"disable": 0, "allow": 1, "deny": 2}[_kind(c)]),
}


def test_the_guardrails_own_order_holds(subnet_connector, guardrails, localcloud):
    guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    _, rules = state(localcloud)
    assert len(managed(rules)) == 2 and rules[next(n for n in rules if n.endswith("-sbntfw"))].get("disabled")
    assert make_before_break_violations(_entries(localcloud)) == []


@pytest.mark.parametrize("order", sorted(MISORDERED))
def test_a_misordered_executor_fails_the_check(order, subnet_connector, guardrails, localcloud, monkeypatch):
    monkeypatch.setattr(fw, "apply_firewalls", MISORDERED[order])
    guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    _, rules = state(localcloud)
    assert len(managed(rules)) == 2  # the same end state: only the order tells them apart
    violations = make_before_break_violations(_entries(localcloud))
    assert violations and not make_before_break_held(_entries(localcloud))
    expected = {"deny before allow": "(deny before allow)", "disable before deny": "before the connector's managed deny"}
    assert any(expected[order] in v for v in violations), violations


def test_a_managed_rule_deleted_while_the_broad_rules_are_off_fails_the_check(subnet_connector, guardrails, localcloud,
                                                                               user):
    guardrails.firewalls(subnet_connector, DISABLE_AUTO_RULES)
    allow = next(n for n in managed(state(localcloud)[1]) if n.endswith("-allow0"))
    op = user.firewalls.delete(project=P, firewall=allow)
    user.global_ops.wait(project=P, operation=op.name, timeout=30)
    (violation,) = make_before_break_violations(_entries(localcloud))
    assert "managed rule deleted while broad rule(s)" in violation and allow in violation
    # A person did it, not egress-guard: checked for egress-guard's writes only, the order held.
    assert make_before_break_held(_entries(localcloud), principals={FW_SA, NAT_SA})


def test_rules_are_counted_per_connector(user, guardrails, localcloud, monkeypatch):
    """conn-a's two managed rules do not let conn-b's broad rules go before conn-b's deny exists."""
    from tests.contract.test_guardrails_localcloud import CONNECTOR_CREATE, one

    user.network()
    user.subnet("sub-a", "10.0.1.0/28")
    user.subnet("sub-b", "10.0.2.0/28")
    user.connector("conn-a", subnet="sub-a")
    guardrails.firewalls(one(localcloud, CONNECTOR_CREATE, first=True), DISABLE_AUTO_RULES)
    user.connector("conn-b", subnet="sub-b")
    monkeypatch.setattr(fw, "apply_firewalls", MISORDERED["disable before deny"])
    created = [e for e in _entries(localcloud) if e["protoPayload"]["methodName"] == CONNECTOR_CREATE
               and (e.get("operation") or {}).get("first") and e["protoPayload"]["resourceName"].endswith("conn-b")]
    guardrails.firewalls(created[0], DISABLE_AUTO_RULES)
    violations = make_before_break_violations(_entries(localcloud))
    assert violations and all("conn--b" in v for v in violations), violations
