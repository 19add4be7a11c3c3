"""Reliability (issue 14): the faults Google and people produce, one kind at a time, in Google's shapes.

Each run builds the same world (net-a, subnet sub28, connector conn-a with its automatic broad
rules), injects one kind of fault through localcloud's fault rules (``localcloud/faults.py``), and
delivers conn-a's CreateConnector entry to both guardrails as Pub/Sub would: again after every
``TransientError``. A "person" is a test thread with the real clients acting while a guardrail's
call is held by a ``hold`` rule: between its read and its write, or between its write and its
verify, which no timing could make certain. Their audit entries are delivered too, as the sink
would. After every run: the world converged (one egress-guard NAT listing sub28, conn-a's managed
allow and deny, its broad rules disabled), and make-before-break held for egress-guard's writes
over the whole audit log (``localcloud/auditlog/invariants.py``).

In process (``runner.handle``, the code a function runs) rather than against the N-instance stack:
a hold must meet one guardrail's call at one point of its run, which a test can aim at in process
and not through three instances picking deliveries. The N-instance stack meets faults in the router
race (``test_router_race.py``, a mix of 429/503/timeouts/failed and slow operations).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from egress_guard.errors import TransientError
from egress_guard.runner import handle
from localcloud.auditlog.invariants import make_before_break_violations
from tests.contract.test_guardrails_localcloud import (
    CONNECTOR_CREATE, DISABLE_AUTO_RULES, FIREWALLS, FW_SA, NAT, NAT_SA, P, R, Guardrails, User, managed, one, state,
)
from tests.figures import tally

pytestmark = pytest.mark.reliability

REDELIVERIES = 30
# The guardrails' operation timeout here (EGRESS_GUARD_OPERATION_TIMEOUT_SECONDS): a write or an
# operation wait held longer than this is a timeout, and each costs only this long.
OPERATION_TIMEOUT_S = 2.0
HOLD_BOUND_MS = 30_000  # a held call goes on after this even if nobody releases it


class _Guardrails(Guardrails):
    """Both guardrails as the contract tests build them, with a short operation timeout."""

    def _new_context(self, principal, policy):
        from egress_guard.runner import Context

        env = {"LOCALCLOUD_URL": self.url, "GOOGLE_CLOUD_PROJECT": P, "EGRESS_GUARD_PRINCIPAL": principal,
               "EGRESS_GUARD_SELF_PRINCIPALS": f"{NAT_SA},{FW_SA}",
               "EGRESS_GUARD_OPERATION_TIMEOUT_SECONDS": str(OPERATION_TIMEOUT_S)}
        return Context.from_env(env, policy=policy, publish=self._publish, remember_decisions=True)

    def nat(self, entry, policy=None):
        return handle(entry, NAT, self.context(NAT_SA, policy or DISABLE_AUTO_RULES))

    def firewalls(self, entry, policy=None):
        return handle(entry, FIREWALLS, self.context(FW_SA, policy or DISABLE_AUTO_RULES))


@dataclass
class Run:
    """What one delivery of the run saw, for the case's own checks."""

    localcloud: Any
    user: User
    guardrails: _Guardrails
    transient: list[str]

    def deliver(self, run: Callable[[Any], list], entry: Any) -> list:
        """Deliver until the guardrail does not raise TransientError (Pub/Sub redelivering)."""
        for _ in range(REDELIVERIES):
            try:
                return run(entry)
            except TransientError as exc:
                self.transient.append(str(exc))
        raise AssertionError(f"no convergence after {REDELIVERIES} deliveries: {self.transient[-3:]}")

    def wait_held(self, calls: int = 1) -> None:
        for _ in range(3000):
            if self.localcloud.held() >= calls:
                return
            time.sleep(0.01)
        raise AssertionError("the guardrail's call was never held")

    def in_background(self, run: Callable[[Any], list], entry: Any) -> "threading.Thread":
        """Deliver in a thread (a function instance), so the test can act as a person meanwhile."""
        def go() -> None:
            try:
                self.deliver(run, entry)
            except BaseException as exc:  # noqa: BLE001 - re-raised by join_and_check
                failures.append(exc)

        failures: list[BaseException] = []
        thread = threading.Thread(target=go, daemon=True)
        thread.failures = failures  # type: ignore[attr-defined]
        thread.start()
        return thread


