"""1st gen Cloud Functions end to end (issue 18): the real ``gcloud functions deploy --no-gen2`` against
the local stack, the v1 CreateFunction entries through the audit sink (its filter rendered from infra/)
and Pub/Sub to ensure_nat under the Functions Framework.

The stack runs with ``nat.on_connector_create: false``, so a connector alone gets no NAT: the NAT that
appears is the function's doing; a private-ranges function is compliant and ensure_nat writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from localcloud.stack import FUNCTIONS, REGION
from tests.e2e.conftest import RunningStack, _start, eventually
from tests.contract.test_guardrails_localcloud import User
from tests.e2e.test_remediation_e2e import _findings_for, _mutating_calls, _routers

pytestmark = pytest.mark.e2e

NAT_SA = FUNCTIONS["ensure_nat"]["sa"]
WORKLOADS_ONLY = "nat:\n  mode: enforce\n  on_connector_create: false\n"
# Only stops a hang (no timed assertion): the function's entry queues behind the connector's in Pub/Sub.
WAIT_S = 120.0


@pytest.fixture(scope="module")
def stack_workloads(tmp_path_factory) -> Iterator[RunningStack]:
    policy = tmp_path_factory.mktemp("policy") / "workloads-only.yaml"
    policy.write_text(WORKLOADS_ONLY)
    for running in _start(tmp_path_factory, "stack-gen1", policy, instances=1):
        # Each connector's entries (its own and its aet-* rules') reach ensure_nat before the function's,
        # one push at a time: without the two broad rules' (gcp-facts.md §11: either form is Google's)
        # the function's entry waits behind fewer.
        running.control.config(connector_broad_rules="implicit")
        yield running


@pytest.fixture
def source(tmp_path) -> Path:
    (tmp_path / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    (tmp_path / "requirements.txt").write_text("")
    return tmp_path


def _what_ensure_nat_said(stack: RunningStack, name: str) -> str:
    """ensure_nat's log lines about ``name`` (what a failure shows)."""
    log = (stack.stack.state_dir / "logs" / "ensure_nat.log").read_text(errors="replace")
    return "\n".join(line[:400] for line in log.splitlines() if name in line)


def _deploy_gen1(stack: RunningStack, name: str, source: Path, *flags: str) -> dict:
    return stack.gcloud_json("functions", "deploy", name, "--no-gen2", "--runtime=python311", "--trigger-http",
                             f"--source={source}", "--entry-point=hello", f"--region={REGION}", "--quiet", *flags)


def test_gen1_function_with_all_traffic_gets_a_nat_and_private_changes_nothing(stack_workloads: RunningStack,
                                                                              source: Path):
    stack, seen = stack_workloads, []
    user = User(stack.url)  # the network around the function, through the client libraries (quicker than gcloud)
    user.network("net-g1")
    user.subnet("g1-28", "10.41.0.0/28", network="net-g1")
    user.connector("conn-g1", subnet="g1-28")
    assert not stack.control.state().get("compute.routers")  # the policy gives a bare connector no NAT

    deployed = _deploy_gen1(stack, "fn-g1-all", source, "--vpc-connector=conn-g1", "--egress-settings=all")
    assert (deployed["status"], deployed["vpcConnectorEgressSettings"]) == ("ACTIVE", "ALL_TRAFFIC")
    decided = eventually(lambda: [f for f in _findings_for(stack, seen, "fn-g1-all") if f["outcome"] == "remediated"],
                         WAIT_S)
    assert decided, _what_ensure_nat_said(stack, "fn-g1-all")
    assert decided[0]["trigger"]["methodName"] == \
        "google.cloud.functions.v1.CloudFunctionsService.CreateFunction", decided
    routers = _routers(stack, "net-g1")
    print(f"\ngen1 function: {decided[0]['reason']}")
    print("gcloud compute routers list (net-g1): " + json.dumps(
        [{"name": r["name"], "nats": [n["name"] for n in r.get("nats", [])]} for r in routers]))
    assert [s["name"].rsplit("/", 1)[-1] for r in routers for n in r["nats"] for s in n.get("subnetworks", [])] == [
        "g1-28"]

    since = stack.control.calls()["last_seq"]
    _deploy_gen1(stack, "fn-g1-private", source, "--vpc-connector=conn-g1", "--egress-settings=private-ranges-only")
    private = eventually(lambda: [f for f in _findings_for(stack, seen, "fn-g1-private")
                                  if f["outcome"] == "compliant"], WAIT_S)
    # Decided from its egress before any NAT is looked at (no router read, no write): the same connector,
    # so no new connector entries queue in front of it.
    assert private and "private ranges" in private[0]["reason"], private
    assert _mutating_calls(stack, NAT_SA, since) == []
