"""VPC Access v1 and Cloud Run (v2 and v1) in localcloud, through the real Python clients.

The REST transports send ``$alt=json;enum-encoding=int``; operations are awaited with
``.result(timeout)`` as production code does.
"""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, run_v2, vpcaccess_v1

pytestmark = pytest.mark.contract

TIMEOUT = 30


@pytest.fixture
def clients(localcloud_url):
    creds = AnonymousCredentials()

    def options(suffix: str = "") -> ClientOptions:
        return ClientOptions(api_endpoint=localcloud_url + suffix)

    return {
        "networks": compute_v1.NetworksClient(credentials=creds, client_options=options()),
        "subnets": compute_v1.SubnetworksClient(credentials=creds, client_options=options()),
        "firewalls": compute_v1.FirewallsClient(credentials=creds, client_options=options()),
        "global_ops": compute_v1.GlobalOperationsClient(credentials=creds, client_options=options()),
        "region_ops": compute_v1.RegionOperationsClient(credentials=creds, client_options=options()),
        "vpcaccess": vpcaccess_v1.VpcAccessServiceClient(transport="rest", credentials=creds,
                                                         client_options=options("/vpcaccess")),
        "services": run_v2.ServicesClient(transport="rest", credentials=creds, client_options=options("/run")),
        "jobs": run_v2.JobsClient(transport="rest", credentials=creds, client_options=options("/run")),
    }


@pytest.fixture
def network(clients, project, region):
    """A custom network with a /24 and a /28 subnet in the region (created through the compute API)."""
    op = clients["networks"].insert(project=project, network_resource=compute_v1.Network(
        name="net-a", auto_create_subnetworks=False))
    clients["global_ops"].wait(project=project, operation=op.name, timeout=TIMEOUT)
    for name, cidr in (("sub24", "10.0.0.0/24"), ("sub28", "10.0.1.0/28"), ("sub28-b", "10.0.2.0/28")):
        op = clients["subnets"].insert(project=project, region=region, subnetwork_resource=compute_v1.Subnetwork(
            name=name, network=f"projects/{project}/global/networks/net-a", ip_cidr_range=cidr))
        clients["region_ops"].wait(project=project, region=region, operation=op.name, timeout=TIMEOUT)
    return "net-a"


def _create_connector(clients, project, region, name, **fields):
    connector = vpcaccess_v1.Connector(min_instances=2, max_instances=3, **fields)
    op = clients["vpcaccess"].create_connector(parent=f"projects/{project}/locations/{region}", connector_id=name,
                                               connector=connector)
    return op


def _aet_rules(clients, project) -> dict[str, compute_v1.Firewall]:
    return {f.name: f for f in clients["firewalls"].list(project=project) if f.name.startswith("aet-")}


# ---- VPC Access -----------------------------------------------------------------------------------
def test_connectors_reach_ready_and_google_creates_the_aet_rules(clients, project, region, network):
    by_subnet = _create_connector(clients, project, region, "conn-a",
                                  subnet=vpcaccess_v1.Connector.Subnet(name="sub28")).result(timeout=TIMEOUT)
    by_range = _create_connector(clients, project, region, "conn-b", network=network,
                                 ip_cidr_range="10.8.0.0/28").result(timeout=TIMEOUT)

    assert by_subnet.state == vpcaccess_v1.Connector.State.READY
    assert (by_subnet.network, by_subnet.subnet.name, by_subnet.subnet.project_id) == (network, "sub28", project)
    assert (by_subnet.min_throughput, by_subnet.max_throughput) == (200, 300)
    assert (by_range.network, by_range.ip_cidr_range) == (network, "10.8.0.0/28")
    rules = _aet_rules(clients, project)
    expected = {f"aet-europewest2-conn--{c}-{s}" for c in "ab" for s in ("hcfw", "rsgfw", "earfw", "egrfw", "sbntfw", "tagfw")}
    assert set(rules) == expected
    assert rules["aet-europewest2-conn--a-sbntfw"].source_ranges == ["10.0.1.0/28"]
    assert rules["aet-europewest2-conn--b-sbntfw"].source_ranges == ["10.8.0.0/28"]
    assert rules["aet-europewest2-conn--a-tagfw"].source_tags == ["vpc-connector-europe-west2-conn-a"]
    assert rules["aet-europewest2-conn--a-egrfw"].direction == "EGRESS" and rules["aet-europewest2-conn--a-egrfw"].denied
    assert {r.priority for n, r in rules.items() if n.endswith(("sbntfw", "tagfw"))} == {1000}
    # The hidden aet- subnet of the range connector is not listed, but its range is taken.
    assert {s.name for s in clients["subnets"].list(project=project, region=region)} == {"sub24", "sub28", "sub28-b"}
    with pytest.raises(exceptions.BadRequest):
        clients["subnets"].insert(project=project, region=region, subnetwork_resource=compute_v1.Subnetwork(
            name="clash", network=f"projects/{project}/global/networks/{network}", ip_cidr_range="10.8.0.0/28"))


