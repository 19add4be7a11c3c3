"""replace_connector_firewalls: make a connector's reach into its VPC explicit (design §2).

Google's automatic rules for a connector include broad INGRESS allows at priority 1000
(``aet-...-sbntfw``, ``aet-...-tagfw``, or an implicit rule no API lists, docs/gcp-facts.md §11) that let
it reach every VM on every port. Following Google's recipe ("Restrict connector VM access to VPC
network resources", docs/gcp-facts.md §1.5), egress-guard adds managed rules keyed on the connector's
unique network tag ``vpc-connector-REGION-NAME``:

- one INGRESS ALLOW per ``firewall.allow`` entry: source tag = the unique tag, the entry's target
  tags, its ports grouped per protocol, priority ``allow_priority`` (980);
- one INGRESS DENY of everything from the unique tag, priority ``deny_priority`` (990);
- with ``firewall.egress_allow``: one EGRESS ALLOW per entry (target tag = the unique tag, the
  entry's destinations) and one EGRESS DENY of every other destination.

Make-before-break: the allow rules are inserted and waited for before the deny (stage order),
egress allows before the egress deny; with ``auto_rules: disable`` the ``aet-*-sbntfw``/``-tagfw``
rules are patched ``disabled: true`` only after every managed rule's insert was waited for and
ended DONE without error, and each change records the rule's previous body. The priority-100 ``aet-*`` rules
(``hcfw``, ``rsgfw``, ``earfw``, ``egrfw``) are never touched. Only rules egress-guard created (name
prefix *and* ``managed-by: egress-guard`` description) are ever updated or deleted.

Rule names: ``{prefix}{connector}-{region code}-{kind}``, e.g. ``egress-guard-conn-a-euw2-deny``.
A deleted rule's audit entry carries only its name, so the name must lead back to the connector:
``decode_managed_name`` reads connector, region and kind back (the project is the entry's). The
region code is ``compact_region``: a continent code from ``CONTINENT_CODES`` + a direction code from
``DIRECTION_CODES`` + the number (``europe-west2`` -> ``euw2``, ``northamerica-northeast1`` ->
``nane1``); a region outside those tables is written without its hyphens (``mexicocentral1``), as
Google's own ``aet-`` names do, and read back by its direction word. Kinds: ``allowN``, ``deny``,
``eallowN``, ``edeny``. With the longest prefix (20), connector name (20 characters) and code the name
stays within Compute's 63 characters.

Planner ``plan_firewalls(connector, network, rules, policy)`` is pure (``sweep`` can pass one
``firewalls.list`` per network); the executor ``apply_firewalls`` applies and confirms.
"""

from __future__ import annotations

import functools

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import estate
from ..egress import NoEgressPoint, connector_point
from ..errors import InvalidName, NothingToDo, NotOurEvent, PermanentError
from ..estate import FirewallRule
from ..events import AuditEvent, EventKind, thaw
from ..findings import Change, Finding, Mode, Trigger
from ..names import (
    COMPUTE_NAME_RE,
    ConnectorName,
    FirewallName,
    NetworkName,
    validate_connector_name,
)
from ..plan import Plan, PlannedChange, Verdict, change_plan
from ..policy import FirewallPolicy, Policy, group_ports
from ..converge import MAX_ATTEMPTS, converge
from ..errors import Conflict
from . import _compute
from ._compute import KeyedLocks

if TYPE_CHECKING:
    from ..clients import Clients
    from ..runner import Context

GUARDRAIL_NAME = "replace_connector_firewalls"
MANAGED_MARKER = "managed-by: egress-guard"

# Suffixes of Google's automatic rules (docs/gcp-facts.md §1.2). Only the broad ones may be disabled.
BROAD_AUTO_SUFFIXES = ("sbntfw", "tagfw")
INFRA_AUTO_SUFFIXES = ("hcfw", "rsgfw", "earfw", "egrfw")  # priority 100: the connector needs them
AUTO_SUFFIXES = INFRA_AUTO_SUFFIXES + BROAD_AUTO_SUFFIXES

