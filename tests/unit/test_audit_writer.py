"""The audit writer's entries have the shape of the real samples; sinks format and retry as documented."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from google.cloud.audit import audit_log_pb2
from google.cloud.logging_v2.types import LogEntry
from google.protobuf import json_format

from egress_guard.events import TRIGGER_METHODS
from localcloud.auditlog import sinks as sinks_module
from localcloud.auditlog import filter as logging_filter
from localcloud.auditlog.sinks import Sink, SinkConfig, audit_cloudevent, pubsub_message
from localcloud.auditlog.calls import origin_of_call, record_of_call
from localcloud.auditlog.methods import METHODS
from localcloud.auditlog.writer import (ACTIVITY_LOG_ID, AuditLog, GFE_USER_AGENT_SUFFIX, InsertIds, rfc3339_micros,
                                        rfc3339_nanos)
from localcloud.errors import ApiError, already_exists, not_found
from localcloud.identities import PROJECT, REGION
from localcloud.operations import Operation
from localcloud.routes.logging import list_page
from localcloud.routing import AuditInfo, Call, Result, Route
from tests.paths import AUDIT_SAMPLES

SAMPLES = AUDIT_SAMPLES

P, R = PROJECT, REGION
UA = "gl-python/3.11 rest/2.0 gapic/1.57.0"
CALLER = "10.1.2.3"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def sample_lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def route(api: str, method_id: str) -> Route:
    return Route("POST", "/x", api, method_id, lambda call: Result({}), mutating=True)


def call(api: str, method_id: str, path: str, body: Any = None, query: dict[str, str] | None = None,
         principal: str = "alice@example.com", host: str = "") -> Call:
    return Call(api=api, method_id=method_id, http_method="POST", path=path, params={}, query=query or {},
                body=body, principal=principal, user_agent=UA, enums_as_int=False, caller_ip=CALLER, host=host)


def log_call(audit: AuditLog, c: Call, r: Route, result: Result | None, error: ApiError | None) -> None:
    """What the HTTP layer does after a mutating call: its typed record to the audit hook."""
    audit.on_call(record_of_call(c, r, result, error))


def compute_operation(name: str = "operation-1732021993132-62743cba4d27a-d29b55ba-2cd69d6a") -> Operation:
    body = {"kind": "compute#operation", "id": "4491931805423146320", "name": name, "operationType": "insert",
            "targetLink": f"https://www.googleapis.com/compute/v1/projects/{P}/global/firewalls/allow-web",
            "targetId": "5133249119463966455", "status": "RUNNING", "user": "alice@example.com", "progress": 0,
            "insertTime": "2024-11-19T05:13:13.857-08:00", "startTime": "2024-11-19T05:13:13.857-08:00",
            "selfLink": f"https://www.googleapis.com/compute/v1/projects/{P}/global/operations/{name}"}
    return Operation("compute", f"projects/{P}/global/operations/{name}", body, due=0.0, apply=lambda: None)


def lro(name: str, response: dict[str, Any] | None = None) -> Operation:
    op = Operation("lro", name, {"name": name, "metadata": {"@type": "x"}, "done": False}, due=0.0, apply=lambda: None)
    op.body["response"] = response  # set as Operations._complete would, read only after done
    return op


def firewall_info(op: Operation | None) -> AuditInfo:
    return AuditInfo("compute.googleapis.com", "v1.compute.firewalls.insert",
                     f"projects/{P}/global/firewalls/allow-web", "gce_firewall_rule",
                     {"firewall_rule_id": "5133249119463966455", "project_id": P}, operation=op)


FIREWALL_BODY = {"name": "allow-web", "network": f"projects/{P}/global/networks/default", "direction": "INGRESS",
                 "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}], "sourceRanges": ["0.0.0.0/0"]}


def insert_firewall(audit: AuditLog, op: Operation) -> None:
    c = call("compute.v1", "compute.firewalls.insert", f"/compute/v1/projects/{P}/global/firewalls", FIREWALL_BODY)
    info = firewall_info(op)
    op.audit, op.origin = info, origin_of_call(c, info)
    log_call(audit, c, route("compute.v1", "compute.firewalls.insert"), Result(op.snapshot(), audit=info), None)


def finish(op: Operation, **changes: Any) -> None:
    op.done = True
    if op.kind == "compute":
        op.body.update(status="DONE", progress=100, **changes)
    else:
        op.body["done"] = True
        op.body.update(changes)


def keys(d: dict[str, Any]) -> set[str]:
    return set(d)


# ---- Compute: operation.first and operation.last -------------------------------------------------
def test_compute_insert_writes_first_and_last_like_the_real_samples():
    audit = AuditLog()
    op = compute_operation()
    insert_firewall(audit, op)
    finish(op)
    audit.on_operation_done(op)
    first, last = audit.entries()

    real_first = sample("audit-logentry-compute-v1-firewalls-insert.unidentified-public-repo.json")
    real_2024 = sample("audit-logentry-compute-v1-instances-insert-operation-first.elastic-integrations.json")
    real_last = sample_lines("audit-logentries-compute-operation-first-and-last.elastic-integrations.jsonl")[1]

    assert keys(first) == keys(real_first)
    assert keys(first["protoPayload"]) == keys(real_first["protoPayload"])
    assert keys(first["operation"]) == keys(real_first["operation"]) == {"first", "id", "producer"}
    assert keys(first["protoPayload"]["requestMetadata"]) == keys(real_2024["protoPayload"]["requestMetadata"])
    assert keys(first["protoPayload"]["authorizationInfo"][0]) == keys(real_2024["protoPayload"]["authorizationInfo"][0])
    assert keys(first["resource"]["labels"]) == keys(real_first["resource"]["labels"])
    assert keys(first["protoPayload"]["response"]) >= keys(real_first["protoPayload"]["response"])

    assert keys(last) == keys(real_last)
    assert keys(last["protoPayload"]) == keys(real_last["protoPayload"])
    assert keys(last["protoPayload"]["requestMetadata"]) == keys(real_last["protoPayload"]["requestMetadata"])
    assert keys(last["operation"]) == keys(real_last["operation"]) == {"id", "last", "producer"}

    payload = first["protoPayload"]
    assert first["logName"] == f"projects/{P}/logs/{ACTIVITY_LOG_ID}"
    assert first["operation"] == {"first": True, "id": op.body["name"], "producer": "compute.googleapis.com"}
    assert last["operation"] == {"id": op.body["name"], "last": True, "producer": "compute.googleapis.com"}
    assert payload["methodName"] == "v1.compute.firewalls.insert"
    assert payload["resourceName"] == f"projects/{P}/global/firewalls/allow-web"
    assert payload["request"]["@type"] == "type.googleapis.com/compute.firewalls.insert"
    assert payload["request"]["alloweds"] == [{"IPProtocol": "tcp", "ports": ["80"]}]  # as the real sample
    assert payload["response"]["@type"] == "type.googleapis.com/operation"
    assert payload["response"]["status"] == "RUNNING" and payload["response"]["progress"] == "0"
    assert payload["response"]["selfLinkWithId"].endswith("/operations/4491931805423146320")
    assert "kind" not in payload["response"]  # the real entries write @type instead
    assert payload["authorizationInfo"][0]["permission"] == "compute.firewalls.create"
    assert payload["authorizationInfo"][0]["resourceAttributes"] == {
        "name": f"projects/{P}/global/firewalls/allow-web", "service": "compute", "type": "compute.firewalls"}
    assert payload["authenticationInfo"] == {"principalEmail": "alice@example.com"}
    assert payload["requestMetadata"]["callerIp"] == CALLER
    assert payload["requestMetadata"]["callerSuppliedUserAgent"] == UA + GFE_USER_AGENT_SUFFIX
    assert payload["resourceLocation"] == {"currentLocations": ["global"]}
    assert last["protoPayload"]["request"] == {"@type": "type.googleapis.com/compute.firewalls.insert"}
    assert first["severity"] == last["severity"] == "NOTICE"
    assert first["resource"] == {"labels": {"firewall_rule_id": "5133249119463966455", "project_id": P},
                                 "type": "gce_firewall_rule"}


def test_operation_finished_before_its_call_was_logged_still_writes_first_then_last():
    audit = AuditLog()
    op = compute_operation()
    c = call("compute.v1", "compute.firewalls.insert", f"/compute/v1/projects/{P}/global/firewalls", FIREWALL_BODY)
    info = firewall_info(op)
    op.audit, op.origin = info, origin_of_call(c, info)
    snapshot = op.snapshot()
    finish(op)
    audit.on_operation_done(op)  # the ticker thread won the race
    assert audit.entries() == []
    log_call(audit, c, route("compute.v1", "compute.firewalls.insert"), Result(snapshot, audit=info), None)
    first, last = audit.entries()
    assert first["operation"].get("first") and last["operation"].get("last")
    assert first["protoPayload"]["response"]["status"] == "RUNNING"
    assert first["timestamp"] <= last["timestamp"]


def test_operation_without_a_call_writes_only_the_last_entry():
    """A service agent's own write (as Google logs GKE-created firewall rules: only last=true)."""
    audit = AuditLog()
    op = compute_operation()
    op.audit = firewall_info(op)
    op.body["user"] = "service-1234@gcp-sa-vpcaccess.iam.gserviceaccount.com"
    finish(op)
    audit.on_operation_done(op)
    (entry,) = audit.entries()
    assert entry["operation"] == {"id": op.body["name"], "last": True, "producer": "compute.googleapis.com"}
    assert entry["protoPayload"]["authenticationInfo"]["principalEmail"] == op.body["user"]
    assert entry["protoPayload"]["methodName"] == "v1.compute.firewalls.insert"