def test_a_24_subnet_is_refused_with_a_clear_message(clients, project, region, network):
    with pytest.raises(exceptions.BadRequest) as err:
        _create_connector(clients, project, region, "conn-a", subnet=vpcaccess_v1.Connector.Subnet(name="sub24"))
    assert "sub24" in err.value.message and "/28" in err.value.message
    assert list(clients["vpcaccess"].list_connectors(parent=f"projects/{project}/locations/{region}")) == []


@pytest.mark.parametrize("fields, text", [
    ({}, "subnet"),
    ({"ip_cidr_range": "10.8.0.0/28"}, "network"),
    ({"network": "net-a", "ip_cidr_range": "10.8.0.0/24"}, "/28"),
    ({"network": "nope", "ip_cidr_range": "10.8.0.0/28"}, "nope"),
    ({"subnet": vpcaccess_v1.Connector.Subnet(name="missing")}, "missing"),
    ({"subnet": vpcaccess_v1.Connector.Subnet(name="sub28"), "ip_cidr_range": "10.8.0.0/28"}, "Only one"),
    ({"subnet": vpcaccess_v1.Connector.Subnet(name="sub28"), "machine_type": "n1-standard-1"}, "machine type"),
])
def test_bad_connector_requests_are_400(clients, project, region, network, fields, text):
    with pytest.raises(exceptions.BadRequest) as err:
        _create_connector(clients, project, region, "conn-x", **fields)
    assert text in err.value.message


def test_connector_name_rules(clients, project, region, network):
    with pytest.raises(exceptions.BadRequest, match="pattern"):
        _create_connector(clients, project, region, "Conn", subnet=vpcaccess_v1.Connector.Subnet(name="sub28"))
    with pytest.raises(exceptions.BadRequest, match="hyphen"):
        _create_connector(clients, project, region, "abcd-efgh-ijkl-mnop", subnet=vpcaccess_v1.Connector.Subnet(name="sub28"))


def test_duplicate_connector_is_409_and_a_used_subnet_is_refused(clients, project, region, network):
    _create_connector(clients, project, region, "conn-a", subnet=vpcaccess_v1.Connector.Subnet(name="sub28")).result(
        timeout=TIMEOUT)
    with pytest.raises(exceptions.Conflict):
        _create_connector(clients, project, region, "conn-a", subnet=vpcaccess_v1.Connector.Subnet(name="sub28-b"))
    with pytest.raises(exceptions.BadRequest, match="already used"):
        _create_connector(clients, project, region, "conn-c", subnet=vpcaccess_v1.Connector.Subnet(name="sub28"))


def test_a_range_that_overlaps_a_subnet_fails_the_operation_and_leaves_an_error_connector(clients, project, region,
                                                                                           network):
    op = _create_connector(clients, project, region, "conn-x", network=network, ip_cidr_range="10.0.0.0/28")
    with pytest.raises(exceptions.GoogleAPICallError, match="conflicts with an existing subnetwork"):
        op.result(timeout=TIMEOUT)
    got = clients["vpcaccess"].get_connector(name=f"projects/{project}/locations/{region}/connectors/conn-x")
    assert got.state == vpcaccess_v1.Connector.State.ERROR
    assert _aet_rules(clients, project) == {}


def test_implicit_broad_rules_are_not_firewall_resources(clients, project, region, network, localcloud):
    localcloud.config(connector_broad_rules="implicit")
    _create_connector(clients, project, region, "conn-a", subnet=vpcaccess_v1.Connector.Subnet(name="sub28")).result(
        timeout=TIMEOUT)
    assert sorted(n.rsplit("-", 1)[1] for n in _aet_rules(clients, project)) == ["earfw", "egrfw", "hcfw", "rsgfw"]


