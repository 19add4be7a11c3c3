"""localcloud's Cloud Functions v2, driven by real clients: Google's discovery-based client
(google-api-python-client, ``build("cloudfunctions", "v2")``) and the real gcloud 528
(``gcloud functions deploy --gen2``, source upload included). Checks what Google answers and logs:
long-running operations, the function's states, its checks on the VPC settings (connector and
Direct VPC), and audit entries in the shape of the real Cloud Functions entries
(docs/gcp-facts.md §12.2, §12.3).

Not google-cloud-functions: its v2 ``ServiceConfig`` has no Direct VPC fields (1.25.0), and installed
beside the Functions Framework its ``google.cloud.functions`` package replaces the framework's small
one, so every function's cold start would import the whole client."""

from __future__ import annotations

import time

import httplib2
import pytest
import requests
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from localcloud.identities import PROJECT, REGION
from tests.contract.test_guardrails_localcloud import User, entries, one
from tests.gcloud import gcloud_json

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
PARENT = f"projects/{P}/locations/{R}"
CREATE = "google.cloud.functions.v2.FunctionService.CreateFunction"
UPDATE = "google.cloud.functions.v2.FunctionService.UpdateFunction"
TIMEOUT = 30


class FunctionsApi:
    """The discovery client for Cloud Functions v2, and waiting for its operations."""

    def __init__(self, url: str) -> None:
        self.api = build("cloudfunctions", "v2", http=httplib2.Http(), static_discovery=True,
                         client_options={"api_endpoint": url + "/cloudfunctions/"})
        self.functions = self.api.projects().locations().functions()

    def wait(self, operation: dict) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while not operation.get("done"):
            assert time.monotonic() < deadline, f"operation {operation['name']} did not finish"
            time.sleep(0.05)
            operation = self.api.projects().locations().operations().get(name=operation["name"]).execute()
        assert "error" not in operation, operation["error"]
        return operation["response"]

    def create(self, function_id: str, body: dict) -> dict:
        return self.functions.create(parent=PARENT, functionId=function_id, body=body).execute()

    def get(self, function_id: str) -> dict:
        return self.functions.get(name=f"{PARENT}/functions/{function_id}").execute()

    def upload(self) -> dict:
        """generateUploadUrl, then the PUT of a zip there; the source a function names."""
        upload = self.functions.generateUploadUrl(parent=PARENT, body={}).execute()
        put = requests.put(upload["uploadUrl"], data=b"PK\x05\x06" + bytes(18),
                           headers={"content-type": "application/zip"}, timeout=10)
        assert put.status_code == 200
        return {"storageSource": upload["storageSource"]}


@pytest.fixture
def functions(localcloud_url) -> FunctionsApi:
    return FunctionsApi(localcloud_url)


@pytest.fixture
def connector(localcloud_url) -> str:
    user = User(localcloud_url)
    user.network()
    user.subnet("fn-28", "10.0.7.0/28")
    user.connector("fn-conn", subnet="fn-28")
    return f"{PARENT}/connectors/fn-conn"


def test_create_with_a_connector_all_traffic_is_an_operation_then_active_and_logged_first_and_last(
        functions, connector, localcloud, localcloud_url):
    operation = functions.create("fn-a", {
        "buildConfig": {"runtime": "python312", "entryPoint": "hello", "source": functions.upload()},
        "serviceConfig": {"vpcConnector": "fn-conn", "vpcConnectorEgressSettings": "ALL_TRAFFIC"}})
    metadata = operation["metadata"]
    assert (metadata["target"], metadata["verb"]) == (f"{PARENT}/functions/fn-a", "create")
    made = functions.wait(operation)
    assert (made["state"], made["environment"]) == ("ACTIVE", "GEN_2")
    assert made["serviceConfig"]["vpcConnector"] == connector  # a short name comes back in full
    assert made["serviceConfig"]["service"] == f"{PARENT}/services/fn-a"

    first, last = one(localcloud, CREATE, first=True), one(localcloud, CREATE, last=True)
    assert first["resource"] == {"type": "cloud_function",
                                 "labels": {"function_name": "fn-a", "project_id": P, "region": R}}
    request = first["protoPayload"]["request"]
    assert request["@type"] == "type.googleapis.com/google.cloud.functions.v2.CreateFunctionRequest"
    assert (request["parent"], request["functionId"]) == (PARENT, "fn-a")
    assert request["function"]["serviceConfig"]["vpcConnectorEgressSettings"] == "ALL_TRAFFIC"
    assert first["protoPayload"]["serviceName"] == "cloudfunctions.googleapis.com"
    assert first["operation"]["id"] == last["operation"]["id"] == operation["name"]
    assert last["protoPayload"]["response"]["@type"] == "type.googleapis.com/google.cloud.functions.v2.Function"
    assert last["protoPayload"]["response"]["state"] == "ACTIVE"