def test_operation_of_no_audited_call_writes_nothing():
    audit = AuditLog()
    op = compute_operation()
    finish(op)
    audit.on_operation_done(op)
    assert audit.entries() == []


def test_compute_operation_that_fails_logs_an_error_last_entry():
    audit = AuditLog()
    op = compute_operation()
    insert_firewall(audit, op)
    finish(op, error={"errors": [{"code": "ALREADY_EXISTS", "message": "The resource already exists"}]},
           httpErrorStatusCode=409, httpErrorMessage="CONFLICT")
    audit.on_operation_done(op)
    first, last = audit.entries()
    assert first["severity"] == "NOTICE"
    assert last["severity"] == "ERROR"
    assert last["protoPayload"]["status"] == {"code": 6, "message": "The resource already exists"}
    assert "response" not in last["protoPayload"]


# ---- failed calls ------------------------------------------------------------------------------
@pytest.mark.parametrize("error, code", [
    (already_exists(f"projects/{P}/global/firewalls/allow-web"), 6),
    (not_found("x"), 5),
    (ApiError(403, "Required 'compute.firewalls.create' permission"), 7),
    (ApiError(409, "Conflict for resource: version mismatch", status="ABORTED"), 10),
    (ApiError(503, "backend unavailable"), 14),
])
def test_failed_call_writes_one_error_entry_with_status(error, code):
    audit = AuditLog()
    c = call("compute.v1", "compute.firewalls.insert", f"/compute/v1/projects/{P}/global/firewalls", FIREWALL_BODY)
    log_call(audit, c, route("compute.v1", "compute.firewalls.insert"), None, error)
    (entry,) = audit.entries()
    payload = entry["protoPayload"]
    assert entry["severity"] == "ERROR"
    assert "operation" not in entry and "response" not in payload
    assert payload["status"] == {"code": code, "message": error.message}
    assert payload["resourceName"] == f"projects/{P}/global/firewalls/allow-web"  # derived from the URL + body
    assert payload["authorizationInfo"][0]["granted"] is (error.code != 403)
    assert entry["resource"]["type"] == "gce_firewall_rule"


