"""ensure_nat: every place a workload's internet traffic leaves the VPC is covered by a Cloud NAT.

Design §2. The planner is pure: ``plan_nat(subject, point, routers, policy)`` takes where the
traffic leaves (``egress.EgressPoint``) and every router of the project and region (one
``routers.list``; ``sweep`` can pass ``routers.aggregatedList``), and returns a ``Plan``; ``workload_plan`` settles workloads that need no NAT before anything else is read. The
executor ``apply_nat`` applies a plan and waits for it. ``EnsureNat.run`` reads, plans, acts and
replans after a conflict, holding a per project+region lock so that concurrent events in one
process do not race (``sweep`` can call the same planner with state it read in bulk). It reads the
routers before a subject's subnet: a LIST NAT that names the subnet gives its network, so a covered
subject costs no ``subnetworks.get`` (``_RoutersFirst``, docs/minimums.md).

Coverage: a router of the same network and region has a public NAT that is ``ALL_SUBNETWORKS_*``, or
``LIST_OF_SUBNETWORKS`` naming the subnet with ``PRIMARY_IP_RANGE`` or ``ALL_IP_RANGES``. An
``ipCidrRange`` connector's hidden subnet cannot be named in a NAT, so only ``ALL_SUBNETWORKS_*``
covers it, and such a NAT must be the only NAT of its network and region (docs/gcp-facts.md §6).

When it is missing:

1. egress-guard's own NAT (``nat.name_prefix``-nat-REGION) exists as ``LIST_OF_SUBNETWORKS`` on a
   router of the network: add the subnet to it (routers.patch, read-modify-write of ``nats``);
2. a router of the network exists: add egress-guard's NAT to it (routers.patch; the router named
   ``{prefix}-{region}`` is preferred, else the first by name); a user's NAT is never modified;
3. no router: routers.insert of ``{prefix}-{region}`` with the NAT in the same body (one write).
   Router names are unique per project and region across networks, so when a router of another
   network already holds that name the router is ``{prefix}-{region}-{network}`` (this is why the
   planner sees the routers of every network of the region; it only ever changes its own network's).

The new NAT is ``LIST_OF_SUBNETWORKS`` with the subnet (``PRIMARY_IP_RANGE``: the connector's and
Direct VPC's addresses come from the primary range), or ``ALL_SUBNETWORKS_ALL_IP_RANGES`` for an
``ipCidrRange`` connector when no NAT exists at all. If any NAT exists and none covers an
``ipCidrRange`` connector, the plan is ``blocked``: nothing is written, the reason says what to do.

Drift (a router patched, updated or deleted) re-checks the connectors of the router's region; a
NAT that only Direct VPC workloads needed is put back by their next deployment or by ``sweep``
(re-reading every Cloud Run service of a region on each router change would cost far more calls).

Compute routers have no ``fingerprint`` (compute v1 Router schema; the REAL recordings show none),
so a read-modify-write of ``nats`` cannot be made conditional on the version read. Inside one
process the lock serialises it, but the deployment runs each function on several instances at
concurrency 1 (infra/modules/guardrail-function), which share no lock: two instances read the
router, each adds its subnet to the NAT's list and patches, and the later patch, made from the
older read, silently drops the earlier one's subnet (the reliability test
``test_router_race.py`` saw 3 of 400 subnets dropped this way with 3 instances). A concurrent
insert answers 409 and leads to a re-read, but nothing refuses the stale patch. So every
``routers.patch`` is verified after it is written (``converge``'s ``verify_after_write``,
``unconditional_writes``): once its operation is DONE, and ``ROUTER_WRITE_SETTLE_S`` later, the
routers are read again and planned again; a plan that still needs a change means a stale write
undid ours, and the subnet is patched in again, at most ``MAX_ATTEMPTS`` writes, then
``TransientError`` and Pub/Sub redelivers. The settle time is there because a verification read
made at once does not catch the stale writer that read before our write but patches after our
read: the first version of this fix read at once and still lost 2 of 400 subnets in the test
(with localcloud's operations DONE at once and 2 busy cores, a writer's read-to-patch gap is longer
than our whole write, wait and read). Before that read, the region's router operations not DONE
are waited for (``settle_after_router_write``): an operation lands its request's ``nats`` when it
ends, so a slow one (another writer's, or ours after its wait timed out) read past would drop
subnets after our verify confirmed them (the router race with faults injected lost 65 of 400 that
way). An insert needs no verification: a writer that read before
the router existed plans an insert too, which answers 409. Chosen over the alternatives because it
needs nothing beyond the API itself: a single writer instance (``max_instances = 1``) would
serialise every project's NAT writes behind one slow Compute operation, and a lease needs a store
the functions do not have. What it leaves: a writer whose read-to-patch gap exceeds the settle
time (its own verification then sees its subnet, not ours); the subnet stays out until the next
event for it or ``egress-guard sweep`` puts it back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .. import estate
from ..egress import ACTIVE_CONNECTOR_STATES, Egress, EgressPoint, NoEgressPoint, connector_point, workload_point
from ..errors import InvalidName, NothingToDo, NotOurEvent, PermanentError
from ..estate import Router, Subnetwork, Workload
from ..events import ApiVersion, AuditEvent, EventKind
from ..findings import Change, Finding, Mode, ResourceRef, Trigger
from ..assumptions import FUNCTIONS_MANAGED_LABEL
from ..names import (
    AppEngineVersionName,
    ConnectorName,
    FunctionName,
    RouterName,
    RunJobName,
    RunWorkerPoolName,
    RunServiceName,
    SubnetworkName,
    parse_network,
)
from ..plan import Plan, PlannedChange, Verdict, change_plan
from ..policy import MANUAL_ONLY, Policy
from ..converge import MAX_ATTEMPTS, converge
from . import _compute
from ._compute import KeyedLocks

if TYPE_CHECKING:
    from ..clients import Clients
    from ..egress import ConnectorLookup, SubnetLookup
    from ..runner import Context

T = TypeVar("T")

GUARDRAIL_NAME = "ensure_nat"
ALL_SUBNETWORKS_ALL_IP_RANGES = "ALL_SUBNETWORKS_ALL_IP_RANGES"
LIST_OF_SUBNETWORKS = "LIST_OF_SUBNETWORKS"
# Ranges of a subnet a LIST NAT entry must translate for the subnet's workloads to be covered.
COVERING_RANGES = frozenset({"PRIMARY_IP_RANGE", "ALL_IP_RANGES"})

# Per project and region, not per router: whether a NAT is needed, and where, depends on every router
# of the network in the region (the ALL_SUBNETWORKS_* exclusivity spans them all), and the routers
# are read before the subject's network is known (``_RoutersFirst``), so the lock cannot wait for it.
_LOCKS = KeyedLocks()


# =========================================================================== pure planning


def nat_lock_key(project: str, region: str) -> str:
    return f"routers/{project}/{region}"


def covering(point: EgressPoint, routers: Sequence[Router]) -> tuple[Router, estate.Nat] | None:
    """The router and public NAT that already cover ``point``, if any."""
    for router in routers:
        if router.network != point.network.relative:
            continue
        for nat in router.nats:
            if str(nat.body.get("type", "PUBLIC")) != "PUBLIC":
                continue  # a private NAT translates to other VPCs, not to the internet
            if nat.all_subnetworks:
                return router, nat
            if point.subnetwork is not None and nat.option == LIST_OF_SUBNETWORKS:
                for entry in nat.subnetworks:
                    if entry.subnetwork == point.subnetwork.relative and COVERING_RANGES & set(entry.ranges):
                        return router, nat
    return None


def nat_body(point: EgressPoint, policy: Policy, *, all_subnetworks: bool) -> dict[str, Any]:
    """egress-guard's NAT for ``point`` as the policy configures it."""
    nat_policy = policy.nat
    body: dict[str, Any] = {"name": nat_policy.nat_name(point.region)}
    if nat_policy.ip_allocation == MANUAL_ONLY:
        addresses = nat_policy.addresses_for(point.project, point.region)
        body["natIpAllocateOption"] = MANUAL_ONLY
        body["natIps"] = [a.self_link for a in addresses]
    else:
        body["natIpAllocateOption"] = "AUTO_ONLY"
    if all_subnetworks:
        body["sourceSubnetworkIpRangesToNat"] = ALL_SUBNETWORKS_ALL_IP_RANGES
    else:
        assert point.subnetwork is not None
        body["sourceSubnetworkIpRangesToNat"] = LIST_OF_SUBNETWORKS
        body["subnetworks"] = [subnet_entry(point)]
    body["minPortsPerVm"] = nat_policy.min_ports_per_vm
    if nat_policy.log_filter is None:
        body["logConfig"] = {"enable": False}
    else:
        body["logConfig"] = {"enable": True, "filter": nat_policy.log_filter}
    return body


