"""Shared VPC: a Cloud Run workload of a service project on a connector of the host project.

Google documents ``--vpc-connector=projects/HOST/locations/REGION/connectors/NAME`` for a service or
job of a service project (docs/gcp-facts.md §12.1). localcloud must accept it as Google does, and
ensure_nat must put the NAT where the network is: in the host project, never in the service project.
Driven by the real gcloud (the v1 API, as ``gcloud run deploy`` calls it) and the real v2 client.
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, run_v2, vpcaccess_v1

from egress_guard.findings import Outcome
from egress_guard.policy import parse_policy_text
from localcloud.identities import PROJECT, REGION
from tests.contract.test_guardrails_localcloud import Guardrails, entries, one, state
from tests.gcloud import gcloud

pytestmark = pytest.mark.contract

SERVICE_PROJECT, HOST, R = PROJECT, "eg-host-project", REGION
TIMEOUT = 30
IMAGE = "us-docker.pkg.dev/cloudrun/container/job"
# The connector's own event would already bring the NAT; off, so that the workload's path is what acts.
WORKLOADS_ONLY = parse_policy_text("nat:\n  on_connector_create: false\n")


@pytest.fixture
def host_connector(localcloud_url) -> str:
    """Network shared-net, /28 subnet conn-28 and connector host-conn, all in the host project."""
    creds, opts = AnonymousCredentials(), {"api_endpoint": localcloud_url}
    networks = compute_v1.NetworksClient(credentials=creds, client_options=opts)
    subnets = compute_v1.SubnetworksClient(credentials=creds, client_options=opts)
    op = networks.insert(project=HOST, network_resource=compute_v1.Network(name="shared-net",
                                                                           auto_create_subnetworks=False))
    compute_v1.GlobalOperationsClient(credentials=creds, client_options=opts).wait(
        project=HOST, operation=op.name, timeout=TIMEOUT)
    op = subnets.insert(project=HOST, region=R, subnetwork_resource=compute_v1.Subnetwork(
        name="conn-28", network=f"projects/{HOST}/global/networks/shared-net", ip_cidr_range="10.90.0.0/28"))
    compute_v1.RegionOperationsClient(credentials=creds, client_options=opts).wait(
        project=HOST, region=R, operation=op.name, timeout=TIMEOUT)
    vpcaccess = vpcaccess_v1.VpcAccessServiceClient(transport="rest", credentials=creds,
                                                    client_options={"api_endpoint": localcloud_url + "/vpcaccess"})
    vpcaccess.create_connector(parent=f"projects/{HOST}/locations/{R}", connector_id="host-conn",
                               connector=vpcaccess_v1.Connector(subnet=vpcaccess_v1.Connector.Subnet(name="conn-28"),
                                                                min_instances=2, max_instances=3)
                               ).result(timeout=TIMEOUT)
    return f"projects/{HOST}/locations/{R}/connectors/host-conn"


def test_gcloud_job_on_a_host_connector_gets_its_nat_in_the_host_project(host_connector, localcloud, localcloud_url):
    gcloud(localcloud_url, SERVICE_PROJECT, "run", "jobs", "deploy", "nightly", f"--image={IMAGE}", f"--region={R}",
           f"--vpc-connector={host_connector}", "--vpc-egress=all-traffic")
    entry = one(localcloud, "google.cloud.run.v1.Jobs.CreateJob")
    assert entry["logName"].startswith(f"projects/{SERVICE_PROJECT}/")  # logged where the job is

    (finding,) = Guardrails(localcloud_url).nat(entry, WORKLOADS_ONLY)

    assert finding.outcome is Outcome.REMEDIATED, finding.reason
    assert finding.project == HOST and "connector host-conn" in finding.reason
    dump = localcloud.state()["compute.routers"]
    assert [key.split("/")[0] for key in dump] == [HOST], "the NAT goes where the network is"
    (nat,) = next(iter(dump.values()))["nats"]
    assert [s["name"].split("/projects/", 1)[1] for s in nat["subnetworks"]] == [
        f"{HOST}/regions/{R}/subnetworks/conn-28"]
    connector = localcloud.state()["vpcaccess.connectors"]
    assert SERVICE_PROJECT in next(iter(connector.values())).get("connectedProjects", [])


def test_v2_service_on_a_host_connector_by_project_number_is_accepted(host_connector, localcloud, localcloud_url):
    from localcloud.backends.vpcaccess import project_number

    by_number = host_connector.replace(HOST, project_number(HOST))
    services = run_v2.ServicesClient(transport="rest", credentials=AnonymousCredentials(),
                                     client_options={"api_endpoint": localcloud_url + "/run"})
    services.create_service(parent=f"projects/{SERVICE_PROJECT}/locations/{R}", service_id="web", service=run_v2.Service(
        template=run_v2.RevisionTemplate(containers=[run_v2.Container(image=IMAGE)], vpc_access=run_v2.VpcAccess(
            connector=by_number, egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC)))).result(timeout=TIMEOUT)

    (finding,) = Guardrails(localcloud_url).nat(one(localcloud, "google.cloud.run.v2.Services.CreateService",
                                                    first=True), WORKLOADS_ONLY)
    assert finding.outcome is Outcome.REMEDIATED and finding.project == HOST


def test_a_connector_in_a_project_that_does_not_exist_is_refused_and_changes_nothing(host_connector, localcloud,
                                                                                   localcloud_url):
    missing = host_connector.replace(HOST, "eg-no-such-project")
    proc = gcloud(localcloud_url, SERVICE_PROJECT, "run", "jobs", "deploy", "nightly", f"--image={IMAGE}",
                  f"--region={R}", f"--vpc-connector={missing}", "--vpc-egress=all-traffic", check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr
    services = run_v2.ServicesClient(transport="rest", credentials=AnonymousCredentials(),
                                     client_options={"api_endpoint": localcloud_url + "/run"})
    with pytest.raises(exceptions.BadRequest, match="eg-no-such-project"):
        services.create_service(parent=f"projects/{SERVICE_PROJECT}/locations/{R}", service_id="web",
                                service=run_v2.Service(template=run_v2.RevisionTemplate(
                                    containers=[run_v2.Container(image=IMAGE)],
                                    vpc_access=run_v2.VpcAccess(connector=missing))))

    failed = entries(localcloud, "google.cloud.run.v1.Jobs.CreateJob") + entries(
        localcloud, "google.cloud.run.v2.Services.CreateService")
    assert failed and all(e["protoPayload"]["status"]["code"] == 3 for e in failed)
    guardrails, before = Guardrails(localcloud_url), state(localcloud)
    localcloud.clear_calls()
    for entry in failed:
        assert guardrails.nat(entry, WORKLOADS_ONLY) == []  # acknowledged: the call failed
    assert state(localcloud) == before and localcloud.calls()["calls"] == []