def _join(thread: threading.Thread) -> None:
    thread.join(timeout=120)
    assert not thread.is_alive(), "the delivery did not finish"
    assert thread.failures == [], thread.failures  # type: ignore[attr-defined]


def _world(localcloud, url: str) -> tuple[User, dict[str, Any]]:
    localcloud.reset()
    localcloud.config(compute_operation_delay_s=0.0, connector_ready_delay_s=0.0, run_operation_delay_s=0.0,
                      connector_broad_rules="visible", validate_responses=True)
    user = User(url)
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    return user, one(localcloud, CONNECTOR_CREATE, first=True)


def _egress_guard_nats(routers: dict[str, Any]) -> list[dict[str, Any]]:
    return [nat for body in routers.values() for nat in body.get("nats", []) if nat["name"].startswith("egress-guard")]


def _converged(localcloud) -> None:
    routers, rules = state(localcloud)
    nats = _egress_guard_nats(routers)
    assert len(nats) == 1, routers
    assert [s["name"].rsplit("/", 1)[-1] for s in nats[0].get("subnetworks", [])] == ["sub28"], nats
    assert len(managed(rules)) == 2, sorted(rules)
    assert not any(body.get("disabled") for body in managed(rules).values())
    broad = [n for n in rules if n.endswith(("-sbntfw", "-tagfw"))]
    assert all(rules[n].get("disabled") for n in broad), {n: rules[n].get("disabled") for n in broad}


def _person_entries(localcloud, since: int) -> list[dict[str, Any]]:
    """The audit entries of the person's writes after ``since`` (what the sink delivers)."""
    return [e for e in localcloud.request("GET", "entries")["entries"][since:]
            if e["protoPayload"].get("authenticationInfo", {}).get("principalEmail") not in (NAT_SA, FW_SA)]


def _entries_count(localcloud) -> int:
    return len(localcloud.request("GET", "entries")["entries"])


def _delete_rule(user: User, name: str) -> None:
    op = user.firewalls.delete(project=P, firewall=name)
    user.global_ops.wait(project=P, operation=op.name, timeout=30)


# ---- the cases: each sets its faults, delivers, and may act as a person ----------------------------------
def _both(run: Run, entry: Any) -> None:
    run.deliver(run.guardrails.nat, entry)
    run.deliver(run.guardrails.firewalls, entry)


def injected(rule: dict[str, Any]) -> Callable[[Run, Any], None]:
    """One injected error rule, then both guardrails delivered until done."""
    def case(run: Run, entry: Any) -> None:
        run.localcloud.set_faults([rule])
        _both(run, entry)
        assert run.localcloud.calls()["counts"], "calls were made"
    return case


def broad_rule_deleted_between_read_and_write(run: Run, entry: Any) -> None:
    """404 for real: a person deletes a broad rule while the guardrail's disable of it is held."""
    run.deliver(run.guardrails.nat, entry)
    run.localcloud.set_faults([{"methods": "compute.firewalls.patch", "principal": FW_SA, "hold": True,
                                "latency_ms": HOLD_BOUND_MS, "count": 1}])
    worker = run.in_background(run.guardrails.firewalls, entry)
    run.wait_held()
    patched = [c for c in run.localcloud.calls()["calls"] if c["principal"] == FW_SA and
               c["method_id"] == "compute.firewalls.patch"]
    assert patched == [], "held before its first disable answered"
    _, rules = state(run.localcloud)
    broad = sorted(n for n in rules if n.endswith(("-sbntfw", "-tagfw")) and not rules[n].get("disabled"))
    victim = broad[0]  # the held patch is one of them; whichever it is, deleting each is the same kind
    for name in broad:
        _delete_rule(run.user, name)
    run.localcloud.release()
    _join(worker)
    statuses = [c["status"] for c in run.localcloud.calls()["calls"]
                if c["principal"] == FW_SA and c["method_id"] == "compute.firewalls.patch"]
    assert 404 in statuses, statuses
    _, rules = state(run.localcloud)
    assert victim not in rules


