"""Undo a remediation: put back the ``before`` of every change a finding records (``egress-guard undo``).

Each change egress-guard makes carries the body it replaced (design §2), so a ``remediated``
finding says exactly how to go back. Undo decides, then acts (style.md point 4):

1. read the live state of what the finding changed: one ``firewalls.list`` of its network, one
   ``routers.list`` of its region (the guardrails' own reads, ``estate.py``);
2. plan (``plan_undo``, pure): every change must still be as the finding left it (its ``after``).
   If anything differs, someone changed it since, and undoing would throw their change away:
   the plan is refused, with what differs, and nothing is changed. Otherwise, newest change first:

   | the finding's change        | undo                                                   |
   |-----------------------------|--------------------------------------------------------|
   | ``compute.firewalls.insert``| delete the managed rule it created                     |
   | ``compute.firewalls.patch`` | patch the fields back (re-enable a broad rule it disabled) |
   | ``compute.firewalls.update``| update the rule back to its ``before``                 |
   | ``compute.firewalls.delete``| insert the rule it deleted                             |
   | ``compute.routers.insert``  | delete the router it created (with its NAT)            |
   | ``compute.routers.patch``   | update the router's NATs back (a NAT or a subnet it added goes) |

3. act: the firewall writes through the firewall guardrail's executor, the router writes here,
   each waited for (``_compute``), in that order, one at a time;
4. report: an ``undone`` finding (its id derived from the original's, so a repeated publish is
   recognised), published to the findings topic like any decision, which notify_slack renders.

How a FINDING_ID is found (``find_finding``): findings are published to the findings topic, and an
archive subscription on it keeps them (``EGRESS_GUARD_FINDINGS_SUBSCRIPTION``; locally the stack's
findings-watch subscription). Undo reads it without consuming it (``subscriptions.py``) and takes
the finding with that id that made changes. A finding older than the subscription's retention is
given as a file instead (``egress-guard undo finding.json``: the JSON of a Slack message's finding,
or of ``egress-guard replay`` / ``sweep --json``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import estate
from .errors import ConfigError, Conflict, EgressGuardError, PermanentError
from .findings import Change, Finding, Mode, Outcome, Trigger
from .guardrails import _compute
from .guardrails.connector_firewalls import apply_firewalls, same_rule
from .guardrails.ensure_nat import estate_json
from .names import NetworkName, parse_network, parse_router
from .plan import Plan, PlannedChange, Verdict
from .subscriptions import lease_all, release

if TYPE_CHECKING:
    from .clients import Clients
    from .policy import Policy

UNDO_METHOD = "egress-guard undo"
FINDINGS_SUBSCRIPTION_ENV = "EGRESS_GUARD_FINDINGS_SUBSCRIPTION"
DEFAULT_FINDINGS_SUBSCRIPTION = "egress-guard-findings-archive"  # infra: modules/notifications

# Read-only fields of a body as read: never written back.
_READ_ONLY = frozenset({"id", "creationTimestamp", "selfLink", "kind", "fingerprint", "selfLinkWithId"})


class NotUndoable(PermanentError):
    """The finding cannot be undone as given (nothing was changed, or it is not egress-guard's)."""


class PartlyUndone(PermanentError):
    """A write of the undo failed; the reason says which writes were made before it."""


@dataclasses.dataclass(frozen=True)
class LiveState:
    """What the finding's resources look like now: relative name -> body (absent: does not exist)."""

    bodies: Mapping[str, Mapping[str, Any]]

    def get(self, resource: str) -> Mapping[str, Any] | None:
        return self.bodies.get(resource)


# --------------------------------------------------------------------------- read


def read_live(clients: "Clients", finding: Finding, duplicates: Sequence[Finding] = ()) -> LiveState:
    """The current bodies of everything the finding (and its ``duplicates``, same network) changed:
    one list per kind (network, region)."""
    bodies: dict[str, Mapping[str, Any]] = {}
    changes = [change for f in (finding, *duplicates) for change in f.changes]
    kinds = {_kind(change) for change in changes}
    if "firewalls" in kinds:
        for rule in estate.firewalls_of(clients, _network(finding)):
            bodies[f"projects/{rule.project}/global/firewalls/{rule.name}"] = rule.body
    if "routers" in kinds:
        regions = {(parse_router(c.resource, field="change.resource").project,
                    parse_router(c.resource, field="change.resource").region)
                   for c in changes if _kind(c) == "routers"}
        for project, region in sorted(regions):
            for router in estate.routers_of(clients, project, region):
                bodies[router.relative] = router.body
    return LiveState(bodies)


def _kind(change: Change) -> str:
    parts = change.action.split(".")
    if len(parts) == 3 and parts[0] == "compute" and parts[1] in ("firewalls", "routers"):
        return parts[1]
    raise NotUndoable(f"change {change.action} {change.resource} is not one egress-guard makes or can undo")


def _network(finding: Finding) -> NetworkName:
    if not finding.network:
        raise NotUndoable(f"finding {finding.id} names no network, so its firewall rules cannot be looked up")
    return parse_network(finding.network, field="finding.network")


# --------------------------------------------------------------------------- plan (pure)


def check_undoable(finding: Finding) -> None:
    """``NotUndoable`` unless the finding records changes egress-guard made (checked before any read)."""
    if finding.outcome is not Outcome.REMEDIATED or finding.mode is not Mode.ENFORCE or not finding.changes:
        raise NotUndoable(
            f"finding {finding.id} is {finding.mode.value} {finding.outcome.value}: egress-guard changed nothing "
            "then, so there is nothing to undo (only an enforce-mode remediated finding records changes made)")
    for change in finding.changes:
        _kind(change)


def plan_undo(finding: Finding, live: LiveState, duplicates: Sequence[Finding] = ()) -> Plan:
    """The changes that restore the ``before`` of the remediation ``finding`` reports, newest first.

    ``duplicates``: the findings that report the same remediation (``duplicates_of``): copies with
    the finding's id, and findings of other ids that report one of the same changes. Each change
    of all of them, counted once, is in one of three states (``_state``):

    - as the remediation left it (its ``after``): undo it;
    - back at its ``before``: already undone (by an undo of a duplicate, say): nothing to write;
    - anything else: someone changed it since: the plan is BLOCKED, nothing is changed.

    When every change is back at its ``before``, the remediation is already undone: a COMPLIANT plan
    (nothing to write). A finding whose own changes are partly back and partly as it left them is
    refused like a manual edit: that is what an undo that stopped part-way leaves, and someone
    should read the state before the rest goes (``apply_undo``'s ``PartlyUndone`` said what was
    done). A duplicate's change already back is simply skipped: another finding's undo took it back.
    """
    check_undoable(finding)
    subject = finding.resource
    where = dict(project=finding.project, region=finding.region, network=finding.network)
    own_ids = {finding.id}
    own = _distinct(finding, *(d for d in duplicates if d.id in own_ids))
    owned = {change.resource for change in own}
    others = [c for c in _distinct(*(d for d in duplicates if d.id not in own_ids)) if c.resource not in owned]
    differences: list[str] = []
    undo_own: list[Change] = []
    back_own: list[Change] = []
    undo_others: list[Change] = []
    for change in own + others:
        state = _state(change, live.get(change.resource))
        if state == _AT_AFTER:
            (undo_own if change.resource in owned else undo_others).append(change)
        elif state == _AT_BEFORE:
            if change.resource in owned:
                back_own.append(change)
        else:
            differences.append(f"{change.resource.rsplit('/', 1)[-1]}: {state}")
    also = sorted({d.id for d in duplicates if d.id != finding.id})
    reported = f" (and the finding(s) reporting the same changes: {', '.join(also)})" if also else ""
    if back_own and (undo_own or differences):  # part of it is back: an undo stopped part-way, or a person
        differences += [f"{c.resource.rsplit('/', 1)[-1]}: {_differs(c, live.get(c.resource))} "  # took part back
                        "(as before the remediation)" for c in back_own]
    if differences:
        return Plan(subject, verdict=Verdict.BLOCKED, **where, reason=(
            f"refused to undo finding {finding.id}{reported}: the current state no longer matches what that "
            f"remediation left ({'; '.join(differences)}). Someone changed it since, and undoing now would throw their "
            "change away; nothing was changed. Compare the finding's before with the current state and undo by hand."))
    if not undo_own and not undo_others:
        return Plan(subject, verdict=Verdict.COMPLIANT, **where, reason=(
            f"finding {finding.id}{reported} is already undone: every change it reports is back as it was before "
            f"({', '.join(_short(c) for c in own)}); nothing was changed."))
    # Make-before-break backwards (``_undo_rank``): broad rules enabled again before a managed deny
    # goes, the deny before the allows. Within a rank, newest change first.
    chosen = {_key(change) for change in undo_own + undo_others}
    ordered = sorted(reversed([change for change in _distinct(finding, *duplicates) if _key(change) in chosen]),
                     key=_undo_rank)
    steps = [_reverse(change, live.get(change.resource), stage) for stage, change in enumerate(ordered)]
    names = ", ".join(f"{step.verb} {step.short_name}" for step in steps)
    return Plan(subject, verdict=Verdict.CHANGE, changes=tuple(steps), **where,
                reason=f"undo finding {finding.id}{reported} ({finding.guardrail} remediated {finding.time}): {names}.")


def _undo_rank(change: Change) -> int:
    """When a change is undone among the others. One finding's changes undone newest first already
    come in this order (the executor made them make-before-break); the findings of one remediation
    made by several instances interleave, and their times say nothing of the order of their writes.
    First what restores reach (a broad rule enabled again, a rule egress-guard deleted put back), then
    managed rules put back as they were, then the managed deny deleted, then the allows, then routers."""
    kind, verb = _kind(change), change.action.rsplit(".", 1)[-1]
    if kind == "routers":
        return 4
    if verb in ("patch", "delete"):
        return 0
    if verb == "update":
        return 1
    return 2 if (change.after or {}).get("denied") else 3


# What ``_state`` says of a change besides a difference in words.
_AT_AFTER = "as the remediation left it"
_AT_BEFORE = "back as before the remediation"


def _state(change: Change, current: Mapping[str, Any] | None) -> str:
    """``_AT_AFTER``, ``_AT_BEFORE``, or what differs from the ``after``, in words."""
    difference = _differs(change, current)
    if not difference:
        return _AT_AFTER
    if _is_before(change, current):
        return _AT_BEFORE
    return difference


def _is_before(change: Change, current: Mapping[str, Any] | None) -> bool:
    if change.before is None or current is None:
        return change.before is None and current is None
    if _kind(change) == "firewalls":
        return same_rule(current, change.before)
    return _nats(change.before.get("nats")) == _nats(current.get("nats"))


def _short(change: Change) -> str:
    return f"{change.action.rsplit('.', 1)[-1]} {change.resource.rsplit('/', 1)[-1]}"


def _key(change: Change) -> tuple[str, str, str, str]:
    """What makes two recorded changes the same change: the same write on the same resource from
    the same state to the same state (bodies compared as what decides them, not ids or fingerprints)."""
    def shape(body: Mapping[str, Any] | None) -> str:
        if body is None:
            return ""
        if _kind(change) == "firewalls":
            from .guardrails.connector_firewalls import _shape

            return repr(_shape(body))
        return repr(_nats(body.get("nats")))

    return change.action, change.resource, shape(change.before), shape(_effective_after(change))


def _distinct(*findings: Finding) -> list[Change]:
    """The findings' changes in the order they were made (oldest finding first), each once."""
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for finding in sorted(findings, key=lambda f: f.time):
        for change in finding.changes:
            key = _key(change)
            if key not in seen:
                seen.add(key)
                out.append(change)
    return out


def duplicates_of(finding: Finding, archive: Sequence[Finding]) -> tuple[Finding, ...]:
    """The archived findings that report the remediation ``finding`` reports (pure).

    With several instances per function (the deployment: one request per instance), one event
    can be handled twice (a redelivery, or the first and last entries of one operation: one
    finding id, design §3), and two events about one connector (its creation, its aet-* rules
    appearing) can be handled at once by two instances. Both read the same state and make the
    same idempotent write (a broad rule disabled), and each finding reports it; an insert
    only one of them can win. To a person they are one remediation of those resources, so undo
    takes them as one: every enforce-mode remediated finding of the same project and network that
    has the finding's id or reports one of the same changes (``_key``), and so on transitively (a
    finding with the id of one taken in is taken in too).
    """
    if finding.outcome is not Outcome.REMEDIATED or finding.mode is not Mode.ENFORCE:
        return ()
    candidates = [f for f in archive if f.outcome is Outcome.REMEDIATED and f.mode is Mode.ENFORCE and f.changes
                  and f.project == finding.project and f.network == finding.network and f is not finding]
    keys, ids = _keys(finding) or set(), {finding.id}
    group: list[Finding] = []
    grew = True
    while grew:
        grew = False
        for candidate in candidates:
            theirs = _keys(candidate)
            if theirs is None or any(candidate is g for g in group):
                continue
            # A copy of a finding in the group is the same event's: one entry made the inserts while the
            # connector was CREATING, the other (the operation's last entry) the patches once its aet-*
            # rules existed; both carry one id.
            if candidate.id in ids or keys & theirs:
                group.append(candidate)
                keys |= theirs
                ids.add(candidate.id)
                grew = True
    return tuple(sorted(group, key=lambda f: f.time))


def _keys(finding: Finding) -> set[tuple[str, str, str, str]] | None:
    """The ``_key`` of each change, or None when a change is not one undo knows (never grouped)."""
    try:
        return {_key(c) for c in finding.changes}
    except NotUndoable:
        return None


def _effective_after(change: Change) -> Mapping[str, Any] | None:
    """The body the change left: a patch lies over the body it patched."""
    if change.after is None:
        return None
    if change.action.endswith(".patch") and change.before is not None and _kind(change) == "firewalls":
        return {**change.before, **change.after}
    return change.after


def _differs(change: Change, current: Mapping[str, Any] | None) -> str:
    """'' when ``current`` is what ``change`` left, else what differs, in words."""
    after = _effective_after(change)
    if after is None:
        return "" if current is None else "it was deleted then, and exists again"
    if current is None:
        return "it no longer exists"
    if _kind(change) == "firewalls":
        if same_rule(current, after):
            return ""
        from .guardrails.connector_firewalls import _shape

        old, new = _shape(after), _shape(current)
        return "changed " + ", ".join(key for key in old if old[key] != new[key])
    left, now = _nats(after.get("nats")), _nats(current.get("nats"))
    if left == now:
        return ""
    return f"its NATs are now {_describe_nats(now) or 'none'}, not {_describe_nats(left) or 'none'}"


def _nats(nats: Any) -> tuple[tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...]], ...]:
    """A router's NATs as what decides what they translate: name, coverage, subnets and ranges."""
    shaped = []
    for nat in nats or ():
        subnets = tuple(sorted(
            (estate.relative_link(str(s.get("name", "")), collection="subnetworks"),
             tuple(sorted(str(r) for r in s.get("sourceIpRangesToNat") or ())))
            for s in nat.get("subnetworks") or ()))
        shaped.append((str(nat.get("name", "")), str(nat.get("sourceSubnetworkIpRangesToNat", "")), subnets))
    return tuple(sorted(shaped))


