"""``egress-guard replay`` (the installed console script) against localcloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, vpcaccess_v1

from localcloud.identities import PROJECT, REGION, REPLAY_SA

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
REPLAYER = REPLAY_SA
MUTATING = ("insert", "patch", "update", "delete")


def _connector(url: str) -> None:
    creds = AnonymousCredentials()
    networks = compute_v1.NetworksClient(credentials=creds, client_options={"api_endpoint": url})
    subnets = compute_v1.SubnetworksClient(credentials=creds, client_options={"api_endpoint": url})
    gops = compute_v1.GlobalOperationsClient(credentials=creds, client_options={"api_endpoint": url})
    rops = compute_v1.RegionOperationsClient(credentials=creds, client_options={"api_endpoint": url})
    op = networks.insert(project=P, network_resource=compute_v1.Network(name="net-a", auto_create_subnetworks=False))
    gops.wait(project=P, operation=op.name, timeout=30)
    op = subnets.insert(project=P, region=R, subnetwork_resource=compute_v1.Subnetwork(
        name="sub28", network=f"projects/{P}/global/networks/net-a", ip_cidr_range="10.0.1.0/28"))
    rops.wait(project=P, region=R, operation=op.name, timeout=30)
    vpcaccess_v1.VpcAccessServiceClient(transport="rest", credentials=creds, client_options={
        "api_endpoint": url + "/vpcaccess"}).create_connector(
        parent=f"projects/{P}/locations/{R}", connector_id="conn-a",
        connector=vpcaccess_v1.Connector(subnet=vpcaccess_v1.Connector.Subnet(name="sub28"), min_instances=2,
                                         max_instances=3)).result(timeout=30)


def _replay(url: str, *args: str, policy: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EGRESS_GUARD_", "PUBSUB_"))}
    env.update(LOCALCLOUD_URL=url, GOOGLE_CLOUD_PROJECT=P, EGRESS_GUARD_PRINCIPAL=REPLAYER)
    if policy is not None:
        env["EGRESS_GUARD_POLICY"] = str(policy)
    script = Path(sys.executable).parent / "egress-guard"
    return subprocess.run([str(script), "replay", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def entries_file(localcloud_url, localcloud, tmp_path) -> Path:
    _connector(localcloud_url)
    found = [e for e in localcloud.request("GET", "entries")["entries"]
             if e["protoPayload"]["methodName"].endswith("CreateConnector")]
    assert len(found) == 2  # operation.first and operation.last
    path = tmp_path / "entries.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in found) + "\n")
    return path


def test_replay_dry_run_prints_planned_findings_and_writes_nothing(entries_file, localcloud_url, localcloud, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("firewall: {mode: enforce, allow: [{target_tags: [db], ports: [tcp:5432]}]}\n")
    localcloud.clear_calls()
    proc = _replay(localcloud_url, str(entries_file), "--dry-run", policy=policy)
    assert proc.returncode == 0, proc.stderr
    findings = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(f["guardrail"], f["outcome"], f["mode"]) for f in findings] == [
        ("ensure_nat", "planned", "dry-run"), ("replace_connector_firewalls", "planned", "dry-run")] * 2
    assert [c["action"] for c in findings[1]["changes"]] == ["compute.firewalls.insert"] * 2
    counts = localcloud.calls(principal=REPLAYER)["counts"]
    assert counts and not [m for m in counts if m.rsplit(".", 1)[1] in MUTATING]


def test_replay_enforces_and_pretty_renders(entries_file, localcloud_url, localcloud, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("firewall: {mode: enforce, allow: [{target_tags: [db], ports: [tcp:5432]}]}\n")
    proc = _replay(localcloud_url, str(entries_file), "--pretty", "--guardrail", "ensure_nat", policy=policy)
    assert proc.returncode == 0, proc.stderr
    outcomes = [json.loads(line)["outcome"] for line in proc.stdout.splitlines()]
    assert outcomes == ["remediated", "compliant"]  # first entry acts, the last finds it done
    assert "Remediated" in proc.stderr and "egress-guard-europe-west2" in proc.stderr
    assert list(localcloud.state()["compute.routers"]) == [f"{P}/{R}/egress-guard-{R}"]


def test_replay_of_an_unreadable_file_is_a_clear_error(localcloud_url, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope\n")
    proc = _replay(localcloud_url, str(bad))
    assert proc.returncode == 2 and "line 1 is not JSON" in proc.stderr and proc.stdout == ""
