"""localcloud's Cloud Functions v1 (1st gen), driven by real clients: Google's discovery-based client
(google-api-python-client, ``build("cloudfunctions", "v1")``) and the real gcloud 528
(``gcloud functions deploy --no-gen2``, source upload included). Checks what Google answers and logs:
v1's global long-running operations (``operations/ID``, ``OperationMetadataV1``), the function's
statuses, its checks on the connector (a Shared VPC host's accepted, a project that does not exist
refused), and audit entries in the shape of the real 1st gen CreateFunction entry (docs/gcp-facts.md §12.2).

Not google-cloud-functions: installed beside the Functions Framework its ``google.cloud.functions``
package replaces the framework's (test_functions_localcloud.py says why)."""

from __future__ import annotations

import time

import httplib2
import pytest
import requests
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from localcloud.identities import PROJECT, REGION
from tests.contract.test_guardrails_localcloud import User, entries, one
from tests.gcloud import gcloud, gcloud_json

pytestmark = pytest.mark.contract

P, R = PROJECT, REGION
PARENT = f"projects/{P}/locations/{R}"
CREATE = "google.cloud.functions.v1.CloudFunctionsService.CreateFunction"
UPDATE = "google.cloud.functions.v1.CloudFunctionsService.UpdateFunction"
TIMEOUT = 30


class FunctionsV1Api:
    """The discovery client for Cloud Functions v1, and waiting for its (global) operations."""

    def __init__(self, url: str) -> None:
        self.api = build("cloudfunctions", "v1", http=httplib2.Http(), static_discovery=True,
                         client_options={"api_endpoint": url + "/cloudfunctions/"})
        self.functions = self.api.projects().locations().functions()

    def finish(self, operation: dict) -> dict:
        """The operation once done (``error`` or ``response``)."""
        deadline = time.monotonic() + TIMEOUT
        while not operation.get("done"):
            assert time.monotonic() < deadline, f"operation {operation['name']} did not finish"
            time.sleep(0.05)
            operation = self.api.operations().get(name=operation["name"]).execute()
        return operation

    def wait(self, operation: dict) -> dict:
        done = self.finish(operation)
        assert "error" not in done, done["error"]
        return done["response"]

    def upload(self) -> str:
        """generateUploadUrl, then the PUT of a zip there; the URL a function names in sourceUploadUrl."""
        url = self.functions.generateUploadUrl(parent=PARENT, body={}).execute()["uploadUrl"]
        put = requests.put(url, data=b"PK\x05\x06" + bytes(18), headers={"content-type": "application/zip"},
                           timeout=10)
        assert put.status_code == 200
        return url

    def create(self, name: str, **fields) -> dict:
        body = {"name": f"{PARENT}/functions/{name}", "runtime": "python311", "entryPoint": "hello",
                "httpsTrigger": {}, "sourceUploadUrl": self.upload(), **fields}
        return self.functions.create(location=PARENT, body=body).execute()

    def get(self, name: str) -> dict:
        return self.functions.get(name=f"{PARENT}/functions/{name}").execute()


@pytest.fixture
def functions(localcloud_url) -> FunctionsV1Api:
    return FunctionsV1Api(localcloud_url)


@pytest.fixture
def connector(localcloud_url) -> str:
    user = User(localcloud_url)
    user.network()
    user.subnet("fn-28", "10.0.7.0/28")
    user.connector("fn-conn", subnet="fn-28")
    return f"{PARENT}/connectors/fn-conn"