def _describe_nats(nats: Sequence[tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...]]]) -> str:
    return "; ".join(f"{name} ({option}{': ' + ', '.join(s.rsplit('/', 1)[-1] for s, _ in subnets) if subnets else ''})"
                     for name, option, subnets in nats)


def _writable(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in _READ_ONLY}


def _reverse(change: Change, current: Mapping[str, Any] | None, stage: int) -> PlannedChange:
    """The write that puts ``change.before`` back (``current`` matched ``change.after``)."""
    kind, verb, name = _kind(change), change.action.rsplit(".", 1)[-1], change.resource.rsplit("/", 1)[-1]
    before = change.before
    if kind == "firewalls":
        if verb == "insert":
            return PlannedChange("compute.firewalls.delete", change.resource, current, None,
                                 f"delete managed rule {name}, which egress-guard created", stage)
        if verb == "patch" and before is not None and change.after is not None:
            # A field the patch set that the rule did not have reads as its default (disabled: false).
            restored = {key: before.get(key, False if key == "disabled" else None) for key in change.after}
            return PlannedChange("compute.firewalls.patch", change.resource, current,
                                 {k: v for k, v in restored.items() if v is not None},
                                 f"patch rule {name} back ({', '.join(sorted(change.after))})", stage)
        if verb == "update" and before is not None:
            return PlannedChange("compute.firewalls.update", change.resource, current, _writable(before),
                                 f"put rule {name} back as it was", stage)
        if verb == "delete" and before is not None:
            return PlannedChange("compute.firewalls.insert", change.resource, None, _writable(before),
                                 f"create rule {name} again, which egress-guard deleted", stage)
    else:
        if verb == "insert":
            return PlannedChange("compute.routers.delete", change.resource, current, None,
                                 f"delete router {name} and its NAT, which egress-guard created", stage)
        if verb == "patch" and before is not None and current is not None:
            # routers.update with the router as it is now, its NATs as they were: a patch cannot
            # empty a list (an empty repeated field is not sent), and nothing else of it is touched.
            return PlannedChange("compute.routers.update", change.resource, current,
                                 {**_writable(current), "nats": list(before.get("nats") or [])},
                                 f"put the NATs of router {name} back as they were", stage)
    raise NotUndoable(f"change {change.action} {change.resource} has no before to restore")


