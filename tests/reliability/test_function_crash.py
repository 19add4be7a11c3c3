"""Reliability (issues 6 and 14): a function instance killed with SIGKILL in the middle of a change.

The whole local stack runs as deployed: each function is 3 instances at concurrency 1 (gunicorn
workers under one master, ``Stack(instances=3)``). The test kills the one worker that received the
connector's audit entry, by PID; the master starts a new worker, as Cloud Run starts a new instance,
and Pub/Sub redelivers the message the killed instance never answered to whichever instance takes
it. Each instance logs every delivery's Pub/Sub message id with its PID first, so the test sees the
same message id received by two instances.

1. killed mid-write: after its ``routers.insert`` was accepted, while localcloud holds the operation
   RUNNING (4 s); localcloud ends the operation by itself, the redelivery finds the router;
2. killed before writing: while its ``routers.list`` is held by injected latency, so nothing was
   written; the connector's READY (its ``last`` entry) is held back, so nothing but the redelivered
   message can make the change: the new instance's decision line names the killed delivery's entry
   and the router insert it made.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, vpcaccess_v1

from localcloud.stack import AUDIT_TOPIC, DEAD_LETTER_TOPIC, FUNCTIONS, PROJECT, REGION
from tests.e2e.conftest import RunningStack, _start, eventually
from tests.figures import record, tally
from tests.deliveries import decisions, deliveries

pytestmark = pytest.mark.reliability

NAT_SA = FUNCTIONS["ensure_nat"]["sa"]
INSTANCES = 3
OPERATION_DELAY_S = 4.0  # how long localcloud keeps each Compute operation RUNNING: the kill window
READ_HELD_S = 6.0  # injected latency on ensure_nat's routers.list: the window before any write
CONVERGE_WITHIN_S = 120.0  # a bound that only stops a hang (Pub/Sub backs off up to 10 s between pushes)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[RunningStack]:
    yield from _start(tmp_path_factory, "stack-crash", None, instances=INSTANCES)


def _user_clients(url: str) -> dict[str, Any]:
    creds, opts = AnonymousCredentials(), {"api_endpoint": url}
    return {"networks": compute_v1.NetworksClient(credentials=creds, client_options=opts),
            "subnets": compute_v1.SubnetworksClient(credentials=creds, client_options=opts),
            "global_ops": compute_v1.GlobalOperationsClient(credentials=creds, client_options=opts),
            "region_ops": compute_v1.RegionOperationsClient(credentials=creds, client_options=opts),
            "vpcaccess": vpcaccess_v1.VpcAccessServiceClient(transport="rest", credentials=creds,
                                                             client_options={"api_endpoint": url + "/vpcaccess"})}


def _nat_calls(stack: RunningStack, since: int = 0) -> list[dict[str, Any]]:
    return stack.control.calls(since=since, principal=NAT_SA)["calls"]


def _routers(stack: RunningStack, network: str) -> dict[str, Any]:
    return {k: r for k, r in stack.control.state().get("compute.routers", {}).items()
            if r.get("network", "").endswith(f"/networks/{network}")}


def _dead_letters(stack: RunningStack) -> int:
    from google.cloud import pubsub_v1

    os.environ["PUBSUB_EMULATOR_HOST"] = stack.env["PUBSUB_EMULATOR_HOST"]
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(PROJECT, f"{DEAD_LETTER_TOPIC}-watch")
    response = subscriber.pull(request={"subscription": path, "max_messages": 100}, timeout=5, retry=None)
    return len(response.received_messages)


def _network_with_subnet(user: dict[str, Any], network: str, subnet: str) -> None:
    op = user["networks"].insert(project=PROJECT, network_resource=compute_v1.Network(
        name=network, auto_create_subnetworks=False))
    user["global_ops"].wait(project=PROJECT, operation=op.name, timeout=30)
    op = user["subnets"].insert(project=PROJECT, region=REGION, subnetwork_resource=compute_v1.Subnetwork(
        name=subnet, network=f"projects/{PROJECT}/global/networks/{network}", ip_cidr_range="10.0.1.0/28"))
    user["region_ops"].wait(project=PROJECT, region=REGION, operation=op.name, timeout=30)


def _create_connector(user: dict[str, Any], name: str, subnet: str) -> None:
    user["vpcaccess"].create_connector(
        parent=f"projects/{PROJECT}/locations/{REGION}", connector_id=name,
        connector=vpcaccess_v1.Connector(subnet=vpcaccess_v1.Connector.Subnet(name=subnet), min_instances=2,
                                         max_instances=3))


def _audit_message_of(stack: RunningStack, connector: str) -> str:
    """The Pub/Sub message id of the connector's CreateConnector entry: read from the audit topic's
    watch subscription (a message has one id on every subscription, ensure_nat's push one included)."""
    from google.cloud import pubsub_v1

    os.environ["PUBSUB_EMULATOR_HOST"] = stack.env["PUBSUB_EMULATOR_HOST"]
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(PROJECT, f"{AUDIT_TOPIC}-watch")

    def find() -> str | None:
        response = subscriber.pull(request={"subscription": path, "max_messages": 100}, timeout=5, retry=None)
        found = None
        for received in response.received_messages:
            entry = json.loads(received.message.data)
            payload = entry.get("protoPayload") or {}
            if payload.get("methodName", "").endswith("CreateConnector") and \
                    payload.get("resourceName", "").endswith(f"/connectors/{connector}"):
                found = received.message.message_id
        if response.received_messages:
            subscriber.acknowledge(request={"subscription": path,
                                            "ack_ids": [m.ack_id for m in response.received_messages]})
        return found

    message_id = eventually(find, timeout=30, interval=0.2)
    assert message_id, f"no audit message for connector {connector}"
    return message_id


def _kill_the_instance_handling(stack: RunningStack, message_id: str) -> int:
    """SIGKILL the worker that received the message: only that process, as a crashed Cloud Run
    instance; the gunicorn master starts a new one."""
    pids = eventually(lambda: _received_by(stack, message_id), timeout=60, interval=0.05)
    assert pids, f"no ensure_nat instance received message {message_id}"
    victim = pids[0]
    assert victim in stack.stack.instance_pids("ensure_nat")
    os.kill(victim, signal.SIGKILL)
    return victim


def _received_by(stack: RunningStack, message_id: str) -> list[int]:
    return [d.pid for d in deliveries(stack.stack, "ensure_nat") if d.id == message_id]


def _tally_kill(kind: str, received: list[int]) -> None:
    tally(kind)
    tally("runs: whole stack with a killed instance")
    tally("runs converged")
    tally("redeliveries: Pub/Sub (same message id delivered again)", len(received) - 1)


def _instances_back(stack: RunningStack) -> list[int]:
    return eventually(lambda: (lambda pids: pids if len(pids) == INSTANCES else None)(
        stack.stack.instance_pids("ensure_nat")), timeout=30)


def test_an_instance_killed_mid_write_is_replaced_and_the_redelivery_converges(stack, request):
    user = _user_clients(stack.url)
    _network_with_subnet(user, "net-a", "sub-a")
    # The connector stays CREATING: its one entry is the only message that can make the change.
    stack.control.config(compute_operation_delay_s=OPERATION_DELAY_S, connector_ready_delay_s=3600.0)
    stack.pull_findings()  # start from an empty findings subscription

    _create_connector(user, "conn-a", "sub-a")
    message_id = _audit_message_of(stack, "conn-a")
    inserted = eventually(lambda: [c for c in _nat_calls(stack) if c["method_id"] == "compute.routers.insert"
                                   and c["status"] == 200], timeout=60, interval=0.05)
    assert inserted, "ensure_nat never inserted the router"
    victim = _kill_the_instance_handling(stack, message_id)
    killed_at = time.monotonic()
    running = _routers(stack, "net-a") == {}  # the operation had not ended: the router is not there yet
    after_kill = stack.control.calls(principal=NAT_SA)["last_seq"]

    def converged() -> list[dict[str, Any]] | None:
        routers = _routers(stack, "net-a")
        if len(routers) != 1 or len(next(iter(routers.values())).get("nats", [])) != 1:
            return None
        converged.findings += [f for f in stack.pull_findings() if f["guardrail"] == "ensure_nat"]  # type: ignore[attr-defined]
        return converged.findings or None  # type: ignore[attr-defined]

    converged.findings = []  # type: ignore[attr-defined]
    findings = eventually(converged, timeout=CONVERGE_WITHIN_S, interval=0.5)
    received = eventually(lambda: (lambda pids: pids if len(pids) >= 2 else None)(_received_by(stack, message_id)),
                          timeout=CONVERGE_WITHIN_S, interval=0.5) or _received_by(stack, message_id)
    seconds = time.monotonic() - killed_at
    stack.control.config(compute_operation_delay_s=0.0, connector_ready_delay_s=1.0)

    assert running, "the kill came after the operation ended: the window was missed"
    assert findings, "no ensure_nat finding after the kill"
    assert {f["outcome"] for f in findings} <= {"remediated", "compliant"}, findings
    routers = _routers(stack, "net-a")
    assert len(routers) == 1 and len(next(iter(routers.values()))["nats"]) == 1
    assert len(received) >= 2 and received[0] == victim and any(pid != victim for pid in received[1:]), \
        f"message {message_id} was not redelivered to another instance: received by {received}"
    redelivered = sum(1 for c in stack.control.calls(since=after_kill, principal=NAT_SA)["calls"]
                      if c["method_id"] == "vpcaccess.projects.locations.connectors.get")
    assert redelivered >= 1, "no instance re-read the connector after the kill: nothing was redelivered"
    assert _dead_letters(stack) == 0
    replaced = _instances_back(stack)
    assert replaced and victim not in replaced
    _tally_kill("faults injected: instance SIGKILLed mid-write", received)
    record(request, f"SIGKILL of one ensure_nat instance of {INSTANCES} (pid {victim}) while its routers.insert "
                    f"operation was RUNNING ({OPERATION_DELAY_S:g} s window): Pub/Sub message {message_id} received "
                    f"by pids {received} (redelivered to another instance), the master started a new instance, "
                    f"converged in {seconds:.1f} s to 1 router with 1 NAT "
                    f"({', '.join(sorted({f['outcome'] for f in findings}))}), 0 dead letters")


def test_an_instance_killed_before_writing_leaves_the_change_to_the_instance_the_message_is_redelivered_to(
        stack, request):
    user = _user_clients(stack.url)
    _network_with_subnet(user, "net-b", "sub-b")
    # The connector stays CREATING: no READY, so no ``last`` entry brings a second chance to decide.
    stack.control.config(compute_operation_delay_s=0.0, connector_ready_delay_s=3600.0)
    stack.control.set_faults([{"methods": "compute.routers.list", "latency_ms": READ_HELD_S * 1000,
                               "principal": NAT_SA}])
    writes_before = len([c for c in _nat_calls(stack) if c["mutating"]])

    _create_connector(user, "conn-b", "sub-b")
    message_id = _audit_message_of(stack, "conn-b")
    assert eventually(lambda: _received_by(stack, message_id)
                      and any(c["method_id"] == "vpcaccess.projects.locations.connectors.get"
                              and "conn-b" in c["path"] for c in _nat_calls(stack)), timeout=60, interval=0.05)
    time.sleep(1.0)  # not an assertion: lets the instance reach its held routers.list (6 s) before the kill
    victim = _kill_the_instance_handling(stack, message_id)
    stack.control.clear_faults()
    assert _routers(stack, "net-b") == {} and len([c for c in _nat_calls(stack) if c["mutating"]]) == writes_before, \
        "the killed instance had already written"
    killed_at = time.monotonic()

    def remediated_by_redelivery() -> list[dict[str, Any]] | None:
        received = _received_by(stack, message_id)
        if len(received) < 2:
            return None
        return [d for d in decisions(stack.stack, "ensure_nat")
                if d.get("delivery_id") == message_id and d.get("changes")] or None

    decided = eventually(remediated_by_redelivery, timeout=CONVERGE_WITHIN_S, interval=0.5)
    seconds = time.monotonic() - killed_at
    stack.control.config(connector_ready_delay_s=1.0)
    received = _received_by(stack, message_id)

    assert received[0] == victim and any(pid != victim for pid in received[1:]), \
        f"message {message_id} was not redelivered to another instance: received by {received}"
    assert decided, f"no instance made a change while handling message {message_id} again"
    (decision,) = decided
    assert decision["logging.googleapis.com/labels"]["outcome"] == "remediated"
    assert any(c.startswith("compute.routers.insert") for c in decision["changes"]), decision["changes"]
    created = [e for e in stack.control.request("GET", "entries")["entries"]
               if e["protoPayload"]["methodName"].endswith("CreateConnector")
               and e["protoPayload"]["resourceName"].endswith("/conn-b")]
    assert [e["insertId"] for e in created] == [decision["trigger"]["insertId"]], \
        "the change was made for another entry than the one whose delivery was killed"
    routers = _routers(stack, "net-b")
    assert len(routers) == 1 and len(next(iter(routers.values()))["nats"]) == 1
    assert _dead_letters(stack) == 0
    _tally_kill("faults injected: instance SIGKILLed before its write", received)
    record(request, f"SIGKILL of one ensure_nat instance of {INSTANCES} (pid {victim}) before it wrote (its "
                    f"routers.list held {READ_HELD_S:g} s), the connector's READY held back: Pub/Sub message "
                    f"{message_id} received by pids {received}; the instance it was redelivered to made the "
                    f"routers.insert for that same entry, converged in {seconds:.1f} s, 0 dead letters")