def test_delete_removes_the_connector_its_rules_and_its_hidden_subnet(clients, project, region, network):
    name = f"projects/{project}/locations/{region}/connectors/conn-b"
    _create_connector(clients, project, region, "conn-b", network=network, ip_cidr_range="10.8.0.0/28").result(
        timeout=TIMEOUT)
    clients["vpcaccess"].delete_connector(name=name).result(timeout=TIMEOUT)
    with pytest.raises(exceptions.NotFound):
        clients["vpcaccess"].get_connector(name=name)
    assert _aet_rules(clients, project) == {}
    op = clients["subnets"].insert(project=project, region=region, subnetwork_resource=compute_v1.Subnetwork(
        name="reuse", network=f"projects/{project}/global/networks/{network}", ip_cidr_range="10.8.0.0/28"))
    clients["region_ops"].wait(project=project, region=region, operation=op.name, timeout=TIMEOUT)


def test_list_pages_and_operations(clients, project, region, network):
    for index, cidr in enumerate(("10.8.0.0/28", "10.8.0.16/28", "10.8.0.32/28")):
        _create_connector(clients, project, region, f"conn-{index}", network=network, ip_cidr_range=cidr).result(
            timeout=TIMEOUT)
    parent = f"projects/{project}/locations/{region}"
    pager = clients["vpcaccess"].list_connectors(request={"parent": parent, "page_size": 2})
    pages = [[c.name.rsplit("/", 1)[1] for c in page.connectors] for page in pager.pages]
    assert pages == [["conn-0", "conn-1"], ["conn-2"]]
    operations = clients["vpcaccess"].list_operations(request={"name": parent})
    assert len(list(operations.operations)) == 3 and all(op.done for op in operations.operations)


# ---- Cloud Run v2 ----------------------------------------------------------------------------------
@pytest.fixture
def connector(clients, project, region, network) -> str:
    _create_connector(clients, project, region, "conn-a", subnet=vpcaccess_v1.Connector.Subnet(name="sub28")).result(
        timeout=TIMEOUT)
    return f"projects/{project}/locations/{region}/connectors/conn-a"


def _service(connector: str, egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC) -> run_v2.Service:
    return run_v2.Service(template=run_v2.RevisionTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")],
        vpc_access=run_v2.VpcAccess(connector=connector, egress=egress)))


def _knative(localcloud_url, region, method, path, body=None):
    """A v1 call as gcloud makes it: on the regional host (localcloud is its proxy)."""
    return requests.request(method, f"{localcloud_url}/run/apis/{path}", json=body,
                            headers={"Host": f"{region}-run.localcloud"}, timeout=TIMEOUT)


def test_v2_service_with_connector_is_readable_through_v1(clients, project, region, connector, localcloud_url):
    parent = f"projects/{project}/locations/{region}"
    op = clients["services"].create_service(parent=parent, service=_service(connector), service_id="svc-a")
    created = op.result(timeout=TIMEOUT)
    assert created.template.vpc_access.connector == connector
    assert created.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC
    assert created.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert created.generation == 1 and created.observed_generation == 1 and created.uid
    assert created.latest_ready_revision.startswith(f"{parent}/services/svc-a/revisions/svc-a-00001-")
    assert created.uri.endswith(".a.run.app") and len(created.urls) == 2

    v1 = _knative(localcloud_url, region, "GET", f"serving.knative.dev/v1/namespaces/{project}/services/svc-a").json()
    annotations = v1["spec"]["template"]["metadata"]["annotations"]
    assert annotations["run.googleapis.com/vpc-access-connector"] == connector
    assert annotations["run.googleapis.com/vpc-access-egress"] == "all-traffic"
    assert {c["type"]: c["status"] for c in v1["status"]["conditions"]}["Ready"] == "True"
    assert v1["metadata"]["labels"]["cloud.googleapis.com/location"] == region

    got = clients["vpcaccess"].get_connector(name=connector)
    assert list(got.connected_projects) == [project]


