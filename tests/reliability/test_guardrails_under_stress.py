"""Reliability (issue 6): concurrency, injected faults with redelivery, and fuzzed bad input.

Each test prints its figure. The guardrails run in-process through ``runner.handle`` (the same code
a function runs) against localcloud through the real clients; a TransientError is what the platform
would redeliver on, so "redelivery" here is calling ``handle`` again with the same entry.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from collections import Counter
from typing import Any

import pytest
from google.cloud import run_v2
from hypothesis import HealthCheck, given, settings, strategies as st

from egress_guard.errors import TransientError
from localcloud.auditlog.invariants import make_before_break_violations
from tests.figures import tally
from tests.contract.test_guardrails_localcloud import (
    CONNECTOR_CREATE, DISABLE_AUTO_RULES, FW_SA, NAT_SA, P, R, Guardrails, User, as_eventarc, as_pubsub, managed, one,
    state,
)

pytestmark = pytest.mark.reliability

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REDELIVERIES = 60  # a bound on redeliveries per event: the event-age cut-off plays this role in production
FAULT_RUNS = 200


def _converged(localcloud) -> tuple[dict, dict]:
    routers, rules = state(localcloud)
    return routers, rules


def _assert_end_state(localcloud) -> None:
    routers, rules = state(localcloud)
    assert list(routers) == [f"egress-guard-{R}"], routers.keys()
    assert len(routers[f"egress-guard-{R}"].get("nats", [])) == 1
    assert len(managed(rules)) == 2
    assert all(rules[n].get("disabled") for n in rules if n.endswith(("-sbntfw", "-tagfw")))
    assert not any(rules[n].get("disabled") for n in rules if n.startswith("aet-") and
                   not n.endswith(("-sbntfw", "-tagfw")))


def _deliver_until_done(run, entry, policy=None) -> int:
    """Call the guardrail as Pub/Sub would: again after every TransientError. Returns the attempts."""
    for attempt in range(1, REDELIVERIES + 1):
        try:
            run(entry, policy) if policy is not None else run(entry)
            return attempt
        except TransientError:
            continue
    raise AssertionError(f"no convergence after {REDELIVERIES} deliveries")


def _make_before_break_held(localcloud) -> bool:
    """Make-before-break, per connector, over the whole audit log (localcloud/auditlog/invariants.py);
    each violation is counted in the reliability figures."""
    violations = make_before_break_violations(localcloud.request("GET", "entries")["entries"])
    tally("make-before-break violations", len(violations))
    tally("make-before-break checks (audit logs checked)")
    return not violations


# ---- concurrency ------------------------------------------------------------------------------
def test_50_concurrent_deliveries_of_one_entry_leave_one_router_one_nat_two_rules(localcloud_url, localcloud):
    user, guardrails = User(localcloud_url), Guardrails(localcloud_url)
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    entry = one(localcloud, CONNECTOR_CREATE, first=True)
    errors: list[BaseException] = []

    def deliver(run):
        try:
            _deliver_until_done(run, entry, DISABLE_AUTO_RULES if run == guardrails.firewalls else None)
        except BaseException as exc:  # noqa: BLE001 - counted and reported below
            errors.append(exc)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(deliver, [guardrails.nat] * 50 + [guardrails.firewalls] * 50))
    routers, rules = state(localcloud)
    print(f"\n50 concurrent deliveries x 2 guardrails: {len(routers)} router, "
          f"{sum(len(r.get('nats', [])) for r in routers.values())} NAT, {len(managed(rules))} managed rules, "
          f"{len(errors)} errors left, {time.monotonic() - started:.1f} s")
    assert errors == []
    _assert_end_state(localcloud)
    assert _make_before_break_held(localcloud)


def test_20_workloads_on_one_network_at_once_get_one_nat(localcloud_url, localcloud):
    user, guardrails = User(localcloud_url), Guardrails(localcloud_url)
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    for i in range(20):
        user.job(f"job-{i:02d}", "conn-a")
    created = [e for e in localcloud.request("GET", "entries")["entries"]
               if e["protoPayload"]["methodName"] == "google.cloud.run.v2.Jobs.CreateJob"
               and (e.get("operation") or {}).get("last")]
    assert len(created) == 20
    with ThreadPoolExecutor(max_workers=20) as pool:
        attempts = list(pool.map(lambda e: _deliver_until_done(guardrails.nat, e), created))
    routers, _ = state(localcloud)
    nats = sum(len(r.get("nats", [])) for r in routers.values())
    print(f"\n20 workloads on one network at once: {len(routers)} router, {nats} NAT, "
          f"{sum(attempts) - len(attempts)} redeliveries")
    assert len(routers) == 1 and nats == 1


# ---- injected faults --------------------------------------------------------------------------
def test_200_randomized_fault_runs_converge_and_never_break_before_make(localcloud_url, localcloud):
    rng = random.Random(20261122)
    localcloud.config(connector_ready_delay_s=0.0)
    user, guardrails = User(localcloud_url), Guardrails(localcloud_url)
    redeliveries = injected = 0
    started = time.monotonic()
    for run in range(FAULT_RUNS):
        localcloud.reset()
        localcloud.clear_faults()
        localcloud.config(connector_ready_delay_s=0.0)
        user.network()
        user.subnet("sub28", "10.0.1.0/28")
        user.connector("conn-a", subnet="sub28")
        entry = one(localcloud, CONNECTOR_CREATE, first=True)
        rules = [{"methods": rng.choice(["compute.*", "compute.routers.*", "compute.firewalls.*", "vpcaccess.*",
                                         "compute.*Operations.wait", "*"]),
                  "error_rate": rng.choice([0.0, 0.05, 0.1, 0.2]), "code": rng.choice([429, 500, 503]),
                  "latency_ms": rng.choice([0, 0, 2, 5]),
                  "operation_error_rate": rng.choice([0.0, 0.0, 0.1, 0.2]),
                  "principal": rng.choice([NAT_SA, FW_SA, None])}
                 for _ in range(rng.randint(1, 2))]
        localcloud.set_faults(rules, seed=run)
        order = [guardrails.nat, guardrails.firewalls]
        rng.shuffle(order)
        for guardrail in order:
            policy = DISABLE_AUTO_RULES if guardrail == guardrails.firewalls else None
            redeliveries += _deliver_until_done(guardrail, entry, policy) - 1
        calls = localcloud.calls()["calls"]
        injected += sum(1 for c in calls if c["status"] >= 429)
        for c in calls:
            if c["status"] >= 400:
                tally(f"faults injected: HTTP {c['status']}")
        tally("faults injected: failed operations", sum(
            1 for e in localcloud.request("GET", "entries")["entries"]
            if (e.get("operation") or {}).get("last") and (e["protoPayload"].get("status") or {}).get("code")
            and "injected" in str(e["protoPayload"]["status"].get("message", ""))))
        localcloud.clear_faults()
        _assert_end_state(localcloud)
        assert _make_before_break_held(localcloud), f"run {run}: a broad rule was disabled before the managed rules"
    tally("runs: randomized fault runs (in-process)", FAULT_RUNS)
    tally("runs converged", FAULT_RUNS)
    tally("redeliveries: in-process (TransientError, delivered again)", redeliveries)
    print(f"\n{FAULT_RUNS} randomized fault runs: all converged; {injected} injected errors answered, "
          f"{redeliveries} redeliveries, make-before-break held in every run, {time.monotonic() - started:.0f} s")


# ---- fuzzed bad input -------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


_FIXTURE_ENTRIES = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
_BREAKABLE = ["protoPayload.methodName", "protoPayload.resourceName", "protoPayload.serviceName", "timestamp",
              "protoPayload", "logName", "protoPayload.status", "protoPayload.response", "protoPayload.request",
              "resource", "operation", "protoPayload.authenticationInfo"]
_junk = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                     max_leaves=12)
_bad_names = st.sampled_from(["..", "a/../../b", "%2F", "x" * 300, "UPPER", "conn a", "conn\nx", "ü", "",
                              "projects/p/locations/r/connectors/..%2Fx", "projects//locations//connectors/"])


def _broken(entry: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = json.loads(json.dumps(entry))
    broken["timestamp"] = _now()  # fresh, so only the broken part can be the reason to refuse it
    node, keys = broken, path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node[keys[-1]] = value
    return broken


@st.composite
def bad_deliveries(draw) -> Any:
    kind = draw(st.sampled_from(["junk", "broken-entry", "bad-name", "bad-pubsub", "failed-call"]))
    if kind == "junk":
        return draw(_junk)
    entry = draw(st.sampled_from(_FIXTURE_ENTRIES))
    if kind == "broken-entry":
        path = draw(st.sampled_from(_BREAKABLE))
        return _broken(entry, path, draw(_junk))
    if kind == "bad-name":
        return _broken(entry, "protoPayload.resourceName", draw(_bad_names))
    if kind == "failed-call":
        return _broken(entry, "protoPayload.status", {"code": draw(st.integers(1, 16)), "message": "failed"})
    return draw(_bad_pubsub())


@st.composite
def _bad_pubsub(draw) -> dict[str, Any]:
    data = draw(st.binary(max_size=64)) if draw(st.booleans()) else json.dumps(draw(_junk)).encode()
    return {"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "x",
            "source": "//pubsub.googleapis.com/projects/p/topics/t",
            "data": {"message": {"data": base64.b64encode(data).decode()}}}


class _Acknowledgements(logging.Handler):
    """The runner's one line per event acknowledged without a decision: its reason."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if (getattr(record, "eg_labels", None) or {}).get("outcome") == "acknowledged":
            self.lines.append(record.getMessage().split(" without action: ", 1)[-1])