def test_run_v1_failure_matches_the_real_failure_sample():
    real = sample("audit-logentry-run-v1-ReplaceService-failure-conflict.cloud-run-slack-bot.json")
    audit = AuditLog()
    service = real["protoPayload"]["request"]["service"]
    c = call("run.v1", "run.namespaces.services.replaceService",
             f"/run/apis/serving.knative.dev/v1/namespaces/{P}/services/cloud-run-slack-bot", service,
             host=f"{R}-run.localcloud:8790")
    error = ApiError(409, "Conflict for resource 'cloud-run-slack-bot'", status="ABORTED")
    log_call(audit, c, route("run.v1", "run.namespaces.services.replaceService"), None, error)
    (entry,) = audit.entries()
    assert keys(entry) == keys(real)
    assert keys(entry["protoPayload"]) == keys(real["protoPayload"])
    assert keys(entry["protoPayload"]["request"]) == keys(real["protoPayload"]["request"])
    assert keys(entry["resource"]["labels"]) == keys(real["resource"]["labels"])
    assert entry["protoPayload"]["status"]["code"] == real["protoPayload"]["status"]["code"] == 10
    assert entry["protoPayload"]["resourceName"] == f"namespaces/{P}/services/cloud-run-slack-bot"
    assert entry["protoPayload"]["request"]["name"] == f"projects/{P}/locations/{R}/services/cloud-run-slack-bot"
    assert entry["severity"] == "ERROR"


