"""API calls per scenario on the running stack, against the fewest each scenario needs.

The argued minimums are not invented here, nor taken from what the code does: each scenario's is
the sum of rows of the table the guardrails' contract test holds the code to (``MINIMUM`` in
tests/contract/test_guardrails_localcloud.py, each row derived from Google's API surface in
docs/minimums.md; ``ABOVE_ARGUED`` there says why egress-guard is above where it is). The benchmark
also runs drift with N = 1, 10, 100 connectors in the region, whose argued figure is the same 7 for
every N (docs/minimums.md, "Drift with N connectors"). The benchmark runs the same
situations through the deployed path (Pub/Sub push -> Functions Framework -> both functions, each
calling as its own service account) and counts, in localcloud's call log, the calls made by the
two functions' principals. Each scenario lives in its own project, on the zero-latency profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .harness import LocalStack, one

CONNECTOR_CREATE = "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"
GUARDRAILS = ("ensure_nat", "replace_connector_firewalls")
SETTLE_S = 0.5  # the call log must stay still this long after the last finding (acknowledged deliveries)


@dataclass(frozen=True)
class Prepared:
    """What a scenario publishes, and how many findings each entry (by insertId) leads to."""

    entries: Sequence[Mapping[str, Any]]
    findings: Mapping[str, int]


@dataclass(frozen=True)
class Scenario:
    name: str
    reason: str  # one line: why this is the minimum
    contract_rows: tuple[str, ...]  # rows of the contract test's MINIMUM; their sum is the argued minimum
    prepare: Callable[[LocalStack, str], Prepared] = field(repr=False)
    argued_total: int | None = None  # when the rows' per-method split does not apply (drift over N connectors)


# --------------------------------------------------------------------------- preparing each scenario


def _new_connector(stack: LocalStack, project: str, *, nat: bool = False) -> Mapping[str, Any]:
    stack.user.connector_on_new_network(project, nat=nat)
    return one(stack.fetch_entries(), CONNECTOR_CREATE, project=project, first=True)


def _both(entry: Mapping[str, Any]) -> Prepared:
    return Prepared([entry], {str(entry["insertId"]): len(GUARDRAILS)})


def _remediated(stack: LocalStack, project: str) -> list[Mapping[str, Any]]:
    """A new connector, remediated by both guardrails (before the scenario's calls are counted)."""
    entry = _new_connector(stack, project)
    stack.publish([entry])
    findings = stack.findings.wait(str(entry["insertId"]), len(GUARDRAILS))
    return [f.body for f in findings]


def _without_nat(stack: LocalStack, project: str) -> Prepared:
    return _both(_new_connector(stack, project))


def _with_nat(stack: LocalStack, project: str) -> Prepared:
    return _both(_new_connector(stack, project, nat=True))


def _job_on_covered_network(stack: LocalStack, project: str) -> Prepared:
    stack.user.connector_on_new_network(project, nat=True)
    stack.user.job(project, "nightly", "conn", all_traffic=True)
    entry = one(stack.fetch_entries(), "google.cloud.run.v2.Jobs.CreateJob", project=project, first=True)
    return Prepared([entry], {str(entry["insertId"]): 1})  # replace_connector_firewalls: not its event


def _private_ranges_service(stack: LocalStack, project: str) -> Prepared:
    stack.user.connector_on_new_network(project)
    stack.user.service(project, "web", "conn", all_traffic=False)
    entry = one(stack.fetch_entries(), "google.cloud.run.v2.Services.CreateService", project=project, first=True)
    return Prepared([entry], {str(entry["insertId"]): 1})


def _duplicates(stack: LocalStack, project: str) -> Prepared:
    first = _new_connector(stack, project)
    last = one(stack.fetch_entries(), CONNECTOR_CREATE, project=project, last=True)
    # As the contract test: ten redeliveries of the first entry, the first entry, the last entry. One
    # finding per guardrail: the repeats of the decided change are acknowledged (docs/minimums.md F9).
    return Prepared([first] * 11 + [last], {str(first["insertId"]): len(GUARDRAILS)})


def _drift_nat_removed(stack: LocalStack, project: str) -> Prepared:
    findings = _remediated(stack, project)
    router = next(c["resource"] for f in findings for c in f.get("changes", ())
                  if c["action"] == "compute.routers.insert").rsplit("/", 1)[1]
    stack.user.remove_nats(project, router)
    entry = one(stack.fetch_entries(), "v1.compute.routers.update", project=project, resource=f"/routers/{router}",
                by=stack.control.config()["default_principal"], last=True)
    return Prepared([entry], {str(entry["insertId"]): 1})  # replace_connector_firewalls: not its event


def _drift_rule_deleted(stack: LocalStack, project: str) -> Prepared:
    findings = _remediated(stack, project)
    deny = next(c["resource"] for f in findings for c in f.get("changes", ())
                if c["action"] == "compute.firewalls.insert" and c["resource"].endswith("-deny")).rsplit("/", 1)[1]
    stack.user.delete_firewall(project, deny)
    entry = one(stack.fetch_entries(), "v1.compute.firewalls.delete", project=project, resource=f"/firewalls/{deny}",
                by=stack.control.config()["default_principal"], last=True)
    return Prepared([entry], {str(entry["insertId"]): 1})  # ensure_nat: not its event


def _drift_nat_removed_n(connectors: int) -> Callable[[LocalStack, str], Prepared]:
    """N subnet connectors of one network in one region, covered by a user's NAT that the user then removes."""
    from .user import ALL_SUBNETWORKS_NAT

    def prepare(stack: LocalStack, project: str) -> Prepared:
        user = stack.user
        user.network(project, "net")
        for i in range(connectors):
            user.subnet(project, f"conn-{i}", "net", f"10.{8 + i // 16}.{(i % 16) * 16}.0/28")
        user.router(project, "user-router", "net", ALL_SUBNETWORKS_NAT)
        for i in range(connectors):
            user.connector(project, f"conn-{i}", f"conn-{i}")
        user.remove_nats(project, "user-router")
        entry = one(stack.fetch_entries(), "v1.compute.routers.update", project=project,
                    resource="/routers/user-router", last=True)
        return Prepared([entry], {str(entry["insertId"]): connectors})  # one ensure_nat finding per connector
    return prepare


DRIFT_SIZES = (1, 10, 100)
ARGUED_DRIFT_ANY_N = 7  # docs/minimums.md: connectors.list + subnetworks.list + routers.list + 1 patch + 1 wait + regionOperations.list (F12) + 1 read after the patch (F10)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("new connector without NAT",
             "each guardrail re-reads the connector and its subnet; one routers.list, router+NAT in one insert and "
             "its wait; one firewalls.list, the allow then the deny insert, a wait each",
             ("nat: subnet connector created, no router", "firewalls: connector created, keep auto rules"),
             _without_nat),
    Scenario("new connector with NAT",
             "ensure_nat makes the reads of a plan (connector, subnet, routers) and no write: the NAT covers it; "
             "the firewall guardrail still adds its two managed rules",
             ("nat dry-run: subnet connector created", "firewalls: connector created, keep auto rules"),
             _with_nat),
    Scenario("all-traffic job on a covered network",
             "re-read the job, its connector, one routers.list, and the subnet: the covering NAT is "
             "ALL_SUBNETWORKS_*, which names no subnet, so only the subnet's network shows it covers the job; no "
             "write; the firewall guardrail acknowledges a job entry without a call",
             ("nat: job (v2) through a connector an ALL_SUBNETWORKS NAT covers",),
             _job_on_covered_network),
    Scenario("private-ranges service",
             "one services.get shows egress private-ranges-only: nothing else to read, nothing to write",
             ("nat: service private-ranges-only",),
             _private_ranges_service),
    Scenario("duplicate delivery (12 deliveries)",
             "every delivery re-reads (connector, subnet, routers or rules); only one writes, the others find the "
             "work done",
             ("duplicates: 10 concurrent + first + last, ensure_nat",
              "duplicates: 10 concurrent + first + last, replace_connector_firewalls"),
             _duplicates),
    Scenario("drift: NAT removed",
             "the region's connectors, the subnet's network, the routers; put the NAT back with one patch and its wait",
             ("nat drift: NAT removed (routers.update)",),
             _drift_nat_removed),
    Scenario("drift: managed rule deleted",
             "re-read the connector and subnet, one firewalls.list; insert the missing deny rule and wait",
             ("firewalls drift: managed rule deleted",),
             _drift_rule_deleted),
    *(Scenario(f"drift: NAT removed, {n} connectors",
               "the region's connectors, their subnets and the routers in bulk; one patch putting the NAT back with "
               "every subnet, one wait, one read after the patch: the same for any N up to a page",
               (), _drift_nat_removed_n(n), argued_total=ARGUED_DRIFT_ANY_N) for n in DRIFT_SIZES),
)