# Stages: each is applied and waited for before the next starts (make-before-break).
STAGE_INGRESS_ALLOW, STAGE_INGRESS_DENY, STAGE_EGRESS_ALLOW, STAGE_EGRESS_DENY = 0, 1, 2, 3
STAGE_DISABLE_AUTO = 4  # only after the managed rules' writes ended DONE
STAGE_REMOVE_STALE = 5  # managed rules the policy no longer wants, last

# --------------------------------------------------------------------------- region codes

CONTINENT_CODES: Mapping[str, str] = {
    "africa": "af", "asia": "as", "australia": "au", "europe": "eu", "me": "me",
    "northamerica": "na", "southamerica": "sa", "us": "us",
}
DIRECTION_CODES: Mapping[str, str] = {
    "central": "c", "east": "e", "west": "w", "north": "n", "south": "s",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}
_CONTINENTS = {code: word for word, code in CONTINENT_CODES.items()}
_DIRECTIONS = {code: word for word, code in DIRECTION_CODES.items()}
_COMPACT_RE = re.compile(rf"({'|'.join(sorted(_CONTINENTS))})({'|'.join(sorted(_DIRECTIONS, key=len, reverse=True))})"
                         r"([0-9]{1,2})")
_REGION_PARTS_RE = re.compile(r"([a-z]+)-([a-z]+)([0-9]{1,2})")
_HYPHENLESS_RE = re.compile(r"([a-z]+?)(" + "|".join(sorted(DIRECTION_CODES, key=len, reverse=True)) + r")([0-9]{1,2})")


def compact_region(region: str) -> str:
    """``europe-west2`` -> ``euw2``; a region outside the tables -> the region without hyphens."""
    match = _REGION_PARTS_RE.fullmatch(region)
    if match and match.group(1) in CONTINENT_CODES and match.group(2) in DIRECTION_CODES:
        return CONTINENT_CODES[match.group(1)] + DIRECTION_CODES[match.group(2)] + match.group(3)
    return region.replace("-", "")


def expand_region(code: str) -> str | None:
    """The inverse of ``compact_region`` (also reads Google's hyphen-free ``aet-`` form); None if unknown."""
    match = _COMPACT_RE.fullmatch(code)
    if match:
        return f"{_CONTINENTS[match.group(1)]}-{_DIRECTIONS[match.group(2)]}{match.group(3)}"
    match = _HYPHENLESS_RE.fullmatch(code)
    if match and len(match.group(1)) >= 2:
        return f"{match.group(1)}-{match.group(2)}{match.group(3)}"
    return None


# --------------------------------------------------------------------------- rule names

_KIND_RE = re.compile(r"deny|edeny|allow[0-9]{1,3}|eallow[0-9]{1,3}")


@dataclass(frozen=True)
class ManagedName:
    connector: ConnectorName
    kind: str  # allowN | deny | eallowN | edeny


def managed_name(prefix: str, connector: ConnectorName, kind: str) -> str:
    name = f"{prefix}{connector.name}-{compact_region(connector.region)}-{kind}"
    if len(name) > 63 or not COMPUTE_NAME_RE.fullmatch(name):
        raise PermanentError(f"the managed rule name {name!r} for connector {connector.relative} is not a valid "
                             "Compute name (at most 63 characters); shorten firewall.name_prefix")
    return name


def decode_managed_name(prefix: str, name: str, project: str) -> ManagedName | None:
    """``egress-guard-conn-a-euw2-deny`` -> connector projects/P/locations/europe-west2/connectors/conn-a, deny."""
    if not name.startswith(prefix):
        return None
    parts = name[len(prefix):].rsplit("-", 2)
    if len(parts) != 3 or not _KIND_RE.fullmatch(parts[2]):
        return None
    region = expand_region(parts[1])
    if region is None:
        return None
    try:
        return ManagedName(ConnectorName(project, region, validate_connector_name(parts[0])), parts[2])
    except InvalidName:
        return None


@dataclass(frozen=True)
class AutoName:
    connector: ConnectorName
    suffix: str  # hcfw | rsgfw | earfw | egrfw | sbntfw | tagfw


