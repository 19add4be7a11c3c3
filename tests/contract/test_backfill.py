"""``egress-guard backfill`` against localcloud: Cloud Logging ``entries.list`` through
google-cloud-logging, each change replayed once through the runner, oldest first.

The resources are made through the real APIs as a user while no function runs (the outage); the
audit entries localcloud wrote for them are what backfill reads back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path


import pytest

from egress_guard.backfill import backfill, read_entries
from egress_guard.findings import Finding
from egress_guard.guardrails import GUARDRAILS
from egress_guard.policy import Policy, parse_policy_text
from egress_guard.runner import NO_AGE_LIMIT, Context
from localcloud.identities import BACKFILL_SA, PROJECT, REGION
from tests.contract.test_guardrails_localcloud import User

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
BACKFILLER = BACKFILL_SA
MUTATING = ("insert", "patch", "update", "delete")
ENFORCE = parse_policy_text("""
firewall:
  mode: enforce
  allow: [{target_tags: [db], ports: [tcp:5432]}]
""")
ENFORCE_YAML = "firewall:\n  mode: enforce\n  allow: [{target_tags: [db], ports: [tcp:5432]}]\n"
BOTH = [GUARDRAILS[name] for name in sorted(GUARDRAILS)]


@pytest.fixture
def user(localcloud_url) -> User:
    return User(localcloud_url)


@pytest.fixture
def outage(user, localcloud) -> datetime:
    """What happened while no function ran: a connector on a /28 subnet and a job through it."""
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    user.job("job-a", "conn-a")
    localcloud.clear_calls()
    return since


def context(url: str, policy: Policy, findings: list[Finding]) -> Context:
    env = {"LOCALCLOUD_URL": url, "GOOGLE_CLOUD_PROJECT": P, "EGRESS_GUARD_PRINCIPAL": BACKFILLER,
           "EGRESS_GUARD_SELF_PRINCIPALS": BACKFILLER}
    ctx = Context.from_env(env, policy=policy, publish=findings.append)
    ctx.max_age = NO_AGE_LIMIT
    return ctx


def writes(localcloud) -> dict[str, int]:
    counts = localcloud.calls(principal=BACKFILLER)["counts"]
    return {m: n for m, n in counts.items() if m.rsplit(".", 1)[1] in MUTATING}


def cli(url: str, *args: str, policy: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EGRESS_GUARD_", "PUBSUB_"))}
    env.update(LOCALCLOUD_URL=url, GOOGLE_CLOUD_PROJECT=P, EGRESS_GUARD_PRINCIPAL=BACKFILLER, COLUMNS="160",
               EGRESS_GUARD_SELF_PRINCIPALS=BACKFILLER)
    if policy is not None:
        env["EGRESS_GUARD_POLICY"] = str(policy)
    script = Path(sys.executable).parent / "egress-guard"
    return subprocess.run([str(script), "backfill", *args], env=env, capture_output=True, text=True, timeout=300)


def test_backfill_replays_each_change_once_oldest_first_and_converges(outage, localcloud_url, localcloud):
    findings: list[Finding] = []
    ctx = context(localcloud_url, ENFORCE, findings)

    report = backfill(ctx, BOTH, P, outage)

    methods = [r.method.rsplit(".", 1)[1] for r in report.replayed]
    # The aet-* rules' inserts (by Google's service agent) are changes too: firewalls.insert.
    assert Counter(methods) == {"CreateConnector": 1, "CreateJob": 1, "insert": 6}
    assert [r.timestamp for r in report.replayed] == sorted(r.timestamp for r in report.replayed)
    assert report.read > len(report.replayed)  # operation.first and .last of each change were read
    assert not report.failed
    by_method = {r.method: {x.guardrail: x.outcome for x in r.results} for r in report.replayed}
    connector = by_method["google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"]
    assert connector == {"ensure_nat": "remediated", "replace_connector_firewalls": "remediated"}
    assert by_method["google.cloud.run.v2.Jobs.CreateJob"]["ensure_nat"] == "compliant"  # the connector's NAT covers it
    assert writes(localcloud) == {"compute.routers.insert": 1, "compute.firewalls.insert": 2}

    # A second backfill over the same window finds everything in place (and ignores its own writes).
    findings.clear()
    localcloud.clear_calls()
    again = backfill(ctx, BOTH, P, outage)
    assert writes(localcloud) == {}
    assert {f.outcome.value for f in findings} == {"compliant"}
    assert len(again.replayed) == len(report.replayed)  # its own writes are in the log, and filtered out
    assert localcloud.calls(principal=BACKFILLER)["counts"]["logging.entries.list"] == 1  # one page of 1,000


def test_backfill_reads_only_the_window(outage, user, localcloud_url, localcloud):
    time.sleep(0.05)
    later = datetime.now(timezone.utc)
    user.subnet("sub28b", "10.0.2.0/28")
    user.connector("conn-b", subnet="sub28b")

    entries = read_entries(context(localcloud_url, Policy(), []).clients, P, later)

    names = {e["protoPayload"]["resourceName"].rsplit("/", 1)[1] for e in entries}
    assert "conn-b" in names and "conn-a" not in names and "job-a" not in names
    assert all(e["timestamp"] >= later.isoformat().replace("+00:00", "Z")[:19] for e in entries)


def test_backfill_retries_a_transient_error_then_reports_what_still_fails(outage, localcloud_url, localcloud):
    # 429: google-api-core does not retry it itself (it does retry 503, for up to 600 s), so the
    # runner's TransientError reaches backfill, which tries the entry again.
    localcloud.set_faults([{"methods": "compute.routers.list", "error_rate": 1.0, "code": 429, "count": 1,
                            "principal": BACKFILLER}])
    report = backfill(context(localcloud_url, Policy(), []), [GUARDRAILS["ensure_nat"]], P, outage)
    assert not report.failed
    assert writes(localcloud) == {"compute.routers.insert": 1}
    # the 429, the retry of the connector, and the job through it
    assert localcloud.calls(principal=BACKFILLER)["counts"]["compute.routers.list"] == 3

    localcloud.request("POST", "reset")  # a fresh world: the NAT is needed again, and the routers cannot be read
    user = User(localcloud_url)
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    user.network()
    user.subnet("sub28", "10.0.1.0/28")
    user.connector("conn-a", subnet="sub28")
    localcloud.set_faults([{"methods": "compute.routers.list", "error_rate": 1.0, "code": 429,
                            "principal": BACKFILLER}])
    report = backfill(context(localcloud_url, Policy(), []), [GUARDRAILS["ensure_nat"]], P, since, retries=1)
    assert report.failed
    (stuck,) = [r for r in report.replayed if r.needs_retry]
    assert "429" in stuck.results[0].reason
    assert writes(localcloud) == {}


def test_backfill_command_prints_a_line_per_change_and_a_table(outage, localcloud_url, localcloud, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(ENFORCE_YAML)

    result = cli(localcloud_url, "--since", "2h", "--project", P, "--dry-run", policy=policy)

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 8 and lines[0].startswith("[1/8]") and "CreateConnector" in "".join(lines)
    assert f"egress-guard backfill of {P}" in result.stdout
    assert "changes replayed" in result.stdout
    assert writes(localcloud) == {}  # --dry-run

    as_json = cli(localcloud_url, "--since", "2h", "--json", policy=policy)
    assert as_json.returncode == 0, as_json.stderr
    findings = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {f["outcome"] for f in findings} >= {"remediated"}
    assert all(f["schema"] == "egress-guard.finding/v1" for f in findings)


@pytest.mark.parametrize("since, says", [("2x", "neither a duration"), ("yesterday", "neither a duration"),
                                         ("0m", "empty window"), ("2999-01-01T00:00:00Z", "future")])
def test_backfill_command_refuses_a_bad_since_with_exit_2_and_no_call(localcloud_url, localcloud, since, says):
    result = cli(localcloud_url, "--since", since, "--project", P)
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr
    assert localcloud.calls(principal=BACKFILLER)["total"] == 0


def test_backfill_of_an_empty_window_says_so(localcloud_url, localcloud):
    result = cli(localcloud_url, "--since", "5m", "--project", P)
    assert result.returncode == 0, result.stderr
    assert "0 audit entries read, 0 changes replayed" in result.stdout