# ---- Cloud Run v1: synchronous -------------------------------------------------------------------
def test_run_v1_replace_service_matches_the_real_success_sample():
    real = sample("audit-logentry-run-v1-ReplaceService-success.cloud-run-slack-bot.json")
    audit = AuditLog()
    request_service = real["protoPayload"]["request"]["service"]
    response_service = {k: v for k, v in real["protoPayload"]["response"].items() if k != "@type"}
    c = call("run.v1", "run.namespaces.services.replaceService",
             f"/run/apis/serving.knative.dev/v1/namespaces/{P}/services/cloud-run-slack-bot", request_service,
             host=f"{R}-run.localcloud:8790")
    info = AuditInfo("run.googleapis.com", "google.cloud.run.v1.Services.ReplaceService",
                     f"namespaces/{P}/services/cloud-run-slack-bot", "cloud_run_revision",
                     {"configuration_name": "", "location": R, "project_id": P, "revision_name": "",
                      "service_name": "cloud-run-slack-bot"})
    log_call(audit, c, route("run.v1", "run.namespaces.services.replaceService"), Result(response_service, audit=info),
             None)
    (entry,) = audit.entries()
    payload = entry["protoPayload"]
    assert keys(entry) == keys(real)
    assert keys(payload) == keys(real["protoPayload"])
    assert keys(payload["request"]) == keys(real["protoPayload"]["request"])
    assert keys(payload["requestMetadata"]) == keys(real["protoPayload"]["requestMetadata"])
    assert keys(payload["authorizationInfo"][0]) == keys(real["protoPayload"]["authorizationInfo"][0])
    assert payload["authorizationInfo"][0]["permission"] == "run.services.update"
    assert payload["response"] == real["protoPayload"]["response"]  # the full Knative object, typed
    assert payload["request"]["@type"] == real["protoPayload"]["request"]["@type"]
    assert payload["request"]["region"] == R
    assert payload["resourceLocation"] == {"currentLocations": [R]}
    assert entry["resource"] == {"labels": {"configuration_name": "", "location": R, "project_id": P,
                                            "revision_name": "", "service_name": "cloud-run-slack-bot"},
                                 "type": "cloud_run_revision"}


def test_run_v1_create_names_the_service_from_metadata():
    audit = AuditLog()
    body = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {}}
    c = call("run.v1", "run.namespaces.services.create", f"/run/apis/serving.knative.dev/v1/namespaces/{P}/services",
             body, host=f"{R}-run.localcloud:8790")
    log_call(audit, c, route("run.v1", "run.namespaces.services.create"), None, already_exists("web"))
    (entry,) = audit.entries()
    assert entry["protoPayload"]["methodName"] == "google.cloud.run.v1.Services.CreateService"
    assert entry["protoPayload"]["resourceName"] == f"namespaces/{P}/services/web"
    assert entry["protoPayload"]["request"]["parent"] == f"projects/{P}/locations/{R}"


