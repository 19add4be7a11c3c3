"""Issue 16 acceptance on the whole local stack, driven by the real gcloud CLI: per-team routing
(policy notify.routes, one Slack receiver per destination) and `egress-guard undo`.

The stack runs examples/policy/teams.yaml: both guardrails enforce, findings of workloads labelled
team=payments / team=search go to those teams' receivers, the rest to the default receiver.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from localcloud.stack import REGION
from tests.e2e.conftest import ROOT, RunningStack, _start, eventually

pytestmark = pytest.mark.e2e

TEAMS_POLICY = ROOT / "examples" / "policy" / "teams.yaml"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
BOUND_S = 45.0


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    """A copy of teams.yaml that the undo test rewrites (exemptions) and the functions re-read."""
    copy = tmp_path_factory.mktemp("policy") / "teams.yaml"
    shutil.copy(TEAMS_POLICY, copy)
    return copy


@pytest.fixture(scope="module")
def stack_teams(tmp_path_factory, policy_file: Path) -> Iterator[RunningStack]:
    yield from _start(tmp_path_factory, "stack-teams", policy_file)


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


# --- egress-guard undo ------------------------------------------------------------------------------

FINDING_ID = re.compile(r"finding `?([0-9a-f]{24})")


def _remediated(stack: RunningStack, guardrail: str, subject: str, *, containing: str = "") -> list[str]:
    """Ids of the remediated findings posted (default receiver) for ``subject``, oldest first."""
    ids = []
    for message in _messages(stack):
        text = json.dumps(message)
        if f"Remediated: {guardrail} for" in text and subject in text and containing in text:
            ids.append(FINDING_ID.search(text).group(1))
    return ids


def _rules(stack: RunningStack, network: str) -> dict[str, dict]:
    return {r["name"]: r for r in stack.gcloud_json("compute", "firewall-rules", "list")
            if r["network"].endswith(f"/networks/{network}")}


def _routers(stack: RunningStack, network: str) -> list[dict]:
    return [r for r in stack.gcloud_json("compute", "routers", "list", f"--regions={REGION}") or []
            if r["network"].endswith(f"/networks/{network}")]


def _undo(stack: RunningStack, *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "egress-guard"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EGRESS_GUARD_")}, **stack.env}
    return subprocess.run([str(script), "undo", *args, "--json"], env=env, capture_output=True, text=True,
                          timeout=180)


def _archived(stack: RunningStack) -> list[dict]:
    """Every finding in the stack's findings archive, read as undo reads it (nothing consumed)."""
    code = ("import json, os; from egress_guard.runner import Context; "
            "from egress_guard.undo import archived_findings, findings_subscription; "
            "c = Context.from_env(publish=lambda f: None).clients; "
            "print(json.dumps([f.to_dict() for f in archived_findings(c, findings_subscription(c, None, os.environ))]))")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EGRESS_GUARD_")}, **stack.env}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _publish(stack: RunningStack, finding) -> None:
    """Publish a finding to the findings topic, as a guardrail instance does."""
    from google.cloud import pubsub_v1

    from localcloud.stack import FINDINGS_TOPIC

    os.environ["PUBSUB_EMULATOR_HOST"] = stack.env["PUBSUB_EMULATOR_HOST"]
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(publisher.topic_path(stack.project, FINDINGS_TOPIC), finding.to_json().encode(),
                      **finding.attributes).result(timeout=30)


def _second_instance_copy(original: dict):
    """What a second instance publishes when it handles another event about the same connector at
    the same moment (as CI saw at 4e515c7): a finding of its own trigger that reports the same
    idempotent patches (the broad rules disabled), without the inserts the first instance won."""
    import dataclasses
    from datetime import datetime, timedelta, timezone

    from egress_guard.findings import Finding

    finding = Finding.from_dict(original)
    patches = tuple(c for c in finding.changes if c.action == "compute.firewalls.patch")
    # Its finding made a moment before the other's (it had less to write): a finding's time says
    # nothing of the order of the writes, and undo must still enable the broad rules first.
    made = datetime.fromisoformat(finding.time.replace("Z", "+00:00")) - timedelta(milliseconds=1)
    earlier = made.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return dataclasses.replace(finding, changes=patches, id="", time=earlier,
                               trigger=dataclasses.replace(finding.trigger, insertId="second-instance-copy",
                                                           operationId=""))


def _broad(rules: dict[str, dict]) -> dict[str, dict]:
    return {n: r for n, r in rules.items() if n.startswith("aet-") and n.endswith(("sbntfw", "tagfw"))}


