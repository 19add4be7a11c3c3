"""Sweep's own NAT step: every NAT subject of the inventory, and many subjects folded into one
router write per router.

Which subjects ensure_nat covers and where their traffic leaves are decided by the guardrail's
own code (``egress.connector_point``, ``ensure_nat.workload_subject``), here with the inventory
as the lookup instead of live reads. What is sweep's own: the subjects of one project and region
are planned in order (range connectors first, as ensure_nat's drift handler does, so an
``ALL_SUBNETWORKS_*`` NAT they need is not blocked by a LIST NAT planned a moment earlier), each
against the routers as the writes planned before it leave them, and the writes are merged into
one per router: fifty subnets missing from one network's NAT cost one ``routers.patch``, not fifty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .. import estate
from ..egress import EgressPoint, NoEgressPoint, connector_point
from ..estate import Connector, Router, Subnetwork
from ..findings import ResourceRef
from ..guardrails.ensure_nat import GUARDRAIL_NAME as NAT
from ..guardrails.ensure_nat import covering, plan_nat, workload_subject
from ..names import SubnetworkName
from ..converge import MAX_ATTEMPTS, converge
from ..findings import Change
from ..plan import Plan, PlannedChange, Verdict, change_plan
from ..policy import Policy
from .inventory import Inventory
from .report import Row, skipped

if TYPE_CHECKING:
    from ..clients import Clients


@dataclass(frozen=True)
class NatSubject:
    """Something whose internet traffic leaves through ``point``: it needs a NAT there."""

    ref: ResourceRef
    point: EgressPoint


def subnet_lookup(inventory: Inventory) -> Callable[[SubnetworkName], Subnetwork | None]:
    """The inventory as ``egress``'s subnet lookup; a subnet of a project whose reads failed is
    unknown, not missing."""
    def lookup(name: SubnetworkName) -> Subnetwork | None:
        found = inventory.subnetworks.get(name.relative)
        if found is None and name.project in inventory.failed_projects:
            raise NoEgressPoint(f"the subnets of project {name.project} could not be read")
        return found

    return lookup


def inventory_point(connector: Connector, inventory: Inventory) -> EgressPoint | str:
    """Where a connector's traffic enters its VPC, from the inventory; the reason when it cannot be told."""
    try:
        return connector_point(connector, subnet_lookup(inventory))
    except NoEgressPoint as exc:
        return exc.reason


def nat_subjects(inventory: Inventory, policy: Policy) -> tuple[list[NatSubject], list[Plan], list[Row]]:
    """Every subject ensure_nat covers: (subjects needing a NAT check, plans already final, skipped rows)."""
    subjects: list[NatSubject] = []
    settled: list[Plan] = []
    skipped_rows: list[Row] = []
    for connector in sorted(inventory.connectors.values(), key=lambda c: c.name.relative):
        if connector.name.project != inventory.project or not policy.nat.on_connector_create:
            continue  # another project's connector is that project's to sweep
        point = inventory_point(connector, inventory)
        if isinstance(point, str):
            skipped_rows.append(skipped(connector.name.ref, NAT, point))
        else:
            subjects.append(NatSubject(connector.name.ref, point))
    for workload in sorted(inventory.workloads, key=lambda w: w.name.relative):
        ref = workload.name.ref
        exempt = policy.exemptions.reason_for(project=workload.name.project)
        if exempt:  # what the runner says of a project exemption before a guardrail runs
            settled.append(Plan(ref, workload.name.project, workload.name.region, "", Verdict.EXEMPT,
                                f"{workload.name.name} is exempt: {exempt}."))
            continue
        try:
            subject = workload_subject(workload, policy, connector_of=lambda c: inventory.connectors.get(c.relative),
                                       subnet_of=subnet_lookup(inventory))
        except NoEgressPoint as exc:
            skipped_rows.append(skipped(ref, NAT, exc.reason))
            continue
        if isinstance(subject, Plan):
            settled.append(subject)
        else:
            subjects.append(NatSubject(ref, subject))
    return subjects, settled, skipped_rows


@dataclass(frozen=True)
class NatDecision:
    subject: NatSubject
    plan: Plan  # what the finding shows: its own plan, or a change plan holding the merged router write
    router: str | None  # relative name of the router write this subject waits for, if any


class RegionPlan(NamedTuple):
    """The NAT decisions of one project and region, and the router writes they need (one per router)."""

    decisions: list[NatDecision]
    writes: dict[str, PlannedChange]  # router relative name -> its merged write

    @property
    def needs_change(self) -> bool:
        return bool(self.writes)


