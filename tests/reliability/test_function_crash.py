"""Reliability (issue 6): a function process killed with SIGKILL in the middle of a change.

The whole local stack runs (Pub/Sub emulator, localcloud, the functions under functions-framework,
the Slack receiver). localcloud holds Compute operations RUNNING for a few seconds, so the window
between ensure_nat's ``routers.insert`` and the end of its operation is wide; the test kills the
function's process group (gunicorn master and worker) by PID inside that window, starts it again
on its port (``Stack.restart_function``), and lets Pub/Sub redeliver the unacknowledged message.
It must converge: one router, one NAT, a finding for the connector, nothing dead-lettered.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, vpcaccess_v1

from localcloud.stack import DEAD_LETTER_TOPIC, FUNCTIONS, PROJECT, REGION, Stack
from tests.e2e.conftest import RunningStack, eventually
from tests.figures import record

pytestmark = pytest.mark.reliability

NAT_SA = FUNCTIONS["ensure_nat"]["sa"]
OPERATION_DELAY_S = 4.0  # how long localcloud keeps each Compute operation RUNNING: the kill window
CONVERGE_WITHIN_S = 90.0  # a bound that only stops a hang (Pub/Sub backs off up to 10 s between pushes)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[RunningStack]:
    state = tmp_path_factory.mktemp("stack-crash")
    stack = Stack(state_dir=state, guardrails=True, policy=None, fixed_ports=False, log=lambda line: None)
    env = stack.up()
    try:
        yield RunningStack(stack, env)
    finally:
        stack.down(quiet=True)


def _user_clients(url: str) -> dict[str, Any]:
    creds, opts = AnonymousCredentials(), {"api_endpoint": url}
    return {"networks": compute_v1.NetworksClient(credentials=creds, client_options=opts),
            "subnets": compute_v1.SubnetworksClient(credentials=creds, client_options=opts),
            "global_ops": compute_v1.GlobalOperationsClient(credentials=creds, client_options=opts),
            "region_ops": compute_v1.RegionOperationsClient(credentials=creds, client_options=opts),
            "vpcaccess": vpcaccess_v1.VpcAccessServiceClient(transport="rest", credentials=creds,
                                                             client_options={"api_endpoint": url + "/vpcaccess"})}


def _nat_calls(stack: RunningStack) -> list[dict[str, Any]]:
    return stack.control.calls(principal=NAT_SA)["calls"]


def _routers(stack: RunningStack) -> dict[str, Any]:
    return stack.control.state().get("compute.routers", {})


def _dead_letters(stack: RunningStack) -> int:
    from google.cloud import pubsub_v1

    os.environ["PUBSUB_EMULATOR_HOST"] = stack.env["PUBSUB_EMULATOR_HOST"]
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(PROJECT, f"{DEAD_LETTER_TOPIC}-watch")
    response = subscriber.pull(request={"subscription": path, "max_messages": 100}, timeout=5, retry=None)
    return len(response.received_messages)


def test_ensure_nat_killed_between_its_insert_and_the_operations_end_converges_after_redelivery(stack, request):
    user = _user_clients(stack.url)
    op = user["networks"].insert(project=PROJECT, network_resource=compute_v1.Network(
        name="net-a", auto_create_subnetworks=False))
    user["global_ops"].wait(project=PROJECT, operation=op.name, timeout=30)
    op = user["subnets"].insert(project=PROJECT, region=REGION, subnetwork_resource=compute_v1.Subnetwork(
        name="sub28", network=f"projects/{PROJECT}/global/networks/net-a", ip_cidr_range="10.0.1.0/28"))
    user["region_ops"].wait(project=PROJECT, region=REGION, operation=op.name, timeout=30)
    stack.control.config(compute_operation_delay_s=OPERATION_DELAY_S)
    stack.pull_findings()  # start from an empty findings subscription

    user["vpcaccess"].create_connector(
        parent=f"projects/{PROJECT}/locations/{REGION}", connector_id="conn-a",
        connector=vpcaccess_v1.Connector(subnet=vpcaccess_v1.Connector.Subnet(name="sub28"), min_instances=2,
                                         max_instances=3))
    inserted = eventually(lambda: [c for c in _nat_calls(stack) if c["method_id"] == "compute.routers.insert"
                                   and c["status"] == 200], timeout=60, interval=0.05)
    assert inserted, "ensure_nat never inserted the router"

    victim = stack.stack.pid("ensure_nat")
    os.killpg(victim, signal.SIGKILL)  # the function's whole process group: gunicorn master and worker
    killed_at = time.monotonic()
    running = _routers(stack) == {}  # the operation had not ended: the router is not there yet
    after_kill = stack.control.calls(principal=NAT_SA)["last_seq"]
    new_pid = stack.stack.restart_function("ensure_nat")

    def converged() -> list[dict[str, Any]] | None:
        routers = _routers(stack)
        if len(routers) != 1 or len(next(iter(routers.values())).get("nats", [])) != 1:
            return None
        findings = [f for f in stack.pull_findings() if f["guardrail"] == "ensure_nat"]
        converged.findings += findings  # type: ignore[attr-defined]
        return converged.findings or None  # type: ignore[attr-defined]

    converged.findings = []  # type: ignore[attr-defined]
    findings = eventually(converged, timeout=CONVERGE_WITHIN_S, interval=0.5)
    seconds = time.monotonic() - killed_at

    assert running, "the kill came after the operation ended: the window was missed"
    assert findings, "no ensure_nat finding after the restart"
    assert {f["outcome"] for f in findings} <= {"remediated", "compliant"}, findings
    routers = _routers(stack)
    assert len(routers) == 1 and len(next(iter(routers.values()))["nats"]) == 1
    redelivered = sum(1 for c in stack.control.calls(since=after_kill, principal=NAT_SA)["calls"]
                      if c["method_id"] == "vpcaccess.projects.locations.connectors.get")
    assert redelivered >= 1, "the restarted function never re-read the connector: nothing was redelivered"
    assert _dead_letters(stack) == 0
    assert new_pid != victim
    record(request, f"SIGKILL of ensure_nat (pid {victim}) while its routers.insert operation was RUNNING "
                    f"({OPERATION_DELAY_S:g} s window): "
                    f"restarted as pid {new_pid}, {redelivered} redelivered event(s) handled, converged in "
                    f"{seconds:.1f} s to 1 router with 1 NAT ({', '.join(sorted({f['outcome'] for f in findings}))}), "
                    f"0 dead letters")
