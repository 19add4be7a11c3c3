"""The real gcloud CLI against localcloud: VPC Access connectors and Cloud Run deploys with a connector.

gcloud 528 reaches VPC Access through CLOUDSDK_API_ENDPOINT_OVERRIDES_VPCACCESS and Cloud Run through
the run override, which it turns into a regional host that localcloud serves as gcloud's proxy
(tests/gcloud.py has the environment).
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.gcloud import gcloud, gcloud_json

pytestmark = pytest.mark.contract

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
SUFFIXES = ("hcfw", "rsgfw", "earfw", "egrfw", "sbntfw", "tagfw")


def _network(url: str, project: str, region: str) -> None:
    gcloud(url, project, "compute", "networks", "create", "net-a", "--subnet-mode=custom")
    gcloud(url, project, "compute", "networks", "subnets", "create", "sub24", "--network=net-a",
           f"--region={region}", "--range=10.0.0.0/24")
    gcloud(url, project, "compute", "networks", "subnets", "create", "sub28", "--network=net-a",
           f"--region={region}", "--range=10.0.1.0/28")


def _connectors(url: str, project: str, region: str) -> None:
    gcloud(url, project, "compute", "networks", "vpc-access", "connectors", "create", "conn-a",
           f"--region={region}", "--subnet=sub28")
    gcloud(url, project, "compute", "networks", "vpc-access", "connectors", "create", "conn-b",
           f"--region={region}", "--network=net-a", "--range=10.8.0.0/28")


def test_connector_on_a_24_subnet_is_refused(localcloud_url, project, region):
    _network(localcloud_url, project, region)
    proc = gcloud(localcloud_url, project, "compute", "networks", "vpc-access", "connectors", "create", "conn-x",
                  f"--region={region}", "--subnet=sub24", check=False)
    assert proc.returncode != 0
    assert "INVALID_ARGUMENT" in proc.stderr and "'sub24'" in proc.stderr and "/28 subnet" in proc.stderr
    listed = gcloud_json(localcloud_url, project, "compute", "networks", "vpc-access", "connectors", "list",
                         f"--region={region}")
    assert listed == []


def test_connectors_reach_ready_and_the_aet_rules_appear(localcloud_url, project, region):
    _network(localcloud_url, project, region)
    _connectors(localcloud_url, project, region)

    a = gcloud_json(localcloud_url, project, "compute", "networks", "vpc-access", "connectors", "describe", "conn-a",
                    f"--region={region}")
    assert a == {"name": f"projects/{project}/locations/{region}/connectors/conn-a", "network": "net-a",
                 "subnet": {"name": "sub28", "projectId": project}, "state": "READY", "machineType": "e2-micro",
                 "minInstances": 2, "maxInstances": 10, "minThroughput": 200, "maxThroughput": 1000}
    b = gcloud_json(localcloud_url, project, "compute", "networks", "vpc-access", "connectors", "describe", "conn-b",
                    f"--region={region}")
    assert (b["state"], b["network"], b["ipCidrRange"]) == ("READY", "net-a", "10.8.0.0/28") and "subnet" not in b

    rules = {r["name"]: r for r in gcloud_json(localcloud_url, project, "compute", "firewall-rules", "list")
             if r["name"].startswith("aet-")}
    assert set(rules) == {f"aet-europewest2-conn--{c}-{s}" for c in "ab" for s in SUFFIXES}
    for connector, source in (("a", "10.0.1.0/28"), ("b", "10.8.0.0/28")):
        rule = {s: rules[f"aet-europewest2-conn--{connector}-{s}"] for s in SUFFIXES}
        tag = f"vpc-connector-europe-west2-conn-{connector}"
        assert {s: (r["direction"], r["priority"]) for s, r in rule.items()} == {
            "hcfw": ("INGRESS", 100), "rsgfw": ("INGRESS", 100), "earfw": ("EGRESS", 100),
            "egrfw": ("EGRESS", 100), "sbntfw": ("INGRESS", 1000), "tagfw": ("INGRESS", 1000)}
        assert rule["hcfw"]["sourceRanges"] == ["35.191.0.0/16", "35.191.192.0/18", "130.211.0.0/22"]
        assert rule["rsgfw"]["sourceRanges"] == ["35.199.224.0/19"]
        assert rule["earfw"]["destinationRanges"] == rule["egrfw"]["destinationRanges"] == ["35.199.224.0/19"]
        assert "denied" in rule["egrfw"] and all("allowed" in rule[s] for s in SUFFIXES if s != "egrfw")
        assert rule["sbntfw"]["sourceRanges"] == [source]
        assert rule["tagfw"]["sourceTags"] == [tag]
        assert all(rule[s]["targetTags"] == [tag] for s in ("hcfw", "rsgfw", "earfw", "egrfw"))
        assert all(r["network"].endswith("/global/networks/net-a") for r in rule.values())

    gcloud(localcloud_url, project, "compute", "networks", "vpc-access", "connectors", "delete", "conn-b",
           f"--region={region}")
    remaining = gcloud_json(localcloud_url, project, "compute", "firewall-rules", "list")
    assert not [r for r in remaining if r["name"].startswith("aet-europewest2-conn--b-")]


def test_run_deploy_without_an_allow_unauthenticated_flag_asks_its_permissions_and_deploys(localcloud_url, project,
                                                                                            region):
    """Without --[no-]allow-unauthenticated gcloud first asks services:testIamPermissions (v1) whether it may
    set the new service's IAM policy; the deploy then goes on as with the flag, and the service stays private
    (gcloud does not prompt without a terminal)."""
    _network(localcloud_url, project, region)
    _connectors(localcloud_url, project, region)
    gcloud(localcloud_url, project, "run", "deploy", "svc-plain", f"--image={IMAGE}", f"--region={region}",
           "--vpc-connector=conn-a", "--vpc-egress=all-traffic")
    service = gcloud_json(localcloud_url, project, "run", "services", "describe", "svc-plain", f"--region={region}")
    assert service["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/vpc-access-egress"] == "all-traffic"


def test_run_deploy_and_jobs_deploy_with_a_connector(localcloud_url, project, region):
    _network(localcloud_url, project, region)
    _connectors(localcloud_url, project, region)

    gcloud(localcloud_url, project, "run", "deploy", "svc-a", f"--image={IMAGE}", f"--region={region}",
           "--vpc-connector=conn-a", "--vpc-egress=all-traffic", "--no-allow-unauthenticated")
    service = gcloud_json(localcloud_url, project, "run", "services", "describe", "svc-a", f"--region={region}")
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    assert annotations["run.googleapis.com/vpc-access-connector"] == "conn-a"
    assert annotations["run.googleapis.com/vpc-access-egress"] == "all-traffic"
    assert {c["type"]: c["status"] for c in service["status"]["conditions"]}["Ready"] == "True"
    assert service["status"]["url"].endswith(".a.run.app")
    assert service["metadata"]["labels"]["cloud.googleapis.com/location"] == region

    gcloud(localcloud_url, project, "run", "jobs", "deploy", "job-a", f"--image={IMAGE}", "--vpc-connector=conn-b",
           "--vpc-egress=all-traffic", f"--region={region}")
    job = gcloud_json(localcloud_url, project, "run", "jobs", "describe", "job-a", f"--region={region}")
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations["run.googleapis.com/vpc-access-connector"] == "conn-b"
    assert annotations["run.googleapis.com/vpc-access-egress"] == "all-traffic"

    gcloud(localcloud_url, project, "run", "jobs", "execute", "job-a", f"--region={region}", "--wait")
    executions = gcloud_json(localcloud_url, project, "run", "jobs", "executions", "list", f"--region={region}",
                             "--job=job-a")
    assert len(executions) == 1 and executions[0]["status"]["succeededCount"] == 1

    # The same resources through v2: the connector's full name and the enum egress.
    base = f"{localcloud_url}/run/v2/projects/{project}/locations/{region}"
    v2_service = requests.get(f"{base}/services/svc-a", timeout=30).json()
    assert v2_service["template"]["vpcAccess"] == {
        "connector": f"projects/{project}/locations/{region}/connectors/conn-a", "egress": "ALL_TRAFFIC"}
    v2_job = requests.get(f"{base}/jobs/job-a", timeout=30).json()
    assert v2_job["template"]["template"]["vpcAccess"]["egress"] == "ALL_TRAFFIC"

    # A redeploy is a read-modify-write (replaceService) plus the IAM policy calls of --no-allow-unauthenticated.
    gcloud(localcloud_url, project, "run", "deploy", "svc-a", f"--image={IMAGE}", f"--region={region}",
           "--vpc-egress=private-ranges-only", "--no-allow-unauthenticated")
    service = gcloud_json(localcloud_url, project, "run", "services", "describe", "svc-a", f"--region={region}")
    assert service["metadata"]["generation"] == 2
    assert service["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/vpc-access-egress"] == \
        "private-ranges-only"
    revisions = gcloud_json(localcloud_url, project, "run", "revisions", "list", f"--region={region}",
                            "--service=svc-a")
    assert len(revisions) == 2

    gcloud(localcloud_url, project, "run", "services", "delete", "svc-a", f"--region={region}")
    gcloud(localcloud_url, project, "run", "jobs", "delete", "job-a", f"--region={region}")
    assert gcloud_json(localcloud_url, project, "run", "services", "list", f"--region={region}") == []


def test_run_deploy_with_an_unknown_connector_is_refused(localcloud_url, project, region):
    proc = gcloud(localcloud_url, project, "run", "deploy", "svc-a", f"--image={IMAGE}", f"--region={region}",
                  "--vpc-connector=missing", "--no-allow-unauthenticated", check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr, proc.stderr
    found = requests.get(f"{localcloud_url}/run/v2/projects/{project}/locations/{region}/services/svc-a", timeout=30)
    assert found.status_code == 404 and json.loads(found.text)["error"]["status"] == "NOT_FOUND"