def decode_aet_name(name: str, project: str) -> AutoName | None:
    """``aet-europewest2-conn--a-sbntfw`` -> connector conn-a in europe-west2, sbntfw (docs/gcp-facts.md §1.2)."""
    match = re.fullmatch(r"aet-([a-z0-9]+)-(.+)-(" + "|".join(AUTO_SUFFIXES) + ")", name)
    if not match:
        return None
    region = expand_region(match.group(1))
    encoded = match.group(2)
    if region is None or any("-" in part for part in encoded.split("--")):
        return None  # a single hyphen is not the doubled-hyphen encoding of a connector name
    try:
        connector = ConnectorName(project, region, validate_connector_name(encoded.replace("--", "-")))
    except InvalidName:
        return None
    return AutoName(connector, match.group(3))


def auto_rule_name(connector: ConnectorName, suffix: str) -> str:
    return f"{connector.aet_prefix}-{suffix}"


# --------------------------------------------------------------------------- desired rules


@dataclass(frozen=True)
class DesiredRule:
    name: str
    kind: str
    stage: int
    body: Mapping[str, Any]


def _description(connector: ConnectorName, kind: str, what: str) -> str:
    return f"{MANAGED_MARKER}; connector: {connector.relative}; rule: {kind}; {what}"


def desired_rules(connector: ConnectorName, network: NetworkName, policy: FirewallPolicy) -> tuple[DesiredRule, ...]:
    """The managed rules the policy wants for ``connector``, in stage order."""
    tag = connector.network_tag
    rules: list[DesiredRule] = []

    def add(kind: str, stage: int, body: dict[str, Any], what: str) -> None:
        name = managed_name(policy.name_prefix, connector, kind)
        rules.append(DesiredRule(name, kind, stage, {
            "name": name, "network": network.self_link, "description": _description(connector, kind, what), **body}))

    for index, allow in enumerate(policy.allow):
        add(f"allow{index}", STAGE_INGRESS_ALLOW, {
            "direction": "INGRESS", "priority": policy.allow_priority, "sourceTags": [tag],
            "targetTags": list(allow.target_tags), "allowed": _protocols(allow.ports)},
            f"allow the connector to VMs tagged {', '.join(allow.target_tags)} on {', '.join(map(str, allow.ports))}")
    add("deny", STAGE_INGRESS_DENY, {
        "direction": "INGRESS", "priority": policy.deny_priority, "sourceTags": [tag],
        "denied": [{"IPProtocol": "all"}]},
        "deny the connector everything else in the VPC (overrides the priority-1000 automatic allow)")
    if policy.egress_allow:
        for index, allow in enumerate(policy.egress_allow):
            add(f"eallow{index}", STAGE_EGRESS_ALLOW, {
                "direction": "EGRESS", "priority": policy.allow_priority, "targetTags": [tag],
                "destinationRanges": list(allow.destination_ranges), "allowed": _protocols(allow.ports)},
                f"allow the connector to reach {', '.join(allow.destination_ranges)}")
        add("edeny", STAGE_EGRESS_DENY, {
            "direction": "EGRESS", "priority": policy.deny_priority, "targetTags": [tag],
            "destinationRanges": ["0.0.0.0/0"], "denied": [{"IPProtocol": "all"}]},
            "deny the connector every other destination")
    return tuple(rules)


def managed_kinds(policy: FirewallPolicy) -> tuple[str, ...]:
    """The kinds of managed rule ``desired_rules`` makes under ``policy`` (their names, without
    building their bodies: ``RuleIndex.rules_for`` needs only the names)."""
    kinds = [f"allow{index}" for index in range(len(policy.allow))] + ["deny"]
    if policy.egress_allow:
        kinds += [f"eallow{index}" for index in range(len(policy.egress_allow))] + ["edeny"]
    return tuple(kinds)


def _protocols(ports: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"IPProtocol": protocol, **({"ports": list(numbers)} if numbers else {})}
            for protocol, numbers in group_ports(tuple(ports))]


