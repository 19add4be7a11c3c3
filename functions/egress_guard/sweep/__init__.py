"""``egress-guard sweep``: reconcile what already exists with the guardrails' own code (design §3).

Modules, by concern: ``inventory`` (the bulk reads), ``fold`` (NAT subjects from the inventory,
one write per router), ``run`` (``Sweep``: decide, apply, publish), ``report`` (rows, the table),
``progress`` (a bar or lines). Every decision is the guardrails' own: ``egress`` (where traffic
leaves), ``ensure_nat.workload_subject``, the planners, the executors and ``converge``.

The functions react to audit entries; a sweep covers what was there before they were deployed, or
what they missed. It runs the same pure planners (``plan_nat``, ``workload_plan``,
``plan_firewalls``) and the same executors (``apply_nat``, ``apply_firewalls``) as the guardrails,
in three steps:

1. **read** everything once (``inventory.Inventory.reading``). The number of calls grows with regions and pages,
   never with the number of resources: no ``get`` per resource. The project's routers and rules
   are listed on their own threads while the rest is read, the regions at once; the NAT plans are made
   while the firewall rules, most of the pages, are still being listed. Pages are read as Google's JSON
   (``Clients.json``, ``api.pages``): each item is looked at once, so typed messages would only be
   converted back, and a dry-run sweep never imports the client libraries' generated types.

   | read                                    | calls                                                  |
   |-----------------------------------------|--------------------------------------------------------|
   | vpcaccess ``projects.locations.list``   | 1 per page, only without ``--region``                  |
   | vpcaccess ``connectors.list``           | 1 per region and page                                  |
   | compute ``subnetworks.aggregatedList``  | 1 per page, per network project                        |
   | run v2 ``services.list``, ``jobs.list`` | 1 per region and page, where a connector or subnet is  |
   | compute ``routers.aggregatedList``      | 1 per page, per network project                        |
   | compute ``firewalls.list``              | 1 per page, per network project (every network)        |

   Regions. Without ``--region`` they are the regions VPC Access offers the project
   (``projects.locations.list``): connectors.list has no ``-`` wildcard (its parent is
   ``projects/{project}/locations/{location}`` in the vpcaccess v1 discovery document, and
   localcloud refuses ``-`` as Google's v1 API does not document it). Cloud Run v2 services.list
   says its location "cannot be the '-' wildcard", so services and jobs are listed per region too,
   but only where traffic can enter a VPC: a region with a connector, or with a subnet (Direct VPC
   egress uses a subnet of the workload's region). The routers aggregated list is the one call for
   every region's NATs.

2. **plan** every subject from that snapshot, with no further I/O:

   - ensure_nat: every connector that can carry traffic (READY, CREATING, UPDATING; policy
     ``nat.on_connector_create``), every Cloud Run service and job (``workload_plan`` settles those
     that need no NAT: no VPC, private ranges only, exempt);
   - replace_connector_firewalls: every connector that can carry traffic, CREATING included, as the
     guardrail decides it (its managed rules need its name and network, not its ``aet-*`` rules).

   The NAT subjects of one project and region are planned in order (range connectors first, as
   ensure_nat's drift handler does, so an ``ALL_SUBNETWORKS_*`` NAT they need is not blocked by a
   LIST NAT planned a moment earlier), each against the routers as the writes planned before it
   leave them, and the writes are merged into one per router: fifty subnets missing from one
   network's NAT cost one ``routers.patch``, not fifty. Firewall plans are independent (each
   connector has its own managed rules).

3. **apply** (enforce mode) each merged router write with ``apply_nat`` (regions at once: each
   writes its own routers) and each connector's rules with ``apply_firewalls``
   (``SWEEP_FIREWALL_WRITERS`` connectors at once: each writes its own rules). A write that
   Compute's per-minute rate quota refuses (403 ``rateLimitExceeded``, docs/minimums.md) waits
   for the next window with every writer of the project (``api.RateQuotaWait``) and is sent
   again. A ``Conflict`` (the state changed since it was read) re-reads that one
   region's routers or that one network's rules and plans again, at most ``MAX_ATTEMPTS`` times,
   carrying what was already written, with the guardrails' ``converge`` loop.

Each decision is a ``Finding``, the same as the function would publish, with a trigger that names
the sweep (``methodName`` ``egress-guard.sweep``, ``operationId`` ``sweep/RUN``): a second sweep is
a new decision with a new finding id. What could not be decided (a connector whose subnet is gone,
a workload whose connector does not exist) is a ``skipped`` row with the reason, and no finding, as
the functions acknowledge such events.
"""

from __future__ import annotations

from ..guardrails.connector_firewalls import RuleIndex
from .fold import NatDecision, NatSubject, RegionPlan, nat_subjects, plan_nat_region
from .inventory import PAGE_SIZE, HttpCalls, Inventory, Reads
from .progress import LineProgress, NoProgress, Progress, RichProgress
from .report import SKIPPED, Row, SweepReport, changes_text, render_report, short_resource
from .run import FIREWALLS, NAT, SWEEP_METHOD, Sweep

__all__ = [
    "FIREWALLS", "NAT", "PAGE_SIZE", "SKIPPED", "SWEEP_METHOD", "HttpCalls", "Inventory", "LineProgress",
    "NatDecision", "NatSubject", "NoProgress", "Progress", "Reads", "RegionPlan", "RichProgress", "Row", "RuleIndex",
    "Sweep", "SweepReport", "changes_text", "nat_subjects", "plan_nat_region", "render_report", "short_resource",
]