# --------------------------------------------------------------------------- act


def apply_undo(clients: "Clients", plan: Plan, *, timeout: float) -> list[Change]:
    """Make the plan's writes, in order, waiting for each; return the changes made. A write that
    fails (or meets a state changed since the read: ``Conflict``) stops it: ``PartlyUndone`` says
    what was done, nothing is retried blindly."""
    made: list[Change] = []
    try:
        for _stage, changes in plan.stages():
            for change in changes:
                if change.action.startswith("compute.firewalls."):
                    network = parse_network(plan.network, field="plan.network")
                    single = dataclasses.replace(plan, changes=(change,))
                    apply_firewalls(clients, single, network, timeout=timeout, applied=made)
                else:
                    _apply_router(clients, change, timeout=timeout)
                    made.append(change.to_change())
    except (EgressGuardError, Conflict) as exc:
        done = ", ".join(f"{c.action} {c.resource}" for c in made) or "nothing"
        raise PartlyUndone(f"{exc}; done before it stopped: {done}. Read the state before trying again") from exc
    return made


def _apply_router(clients: "Clients", change: PlannedChange, *, timeout: float) -> None:
    from google.cloud import compute_v1

    router = parse_router(change.resource, field="plan.resource")
    if change.verb == "delete":
        operation = _compute.start(change.action, change.resource, clients.routers.delete, project=router.project,
                                   region=router.region, router=router.name)
    elif change.verb == "update":
        body = compute_v1.Router.from_json(estate_json(change.after))
        operation = _compute.start(change.action, change.resource, clients.routers.update, project=router.project,
                                   region=router.region, router=router.name, router_resource=body)
    else:
        raise PermanentError(f"undo cannot apply {change.action}")
    _compute.wait(clients, operation, project=router.project, region=router.region, timeout=timeout,
                  action=f"{change.action} {change.resource}")