def router_created_by_another_actor_before_our_insert(run: Run, entry: Any) -> None:
    """409 for real: a person creates the router of egress-guard's name while our insert is held."""
    run.localcloud.set_faults([{"methods": "compute.routers.insert", "principal": NAT_SA, "hold": True,
                                "latency_ms": HOLD_BOUND_MS, "count": 1}])
    worker = run.in_background(run.guardrails.nat, entry)
    run.wait_held()
    run.user.router(f"egress-guard-{R}")  # no NAT on it
    run.localcloud.release()
    _join(worker)
    inserts = [c for c in run.localcloud.calls()["calls"] if c["principal"] == NAT_SA and
               c["method_id"] == "compute.routers.insert"]
    failed_ops = [e for e in run.localcloud.request("GET", "entries")["entries"]
                  if e["protoPayload"]["methodName"] == "v1.compute.routers.insert"
                  and e["protoPayload"].get("authenticationInfo", {}).get("principalEmail") == NAT_SA
                  and (e["protoPayload"].get("status") or {}).get("code")]
    assert any(c["status"] == 409 for c in inserts) or failed_ops, (inserts, failed_ops)
    run.deliver(run.guardrails.firewalls, entry)


def write_held_past_the_clients_timeout(method: str, principal: str) -> Callable[[Run, Any], None]:
    """A timeout: the server holds the write longer than the guardrail's timeout; the guardrail gives
    up (TransientError, redelivered) while the call is still held, and the write lands later."""
    def case(run: Run, entry: Any) -> None:
        run.localcloud.set_faults([{"methods": method, "principal": principal, "hold": True,
                                    "latency_ms": HOLD_BOUND_MS, "count": 1}])
        guardrail = run.guardrails.nat if principal == NAT_SA else run.guardrails.firewalls
        if principal == FW_SA:
            run.deliver(run.guardrails.nat, entry)
        with pytest.raises(TransientError):
            guardrail(entry)
        assert run.localcloud.held() == 1, "the guardrail gave up while its call was still held"
        run.localcloud.release()
        _both(run, entry)
    return case


def operation_outlasts_the_wait(method: str, principal: str) -> Callable[[Run, Any], None]:
    """The operation stays RUNNING past the guardrail's wait: no success reported for that delivery
    (TransientError, no finding), and the redeliveries complete the change."""
    def case(run: Run, entry: Any) -> None:
        run.localcloud.set_faults([{"methods": method, "principal": principal,
                                    "operation_delay_s": 3 * OPERATION_TIMEOUT_S, "count": 1}])
        guardrail = run.guardrails.nat if principal == NAT_SA else run.guardrails.firewalls
        if principal == FW_SA:
            run.deliver(run.guardrails.nat, entry)
        before = len(run.guardrails.findings)
        with pytest.raises(TransientError, match="waiting for operation|not DONE within"):
            guardrail(entry)
        assert run.guardrails.findings[before:] == [], "no finding while the change is not done"
        _both(run, entry)
    return case


def person_deletes_the_nat_between_our_write_and_our_verify(run: Run, entry: Any) -> None:
    """A router of the network exists, so the guardrail patches its NAT in; a person removes every NAT
    while the guardrail waits for that patch's operation. The verify read finds ours gone, writes again."""
    run.user.router("r-team")
    run.localcloud.set_faults([{"methods": "compute.regionOperations.wait", "principal": NAT_SA, "hold": True,
                                "latency_ms": HOLD_BOUND_MS, "count": 1}])
    worker = run.in_background(run.guardrails.nat, entry)
    run.wait_held()
    for _ in range(500):  # the patch's operation is DONE at once here: the NAT is in place
        routers, _ = state(run.localcloud)
        if _egress_guard_nats(routers):
            break
        time.sleep(0.01)
    router = run.user.routers.get(project=P, region=R, router="r-team")
    router.nats = []
    op = run.user.routers.update(project=P, region=R, router="r-team", router_resource=router)
    run.user.region_ops.wait(project=P, region=R, operation=op.name, timeout=30)
    assert _egress_guard_nats(state(run.localcloud)[0]) == []
    run.localcloud.release()
    _join(worker)
    patches = [c for c in run.localcloud.calls()["calls"] if c["principal"] == NAT_SA and
               c["method_id"] == "compute.routers.patch" and c["status"] == 200]
    assert len(patches) >= 2, "the verify found the NAT gone and wrote it again"
    run.deliver(run.guardrails.firewalls, entry)