# --------------------------------------------------------------------------- minimums and counting


def contract_minimum() -> Mapping[str, Mapping[str, tuple[int, str]]]:
    """The contract test's table (imported, so the benchmark and the tests cannot disagree)."""
    from tests.contract.test_guardrails_localcloud import MINIMUM

    return MINIMUM


def minimum_of(scenario: Scenario, table: Mapping[str, Mapping[str, tuple[int, str]]]) -> dict[str, int]:
    """Per method, the sum of the scenario's contract rows."""
    total: dict[str, int] = {}
    for row in scenario.contract_rows:
        for method, (count, _reason) in table[row].items():
            total[method] = total.get(method, 0) + count
    return dict(sorted(total.items()))


def count_by_method(calls: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        counts[str(call["method_id"])] = counts.get(str(call["method_id"]), 0) + 1
    return dict(sorted(counts.items()))


def _calls_when_still(stack: LocalStack) -> list[dict[str, Any]]:
    """The guardrails' calls, once the call log has stopped growing (acknowledged deliveries make none)."""
    def snapshot() -> list[dict[str, Any]]:
        return [c for g in GUARDRAILS for c in stack.calls_by(stack.principals[g])]

    calls = snapshot()
    deadline = time.monotonic() + 10 * SETTLE_S
    while time.monotonic() < deadline:
        time.sleep(SETTLE_S)
        again = snapshot()
        if len(again) == len(calls):
            break
        calls = again
    return calls


def above_argued_reasons(scenario: Scenario) -> dict[str, str]:
    """Why egress-guard is above the argued minimum, per method (the contract test's ABOVE_ARGUED)."""
    from tests.contract.test_guardrails_localcloud import ABOVE_ARGUED

    reasons: dict[str, str] = {}
    for row in scenario.contract_rows:
        for method, (_excess, why) in ABOVE_ARGUED.get(row, {}).items():
            reasons[method] = why
    return reasons


def run_scenario(stack: LocalStack, scenario: Scenario, project: str,
                 table: Mapping[str, Mapping[str, tuple[int, str]]] | None) -> dict[str, Any]:
    stack.profile(None)
    prepared = scenario.prepare(stack, project)
    stack.clear_calls()
    stack.publish(prepared.entries)
    missing = {i: n - len(stack.findings.wait(i, n)) for i, n in prepared.findings.items()}
    used = count_by_method(_calls_when_still(stack))
    row: dict[str, Any] = {"used": sum(used.values()), "reason": scenario.reason, "used_by_method": used}
    if scenario.argued_total is not None:
        row.update(argued=scenario.argued_total, source="docs/minimums.md")
    elif table is not None:
        argued = minimum_of(scenario, table)
        row.update(argued=sum(argued.values()), argued_by_method=argued, contract_rows=list(scenario.contract_rows),
                   source="docs/minimums.md; tests/contract/test_guardrails_localcloud.py (MINIMUM)")
        above = {m: why for m, why in above_argued_reasons(scenario).items() if used.get(m, 0) > argued.get(m, 0)}
        if above:
            row["above_because"] = above
    if row.get("argued") is not None:
        row["at_or_below_argued"] = row["used"] <= row["argued"]
    if any(missing.values()):
        row["findings_missing"] = sum(missing.values())
    return row


MINIMUM_SOURCE = "tests/contract/test_guardrails_localcloud.py (MINIMUM)"


def run(stack: LocalStack, progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """``{scenario: {"used": n, "argued": m, ...}}`` (``api_calls.<scenario>.{used, argued}``)."""
    try:
        table: Mapping[str, Mapping[str, tuple[int, str]]] | None = contract_minimum()
        unavailable = ""
    except Exception as exc:  # the contract test moved or broke: count anyway, and say why there is no minimum
        table, unavailable = None, f"{MINIMUM_SOURCE} could not be read: {type(exc).__name__}: {exc}"
    results: dict[str, Any] = {}
    for index, scenario in enumerate(SCENARIOS):
        progress(f"api calls: {scenario.name}")
        try:
            results[scenario.name] = run_scenario(stack, scenario, f"egb-calls-{index:02d}", table)
        except Exception as exc:  # one broken scenario is reported, the others still run
            results[scenario.name] = {"used": None, "argued": None, "error": f"{type(exc).__name__}: {exc}"}
        if unavailable and scenario.argued_total is None:
            results[scenario.name].update(argued=None, argued_unavailable=unavailable)
    return results