def test_v1_service_write_is_a_v2_read(clients, project, region, connector, localcloud_url):
    body = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "svc-b"},
            "spec": {"template": {"metadata": {"annotations": {
                "run.googleapis.com/vpc-access-connector": "conn-a",
                "run.googleapis.com/vpc-access-egress": "private-ranges-only"}},
                "spec": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]}}}}
    response = _knative(localcloud_url, region, "POST", f"serving.knative.dev/v1/namespaces/{project}/services", body)
    assert response.status_code == 200, response.text
    got = clients["services"].get_service(name=f"projects/{project}/locations/{region}/services/svc-b")
    assert got.template.vpc_access.connector == connector
    assert got.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY


def test_v2_update_with_mask_changes_egress_and_makes_a_new_revision(clients, project, region, connector):
    parent = f"projects/{project}/locations/{region}"
    first = clients["services"].create_service(parent=parent, service=_service(connector),
                                               service_id="svc-a").result(timeout=TIMEOUT)
    change = run_v2.Service(name=first.name, template=run_v2.RevisionTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")],
        vpc_access=run_v2.VpcAccess(connector=connector, egress=run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY)))
    updated = clients["services"].update_service(request={"service": change}).result(timeout=TIMEOUT)
    assert updated.generation == 2 and updated.observed_generation == 2
    assert updated.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY
    assert updated.latest_ready_revision != first.latest_ready_revision and updated.uid == first.uid


@pytest.mark.parametrize("mutate, text", [
    (lambda s: s.annotations.update({"run.googleapis.com/ingress": "all"}), "system annotations are not supported"),
    (lambda s: setattr(s.template.vpc_access, "connector", "projects/x-project/locations/europe-west2/connectors/c"),
     "project"),
    (lambda s: setattr(s.template.vpc_access, "connector", "missing"), "does not exist"),
    (lambda s: s.template.vpc_access.network_interfaces.append(run_v2.VpcAccess.NetworkInterface(network="n")),
     "one and only one of connector and network_interfaces"),
    (lambda s: setattr(s.template, "containers", []), "at least one container"),
])
def test_bad_v2_services_are_400(clients, project, region, connector, mutate, text):
    service = _service(connector)
    mutate(service)
    with pytest.raises(exceptions.BadRequest) as err:
        clients["services"].create_service(parent=f"projects/{project}/locations/{region}", service=service,
                                           service_id="svc-x")
    assert text in err.value.message


def test_connector_in_another_region_is_refused(clients, project, region, connector):
    other = connector.replace(region, "us-central1")
    with pytest.raises(exceptions.BadRequest, match="same region"):
        clients["services"].create_service(parent=f"projects/{project}/locations/{region}", service=_service(other),
                                           service_id="svc-x")


def test_v2_job_lifecycle(clients, project, region, connector, localcloud_url):
    parent = f"projects/{project}/locations/{region}"
    job = run_v2.Job(template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")],
        vpc_access=run_v2.VpcAccess(connector=connector, egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC))))
    created = clients["jobs"].create_job(parent=parent, job=job, job_id="job-a").result(timeout=TIMEOUT)
    assert created.template.template.vpc_access.connector == connector
    assert created.template.template.execution_environment == run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2
    assert created.template.template.timeout.seconds == 600 and created.template.task_count == 1

    v1 = _knative(localcloud_url, region, "GET", f"run.googleapis.com/v1/namespaces/{project}/jobs/job-a").json()
    assert v1["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/vpc-access-egress"] == "all-traffic"

    with pytest.raises(exceptions.Conflict):
        clients["jobs"].create_job(parent=parent, job=job, job_id="job-a")
    execution = clients["jobs"].run_job(name=created.name).result(timeout=TIMEOUT)
    assert execution.name.startswith(f"{created.name}/executions/job-a-") and execution.succeeded_count == 1
    assert clients["jobs"].get_job(name=created.name).latest_created_execution.completion_status == \
        run_v2.ExecutionReference.CompletionStatus.EXECUTION_SUCCEEDED
    assert [j.name for j in clients["jobs"].list_jobs(parent=parent)] == [created.name]
    deleted = clients["jobs"].delete_job(name=created.name).result(timeout=TIMEOUT)
    assert deleted.delete_time and deleted.generation == 2 and deleted.execution_count == 1
    with pytest.raises(exceptions.NotFound, match="of kind 'JOB'"):
        clients["jobs"].get_job(name=created.name)