def subnet_entry(point: EgressPoint) -> dict[str, Any]:
    assert point.subnetwork is not None
    return {"name": point.subnetwork.self_link, "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]}


def workload_plan(workload: Workload, policy: Policy, *, project: str) -> Plan | None:
    """A final plan for a workload that needs no NAT (exempt, no VPC, private ranges only), or None."""
    subject = workload.name.ref
    region = workload.name.region
    label_reason = policy.exemptions.reason_for(labels=workload.labels)
    if label_reason:
        return Plan(subject, project, region, "", Verdict.EXEMPT, f"{_kind(workload)} is exempt: {label_reason}.")
    if not workload.uses_vpc:
        return Plan(subject, project, region, "", Verdict.COMPLIANT,
                    f"{_kind(workload)} sends no traffic through a VPC (no connector, no Direct VPC egress): "
                    "its internet traffic does not need Cloud NAT.")
    if workload.egress is not Egress.ALL_TRAFFIC:
        return Plan(subject, project, region, "", Verdict.COMPLIANT,
                    f"{_kind(workload)} sends only private ranges through the VPC (egress private-ranges-only): "
                    "its internet traffic does not leave through the VPC, so it needs no Cloud NAT.")
    if workload.connector is not None:
        reason = policy.exemptions.reason_for(connector=workload.connector)
        if reason:
            return Plan(subject, project, region, "", Verdict.EXEMPT, f"{_kind(workload)} is exempt: {reason}.")
    return None


def workload_subject(workload: Workload, policy: Policy, *, connector_of: "ConnectorLookup",
                     subnet_of: "SubnetLookup") -> Plan | EgressPoint:
    """What ensure_nat decides for a workload: a final plan when it needs no NAT, otherwise where
    its traffic leaves (a guardrail looks connector and subnet up live, ``sweep`` in its
    inventory). Raises ``NoEgressPoint`` when that cannot be told."""
    settled = workload_plan(workload, policy, project=workload.name.project)
    if settled is not None:
        return settled
    return workload_point(workload, connector_of, subnet_of)


def _kind(workload: Workload) -> str:
    what = {RunServiceName: "Cloud Run service", RunJobName: "Cloud Run job",
            RunWorkerPoolName: "Cloud Run worker pool", FunctionName: "Cloud Function", AppEngineVersionName: "App Engine version"}[type(workload.name)]
    return f"{what} {workload.name.name}"


def managed_by_functions(workload: Workload) -> bool:
    """A 2nd gen function's own Cloud Run service: decided through its function, never twice
    (docs/gcp-facts.md §12.3; ``assumptions.FUNCTIONS_V2_WRITE_RUN_ENTRY``)."""
    key, value = FUNCTIONS_MANAGED_LABEL
    return isinstance(workload.name, RunServiceName) and workload.labels.get(key) == value


def plan_nat(subject: ResourceRef, point: EgressPoint, routers: Sequence[Router], policy: Policy, *,
             drift: str = "") -> Plan:
    """Decide whether ``point`` needs a NAT and how to add it (pure).

    ``routers``: every router of the point's project and region (those of other networks only
    reserve their names; they never cover the point and are never changed). ``drift``: a
    sentence saying what changed (a router patched or deleted), put in front of the reason.
    """
    network = point.network
    head = f"{drift} " if drift else ""
    exempt = policy.exemptions.reason_for(project=point.project, network=network, connector=point.connector)
    if exempt:
        return Plan(subject, point.project, point.region, network.relative, Verdict.EXEMPT,
                    f"{head}{point.describe()}; exempt: {exempt}.")
    mine = sorted((r for r in routers if r.network == network.relative), key=lambda r: r.name)
    found = covering(point, mine)
    if found is not None:
        router, nat = found
        return Plan(subject, point.project, point.region, network.relative, Verdict.COMPLIANT,
                    f"{head}{point.describe()}; NAT {nat.name} on router {router.name} "
                    f"({nat.option}) already covers it.")

    nat_name = policy.nat.nat_name(point.region)
    all_nats = [(r, n) for r in mine for n in r.nats]
    if point.needs_all_subnetworks:
        if all_nats:
            return Plan(subject, point.project, point.region, network.relative, Verdict.BLOCKED,
                        head + _blocked_reason(point, all_nats))
        return _add_nat(subject, point, mine, policy, all_subnetworks=True, head=head, every_router=routers)

    own = next(((r, n) for r, n in all_nats if n.name == nat_name and n.option == LIST_OF_SUBNETWORKS), None)
    if own is not None:
        router, nat = own
        nats = [_extended(n, point) if n is nat else n.body for n in router.nats]
        change = PlannedChange(
            "compute.routers.patch", router.relative, router.body, {"nats": nats},
            f"add subnet {point.subnetwork.name if point.subnetwork else '?'} to egress-guard's NAT {nat.name} "
            f"on router {router.name}")
        return change_plan(subject, project=point.project, region=point.region, network=network.relative,
                           reason=f"{head}{point.describe()} and no NAT covers it; {change.reason}.", changes=[change])
    return _add_nat(subject, point, mine, policy, all_subnetworks=False, head=head, every_router=routers)


def _extended(nat: estate.Nat, point: EgressPoint) -> dict[str, Any]:
    """The NAT's body with the point's subnet added. Shallow: what was read stays as read (frozen),
    so a sweep extending one NAT by fifty subnets copies no entry fifty times."""
    body = dict(nat.body)
    subnets = list(body.get("subnetworks") or ())
    assert point.subnetwork is not None
    # nat.subnetworks are the body's entries parsed, in the same order (estate.router_from_json).
    for index, parsed in enumerate(nat.subnetworks):  # listed with only secondary ranges: add the primary range
        if parsed.subnetwork == point.subnetwork.relative:
            entry = subnets[index]
            subnets[index] = {**entry, "sourceIpRangesToNat": sorted(
                set(entry.get("sourceIpRangesToNat") or ()) | {"PRIMARY_IP_RANGE"})}
            break
    else:
        subnets.append(subnet_entry(point))
    body["subnetworks"] = subnets
    return body


def router_name_for(point: EgressPoint, policy: Policy, *, taken: Sequence[Router] = ()) -> str | None:
    """The name of the router egress-guard creates for ``point``: ``{prefix}-{region}``, or, when a
    router of another network already holds that name (router names are unique per project and
    region, across networks), ``{prefix}-{region}-{network}``. None when both are taken."""
    names = {r.name for r in taken if r.network != point.network.relative}
    for candidate in (policy.nat.router_name(point.region), _network_router_name(point, policy)):
        if candidate not in names:
            return candidate
    return None


def _network_router_name(point: EgressPoint, policy: Policy) -> str:
    base = policy.nat.router_name(point.region)
    name = f"{base}-{point.network.name}"
    if len(name) > 63:  # a Compute name has at most 63 characters: a stable short form of the network
        import hashlib

        digest = hashlib.sha256(point.network.relative.encode()).hexdigest()[:10]
        name = f"{base[:63 - 11].rstrip('-')}-{digest}"
    return name


def _add_nat(subject: ResourceRef, point: EgressPoint, routers: Sequence[Router], policy: Policy, *,
             all_subnetworks: bool, head: str, every_router: Sequence[Router] = ()) -> Plan:
    nat = nat_body(point, policy, all_subnetworks=all_subnetworks)
    coverage = "all subnetworks (ALL_SUBNETWORKS_ALL_IP_RANGES: the only NAT that can cover a connector's hidden " \
               "ipCidrRange subnet)" if all_subnetworks else \
        f"subnet {point.subnetwork.name if point.subnetwork else '?'} (LIST_OF_SUBNETWORKS)"
    if routers:
        own_names = (policy.nat.router_name(point.region), _network_router_name(point, policy))
        router = next((r for name in own_names for r in routers if r.name == name), routers[0])
        taken = {n.name for n in router.nats}
        if nat["name"] in taken:  # egress-guard's NAT name is taken by a NAT we do not recognise as ours
            return Plan(subject, point.project, point.region, point.network.relative, Verdict.BLOCKED,
                        f"{head}{point.describe()} and no NAT covers it, but router {router.name} already has a NAT "
                        f"named {nat['name']} that is not a LIST_OF_SUBNETWORKS NAT egress-guard can extend. "
                        f"Rename that NAT or set nat.name_prefix in the policy, then redeliver the event or run "
                        f"`egress-guard sweep`.")
        change = PlannedChange(
            "compute.routers.patch", router.relative, router.body,
            {"nats": [n.body for n in router.nats] + [nat]},
            f"add NAT {nat['name']} covering {coverage} to router {router.name}")
    else:
        chosen = router_name_for(point, policy, taken=every_router)
        if chosen is None:
            return Plan(subject, point.project, point.region, point.network.relative, Verdict.BLOCKED,
                        f"{head}{point.describe()} and no router of network {point.network.name} exists, but the router "
                        f"names egress-guard uses ({policy.nat.router_name(point.region)} and "
                        f"{_network_router_name(point, policy)}) are taken by routers of other networks in "
                        f"{point.region}. Create a Cloud Router in network {point.network.name} (`gcloud compute routers "
                        f"create ROUTER --network={point.network.name} --region={point.region}`) and egress-guard will "
                        f"add its NAT to it, or set nat.name_prefix.")
        name = RouterName(point.project, point.region, chosen)
        body = {
            "name": chosen,
            "network": point.network.self_link,
            "description": f"managed-by: egress-guard; Cloud NAT for serverless egress of network "
                           f"{point.network.name} in {point.region}",
            "nats": [nat],
        }
        change = PlannedChange("compute.routers.insert", name.relative, None, body,
                               f"create router {chosen} with NAT {nat['name']} covering {coverage}")
    return change_plan(subject, project=point.project, region=point.region, network=point.network.relative,
                       reason=f"{head}{point.describe()} and no NAT covers it; {change.reason}.", changes=[change])


def _blocked_reason(point: EgressPoint, nats: Sequence[tuple[Router, estate.Nat]]) -> str:
    listed = ", ".join(f"{n.name} on router {r.name} ({n.option})" for r, n in nats)
    connector = point.connector.name if point.connector else "the connector"
    region, network = point.region, point.network.name
    first_router, first_nat = nats[0]
    return (
        f"{point.describe()}. Only a NAT covering all subnetworks (ALL_SUBNETWORKS_*) can cover that hidden subnet, "
        f"and Cloud NAT allows such a NAT only as the sole NAT of network {network} in {region}, which already has: "
        f"{listed}. egress-guard changed nothing. To fix it, either recreate connector {connector} on a /28 subnet "
        f"you create (`gcloud compute networks vpc-access connectors create {connector} --region={region} "
        f"--subnet=SUBNET`), which a LIST_OF_SUBNETWORKS NAT can cover, or make the existing NAT cover all subnets "
        f"(`gcloud compute routers nats update {first_nat.name} --router={first_router.name} --region={region} "
        f"--nat-all-subnet-ip-ranges`, after removing any other NAT of the network in {region}); then redeliver the "
        f"event or run `egress-guard sweep`.")


# =========================================================================== executor


def apply_nat(clients: "Clients", plan: Plan, *, timeout: float, applied: list[Change] | None = None) -> list[Change]:
    """Make the plan's router writes and wait for each; return the changes made.

    Each change is appended to ``applied`` (when given) as soon as its operation is DONE, so that a
    ``Conflict`` on a later write keeps it (see ``converge``). Raises ``Conflict`` (re-read and
    replan), ``TransientError`` or ``PermanentError``.
    """
    from google.cloud import compute_v1

    made: list[Change] = applied if applied is not None else []
    for change in plan.changes:
        router = _router_name(change.resource)
        action = change.action
        if change.verb == "insert":
            body = compute_v1.Router.from_json(estate_json(change.after))
            operation = _compute.start(action, change.resource, clients.routers.insert, project=router.project,
                                       region=router.region, router_resource=body, timeout=timeout)
        elif change.verb == "patch":
            body = compute_v1.Router.from_json(estate_json(change.after))
            operation = _compute.start(action, change.resource, clients.routers.patch, project=router.project,
                                       region=router.region, router=router.name, router_resource=body,
                                       timeout=timeout)
        else:  # planners make no other router writes
            raise PermanentError(f"ensure_nat cannot apply {action}")
        _compute.wait(clients, operation, project=router.project, region=router.region, timeout=timeout,
                      action=f"{action} {change.resource}")
        # converge verifies a patch once this returns (unconditional_writes; the module docstring).
        made.append(change.to_change())
    return made


# How long after a router patch's operation is DONE the verification read waits: longer than another
# instance takes from its routers.list to its patch (a plan and one request: milliseconds, seconds
# on a starved CPU), so that a stale patch from a writer that read before ours has landed by then.
ROUTER_WRITE_SETTLE_S = 1.0


def settle_after_router_write(clients: "Clients", project: str, region: str, timeout: float) -> None:
    """Before the verification read: wait for every router operation of the region still running,
    then ``ROUTER_WRITE_SETTLE_S``. A router operation applies the ``nats`` its
    request carried when it ends, so one still RUNNING (another instance's slow operation, or one
    of ours whose wait timed out before a redelivery) is a stale write yet to land: a verify read
    made before it ends would confirm what it is about to drop. Bounded by ``timeout``: past it,
    the read is made anyway, and the operation's own writer verifies after it."""
    _compute.wait_for_running_router_operations(clients, project=project, region=region, timeout=timeout)
    time.sleep(ROUTER_WRITE_SETTLE_S)


def unconditional_writes(changes: Sequence[Change]) -> bool:
    """True when ``changes`` hold a router patch: it replaces ``nats`` whole and nothing refuses it when
    made from a stale read (routers have no fingerprint), so converge reads again to verify it."""
    return any(change.action == "compute.routers.patch" for change in changes)


def estate_json(body: Mapping[str, Any] | None) -> str:
    import json

    from ..events import thaw

    return json.dumps(thaw(body) if body is not None else {})


def _router_name(relative: str) -> RouterName:
    from ..names import parse_router

    return parse_router(relative, field="plan.resource")


# =========================================================================== the guardrail


class EnsureNat:
    """Reads, plans, acts and reports for one audit event."""

    name = GUARDRAIL_NAME

    def accepts(self, event: AuditEvent, policy: Policy) -> str | None:
        """None when this guardrail acts on ``event``; otherwise why not (acknowledged, no API call)."""
        kind = event.kind
        if kind is EventKind.CONNECTOR_CREATED and not policy.nat.on_connector_create:
            return "nat.on_connector_create is false: a new connector alone does not need a NAT"
        if kind is EventKind.ROUTER_CHANGED and not policy.nat.on_connector_create:
            return ("nat.on_connector_create is false: a router change is re-checked only for connectors, which this "
                    "policy does not cover by themselves")
        if kind is EventKind.FIREWALL_CHANGED:
            return "firewall changes are replace_connector_firewalls' concern"
        if event.awaits_last_entry:
            return "the router change is still running; its operation's last entry brings the result"
        return None

    def run(self, event: AuditEvent, ctx: "Context", mode: Mode) -> list[Finding]:
        kind = event.kind
        if kind is EventKind.CONNECTOR_CREATED:
            assert isinstance(event.resource, ConnectorName)
            return self._for_connector(event.resource, event, ctx, mode)
        if kind in (EventKind.RUN_SERVICE_WRITTEN, EventKind.RUN_JOB_WRITTEN, EventKind.RUN_WORKER_POOL_WRITTEN,
                    EventKind.FUNCTION_WRITTEN, EventKind.APP_ENGINE_VERSION_CREATED):
            assert isinstance(event.resource, (RunServiceName, RunJobName, RunWorkerPoolName, FunctionName,
                                               AppEngineVersionName))
            return self._for_workload(event.resource, event, ctx, mode)
        if kind is EventKind.ROUTER_CHANGED:
            assert isinstance(event.resource, RouterName)
            return self._for_router_change(event.resource, event, ctx, mode)
        raise NotOurEvent(f"{event.method_name} is not an ensure_nat trigger")

    # -- the three kinds of trigger

    def _for_connector(self, name: ConnectorName, event: AuditEvent, ctx: "Context", mode: Mode) -> list[Finding]:
        exempt = ctx.policy.exemptions.reason_for(connector=name)
        if exempt:
            return [Plan(name.ref, name.project, name.region, "", Verdict.EXEMPT,
                         f"connector {name.name} is exempt: {exempt}.").finding(
                guardrail=GUARDRAIL_NAME, mode=mode, trigger=event.trigger)]
        connector = estate.read_connector(ctx.clients, name)
        if connector is None:
            raise NothingToDo(f"connector {name.relative} does not exist (any more); nothing to cover")
        with _RoutersFirst(ctx) as subnet_of:
            point = _nothing_to_cover(name.relative, lambda: connector_point(connector, subnet_of))
            return [self._ensure(name.ref, point, event.trigger, ctx, mode, read_first=subnet_of)]

    def _for_workload(self, name: RunServiceName | RunJobName | RunWorkerPoolName | FunctionName | AppEngineVersionName,
                      event: AuditEvent,
                      ctx: "Context", mode: Mode) -> list[Finding]:
        if isinstance(name, FunctionName):  # read through the API that wrote it: 1st gen through v1
            read = estate.read_function_v1 if event.api is ApiVersion.FUNCTIONS_V1 else estate.read_function
            workload = _nothing_to_cover(name.relative, lambda: read(ctx.clients, name))
        elif isinstance(name, AppEngineVersionName):
            workload = estate.read_app_engine_version(ctx.clients, name)
        else:
            workload = estate.read_workload(ctx.clients, name)
        if workload is None:
            raise NothingToDo(f"{name.relative} does not exist (any more); nothing to cover")
        if managed_by_functions(workload):
            raise NothingToDo(f"{name.relative} is the Cloud Run service of a 2nd gen Cloud Function "
                              f"({'='.join(FUNCTIONS_MANAGED_LABEL)}): its function's own audit entry decides it")
        with _RoutersFirst(ctx) as subnet_of:
            subject = _nothing_to_cover(name.relative, lambda: workload_subject(
                workload, ctx.policy, connector_of=lambda c: estate.read_connector(ctx.clients, c),
                subnet_of=subnet_of))
            if isinstance(subject, Plan):
                return [subject.finding(guardrail=GUARDRAIL_NAME, mode=mode, trigger=event.trigger,
                                        labels=workload.labels)]
            return [self._ensure(name.ref, subject, event.trigger, ctx, mode, labels=workload.labels,
                                 read_first=subnet_of)]

    def _for_router_change(self, router: RouterName, event: AuditEvent, ctx: "Context",
                           mode: Mode) -> list[Finding]:
        """Drift: a router was patched, updated or deleted; every connector of the region is re-checked
        (a removed NAT comes back). The region is read in bulk and planned together, as the sweep
        plans it (``converge_nat_region``: range connectors first, one write per router), so the calls
        do not grow with the connectors: connectors.list, one subnetworks.list (only when a subnet
        connector is there), routers.list, and one write per router (docs/minimums.md)."""
        from ..sweep.fold import NatSubject, converge_nat_region  # the sweep's fold imports this module

        verb = event.method_name.rsplit(".", 1)[-1]
        drift = f"Router {router.name} was {'deleted' if verb == 'delete' else 'changed'} ({event.method_name})."
        connectors = estate.list_connectors(ctx.clients, router.project, router.region)
        active = [c for c in connectors if c.state in ACTIVE_CONNECTOR_STATES
                  and not ctx.policy.exemptions.reason_for(connector=c.name)]
        listed: dict[str, Subnetwork] | None = None

        def subnet_of(name: SubnetworkName) -> Subnetwork | None:
            nonlocal listed
            if (name.project, name.region) != (router.project, router.region):  # a Shared VPC host's subnet
                return estate.read_subnetwork(ctx.clients, name)
            if listed is None:
                listed = estate.subnetworks_of(ctx.clients, router.project, router.region)
            return listed.get(name.relative)

        subjects = []
        for connector in active:
            try:
                subjects.append(NatSubject(connector.name.ref, connector_point(connector, subnet_of)))
            except NoEgressPoint:
                continue  # its subnet is gone: nothing can send traffic from it
        if not subjects:
            return []
        with contextlib.ExitStack() as held:  # every routers' project of the region, in one order (no deadlock)
            for key in sorted({nat_lock_key(s.point.project, s.point.region) for s in subjects}):
                held.enter_context(_LOCKS.hold(key))
            decided = converge_nat_region(ctx.clients, router.project, router.region, subjects, ctx.policy,
                                          timeout=ctx.settings.operation_timeout_seconds,
                                          enforce=mode is Mode.ENFORCE, drift=drift)
        return [_finding(decision.plan, mode, event.trigger, applied) for decision, applied in decided]

    # -- read, plan, act, replan

    def _ensure(self, subject: ResourceRef, point: EgressPoint, trigger: Trigger, ctx: "Context", mode: Mode,
                *, drift: str = "", labels: Mapping[str, str] | None = None,
                read_first: "_RoutersFirst | None" = None) -> Finding:
        """``read_first``: the routers already read (under their lock, still held) to find the subject's
        network; the first plan is made from them instead of a second ``routers.list``."""
        timeout = ctx.settings.operation_timeout_seconds
        key = (point.project, point.region)
        first = read_first.routers.get(key) if read_first is not None else None
        with contextlib.ExitStack() as held:
            if first is None:
                held.enter_context(_LOCKS.hold(nat_lock_key(*key)))
            done = converge(
                first=None if first is None else lambda: first,
                read=lambda: estate.routers_of(ctx.clients, point.project, point.region),
                plan=lambda routers: plan_nat(subject, point, routers, ctx.policy, drift=drift),
                apply=lambda plan, applied: apply_nat(ctx.clients, plan, timeout=timeout, applied=applied),
                enforce=mode is Mode.ENFORCE, verify_after_write=unconditional_writes,
                settle=lambda: settle_after_router_write(ctx.clients, point.project, point.region, timeout),
                kept_changing=f"ensure_nat: the routers of network {point.network.name} in {point.region} kept "
                              f"changing during {MAX_ATTEMPTS} attempts; will retry")
        return _finding(done.plan, mode, trigger, list(done.applied), labels=labels)


def _finding(plan: Plan, mode: Mode, trigger: Trigger, applied: list[Change], *,
             labels: Mapping[str, str] | None = None) -> Finding:
    return plan.finding(guardrail=GUARDRAIL_NAME, mode=mode, trigger=trigger, applied=applied, labels=labels)


class _RoutersFirst:
    """ensure_nat's subnet lookup on the event path: the routers of the subnet's project and region
    first (``routers.list``, under their lock, held until the decision is written), then the subnet
    only if no NAT of theirs names it.

    A subnet connector (or Direct VPC interface) names its subnet but not its network (docs/minimums.md
    F2), and the routers are read anyway (F3). A ``LIST_OF_SUBNETWORKS`` NAT that names the subnet
    gives the network too, since a NAT lists only subnets of its router's network and region: a
    covered subject then costs no ``subnetworks.get``. Only a subnet no NAT names (an
    ``ALL_SUBNETWORKS_*`` NAT names none) is read, to learn which network's router would carry it.
    The plan is made from these routers (``_ensure``'s ``read_first``), never from a second read."""

    def __init__(self, ctx: "Context") -> None:
        self.ctx = ctx
        self.routers: dict[tuple[str, str], tuple[Router, ...]] = {}
        self._held = contextlib.ExitStack()

    def __enter__(self) -> "_RoutersFirst":
        return self

    def __exit__(self, *exc: object) -> None:
        self._held.close()

    def __call__(self, name: SubnetworkName) -> Subnetwork | None:
        key = (name.project, name.region)
        if key not in self.routers:
            if self.routers:  # a second region: its routers are read again under _ensure's own lock
                return estate.read_subnetwork(self.ctx.clients, name)
            self._held.enter_context(_LOCKS.hold(nat_lock_key(*key)))
            self.routers[key] = estate.routers_of(self.ctx.clients, *key)
        for router in self.routers[key]:
            named = any(entry.subnetwork == name.relative for nat in router.nats for entry in nat.subnetworks)
            if named and router.network:
                try:
                    network = parse_network(router.network, field="router.network")
                except InvalidName:
                    continue
                return Subnetwork(name=name, network=network, ip_cidr_range="")
        return estate.read_subnetwork(self.ctx.clients, name)


def _nothing_to_cover(subject: str, decide: Callable[[], T]) -> T:
    try:
        return decide()
    except NoEgressPoint as exc:
        raise NoEgressPoint(f"{subject}: {exc.reason}; nothing to cover") from exc


GUARDRAIL = EnsureNat()