# --------------------------------------------------------------------------- the undone finding


def undone_finding(original: Finding, plan: Plan, applied: Sequence[Change], *, principal: str = "",
                   dry_run: bool = False, also: Sequence[str] = ()) -> Finding:
    """The finding of an undo: ``undone`` (or, with ``dry_run``, ``planned`` with what it would do).
    ``also``: the ids of the duplicates undone with it."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    trigger = Trigger(serviceName="egress-guard", methodName=UNDO_METHOD, resourceName=original.resource.name,
                      principal=principal, insertId=f"undo:{original.id}", timestamp=now)
    who = principal or "someone"
    if dry_run:
        outcome, mode, changes = Outcome.PLANNED, Mode.DRY_RUN, tuple(c.to_change() for c in plan.changes)
        reason = f"{who} asked what undoing finding {original.id} would do: {plan.reason[0].lower()}{plan.reason[1:]}"
    elif not plan.needs_change:  # already undone: said once more, nothing written
        outcome, mode, changes = Outcome.UNDONE, Mode.ENFORCE, ()
        reason = f"{plan.reason[:1].upper()}{plan.reason[1:]} ({who} asked to undo it.)"
    else:
        outcome, mode, changes = Outcome.UNDONE, Mode.ENFORCE, tuple(applied)
        reason = (f"{who} undid finding {original.id} ({original.guardrail} remediated {original.time}"
                  + (f"; the same changes reported by {', '.join(also)}" if also else "") + "): "
                  + ", ".join(f"{c.action.rsplit('.', 1)[-1]} {c.resource.rsplit('/', 1)[-1]}" for c in applied)
                  + ". The state before that remediation is back.")
    return Finding(guardrail=original.guardrail, mode=mode, outcome=outcome, project=original.project,
                   region=original.region, network=original.network, resource=original.resource, trigger=trigger,
                   changes=changes, reason=reason, labels=dict(original.labels), folder=original.folder)


def redo_warning(policy: "Policy", finding: Finding) -> str | None:
    """Why the guardrail would remediate again right after the undo, or None. Undo's own writes are
    audit entries like any other, and a guardrail in enforce mode treats them as drift unless the
    policy exempts what the finding is about: exempt it first (a person undoing a remediation
    usually means "not here")."""
    from .names import parse_connector

    try:
        mode = policy.mode_for(finding.guardrail)
    except KeyError:
        return None
    if mode is not Mode.ENFORCE:
        return None
    network = parse_network(finding.network, field="finding.network") if finding.network else None
    connector = (parse_connector(finding.resource.name, field="finding.resource")
                 if finding.resource.type == "vpcaccess.connector" else None)
    if policy.exemptions.reason_for(project=finding.project, network=network, connector=connector,
                                    labels=finding.labels):
        return None
    return (f"{finding.guardrail} is in enforce mode and the policy does not exempt {finding.resource.name}: the "
            "audit entries of this undo reach it as drift, and it will remediate again. Exempt it first "
            "(exemptions.projects, networks or connectors, or the workload's egress-guard=skip label).")


# --------------------------------------------------------------------------- finding a finding


def findings_subscription(clients: "Clients", name: str | None, environ: Mapping[str, str]) -> str:
    """The archive subscription: ``name``, else ``EGRESS_GUARD_FINDINGS_SUBSCRIPTION``, else the default;
    a short id is taken in the configured project."""
    chosen = name or environ.get(FINDINGS_SUBSCRIPTION_ENV, "").strip() or DEFAULT_FINDINGS_SUBSCRIPTION
    if chosen.startswith("projects/"):
        parts = chosen.split("/")
        if len(parts) != 4 or parts[2] != "subscriptions":
            raise ConfigError(f"{FINDINGS_SUBSCRIPTION_ENV}: {chosen!r} is not projects/P/subscriptions/S")
        return chosen
    if not clients.settings.project:
        raise ConfigError(f"{FINDINGS_SUBSCRIPTION_ENV}: give projects/P/subscriptions/S, or set EGRESS_GUARD_PROJECT")
    return f"projects/{clients.settings.project}/subscriptions/{chosen}"


def archived_findings(clients: "Clients", subscription: str) -> list[Finding]:
    """Every finding the archive subscription holds, read without consuming anything."""
    leased = lease_all(clients, subscription)
    try:
        findings = []
        for received in leased:
            try:
                findings.append(Finding.from_json(received.message.data))
            except (ValueError, KeyError, TypeError):
                continue  # not a finding: not ours to judge here
    finally:
        release(clients, subscription, [received.ack_id for received in leased])
    return findings


def pick(archive: Sequence[Finding], finding_id: str) -> Finding | None:
    """The finding with this id: the latest copy that made changes when one event was handled twice."""
    matches = sorted((f for f in archive if f.id == finding_id), key=lambda f: (bool(f.changes), f.time))
    return matches[-1] if matches else None


def find_finding(clients: "Clients", subscription: str, finding_id: str) -> tuple[Finding, tuple[Finding, ...]] | None:
    """The finding with this id in the archive subscription and its duplicates (``duplicates_of``),
    or None when the archive holds no finding of that id."""
    archive = archived_findings(clients, subscription)
    finding = pick(archive, finding_id)
    return None if finding is None else (finding, duplicates_of(finding, archive))


def undo(clients: "Clients", finding: Finding, *, timeout: float, dry_run: bool,
         publisher: Callable[[], Callable[[Finding], object]] | None, principal: str = "",
         duplicates: Sequence[Finding] = ()) -> tuple[Plan, Finding | None]:
    """Read, plan, and (unless ``dry_run`` or refused) act and publish the ``undone`` finding.
    ``duplicates``: the findings reporting the same remediation (``find_finding``), undone with it.
    ``publisher`` builds the publish function just before the first write, so that a missing
    findings topic (``ConfigError``) changes nothing. Returns the plan and the finding made (None
    when refused). Already undone: an ``undone`` finding that changed nothing and says so."""
    check_undoable(finding)
    plan = plan_undo(finding, read_live(clients, finding, duplicates), duplicates)
    if plan.verdict is Verdict.BLOCKED:
        return plan, None
    if dry_run:
        return plan, undone_finding(finding, plan, (), principal=principal, dry_run=True)
    publish = publisher() if publisher is not None else None
    applied = apply_undo(clients, plan, timeout=timeout)
    also = sorted({d.id for d in duplicates if d.id != finding.id})
    result = undone_finding(finding, plan, applied, principal=principal, also=also)
    if publish is not None:
        publish(result)
    return plan, result


__all__ = ["NotUndoable", "PartlyUndone", "LiveState", "read_live", "plan_undo", "duplicates_of", "apply_undo",
           "undone_finding", "archived_findings", "pick", "find_finding", "findings_subscription", "undo", "redo_warning"]