def test_create_on_a_connector_is_a_v1_operation_then_active_and_logged_first_and_last(functions, connector,
                                                                                      localcloud):
    operation = functions.create("fnA_1", vpcConnector="fn-conn", vpcConnectorEgressSettings="ALL_TRAFFIC",
                                 labels={"team": "a"})
    assert operation["name"].startswith("operations/") and not operation.get("done")
    metadata = operation["metadata"]
    assert metadata["@type"] == "type.googleapis.com/google.cloud.functions.v1.OperationMetadataV1"
    assert (metadata["target"], metadata["type"]) == (f"{PARENT}/functions/fnA_1", "CREATE_FUNCTION")
    assert functions.get("fnA_1")["status"] in ("DEPLOY_IN_PROGRESS", "ACTIVE")
    made = functions.wait(operation)
    assert made["status"] == "ACTIVE" and made["versionId"] == "1"
    assert made["vpcConnector"] == connector  # a short name comes back in full
    assert (made["vpcConnectorEgressSettings"], made["labels"]) == ("ALL_TRAFFIC", {"team": "a"})

    first, last = one(localcloud, CREATE, first=True), one(localcloud, CREATE, last=True)
    assert first["protoPayload"]["serviceName"] == "cloudfunctions.googleapis.com"
    assert first["protoPayload"]["resourceName"] == f"{PARENT}/functions/fnA_1"
    assert first["resource"] == {"type": "cloud_function",
                                 "labels": {"function_name": "fnA_1", "project_id": P, "region": R}}
    request = first["protoPayload"]["request"]  # as the real 1st gen entry: {location, function}
    assert request["@type"] == "type.googleapis.com/google.cloud.functions.v1.CreateFunctionRequest"
    assert request["location"] == PARENT and request["function"]["vpcConnectorEgressSettings"] == "ALL_TRAFFIC"
    assert first["operation"]["id"] == last["operation"]["id"] == operation["name"]
    assert last["protoPayload"]["response"]["@type"] == "type.googleapis.com/google.cloud.functions.v1.CloudFunction"

    functions.wait(functions.functions.patch(name=f"{PARENT}/functions/fnA_1", updateMask="vpcConnectorEgressSettings",
                                             body={"vpcConnectorEgressSettings": "PRIVATE_RANGES_ONLY"}).execute())
    now = functions.get("fnA_1")
    assert (now["vpcConnectorEgressSettings"], now["vpcConnector"], now["versionId"]) == (
        "PRIVATE_RANGES_ONLY", connector, "2")
    update = one(localcloud, UPDATE, first=True)["protoPayload"]["request"]
    assert update["updateMask"] == "vpcConnectorEgressSettings" and update["function"]["name"].endswith("/fnA_1")
    listed = functions.functions.list(parent=f"projects/{P}/locations/-").execute()["functions"]
    assert [f["name"] for f in listed] == [f"{PARENT}/functions/fnA_1"]


def test_the_checks_google_makes_and_their_entries(functions, connector, localcloud):
    with pytest.raises(HttpError) as unknown:  # not a value of the v1 enum: refused before anything happens
        functions.create("fn-x", vpcConnector="fn-conn", vpcConnectorEgressSettings="VPC_EGRESS_ALL_TRAFFIC")
    assert unknown.value.resp.status == 400
    with pytest.raises(HttpError, match="does not exist"):  # a host project that does not exist
        functions.create("fn-nohost", vpcConnector=f"projects/no-such-host/locations/{R}/connectors/shared")
    (failed,) = entries(localcloud, CREATE, resource="/fn-nohost")
    assert failed["protoPayload"]["status"]["code"] == 3 and "operation" not in failed
    with pytest.raises(HttpError, match="only together with vpc_connector"):
        functions.create("fn-y", vpcConnectorEgressSettings="ALL_TRAFFIC")
    with pytest.raises(HttpError, match="nothing was uploaded"):
        functions.functions.create(location=PARENT, body={
            "name": f"{PARENT}/functions/fn-z", "runtime": "python311", "httpsTrigger": {},
            "sourceUploadUrl": "http://127.0.0.1/_upload/cloudfunctions/never"}).execute()

    functions.wait(functions.create("fn-twice"))
    again = functions.finish(functions.create("fn-twice"))  # accepted, then the operation says so
    assert again["error"]["code"] == 6 and "already exists" in again["error"]["message"]
    assert functions.get("fn-twice")["versionId"] == "1"

    localcloud.set_faults([{"methods": "cloudfunctions.projects.locations.functions.create",
                            "operation_error_rate": 1.0}])
    failed_deploy = functions.finish(functions.create("fn-fail", vpcConnector="fn-conn",
                                                      vpcConnectorEgressSettings="ALL_TRAFFIC"))
    localcloud.clear_faults()
    assert "error" in failed_deploy and functions.get("fn-fail")["status"] == "OFFLINE"


def test_gcloud_functions_deploy_no_gen2_uploads_the_source_and_deploys_on_the_connector(connector, localcloud_url,
                                                                                       tmp_path, localcloud):
    (tmp_path / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    (tmp_path / "requirements.txt").write_text("")
    deployed = gcloud_json(localcloud_url, P, "functions", "deploy", "fn-cli", "--no-gen2", "--runtime=python311",
                           f"--region={R}", f"--source={tmp_path}", "--entry-point=hello", "--trigger-http",
                           "--vpc-connector=fn-conn", "--egress-settings=all", "--quiet")
    assert deployed["status"] == "ACTIVE" and deployed["vpcConnector"] == connector
    assert deployed["vpcConnectorEgressSettings"] == "ALL_TRAFFIC"
    assert deployed["httpsTrigger"]["url"].endswith("/fn-cli")
    first = one(localcloud, CREATE, first=True)
    assert first["protoPayload"]["request"]["function"]["labels"] == {"deployment-tool": "cli-gcloud"}
    assert "operation" in first and first["protoPayload"]["authenticationInfo"]["principalEmail"]
    described = gcloud(localcloud_url, P, "functions", "describe", "fn-cli", "--no-gen2", f"--region={R}")
    assert "ALL_TRAFFIC" in described.stdout