def test_10000_fuzzed_bad_deliveries_are_refused_with_a_reason_and_no_write(localcloud_url, localcloud):
    guardrails = Guardrails(localcloud_url)
    seen = {"count": 0}
    reasons = _Acknowledgements()
    runner_log = logging.getLogger("egress_guard.runner")
    runner_log.addHandler(reasons)

    @settings(max_examples=10_000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(bad_deliveries())
    def check(delivery: Any) -> None:
        seen["count"] += 1
        for run in (guardrails.nat, guardrails.firewalls):
            before = len(reasons.lines)
            assert run(delivery) == [], "a bad delivery must be acknowledged without a decision"
            (reason,) = reasons.lines[before:]  # exactly one log line, saying why
            assert reason.strip(), "acknowledged without a reason"

    try:
        check()
    finally:
        runner_log.removeHandler(reasons)
    calls = localcloud.calls()
    writes = [c for c in calls["calls"] if c["mutating"]]
    print(f"\n{seen['count']} fuzzed bad deliveries x 2 guardrails: 0 crashes, {len(reasons.lines)} refusals each "
          f"with a reason, {len(writes)} writes, "
          f"{calls['total']} API calls (reads of names that parse but do not exist)")
    tally("fuzz deliveries (x 2 guardrails)", seen["count"])
    tally("fuzz crashes", 0)  # any exception would have failed the test above
    tally("fuzz unexpected writes", len(writes))
    assert seen["count"] >= 10_000
    assert writes == []


# ---- fuzz in a populated world ----------------------------------------------------------------
# The same bad deliveries, now against a world where every name can point at something real:
# connectors, a service and a job on them, the egress-guard NAT and managed rules of the first
# connector, the connectors' auto rules; the second connector's workloads not remediated yet, so a
# correct reading of its entries must write. Mutated-but-valid entries (fresh time and insertId,
# unknown fields added, another real resource's name, delivered raw, through Pub/Sub or Eventarc) are
# mixed in. The reference run: the same world built again from nothing, each of its entries delivered
# once, clean, to both guardrails; the writes it made (by method and resource, counted) are all a
# correct reading may make. The fuzz may write no more than that and must end in the same state.
_WORLD_CONFIG = dict(compute_operation_delay_s=0.0, connector_ready_delay_s=0.2, run_operation_delay_s=0.0,
                     connector_broad_rules="visible", validate_responses=True)
_GUARDRAIL_PRINCIPALS = (NAT_SA, FW_SA)


def _populated_world(localcloud, url: str) -> list[dict[str, Any]]:
    """Build the world from nothing; return the audit entries it wrote, in order."""
    localcloud.reset()
    localcloud.config(**_WORLD_CONFIG)
    user, guardrails = User(url), Guardrails(url)
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.subnet("sub28b", "10.0.2.0/28")
    user.connector("conn-a", subnet="sub28")
    user.service("svc-a", run_v2.VpcAccess(connector=f"projects/{P}/locations/{R}/connectors/conn-a",
                                            egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC))
    created = one(localcloud, CONNECTOR_CREATE, resource="conn-a", first=True)
    _deliver_until_done(guardrails.nat, created)  # the egress-guard NAT and conn-a's managed rules
    _deliver_until_done(guardrails.firewalls, created)
    user.connector("conn-b", subnet="sub28b")  # not remediated: its entries still ask for writes
    user.job("job-b", "conn-b")
    return localcloud.request("GET", "entries")["entries"]


def _guardrail_writes(localcloud, since: int) -> Counter:
    entries_ = localcloud.request("GET", "entries")["entries"][since:]
    return Counter((e["protoPayload"]["methodName"], e["protoPayload"].get("resourceName", ""))
                   for e in entries_
                   if e["protoPayload"].get("authenticationInfo", {}).get("principalEmail") in _GUARDRAIL_PRINCIPALS
                   and (e.get("operation") or {}).get("last") is not True)


def _world_state(localcloud) -> dict[str, Any]:
    """What the guardrails guard, without volatile fields: NAT subnets per router, rules' effect."""
    routers, rules = state(localcloud)
    return {
        "nats": {name: sorted((nat["name"], json.dumps(nat.get("subnetworks", []), sort_keys=True))
                              for nat in body.get("nats", [])) for name, body in routers.items()},
        "rules": {name: {k: body.get(k) for k in ("allowed", "denied", "priority", "disabled", "direction",
                                                  "targetTags", "sourceRanges", "destinationRanges")}
                  for name, body in rules.items()},
    }


_FRESH = itertools.count()  # unique ids (Hypothesis would shrink drawn ones to a few repeats)


def _findings_once_done(run, delivery) -> list:
    """The findings of a delivery, delivered again after every TransientError (as Pub/Sub would)."""
    for _ in range(REDELIVERIES):
        try:
            return run(delivery)
        except TransientError:
            continue
    raise AssertionError(f"no convergence after {REDELIVERIES} deliveries")


def _valid_mutation(entry: dict[str, Any], draw, names: dict[str, list[str]]) -> Any:
    mutated = json.loads(json.dumps(entry))
    mutated["timestamp"] = _now()
    if draw(st.booleans()):
        mutated["insertId"] = f"fz{next(_FRESH)}"
    if isinstance(mutated.get("operation"), dict) and draw(st.booleans()):
        # A new operation: no instance remembers deciding it, so the guardrail reads the world again.
        mutated["operation"]["id"] = f"fz-op-{next(_FRESH)}"
    if draw(st.booleans()):
        mutated[draw(st.sampled_from(["x-unknown", "trace", "spanId"]))] = draw(_junk)
        mutated["protoPayload"]["x-unknown"] = draw(_junk)
    resource = mutated["protoPayload"].get("resourceName", "")
    kind = resource.rsplit("/", 2)[-2] if resource.count("/") >= 2 else ""
    if kind in names and draw(st.booleans()):  # another real resource of the same kind
        mutated["protoPayload"]["resourceName"] = resource.rsplit("/", 1)[0] + "/" + draw(st.sampled_from(names[kind]))
    wrap = draw(st.sampled_from(["raw", "pubsub", "eventarc"]))
    return as_pubsub(mutated) if wrap == "pubsub" else as_eventarc(mutated) if wrap == "eventarc" else mutated


def test_10000_fuzzed_deliveries_in_a_populated_world_write_only_what_a_clean_reading_does(localcloud_url, localcloud):
    # The reference run: the world, then each entry once, clean, to both guardrails.
    reference_entries = _populated_world(localcloud, localcloud_url)
    reference = Guardrails(localcloud_url)
    decided: set[int] = set()  # the entries (by place in the log) a guardrail decided on
    for index, entry in enumerate(reference_entries):
        entry = {**entry, "timestamp": _now()}
        if _findings_once_done(reference.nat, entry) + _findings_once_done(reference.firewalls, entry):
            decided.add(index)
    reference_writes = _guardrail_writes(localcloud, len(reference_entries))
    reference_state = _world_state(localcloud)
    assert reference_writes, "a clean reading of the unremediated connector's entries writes"

    world = _populated_world(localcloud, localcloud_url)
    assert len(world) == len(reference_entries), "the same world, built again"
    acted_on = [entry for index, entry in enumerate(world) if index in decided]
    assert acted_on, "some entries of the world are ones the guardrails decide on"
    names: dict[str, list[str]] = {}
    for entry in world:
        resource = entry["protoPayload"].get("resourceName", "")
        if resource.count("/") >= 2:
            kind, name = resource.rsplit("/", 2)[-2:]
            if name not in names.setdefault(kind, []):
                names[kind].append(name)
    guardrails = Guardrails(localcloud_url)
    seen = Counter()
    reasons = _Acknowledgements()
    runner_log = logging.getLogger("egress_guard.runner")
    runner_log.addHandler(reasons)

    @st.composite
    def deliveries(draw) -> Any:
        kind = draw(st.sampled_from(["junk", "broken-entry", "bad-name", "bad-pubsub", "failed-call", "valid"]))
        entry = draw(st.sampled_from(world))
        if kind == "valid":  # mostly entries a guardrail decides on, so the decision is read again
            return kind, _valid_mutation(draw(st.sampled_from(acted_on)) if draw(st.booleans()) else entry,
                                         draw, names)
        if kind == "junk":
            return kind, draw(_junk)
        if kind == "bad-pubsub":
            return kind, draw(_bad_pubsub())
        if kind == "broken-entry":
            return kind, _broken(entry, draw(st.sampled_from(_BREAKABLE)), draw(_junk))
        if kind == "bad-name":
            return kind, _broken(entry, "protoPayload.resourceName", draw(_bad_names))
        return kind, _broken(entry, "protoPayload.status", {"code": draw(st.integers(1, 16)), "message": "failed"})

    @settings(max_examples=10_000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(deliveries())
    def check(kind_and_delivery: tuple[str, Any]) -> None:
        kind, delivery = kind_and_delivery
        seen[kind] += 1
        for run in (guardrails.nat, guardrails.firewalls):
            before = len(reasons.lines)
            findings = _findings_once_done(run, delivery)
            acknowledged = reasons.lines[before:]
            if findings == []:
                (reason,) = acknowledged  # refused or nothing to do: exactly one log line, saying why
                assert reason.strip(), "acknowledged without a reason"
            else:
                assert acknowledged == [], "a decision is not also an acknowledgement"

    try:
        check()
    finally:
        runner_log.removeHandler(reasons)
    writes = _guardrail_writes(localcloud, len(world))
    unexpected = writes - reference_writes
    total = sum(seen.values())
    print(f"\n{total} fuzzed deliveries x 2 guardrails in a populated world ({dict(sorted(seen.items()))}): "
          f"0 crashes, {len(reasons.lines)} refusals each with one reason, {sum(writes.values())} writes "
          f"(the reference run's clean reading: {sum(reference_writes.values())}), "
          f"{sum(unexpected.values())} beyond it")
    tally("fuzz deliveries (x 2 guardrails)", total)
    tally("fuzz crashes", 0)  # any exception would have failed the test above
    tally("fuzz unexpected writes", sum(unexpected.values()))
    assert total >= 10_000
    assert unexpected == Counter(), unexpected
    assert _world_state(localcloud) == reference_state