def test_job_run_is_data_access_and_writes_no_activity_entry():
    audit = AuditLog()
    c = call("run.v2", "run.projects.locations.jobs.run", f"/run/v2/projects/{P}/locations/{R}/jobs/j1:run", {})
    log_call(audit, c, route("run.v2", "run.projects.locations.jobs.run"), Result({}), None)
    assert audit.entries() == []


# ---- VPC Access and Cloud Run v2: google.longrunning -----------------------------------------------
def test_connector_create_writes_first_and_last_with_the_connector():
    audit = AuditLog()
    name = f"projects/{P}/locations/{R}/operations/abc-123"
    connector = {"@type": "type.googleapis.com/google.cloud.vpcaccess.v1.Connector",
                 "name": f"projects/{P}/locations/{R}/connectors/conn1", "network": "default", "state": "READY"}
    op = lro(name, connector)
    c = call("vpcaccess.v1", "vpcaccess.projects.locations.connectors.create",
             f"/vpcaccess/v1/projects/{P}/locations/{R}/connectors", {"network": "default",
                                                                      "ipCidrRange": "10.8.0.0/28"},
             query={"connectorId": "conn1"})
    info = AuditInfo("vpcaccess.googleapis.com", "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector",
                     f"projects/{P}/locations/{R}/connectors/conn1", "vpc_access_connector",
                     {"project_id": P, "location": R, "connector_name": "conn1"}, operation=op)
    op.audit, op.origin = info, origin_of_call(c, info)
    log_call(audit, c, route("vpcaccess.v1", "vpcaccess.projects.locations.connectors.create"),
             Result({"name": name, "metadata": {}, "done": False}, audit=info), None)
    finish(op)
    audit.on_operation_done(op)
    first, last = audit.entries()
    assert first["operation"] == {"first": True, "id": name, "producer": "vpcaccess.googleapis.com"}
    assert last["operation"] == {"id": name, "last": True, "producer": "vpcaccess.googleapis.com"}
    assert first["protoPayload"]["request"] == {
        "@type": "type.googleapis.com/google.cloud.vpcaccess.v1.CreateConnectorRequest",
        "parent": f"projects/{P}/locations/{R}", "connectorId": "conn1",
        "connector": {"network": "default", "ipCidrRange": "10.8.0.0/28"}}
    assert first["protoPayload"]["response"] == {"@type": "type.googleapis.com/google.longrunning.Operation",
                                                 "name": name, "metadata": {}}  # done=false: a default
    assert last["protoPayload"]["response"] == connector
    assert first["protoPayload"]["authorizationInfo"][0]["permission"] == "vpcaccess.connectors.create"


def test_run_v2_update_logs_the_update_request():
    audit = AuditLog()
    c = call("run.v2", "run.projects.locations.services.patch", f"/run/v2/projects/{P}/locations/{R}/services/web",
             {"template": {"vpcAccess": {"egress": "ALL_TRAFFIC"}}}, query={"allowMissing": "true"})
    log_call(audit, c, route("run.v2", "run.projects.locations.services.patch"), None, not_found("web"))
    (entry,) = audit.entries()
    assert entry["protoPayload"]["methodName"] == "google.cloud.run.v2.Services.UpdateService"
    assert entry["protoPayload"]["request"] == {
        "@type": "type.googleapis.com/google.cloud.run.v2.UpdateServiceRequest",
        "service": {"template": {"vpcAccess": {"egress": "ALL_TRAFFIC"}},
                    "name": f"projects/{P}/locations/{R}/services/web"},
        "allowMissing": True}