def test_undo_a_firewall_remediation_and_a_nat_creation_and_refuse_after_a_manual_edit(
        stack_teams: RunningStack, policy_file: Path):
    stack = stack_teams
    _team_network(stack, "u1", "10.80.0.0/28")  # its connector: managed rules, broad rules disabled
    _team_network(stack, "u2", "10.81.0.0/28")
    _deploy(stack, "svc-u2", "conn-u2", None)  # all its traffic through the VPC: a NAT is created
    _team_network(stack, "u3", "10.82.0.0/28")  # its remediation is edited by hand below

    def converged() -> bool:
        u1 = _rules(stack, "net-u1")
        return (len([n for n in u1 if n.startswith("egress-guard-")]) >= 2 and _broad(u1)
                and all(r.get("disabled") for r in _broad(u1).values()) and _routers(stack, "net-u2")
                and any(n.startswith("egress-guard-") for n in _rules(stack, "net-u3"))
                and _remediated(stack, "ensure_nat", "svc-u2") and _remediated(stack, "replace_connector_firewalls",
                                                                               "conn-u3", containing="insert"))
    assert eventually(converged, BOUND_S), "the remediations to undo did not happen"
    # One id per finding: the two entries of one operation share an id, and each may be posted.
    firewall_ids = list(dict.fromkeys(_remediated(stack, "replace_connector_firewalls", "conn-u1")))
    (nat_id,) = _remediated(stack, "ensure_nat", "svc-u2")
    edited_id = _remediated(stack, "replace_connector_firewalls", "conn-u3", containing="insert")[0]

    # Undoing is pointless while the guardrails would redo it: exempt the networks first, as a
    # person would (the functions re-read the policy when they start).
    policy_file.write_text(policy_file.read_text() + "\nexemptions:\n  networks: [net-u1, net-u2, net-u3]\n")
    for function in ("ensure_nat", "replace_connector_firewalls"):
        stack.stack.restart_function(function)

    # A refused undo after a manual edit: nothing is changed.
    deny = next(n for n in _rules(stack, "net-u3") if n.startswith("egress-guard-") and n.endswith("-deny"))
    stack.gcloud("compute", "firewall-rules", "update", deny, "--priority=985")
    before_refusal = _rules(stack, "net-u3")
    refused = _undo(stack, edited_id)
    print(f"\nrefused undo (exit {refused.returncode}): {refused.stderr.strip()}")
    assert refused.returncode == 1 and "no longer matches" in refused.stderr and f"{deny}: changed priority" in \
        refused.stderr and "nothing was changed" in refused.stderr
    assert _rules(stack, "net-u3") == before_refusal

    # A finding id that does not exist: a clear error, nothing read beyond the archive.
    unknown = _undo(stack, "0" * 24)
    assert unknown.returncode == 2 and f"no finding {'0' * 24} in" in unknown.stderr, unknown.stderr

    # A dry run changes nothing.
    planned = _undo(stack, nat_id, "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["outcome"] == "planned" and _routers(stack, "net-u2")

    # The NAT creation: the router egress-guard created is gone.
    undone = _undo(stack, nat_id)
    assert undone.returncode == 0, undone.stderr
    finding = json.loads(undone.stdout)
    print(f"undo {nat_id}: {finding['reason']}")
    assert finding["outcome"] == "undone" and [c["action"] for c in finding["changes"]] == ["compute.routers.delete"]
    assert _routers(stack, "net-u2") == []

    # The firewall remediation, newest finding first: broad rules enabled again, managed rules gone.
    # With 3 instances per function, several findings may report it (the connector's creation and
    # its aet-* rules' insertion handled at once both disable the broad rules): an undo takes back
    # every change of the findings that report one of its changes, and an undo of a finding whose
    # changes are all back says it is already undone (exit 0). That happens by chance here, so a
    # second instance's finding reporting the same patches is published too, and undone first.
    # (The e2e runs never drew it in 5 runs; CI did at 4e515c7.)
    original = next(f for f in reversed(_archived(stack)) if f["id"] in firewall_ids
                    and any(c["action"] == "compute.firewalls.patch" for c in f["changes"]))
    with_patches, copy = original["id"], _second_instance_copy(original)
    _publish(stack, copy)
    assert eventually(lambda: any(f["id"] == copy.id for f in _archived(stack)), BOUND_S)
    firewall_ids = firewall_ids + [copy.id]
    for finding_id in reversed(firewall_ids):
        done = _undo(stack, finding_id)
        assert done.returncode == 0, done.stderr
        print(f"undo {finding_id}: {json.loads(done.stdout)['reason']}")
        if finding_id == copy.id:  # the copy's undo took back what the original reported too
            assert with_patches in json.loads(done.stdout)["reason"]
        elif finding_id == with_patches:
            assert "already undone" in json.loads(done.stdout)["reason"], done.stdout
    rules = _rules(stack, "net-u1")
    assert not [n for n in rules if n.startswith("egress-guard-")], rules
    assert _broad(rules) and not any(r.get("disabled") for r in _broad(rules).values())
    # ... in make-before-break order backwards: no managed rule went while a broad rule was disabled.
    from localcloud.auditlog.invariants import make_before_break_violations

    assert make_before_break_violations(stack.control.request("GET", "entries")["entries"]) == []

    # notify_slack renders the undone findings.
    undone_posts = eventually(lambda: [m for m in _messages(stack) if "Undone:" in json.dumps(m)], BOUND_S)
    assert len(undone_posts) == 1 + len(firewall_ids)
    print(f"slack: {len(undone_posts)} undone message(s)")