def test_run_operations_list_get_and_wait(clients, project, region, connector, localcloud, localcloud_url):
    localcloud.config(run_operation_delay_s=0.3)
    parent = f"projects/{project}/locations/{region}"
    op = clients["services"].create_service(parent=parent, service=_service(connector), service_id="svc-a")
    assert clients["services"].get_service(name=f"{parent}/services/svc-a").reconciling
    waited = requests.post(f"{localcloud_url}/run/v2/{op.operation.name}:wait", json={"timeout": "10s"},
                           timeout=TIMEOUT).json()
    assert waited["done"] and waited["response"]["@type"] == "type.googleapis.com/google.cloud.run.v2.Service"
    listed = clients["services"].list_operations(request={"name": parent})
    assert [o.name for o in listed.operations] == [op.operation.name]
    # VPC Access operations are not Cloud Run's and vice versa.
    with pytest.raises(exceptions.NotFound):
        clients["vpcaccess"].get_operation(request={"name": op.operation.name})


def test_audit_entries_name_the_api_methods(clients, project, region, connector, localcloud_url):
    parent = f"projects/{project}/locations/{region}"
    clients["services"].create_service(parent=parent, service=_service(connector), service_id="svc-a").result(
        timeout=TIMEOUT)
    body = {"apiVersion": "run.googleapis.com/v1", "kind": "Job", "metadata": {"name": "job-b"},
            "spec": {"template": {"spec": {"template": {"spec": {"containers": [{"image": "gcr.io/x/y"}]}}}}}}
    assert _knative(localcloud_url, region, "POST", f"run.googleapis.com/v1/namespaces/{project}/jobs", body).ok
    entries = requests.post(f"{localcloud_url}/logging/v2/entries:list", json={
        "resourceNames": [f"projects/{project}"], "pageSize": 500,
        "filter": 'protoPayload.serviceName="run.googleapis.com" OR protoPayload.serviceName="vpcaccess.googleapis.com"',
    }, timeout=TIMEOUT).json().get("entries", [])
    seen = {(e["protoPayload"]["methodName"], e["protoPayload"]["resourceName"]) for e in entries}
    assert ("google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector", connector) in seen
    assert ("google.cloud.run.v2.Services.CreateService", f"{parent}/services/svc-a") in seen
    assert ("google.cloud.run.v1.Jobs.CreateJob", f"namespaces/{project}/jobs/job-b") in seen


def test_v1beta1_paths_answer_as_the_recordings_show(localcloud_url, project, region, network):
    """Terraform's recorded traffic uses /v1beta1/: v1 type URLs, a v1beta1 method, the v1beta1 Connector."""
    base = f"{localcloud_url}/vpcaccess/v1beta1/projects/{project}/locations/{region}"
    missing = requests.get(f"{base}/connectors/conn-a", timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "The connector is not found."
    op = requests.post(f"{base}/connectors", params={"connectorId": "conn-a"}, timeout=TIMEOUT, json={
        "ipCidrRange": "10.2.0.0/28", "machineType": "e2-micro", "maxThroughput": 400, "minThroughput": 300,
        "network": network}).json()
    assert op["metadata"]["@type"] == "type.googleapis.com/google.cloud.vpcaccess.v1.OperationMetadata"
    assert op["metadata"]["method"] == "google.cloud.vpcaccess.v1beta1.VpcAccessService.CreateConnector"
    assert op["metadata"]["target"] == f"projects/{project}/locations/{region}/connectors/conn-a"
    assert op["name"].startswith(f"projects/{project}/locations/{region}/operations/") and not op["done"]
    got = requests.get(f"{base}/connectors/conn-a", timeout=TIMEOUT).json()
    assert (got["minInstances"], got["maxInstances"], got["state"]) == (3, 4, "CREATING") and "createTime" in got


def test_an_injected_operation_failure_leaves_the_connector_in_error(clients, project, region, network, localcloud):
    localcloud.set_faults([{"methods": "vpcaccess.projects.locations.connectors.create", "operation_error_rate": 1.0}])
    op = _create_connector(clients, project, region, "conn-a", subnet=vpcaccess_v1.Connector.Subnet(name="sub28"))
    with pytest.raises(exceptions.GoogleAPICallError):
        op.result(timeout=TIMEOUT)
    got = clients["vpcaccess"].get_connector(name=f"projects/{project}/locations/{region}/connectors/conn-a")
    assert got.state == vpcaccess_v1.Connector.State.ERROR and _aet_rules(clients, project) == {}