def _shape(body: Mapping[str, Any]) -> dict[str, Any]:
    """What makes two rule bodies the same rule (Google's defaults filled, lists as sets)."""
    def entries(key: str) -> list[tuple[str, tuple[str, ...]]]:
        out = []
        for item in body.get(key) or ():
            protocol = str(item.get("IPProtocol", ""))
            out.append((protocol, tuple(sorted(str(p) for p in item.get("ports") or ()))))
        return sorted(out)

    direction = str(body.get("direction") or "INGRESS")
    source_ranges = sorted(body.get("sourceRanges") or ())
    if direction == "INGRESS" and not source_ranges and not (body.get("sourceTags") or body.get("sourceServiceAccounts")):
        source_ranges = ["0.0.0.0/0"]
    return {
        "direction": direction,
        "priority": int(body.get("priority", 1000)),
        "sourceTags": sorted(body.get("sourceTags") or ()),
        "targetTags": sorted(body.get("targetTags") or ()),
        "sourceRanges": source_ranges,
        "destinationRanges": sorted(body.get("destinationRanges") or ()) or (["0.0.0.0/0"] if direction == "EGRESS" else []),
        "sourceServiceAccounts": sorted(body.get("sourceServiceAccounts") or ()),
        "targetServiceAccounts": sorted(body.get("targetServiceAccounts") or ()),
        "allowed": entries("allowed"),
        "denied": entries("denied"),
        "disabled": bool(body.get("disabled", False)),
        "description": str(body.get("description") or ""),
    }