def person_deletes_a_managed_rule_mid_run(run: Run, entry: Any) -> None:
    """A person deletes egress-guard's managed allow while the guardrail waits for its operation; the
    person's delete is delivered as the sink would, and the rule is put back."""
    run.deliver(run.guardrails.nat, entry)
    run.localcloud.set_faults([{"methods": "compute.globalOperations.wait", "principal": FW_SA, "hold": True,
                                "latency_ms": HOLD_BOUND_MS, "count": 1}])
    worker = run.in_background(run.guardrails.firewalls, entry)
    run.wait_held()
    for _ in range(500):
        allows = [n for n, body in managed(state(run.localcloud)[1]).items() if body.get("allowed")]
        if allows:
            break
        time.sleep(0.01)
    since = _entries_count(run.localcloud)
    _delete_rule(run.user, allows[0])
    run.localcloud.release()
    _join(worker)
    for person in _person_entries(run.localcloud, since):
        run.deliver(run.guardrails.firewalls, {**person})


def connector_deleted_before_the_read(run: Run, entry: Any) -> None:
    """404 on a read: the connector the entry names is gone; nothing to do, nothing written. Then a
    new connector on the same subnet converges as usual."""
    run.user.vpcaccess.delete_connector(name=f"projects/{P}/locations/{R}/connectors/conn-a").result(timeout=30)
    assert run.guardrails.nat(entry) == [] and run.guardrails.firewalls(entry) == []
    writes = [c for c in run.localcloud.calls()["calls"] if c["mutating"] and c["principal"] in (NAT_SA, FW_SA)]
    assert writes == []
    run.user.connector("conn-a", subnet="sub28")
    again = [e for e in run.localcloud.request("GET", "entries")["entries"]
             if e["protoPayload"]["methodName"] == CONNECTOR_CREATE and (e.get("operation") or {}).get("first")]
    _both(run, again[-1])


def permanent_400(method: str, principal: str) -> Callable[[Run, Any], None]:
    """400 invalid: permanent. The delivery is acknowledged (no raise) with a failed finding that says
    why, nothing is half-applied (no broad rule disabled), and a later delivery completes it."""
    def case(run: Run, entry: Any) -> None:
        run.localcloud.set_faults([{"methods": method, "principal": principal, "error_rate": 1.0, "code": 400,
                                    "count": 1}])
        if principal == FW_SA:
            run.deliver(run.guardrails.nat, entry)
        guardrail = run.guardrails.nat if principal == NAT_SA else run.guardrails.firewalls
        findings = guardrail(entry)  # no TransientError: acknowledged
        assert [f.outcome.value for f in findings] == ["failed"], findings
        assert "HTTP 400" in findings[0].reason, findings[0].reason
        _, rules = state(run.localcloud)
        assert not any(body.get("disabled") for n, body in rules.items() if n.endswith(("-sbntfw", "-tagfw")))
        fresh = {**entry, "insertId": entry["insertId"] + "-again"}  # the sweep or the next event
        _both(run, fresh)
    return case


