"""Invariants checked over the audit log (every write, in order), for the demo and the tests.

Make-before-break, per connector (replace_connector_firewalls' promise, design §3): the connector
never loses a path the policy allows while its rules are replaced. Three orders, each checked for
every connector on its own (rules are matched to their connector by name and description, never
counted across connectors):

1. **allow before deny**: every managed allow of a connector and direction exists before the managed
   deny of that direction is inserted (a deny at 990 before the allow at 980 cuts the connector off
   from its database). Seen as a managed allow insert starting while that deny already exists,
   for a rule that never existed before (putting back an allow a person deleted is a repair);
2. **deny before disable**: the connector's managed ingress deny exists before any of its broad
   ``aet-*-sbntfw`` / ``-tagfw`` rules is disabled;
3. **nothing loosened while broad rules are off**: no managed rule of the connector is deleted, or
   written disabled, while one of its broad rules is disabled.

A rule exists once its insert's operation ended (the ``last`` entry) and stops existing when its
delete starts (the ``first`` entry); a disable counts from its ``first`` entry; failed calls and
failed operations change nothing. Only the writes of ``principals`` (egress-guard's service
accounts, or everyone when not given) can violate an order; everyone's writes move the state.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BROAD_SUFFIXES = ("-sbntfw", "-tagfw")
_CONNECTOR_IN_DESCRIPTION = re.compile(r"connector: projects/[^/]+/locations/([a-z0-9-]+)/connectors/([a-z0-9-]+)")


def make_before_break_held(entries: Iterable[Mapping[str, Any]], *, managed_prefix: str = "egress-guard-",
                           principals: Collection[str] | None = None) -> bool:
    """True when no write broke make-before-break (``make_before_break_violations`` is empty)."""
    return not make_before_break_violations(entries, managed_prefix=managed_prefix, principals=principals)


@dataclass
class _Rule:
    connector: str  # the connector's aet-* prefix, e.g. aet-europewest2-conn--a
    kind: str  # allow | deny
    direction: str  # INGRESS | EGRESS


@dataclass
class _Connector:
    allows: dict[str, set[str]] = field(default_factory=lambda: {"INGRESS": set(), "EGRESS": set()})
    denies: dict[str, set[str]] = field(default_factory=lambda: {"INGRESS": set(), "EGRESS": set()})
    disabled_broad: set[str] = field(default_factory=set)


def make_before_break_violations(entries: Iterable[Mapping[str, Any]], *, managed_prefix: str = "egress-guard-",
                                 principals: Collection[str] | None = None) -> list[str]:
    """Every write that broke one of the three orders of the module docstring, in log order."""
    connectors: dict[str, _Connector] = {}
    rules: dict[str, _Rule] = {}  # managed rule name -> what its insert said (the last entry has no request)
    ever: set[str] = set()  # managed rules that existed at some point
    violations: list[str] = []
    for entry in entries:
        payload = entry.get("protoPayload") or {}
        if (payload.get("status") or {}).get("code"):
            continue
        method = str(payload.get("methodName", ""))
        if not method.startswith("v1.compute.firewalls."):
            continue
        verb = method.rsplit(".", 1)[-1]
        name = str(payload.get("resourceName", "")).rsplit("/", 1)[-1]
        operation = entry.get("operation") or {}
        first, last = bool(operation.get("first")), bool(operation.get("last"))
        request = payload.get("request") or {}
        checked = principals is None or (payload.get("authenticationInfo") or {}).get("principalEmail") in principals
        at = f"{entry.get('timestamp', '?')} {verb} {name}"

        if name.endswith(BROAD_SUFFIXES):
            connector = connectors.setdefault(name.rsplit("-", 1)[0], _Connector())
            if verb in ("patch", "update") and first and "disabled" in request:
                if request["disabled"] is True:
                    if checked and not connector.denies["INGRESS"]:
                        violations.append(f"{at}: broad rule disabled before the connector's managed deny existed")
                    connector.disabled_broad.add(name)
                else:
                    connector.disabled_broad.discard(name)
            elif verb == "delete" and first:
                connector.disabled_broad.discard(name)
            continue

        if not name.startswith(managed_prefix):
            continue
        if verb in ("insert", "update") and first:
            rule = _rule_of(request)
            if rule is not None:
                rules[name] = rule
        rule = rules.get(name)
        if rule is None:
            continue  # a managed rule whose insert this log does not hold: nothing to place it by
        connector = connectors.setdefault(rule.connector, _Connector())
        held = connector.allows if rule.kind == "allow" else connector.denies
        if verb == "insert" and first and checked and rule.kind == "allow" and name not in ever \
                and connector.denies[rule.direction]:
            violations.append(f"{at}: managed allow inserted after the managed {rule.direction.lower()} deny "
                              f"{sorted(connector.denies[rule.direction])[0]} (deny before allow)")
        if verb == "insert" and last:
            held[rule.direction].add(name)
            ever.add(name)
        elif verb == "delete" and first:
            if checked and connector.disabled_broad:
                violations.append(f"{at}: managed rule deleted while broad rule(s) "
                                  f"{', '.join(sorted(connector.disabled_broad))} were disabled")
            held[rule.direction].discard(name)
        elif verb in ("patch", "update") and first and request.get("disabled") is True:
            if checked and connector.disabled_broad:
                violations.append(f"{at}: managed rule disabled while broad rule(s) "
                                  f"{', '.join(sorted(connector.disabled_broad))} were disabled")
    return violations


def _rule_of(request: Mapping[str, Any]) -> _Rule | None:
    """A managed rule's connector, kind and direction from its insert or update request (Google logs
    ``allowed``/``denied`` as ``alloweds``/``denieds``)."""
    match = _CONNECTOR_IN_DESCRIPTION.search(str(request.get("description") or ""))
    if not match:
        return None
    region, connector = match.groups()
    kind = "deny" if request.get("denieds") or request.get("denied") else "allow"
    direction = str(request.get("direction") or "INGRESS")
    return _Rule(f"aet-{region.replace('-', '')}-{connector.replace('-', '--')}", kind, direction)
