"""Issue 16 acceptance on the whole local stack, driven by the real gcloud CLI: per-team routing
(policy notify.routes, one Slack receiver per destination) and `egress-guard undo`.

The stack runs examples/policy/teams.yaml: both guardrails enforce, findings of workloads labelled
team=payments / team=search go to those teams' receivers, the rest to the default receiver.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from localcloud.stack import REGION
from tests.e2e.conftest import ROOT, RunningStack, _start, eventually

pytestmark = pytest.mark.e2e

TEAMS_POLICY = ROOT / "examples" / "policy" / "teams.yaml"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
BOUND_S = 45.0


@pytest.fixture(scope="module")
def stack_teams(tmp_path_factory) -> Iterator[RunningStack]:
    yield from _start(tmp_path_factory, "stack-teams", TEAMS_POLICY)


def _receiver(stack: RunningStack, destination: str | None) -> str:
    key = "SLACK_RECEIVER_URL" if destination is None else f"SLACK_RECEIVER_URL_{destination.upper()}"
    return stack.env[key]


def _messages(stack: RunningStack, destination: str | None = None) -> list[dict]:
    return requests.get(_receiver(stack, destination) + "/_messages", timeout=5).json()


def _team_network(stack: RunningStack, name: str, cidr: str) -> None:
    stack.gcloud("compute", "networks", "create", f"net-{name}", "--subnet-mode=custom")
    stack.gcloud("compute", "networks", "subnets", "create", f"{name}-28", f"--network=net-{name}",
                 f"--region={REGION}", f"--range={cidr}")
    stack.gcloud("compute", "networks", "vpc-access", "connectors", "create", f"conn-{name}",
                 f"--region={REGION}", f"--subnet={name}-28")


def _deploy(stack: RunningStack, service: str, connector: str, labels: str | None) -> None:
    args = ["run", "deploy", service, f"--image={IMAGE}", f"--region={REGION}", f"--vpc-connector={connector}",
            "--vpc-egress=all-traffic", "--no-allow-unauthenticated"]
    if labels:
        args.append(f"--labels={labels}")
    stack.gcloud(*args)


def test_two_teams_each_get_only_their_findings_and_the_default_the_rest(stack_teams: RunningStack):
    stack = stack_teams
    assert set(stack.env) >= {"SLACK_RECEIVER_URL", "SLACK_RECEIVER_URL_PAYMENTS", "SLACK_RECEIVER_URL_SEARCH"}
    for name, cidr in (("pay", "10.70.0.0/28"), ("search", "10.71.0.0/28"), ("misc", "10.72.0.0/28")):
        _team_network(stack, name, cidr)
    _deploy(stack, "svc-pay", "conn-pay", "team=payments")
    _deploy(stack, "svc-search", "conn-search", "team=search")
    _deploy(stack, "svc-misc", "conn-misc", None)

    def text(destination: str | None) -> str:
        return json.dumps(_messages(stack, destination))

    # Each service's NAT finding (remediated, carrying the service's labels) reaches its receiver.
    eventually(lambda: "svc-pay" in text("payments") and "svc-search" in text("search")
               and "svc-misc" in text(None) and all(f"conn-{n}" in text(None) for n in ("pay", "search", "misc")),
               BOUND_S)
    payments, search, default = text("payments"), text("search"), text(None)
    print(f"\nrouted: payments {len(_messages(stack, 'payments'))} message(s), search "
          f"{len(_messages(stack, 'search'))}, default {len(_messages(stack, None))}")
    assert "svc-pay" in payments and "svc-search" not in payments and "svc-misc" not in payments
    assert "svc-search" in search and "svc-pay" not in search and "svc-misc" not in search
    # The default route the rest: the unlabelled service, and every connector's firewall finding
    # (connectors carry no labels), including the teams' connectors; never a team's service.
    assert "svc-misc" in default and "svc-pay" not in default and "svc-search" not in default
    assert all(f"conn-{n}" in default for n in ("pay", "search", "misc"))