_ROUTERS_INSERT = "compute.routers.insert"
CASES: dict[str, tuple[str, Callable[[Run, Any], None]]] = {
    # kind (the figures' row) -> (what happens, the case)
    "404-injected": ("404 notFound on disabling a broad rule", injected(
        {"methods": "compute.firewalls.patch", "principal": FW_SA, "error_rate": 1.0, "code": 404, "count": 1})),
    "404-real": ("a broad rule deleted between read and write", broad_rule_deleted_between_read_and_write),
    "404-read": ("the connector deleted before the read", connector_deleted_before_the_read),
    "409-injected": ("409 alreadyExists on inserting a managed rule", injected(
        {"methods": "compute.firewalls.insert", "principal": FW_SA, "error_rate": 1.0, "code": 409, "count": 1})),
    "409-real": ("the router created by another actor before our insert",
                 router_created_by_another_actor_before_our_insert),
    "400-router": ("400 invalid on the router insert", permanent_400(_ROUTERS_INSERT, NAT_SA)),
    "400-firewall": ("400 invalid on a managed rule insert", permanent_400("compute.firewalls.insert", FW_SA)),
    "400-resourceNotReady": ("400 resourceNotReady (retryable) on the router insert", injected(
        {"methods": _ROUTERS_INSERT, "principal": NAT_SA, "error_rate": 1.0, "code": 400,
         "reason": "resourceNotReady", "count": 2})),
    "timeout-router-write": ("the router insert held past the timeout",
                             write_held_past_the_clients_timeout(_ROUTERS_INSERT, NAT_SA)),
    "timeout-firewall-write": ("a broad rule's disable held past the timeout",
                               write_held_past_the_clients_timeout("compute.firewalls.patch", FW_SA)),
    "timeout-operation-wait": ("operations.wait held past the timeout", write_held_past_the_clients_timeout(
        "compute.regionOperations.wait", NAT_SA)),
    "slow-operation-router": ("the router insert's operation outlasts the wait",
                              operation_outlasts_the_wait(_ROUTERS_INSERT, NAT_SA)),
    "slow-operation-firewall": ("a managed rule's operation outlasts the wait",
                                operation_outlasts_the_wait("compute.firewalls.insert", FW_SA)),
    "person-nat": ("a person deletes the NAT between our write and our verify",
                   person_deletes_the_nat_between_our_write_and_our_verify),
    "person-rule": ("a person deletes a managed rule mid-run", person_deletes_a_managed_rule_mid_run),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_google_and_people_faults_converge_and_keep_make_before_break(localcloud_url, localcloud, kind):
    _, case = CASES[kind]
    user, entry = _world(localcloud, localcloud_url)
    run = Run(localcloud, user, _Guardrails(localcloud_url), [])
    try:
        case(run, entry)
    finally:
        localcloud.release()
        localcloud.clear_faults()
    _converged(localcloud)
    failed = [f.reason for f in run.guardrails.findings if f.outcome.value == "failed"]
    assert len(failed) == (1 if kind.startswith("400-") and kind != "400-resourceNotReady" else 0), failed
    violations = make_before_break_violations(localcloud.request("GET", "entries")["entries"],
                                              principals=(NAT_SA, FW_SA))
    tally("make-before-break violations", len(violations))
    tally("make-before-break checks (audit logs checked)")
    tally(f"faults injected: {kind}")
    tally("runs: Google/person fault runs (in-process, one kind each)")
    tally("runs converged")
    tally("redeliveries: in-process (TransientError, delivered again)", len(run.transient))
    assert violations == []


def test_a_slow_router_operation_of_another_writer_is_waited_for_before_the_verify(localcloud_url, localcloud):
    """A router operation applies the ``nats`` its request carried when it ends. Instance B's patch
    (sub28 + sub28b) outlasts its wait; instance C then patches sub28c in from a read without sub28b.
    C's verify must wait for B's operation to land: read earlier, it confirms sub28c, and B's stale
    list then drops it with nobody left to notice (the faulted router race lost subnets this way)."""
    user, entry_a = _world(localcloud, localcloud_url)
    guardrails = _Guardrails(localcloud_url)
    run = Run(localcloud, user, guardrails, [])
    run.deliver(guardrails.nat, entry_a)  # the NAT exists, listing sub28: B and C patch it
    for name, cidr in (("b", "10.0.2.0/28"), ("c", "10.0.3.0/28")):
        user.subnet(f"sub28{name}", cidr)
        user.connector(f"conn-{name}", subnet=f"sub28{name}")
    entry_b = one(localcloud, CONNECTOR_CREATE, resource="conn-b", first=True)
    entry_c = one(localcloud, CONNECTOR_CREATE, resource="conn-c", first=True)
    localcloud.set_faults([{"methods": "compute.routers.patch", "principal": NAT_SA,
                            "operation_delay_s": 1.85 * OPERATION_TIMEOUT_S, "count": 1}])
    with pytest.raises(TransientError):
        guardrails.nat(entry_b)  # B's operation is still RUNNING: redelivered later
    run.deliver(guardrails.nat, entry_c)
    run.deliver(guardrails.nat, entry_b)  # B's redelivery
    localcloud.clear_faults()
    (nat,) = _egress_guard_nats(state(localcloud)[0])
    listed = sorted(s["name"].rsplit("/", 1)[-1] for s in nat.get("subnetworks", []))
    tally("faults injected: slow-operation-stale (another writer's operation lands after our write)")
    tally("runs: Google/person fault runs (in-process, one kind each)")
    tally("subnets dropped", 3 - len(listed))
    tally("runs converged", int(listed == ["sub28", "sub28b", "sub28c"]))
    assert listed == ["sub28", "sub28b", "sub28c"]