def test_update_with_a_mask_changes_only_what_it_names(functions, connector, localcloud):
    functions.wait(functions.create("fn-b", {"buildConfig": {"runtime": "python312", "entryPoint": "hello"},
                                             "serviceConfig": {"vpcConnector": connector}}))
    assert functions.get("fn-b")["serviceConfig"]["vpcConnectorEgressSettings"] == "PRIVATE_RANGES_ONLY"  # default
    functions.wait(functions.functions.patch(
        name=f"{PARENT}/functions/fn-b", updateMask="serviceConfig.vpcConnectorEgressSettings",
        body={"serviceConfig": {"vpcConnectorEgressSettings": "ALL_TRAFFIC"}}).execute())
    now = functions.get("fn-b")
    assert now["serviceConfig"]["vpcConnector"] == connector and now["buildConfig"]["runtime"] == "python312"
    assert now["serviceConfig"]["vpcConnectorEgressSettings"] == "ALL_TRAFFIC"
    update = one(localcloud, UPDATE, first=True)
    assert update["protoPayload"]["request"]["updateMask"] == "serviceConfig.vpcConnectorEgressSettings"


def test_direct_vpc_and_the_checks_google_makes(functions, connector, localcloud):
    direct = {"buildConfig": {"runtime": "python312", "entryPoint": "hello"},
              "serviceConfig": {"directVpcNetworkInterface": [{"network": "net-a", "subnetwork": "fn-28"}],
                                "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC"}}
    assert functions.create("fn-direct", direct)["metadata"]["operationType"] == "CREATE_FUNCTION"
    got = functions.get("fn-direct")
    assert got["serviceConfig"]["directVpcEgress"] == "VPC_EGRESS_ALL_TRAFFIC"
    assert got["serviceConfig"]["directVpcNetworkInterface"] == [{"network": "net-a", "subnetwork": "fn-28"}]

    both = {**direct, "serviceConfig": {**direct["serviceConfig"], "vpcConnector": connector}}
    with pytest.raises(HttpError, match="cannot be used together"):
        functions.create("fn-both", both)
    with pytest.raises(HttpError) as wrong:  # Cloud Run's spelling is not this field's (docs/gcp-facts.md §12.6)
        functions.create("fn-x", {**direct, "serviceConfig": {"directVpcEgress": "ALL_TRAFFIC"}})
    assert wrong.value.resp.status == 400
    with pytest.raises(HttpError, match="does not exist"):
        functions.create("fn-missing", {"serviceConfig": {"vpcConnector": "no-such-conn"}})
    (failed,) = entries(localcloud, CREATE, resource="/fn-missing")
    assert failed["protoPayload"]["status"]["code"] == 3 and "operation" not in failed


def test_gcloud_functions_deploy_gen2_uploads_the_source_and_deploys_on_the_connector(connector, localcloud_url,
                                                                                     tmp_path, localcloud):
    (tmp_path / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    (tmp_path / "requirements.txt").write_text("")
    deployed = gcloud_json(localcloud_url, P, "functions", "deploy", "fn-cli", "--gen2", "--runtime=python312",
                           f"--region={R}", f"--source={tmp_path}", "--entry-point=hello", "--trigger-http",
                           "--no-allow-unauthenticated", "--vpc-connector=fn-conn", "--egress-settings=all", "--quiet")
    assert deployed["state"] == "ACTIVE"
    assert deployed["serviceConfig"]["vpcConnector"] == connector
    assert deployed["serviceConfig"]["vpcConnectorEgressSettings"] == "ALL_TRAFFIC"
    source = deployed["buildConfig"]["source"]["storageSource"]
    assert source["bucket"].startswith("gcf-v2-uploads-") and source["object"].endswith(".zip")
    assert one(localcloud, CREATE, first=True)["protoPayload"]["authenticationInfo"]["principalEmail"]