def plan_nat_region(subjects: Sequence[NatSubject], routers: Sequence[Router], policy: Policy, *,
                    drift: str = "") -> RegionPlan:
    """Plan the NAT subjects of one project and region from its routers (pure).

    Each subject is planned with ``plan_nat`` against the routers as the writes planned before it
    leave them; the writes are merged into one per router. Returns the decisions, in subject order,
    and the merged writes by router.
    """
    ordered = sorted(subjects, key=lambda s: (not s.point.needs_all_subnetworks, s.ref.name))
    virtual = tuple(routers)
    writes: dict[str, PlannedChange] = {}
    planned: list[tuple[NatSubject, Plan, str | None]] = []
    for subject in ordered:
        plan = plan_nat(subject.ref, subject.point, virtual, policy, drift=drift)
        if plan.needs_change:
            (change,) = plan.changes  # the planner makes one router write per plan
            writes[change.resource] = _merge(writes.get(change.resource), change)
            virtual = _fold(virtual, change)
            planned.append((subject, plan, change.resource))
            continue
        router = None
        if plan.verdict is Verdict.COMPLIANT and writes:
            found = covering(subject.point, virtual)
            if found is not None and found[0].relative in writes:
                router = found[0].relative  # covered only by a write planned above
        planned.append((subject, plan, router))

    decisions = []
    shown: dict[str, str] = {}  # router -> the subject whose finding carries its write in full
    for subject, plan, router in planned:
        if router is None:
            decisions.append(NatDecision(subject, plan, None))
            continue
        write = writes[router]
        first = shown.setdefault(router, subject.ref.name)
        if first != subject.ref.name:
            # The merged write holds every subnet of the router: carried in full by one finding and
            # named by the others, so n subjects of one router do not cost n copies of it (n² in all).
            write = without_bodies(write)
        if plan.needs_change:
            reason = plan.reason
        else:
            reason = (f"{drift + ' ' if drift else ''}{subject.point.describe()} and no NAT covers it yet; the write "
                      f"to router {write.short_name} covers it.")
        if first != subject.ref.name:
            reason += f" The write to router {write.short_name} is shown in full in the finding of {first.rsplit('/', 1)[-1]}."
        decisions.append(NatDecision(subject, change_plan(
            subject.ref, project=plan.project, region=plan.region, network=plan.network, reason=reason,
            changes=[write]), router))
    return RegionPlan(decisions, writes)


def without_bodies(write: PlannedChange) -> PlannedChange:
    """The router write as another subject's finding names it: the method and the router, no body."""
    return PlannedChange(write.action, write.resource, None, None, write.reason, write.stage)


def _merge(previous: PlannedChange | None, change: PlannedChange) -> PlannedChange:
    """Two writes to one router -> one: an insert stays an insert with the later ``nats``; patches
    keep the body first read as ``before`` and the last ``nats`` as ``after``."""
    if previous is None:
        return change
    after = {**(previous.after or {}), **(change.after or {})}  # shallow: neither is changed after
    return PlannedChange(previous.action, previous.resource, previous.before, after,
                         f"{previous.reason}; {change.reason}", previous.stage)


def _fold(routers: tuple[Router, ...], change: PlannedChange) -> tuple[Router, ...]:
    """The routers as they will be once ``change`` is made."""
    _, project, _, region, _, name = change.resource.split("/")
    # No thaw: router_from_json freezes the new parts and keeps the parts already frozen.
    if change.verb == "insert":
        return routers + (estate.router_from_json(change.after or {}, project=project, region=region),)
    # By name: the routers are one project's and region's, and a region's thousands of subjects each
    # fold a write into its tens of routers (building each relative name was a tenth of a sweep's CPU).
    return tuple(estate.router_from_json({**r.body, **(change.after or {})}, project=project, region=region, before=r)
                 if r.name == name and r.project == project and r.region == region else r for r in routers)


def converge_nat_region(clients: "Clients", project: str, region: str, subjects: Sequence[NatSubject],
                        policy: Policy, *, timeout: float, enforce: bool, drift: str = "",
                        first: Callable[[], Sequence[Router]] | None = None) -> list[tuple[NatDecision, list[Change]]]:
    """Plan the NAT subjects of one project and region together and make one write per router
    (``converge``: a conflict re-reads the region's routers and plans again); each decision with the
    changes made for it. The sweep (first state: its inventory) and ensure_nat's drift handler (a
    router changed: every connector of the region) both decide a region this way."""
    from ..guardrails.ensure_nat import apply_nat, settle_after_router_write, unconditional_writes

    needed: dict[str, str | None] = {}  # subject -> the router write it needed when first planned

    def plan(routers: Sequence[Router]) -> RegionPlan:
        planned = plan_nat_region(subjects, routers, policy, drift=drift)
        if not needed:
            needed.update({d.subject.ref.name: d.router for d in planned.decisions})
        return planned

    def apply(planned: RegionPlan, applied: list[Change]) -> None:
        for resource, write in planned.writes.items():
            one = change_plan(ResourceRef("compute.router", resource), project=project, region=region,
                              network="", reason=write.reason, changes=[write])
            apply_nat(clients, one, timeout=timeout, applied=applied)

    done = converge(first=first, read=lambda: estate.routers_of(clients, project, region), plan=plan, apply=apply,
                    enforce=enforce, verify_after_write=unconditional_writes,
                    settle=lambda: settle_after_router_write(clients, project, region, timeout),
                    kept_changing=f"the routers of {project}/{region} kept changing during {MAX_ATTEMPTS} attempts")
    decided = []
    shown: set[str] = set()
    for decision in done.plan.decisions:
        # A write made before a conflict still counts: the replan then finds the subject covered.
        router = decision.router or needed.get(decision.subject.ref.name)
        made = [c for c in done.applied if c.resource == router]
        if router in shown:  # the first subject's finding carries the write's bodies, the others name it
            made = [Change(c.action, c.resource) for c in made]
        elif made:
            shown.add(router)
        decided.append((decision, made))
    return decided