# ---- every entry is a valid LogEntry / AuditLog, and parses as the guardrails parse it -----------------
def all_kinds_of_entries() -> list[dict[str, Any]]:
    audit = AuditLog()
    op = compute_operation()
    insert_firewall(audit, op)
    finish(op)
    audit.on_operation_done(op)
    name = f"projects/{P}/locations/{R}/operations/op-1"
    op2 = lro(name, {"@type": "type.googleapis.com/google.cloud.run.v2.Service",
                     "name": f"projects/{P}/locations/{R}/services/web"})
    c = call("run.v2", "run.projects.locations.services.create", f"/run/v2/projects/{P}/locations/{R}/services",
             {"template": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]}},
             query={"serviceId": "web"})
    info = AuditInfo("run.googleapis.com", "google.cloud.run.v2.Services.CreateService",
                     f"projects/{P}/locations/{R}/services/web", "cloud_run_revision",
                     {"configuration_name": "", "location": R, "project_id": P, "revision_name": "",
                      "service_name": "web"}, operation=op2)
    op2.audit, op2.origin = info, origin_of_call(c, info)
    log_call(audit, c, route("run.v2", "run.projects.locations.services.create"),
             Result({"name": name, "done": False}, audit=info), None)
    finish(op2)
    audit.on_operation_done(op2)
    c = call("vpcaccess.v1", "vpcaccess.projects.locations.connectors.create",
             f"/vpcaccess/v1/projects/{P}/locations/{R}/connectors", {"network": "default"},
             query={"connectorId": "conn1"})
    log_call(audit, c, route("vpcaccess.v1", "vpcaccess.projects.locations.connectors.create"), None,
             already_exists("conn1"))
    return audit.entries()