def same_rule(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    return _shape(live) == _shape(desired)


def is_managed(rule: FirewallRule, prefix: str) -> bool:
    return rule.name.startswith(prefix) and rule.description.startswith(MANAGED_MARKER)


# --------------------------------------------------------------------------- the rules the planner reads


def planner_reads(name: str, policy: Policy) -> bool:
    """Whether ``plan_firewalls`` can read a rule of this name: Google's ``aet-*`` rules and the
    managed ones. A large VPC's other rules need not even be converted (``sweep`` lists them all)."""
    return name.startswith(("aet-", policy.firewall.name_prefix))


class RuleIndex:
    """A network's rules, indexed so that each connector's plan gets only the rules it reads.

    ``plan_firewalls`` looks rules up by name: the connector's managed rule names, its ``aet-*``
    names, and the managed rules whose names decode to the connector (stale ones to delete).
    Handing it those instead of a large VPC's every rule gives the same plan (a unit test holds
    the two equal) without a scan of every rule per connector.

    ``from_json``: rules kept as their JSON text until a plan picks them (``sweep`` holds 70,000
    rules for 10,000 connectors: as text a third of the memory they take as objects).
    """

    def __init__(self, rules: Sequence[FirewallRule], policy: Policy, project: str) -> None:
        self._build({r.name: r for r in rules}, policy, project)

    @classmethod
    def from_json(cls, texts: Mapping[str, "str | Mapping[str, Any]"], policy: Policy, project: str) -> "RuleIndex":
        """``texts``: rule name -> the rule as Google's JSON, as text or parsed (one network's rules)."""
        index = cls.__new__(cls)
        index._build(dict(texts), policy, project)
        return index

    def _build(self, by_name: dict[str, "FirewallRule | str | Mapping[str, Any]"], policy: Policy, project: str) -> None:
        prefix = policy.firewall.name_prefix
        self._by_name = by_name
        self._managed: dict[str, list[str]] = {}
        for name in by_name:
            decoded = decode_managed_name(prefix, name, project)
            if decoded is not None:
                self._managed.setdefault(decoded.connector.relative, []).append(name)
        self._policy = policy

    def _rule(self, name: str) -> FirewallRule:
        found = self._by_name[name]
        if isinstance(found, FirewallRule):
            return found
        return estate.firewall_from_json(json.loads(found) if isinstance(found, str) else found)

    def rules_for(self, connector: ConnectorName, network: NetworkName) -> tuple[FirewallRule, ...]:
        fw = self._policy.firewall
        names = {managed_name(fw.name_prefix, connector, kind) for kind in managed_kinds(fw)}
        names |= {auto_rule_name(connector, s) for s in AUTO_SUFFIXES}
        names |= set(self._managed.get(connector.relative, ()))
        return tuple(self._rule(n) for n in sorted(names) if n in self._by_name)


# --------------------------------------------------------------------------- the planner


def plan_firewalls(connector: ConnectorName, network: NetworkName, rules: Sequence[FirewallRule], policy: Policy, *,
                   context: str = "") -> Plan:
    """Decide the managed rules and auto-rule changes for ``connector`` from the network's rules (pure).

    ``rules``: the firewall rules of the connector's network (others are ignored). ``context``: a
    sentence in front of the reason (e.g. what drift happened).
    """
    fw = policy.firewall
    subject = connector.ref
    head = f"{context} " if context else ""
    where = dict(project=connector.project, region=connector.region, network=network.relative)
    exempt = policy.exemptions.reason_for(project=connector.project, network=network, connector=connector)
    if exempt:
        return Plan(subject, verdict=Verdict.EXEMPT, reason=f"{head}connector {connector.name} is exempt: {exempt}.",
                    **where)
    live = {r.name: r for r in rules if r.network == network.relative}
    desired = desired_rules(connector, network, fw)
    changes: list[PlannedChange] = []
    foreign = []
    for rule in desired:
        current = live.get(rule.name)
        resource = FirewallName(network.project, rule.name).relative
        if current is None:
            changes.append(PlannedChange("compute.firewalls.insert", resource, None, rule.body,
                                         f"create managed rule {rule.name}", rule.stage))
        elif not is_managed(current, fw.name_prefix):
            foreign.append(rule.name)
        elif not same_rule(current.body, rule.body):
            changes.append(PlannedChange("compute.firewalls.update", resource, current.body, rule.body,
                                         f"put managed rule {rule.name} back as the policy wants it", rule.stage))
    if foreign:
        return Plan(subject, verdict=Verdict.BLOCKED, **where, reason=(
            f"{head}connector {connector.name} needs managed rule(s) {', '.join(foreign)}, but rules of that name exist "
            f"without the '{MANAGED_MARKER}' description, so egress-guard will not overwrite them and changed nothing. "
            "Rename or delete those rules (they are not egress-guard's), or set firewall.name_prefix, then redeliver "
            "the event or run `egress-guard sweep`."))

    wanted = {r.name for r in desired}
    for rule in live.values():
        decoded = decode_managed_name(fw.name_prefix, rule.name, connector.project)
        if decoded and decoded.connector == connector and rule.name not in wanted and is_managed(rule, fw.name_prefix):
            changes.append(PlannedChange("compute.firewalls.delete", FirewallName(network.project, rule.name).relative,
                                         rule.body, None, f"delete managed rule {rule.name}, which the policy no longer "
                                                          "wants", STAGE_REMOVE_STALE))

    notes: list[str] = []
    broad = [live.get(auto_rule_name(connector, s)) for s in BROAD_AUTO_SUFFIXES]
    present = [r for r in broad if r is not None]
    if fw.disable_auto_rules:
        for rule in present:
            if not rule.disabled:
                changes.append(PlannedChange(
                    "compute.firewalls.patch", FirewallName(network.project, rule.name).relative, rule.body,
                    {"disabled": True}, f"disable Google's broad rule {rule.name} (auto_rules: disable), now that the "
                                        "managed rules cover the connector", STAGE_DISABLE_AUTO))
        if not present:
            notes.append(_implicit_note(connector, live))
    elif not present and any(live.get(auto_rule_name(connector, s)) for s in INFRA_AUTO_SUFFIXES):
        notes.append("Its broad allow rules are implicit (no aet-*-sbntfw/tagfw resources): the managed deny rule "
                     "overrides them all the same.")

    counts = f"{sum(1 for r in desired if r.kind.startswith('allow'))} allow ({fw.allow_priority}), deny ({fw.deny_priority})"
    if fw.egress_allow:
        counts += f", {len(fw.egress_allow)} egress allow and an egress deny"
    if changes:
        reason = (f"{head}connector {connector.name} (tag {connector.network_tag}) must reach only what the policy "
                  f"allows: {', '.join(c.reason for c in changes)}.")
    else:
        reason = (f"{head}connector {connector.name}'s managed rules ({counts}, source tag {connector.network_tag}) "
                  "are in place" + (" and its broad automatic rules are disabled" if fw.disable_auto_rules and present
                                    else "") + ".")
    return change_plan(subject, reason=reason, changes=changes, notes=notes, **where)


def _implicit_note(connector: ConnectorName, live: Mapping[str, FirewallRule]) -> str:
    if any(live.get(auto_rule_name(connector, s)) for s in INFRA_AUTO_SUFFIXES):
        return ("Its broad allow rules are implicit (no aet-*-sbntfw/tagfw resources exist), so auto_rules: disable "
                "has nothing to disable; the managed deny rule overrides them.")
    return ("No aet-*-sbntfw/tagfw rules exist for it (implicit broad rules, or a Shared VPC connector whose rules "
            "you manage), so auto_rules: disable has nothing to disable; the managed deny rule overrides them.")


# --------------------------------------------------------------------------- executor


def apply_firewalls(clients: "Clients", plan: Plan, network: NetworkName, *, timeout: float,
                    applied: list[Change] | None = None) -> list[Change]:
    """Apply the plan stage by stage, waiting for each. Make-before-break: an automatic rule is
    disabled only in the last stages, after every managed rule's insert was waited for and its
    operation ended DONE without error (a failed one raises here, and nothing later starts); that
    wait is the confirmation, a re-read would add a call and no certainty. Returns the changes made,
    also appended to ``applied`` as they complete, so that a ``Conflict`` (re-read and replan)
    loses none of them."""
    made: list[Change] = applied if applied is not None else []
    for stage, changes in plan.stages():
        started, conflict = [], None
        for change in changes:
            try:
                started.append((change, _start_one(clients, change, network, timeout)))
            except Conflict as exc:
                conflict = exc
                break
        for change, operation in started:  # wait for every write that started, even after a conflict
            try:
                _compute.wait(clients, operation, project=network.project, region=None, timeout=timeout,
                              action=f"{change.action} {change.resource}")
            except Conflict as exc:
                conflict = conflict or exc
                continue
            made.append(change.to_change())
        if conflict is not None:
            raise conflict
    return made


def _start_one(clients: "Clients", change: PlannedChange, network: NetworkName, timeout: float) -> str:
    from google.cloud import compute_v1

    rule, project = change.short_name, network.project
    start = functools.partial(_compute.start, timeout=timeout)
    if change.verb == "delete":
        return start(change.action, change.resource, clients.firewalls.delete, project=project, firewall=rule)
    body = compute_v1.Firewall.from_json(_json(change.after))
    if change.verb == "insert":
        return start(change.action, change.resource, clients.firewalls.insert, project=project,
                     firewall_resource=body)
    if change.verb == "update":
        return start(change.action, change.resource, clients.firewalls.update, project=project,
                     firewall=rule, firewall_resource=body)
    if change.verb == "patch":
        return start(change.action, change.resource, clients.firewalls.patch, project=project,
                     firewall=rule, firewall_resource=body)
    raise PermanentError(f"replace_connector_firewalls cannot apply {change.action}")


def _json(body: Mapping[str, Any] | None) -> str:
    import json

    return json.dumps(thaw(body) if body is not None else {})


# --------------------------------------------------------------------------- the guardrail

_LOCKS = KeyedLocks()


class ReplaceConnectorFirewalls:
    name = GUARDRAIL_NAME

    def accepts(self, event: AuditEvent, policy: Policy) -> str | None:
        if event.kind is EventKind.CONNECTOR_CREATED:
            return None
        if event.kind is EventKind.FIREWALL_CHANGED:
            if event.awaits_last_entry:
                return "the firewall change is still running; its operation's last entry brings the result"
            return None if self._connector_of_rule(event, policy) is not None else (
                f"firewall rule {event.resource.name if hasattr(event.resource, 'name') else event.resource} is neither "
                f"an aet-* rule of a connector nor a managed rule ({policy.firewall.name_prefix}*)")
        return "only connector creations and firewall changes concern replace_connector_firewalls"

    def _connector_of_rule(self, event: AuditEvent, policy: Policy) -> tuple[ConnectorName, str] | None:
        """The connector a changed rule belongs to, and a sentence saying what happened to the rule."""
        resource = event.resource
        assert isinstance(resource, FirewallName)
        verb = {"insert": "created", "patch": "edited", "update": "replaced", "delete": "deleted"}.get(
            event.method_name.rsplit(".", 1)[-1], "changed")
        auto = decode_aet_name(resource.name, resource.project)
        if auto is not None:
            # Only the broad rules matter here: the priority-100 infrastructure rules are never
            # touched, and a connector's six rules appear together, so reacting to each would
            # repeat one reconciliation six times.
            if auto.suffix not in BROAD_AUTO_SUFFIXES:
                return None
            return auto.connector, f"Google's rule {resource.name} was {verb}."
        managed = decode_managed_name(policy.firewall.name_prefix, resource.name, resource.project)
        if managed is not None:
            return managed.connector, f"Managed rule {resource.name} was {verb} by {event.principal or 'someone'}."
        return None

    def run(self, event: AuditEvent, ctx: "Context", mode: Mode) -> list[Finding]:
        if event.kind is EventKind.CONNECTOR_CREATED:
            assert isinstance(event.resource, ConnectorName)
            connector, context = event.resource, ""
        elif event.kind is EventKind.FIREWALL_CHANGED:
            found = self._connector_of_rule(event, ctx.policy)
            if found is None:
                raise NotOurEvent(f"{event.resource} is not a rule replace_connector_firewalls manages")
            connector, context = found
        else:
            raise NotOurEvent(f"{event.method_name} is not a replace_connector_firewalls trigger")
        return [self._reconcile(connector, context, event.trigger, ctx, mode)]

    def _reconcile(self, name: ConnectorName, context: str, trigger: Trigger, ctx: "Context", mode: Mode) -> Finding:
        policy = ctx.policy
        exempt = policy.exemptions.reason_for(project=name.project, connector=name)
        if exempt:
            return Plan(name.ref, name.project, name.region, "", Verdict.EXEMPT,
                        f"{context + ' ' if context else ''}connector {name.name} is exempt: {exempt}.").finding(
                guardrail=GUARDRAIL_NAME, mode=mode, trigger=trigger)
        connector = estate.read_connector(ctx.clients, name)
        if connector is None:
            raise NothingToDo(f"connector {name.relative} does not exist (any more); {context or 'nothing'} "
                                 "to guard. Managed rules of a deleted connector are left for a person to delete.")
        if connector.state in ("ERROR", "DELETING"):
            raise NothingToDo(f"connector {name.relative} is {connector.state}; nothing to guard")
        if not connector.ready:  # CREATING or UPDATING: act now (assumptions.WAITS_FOR_LAST_ENTRY)
            context = (f"{context} " if context else "") + (
                f"Connector {name.name} is {connector.state}: its managed rules are made now, before its VMs run; "
                "its aet-* rules come with READY, and their own audit entries bring any disabling.")
        try:
            point = connector_point(connector, lambda subnet: estate.read_subnetwork(ctx.clients, subnet))
        except NoEgressPoint as exc:
            raise NoEgressPoint(f"{name.relative}: {exc.reason}; nothing to guard") from exc
        network = point.network
        timeout = ctx.settings.operation_timeout_seconds
        with _LOCKS.hold(f"firewalls/{name.relative}"):
            done = converge(
                read=lambda: estate.firewalls_of(ctx.clients, network),
                plan=lambda rules: plan_firewalls(name, network, rules, policy, context=context),
                apply=lambda plan, applied: apply_firewalls(ctx.clients, plan, network, timeout=timeout,
                                                            applied=applied),
                enforce=mode is Mode.ENFORCE,
                kept_changing=f"replace_connector_firewalls: the rules of network {network.name} kept changing "
                              f"during {MAX_ATTEMPTS} attempts; will retry")
        return done.plan.finding(guardrail=GUARDRAIL_NAME, mode=mode, trigger=trigger, applied=list(done.applied))


GUARDRAIL = ReplaceConnectorFirewalls()