def test_every_entry_is_a_valid_logentry_and_auditlog_proto():
    for entry in all_kinds_of_entries():
        LogEntry.from_json(json.dumps(entry))  # top level: names and types of google.logging.v2.LogEntry
        payload = {k: v for k, v in entry["protoPayload"].items() if k != "@type"}
        json_format.ParseDict(payload, audit_log_pb2.AuditLog())  # no unknown AuditLog field
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["timestamp"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", entry["receiveTimestamp"])


def test_entries_parse_with_the_guardrails_event_parser():
    events = pytest.importorskip("egress_guard.events")
    for entry in all_kinds_of_entries():
        event = events.parse_event(entry)
        assert event.insert_id == entry["insertId"]
        assert event.status_code == entry["protoPayload"].get("status", {}).get("code", 0)
        assert event.operation_first == bool(entry.get("operation", {}).get("first"))
        assert event.operation_last == bool(entry.get("operation", {}).get("last"))
        # and in both delivery forms a sink produces
        assert events.parse_event(audit_cloudevent(entry)).insert_id == entry["insertId"]


# ---- the log itself ------------------------------------------------------------------------------
def test_ring_keeps_the_newest_entries_in_write_order():
    audit = AuditLog(capacity=3)
    for i in range(5):
        c = call("compute.v1", "compute.firewalls.delete", f"/compute/v1/projects/{P}/global/firewalls/fw-{i}")
        log_call(audit, c, route("compute.v1", "compute.firewalls.delete"), None, not_found(f"fw-{i}"))
    stored = audit.stored()
    assert [s.entry["protoPayload"]["resourceName"].rsplit("/", 1)[1] for s in stored] == ["fw-2", "fw-3", "fw-4"]
    assert [s.seq for s in stored] == sorted(s.seq for s in stored)


def test_timestamps_never_go_backwards_and_insert_ids_are_unique():
    audit = AuditLog(clock_ns=lambda: 1_700_000_000_000_000_000)  # a stuck clock
    for _ in range(50):
        c = call("compute.v1", "compute.routers.patch", f"/compute/v1/projects/{P}/regions/{R}/routers/r1", {})
        log_call(audit, c, route("compute.v1", "compute.routers.patch"), None, not_found("r1"))
    stored = audit.stored()
    assert len({s.timestamp_ns for s in stored}) == 50
    assert [s.timestamp_ns for s in stored] == sorted(s.timestamp_ns for s in stored)
    ids = InsertIds()
    many = {ids.next() for _ in range(20_000)}
    assert len(many) == 20_000 and all(re.fullmatch(r"[a-z0-9]{11,}", i) for i in many)


def test_listeners_see_entries_in_order_and_a_failing_listener_breaks_nothing():
    audit = AuditLog()
    seen: list[str] = []
    audit.add_listener(lambda entry: (_ for _ in ()).throw(RuntimeError("boom")))
    audit.add_listener(lambda entry: seen.append(entry["insertId"]))
    for i in range(3):
        c = call("compute.v1", "compute.firewalls.delete", f"/compute/v1/projects/{P}/global/firewalls/fw-{i}")
        log_call(audit, c, route("compute.v1", "compute.firewalls.delete"), None, not_found("x"))
    assert seen == [e["insertId"] for e in audit.entries()]


def test_the_hook_never_raises_into_the_api_call():
    audit = AuditLog()
    assert record_of_call(object(), object(), None, None) is None  # nonsense in: logged, not raised
    audit.on_call(object())
    audit.on_operation_done(object())
    audit.reset()
    assert audit.entries() == []


def test_formatting_of_timestamps():
    ns = 1_715_036_284_355_675_123
    assert rfc3339_micros(ns) == "2024-05-06T22:58:04.355675Z"
    assert rfc3339_nanos(ns) == "2024-05-06T22:58:04.355675123Z"


def test_method_table_covers_the_trigger_methods():
    names = {spec.method_name for spec in METHODS.values()}
    for method in TRIGGER_METHODS:
        assert method in names


# ---- entries.list (pure) -------------------------------------------------------------------------
def stored_entries(n: int) -> list:
    audit = AuditLog(clock_ns=iter(range(1_700_000_000_000_000_000, 1_800_000_000_000_000_000,
                                         1_000_000_000)).__next__)
    for i in range(n):
        project = P if i % 2 == 0 else "other-project"
        c = call("compute.v1", "compute.firewalls.delete", f"/compute/v1/projects/{project}/global/firewalls/fw-{i}")
        log_call(audit, c, route("compute.v1", "compute.firewalls.delete"), None, not_found("x"))
    return audit.stored()


def test_list_page_filters_orders_and_pages():
    stored = stored_entries(10)
    body = {"resourceNames": [f"projects/{P}"], "pageSize": 2, "orderBy": "timestamp desc"}
    names, token = [], None
    while True:
        page = list_page(stored, {**body, **({"pageToken": token} if token else {})})
        names += [e["protoPayload"]["resourceName"].rsplit("/", 1)[1] for e in page.get("entries", [])]
        token = page.get("nextPageToken")
        if not token:
            break
    assert names == ["fw-8", "fw-6", "fw-4", "fw-2", "fw-0"]
    cutoff = stored[4].entry["timestamp"]
    page = list_page(stored, {"resourceNames": [f"projects/{P}"], "filter": f'timestamp>="{cutoff}"'})
    assert [e["protoPayload"]["resourceName"][-4:] for e in page["entries"]] == ["fw-4", "fw-6", "fw-8"]


@pytest.mark.parametrize("body, message", [
    ({}, "resourceNames"),
    ({"resourceNames": ["nope"]}, "Invalid resource name"),
    ({"resourceNames": [f"projects/{P}"], "filter": "protoPayload.methodName="}, "Unparseable filter"),
    ({"resourceNames": [f"projects/{P}"], "orderBy": "insertId"}, "orderBy"),
    ({"resourceNames": [f"projects/{P}"], "pageSize": -1}, "pageSize"),
    ({"resourceNames": [f"projects/{P}"], "pageToken": "garbage!"}, "pageToken"),
])
def test_list_page_rejects_bad_requests(body, message):
    with pytest.raises(ApiError) as info:
        list_page(stored_entries(2), body)
    assert info.value.code == 400 and message in info.value.message


# ---- sinks (pure parts) ---------------------------------------------------------------------------
def test_cloudevent_has_the_shape_of_the_real_structured_sample():
    real = sample("cloudevent-structured-audit-log-v1-written.bigquery-jobcompleted.google-cloudevents.json")
    entry = all_kinds_of_entries()[0]
    event = audit_cloudevent(entry)
    # The sample spells the extension attributes in camelCase; CloudEvents requires lowercase.
    assert {k.lower() for k in event} == {k.lower() for k in real}
    assert event["type"] == "google.cloud.audit.log.v1.written"
    assert event["source"] == f"//cloudaudit.googleapis.com/projects/{P}/logs/activity"
    assert event["subject"] == f"compute.googleapis.com/projects/{P}/global/firewalls/allow-web"
    assert event["methodname"] == "v1.compute.firewalls.insert"
    assert event["id"].startswith(entry["logName"] + entry["insertId"])
    assert event["time"] == entry["receiveTimestamp"] and event["recordedtime"] == entry["timestamp"]
    assert event["data"] == entry
    from cloudevents.http import from_http  # what functions-framework uses to read it
    parsed = from_http({"Content-Type": "application/cloudevents+json"}, json.dumps(event))
    assert parsed["methodname"] == "v1.compute.firewalls.insert"


def test_pubsub_message_is_the_entry_json_with_the_timestamp_attribute():
    entry = all_kinds_of_entries()[0]
    data, attributes = pubsub_message(entry)
    assert json.loads(data) == entry
    assert attributes == {"logging.googleapis.com/timestamp": entry["timestamp"]}


@pytest.mark.parametrize("body, message", [
    ({"name": "s", "filter": "", "destination": "pubsub.googleapis.com/projects/p/topics/t"}, "destination"),
    ({"name": "bad name", "filter": "", "eventarc_target": "http://127.0.0.1:1/"}, "name"),
    ({"name": "s", "filter": ""}, "exactly one"),
    ({"name": "s", "eventarc_target": "ftp://x"}, "http"),
    ({"name": "s", "destination": f"pubsub.googleapis.com/projects/{P}/topics/topic-1"}, "PUBSUB_EMULATOR_HOST"),
    ({"name": "s", "eventarc_target": "http://127.0.0.1:1/", "colour": "red"}, "unknown"),
])
def test_sink_config_rejects_bad_bodies(body, message):
    with pytest.raises(ApiError) as info:
        SinkConfig.from_body(body, environ={})
    assert info.value.code == 400 and message in info.value.message


def test_sink_config_reads_the_emulator_host_from_the_environment():
    config = SinkConfig.from_body({"name": "s", "filter": "", "destination": f"pubsub.googleapis.com/projects/{P}/"
                                   "topics/topic-1"}, environ={"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"})
    assert config.topic == f"projects/{P}/topics/topic-1" and config.pubsub_host == "127.0.0.1:8085"


def run_sink(deliver, entries: list[dict[str, Any]], filter_text: str = "") -> dict[str, Any]:
    waits: list[float] = []

    def no_wait(event: threading.Event, seconds: float) -> bool:  # retries without sleeping
        waits.append(seconds)
        return False

    sink = Sink(SinkConfig("s", filter_text, eventarc_target="http://127.0.0.1:1/"),
                logging_filter.parse(filter_text), deliver, wait=no_wait)
    for entry in entries:
        sink.offer(entry)
    sink.offer({"insertId": "sentinel", "severity": "NOTICE"})  # marks the end: the filter sees it
    try:
        idle = threading.Event()
        while sink.stats()["pending"]:
            idle.wait(0.01)
    finally:
        sink.stop()
    return {**sink.stats(), "waits": waits}


def test_sink_retries_with_backoff_then_delivers_and_counts():
    attempts: list[str] = []

    def flaky(entry: dict[str, Any]) -> None:
        attempts.append(entry["insertId"])
        if len(attempts) <= 3:
            raise sinks_module.DeliveryError("emulator down")

    stats = run_sink(flaky, [{"insertId": "a", "severity": "ERROR"}], 'severity="ERROR"')
    assert stats["delivered"] == 1 and stats["failed"] == 3 and stats["dropped"] == 0
    assert stats["matched"] == 1 and stats["examined"] == 2
    assert stats["waits"] == [0.1, 0.2, 0.4]  # exponential backoff


def test_sink_drops_loudly_after_max_attempts():
    def broken(entry: dict[str, Any]) -> None:
        raise sinks_module.DeliveryError("topic not found")

    stats = run_sink(broken, [{"insertId": "a"}, {"insertId": "b"}], 'insertId=("a" OR "b")')
    assert stats["dropped"] == 2 and stats["delivered"] == 0
    assert stats["failed"] == 2 * sinks_module.MAX_ATTEMPTS
    assert stats["recent_drops"] == ["a", "b"] and "topic not found" in stats["last_error"]
    assert max(stats["waits"]) == sinks_module.RETRY_MAX_S
