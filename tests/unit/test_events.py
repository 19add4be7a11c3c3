"""parse_event: every fixture in every delivery form, the real samples, and bad input."""

from __future__ import annotations

import base64
import copy
import json
import pathlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egress_guard.errors import InvalidName, MalformedEvent, NotOurEvent, PermanentError, StaleEvent
from egress_guard.events import (
    AUDIT_LOG_EVENT_TYPE,
    METHODS,
    PUBSUB_EVENT_TYPE,
    TRIGGERS,
    Action,
    ApiVersion,
    Delivery,
    EventKind,
    methods_for,
    parse_event,
    parse_time,
    screen,
    thaw,
)
from egress_guard.names import (
    AppEngineVersionName,
    ConnectorName,
    FirewallName,
    FunctionName,
    RouterName,
    RunJobName,
    RunServiceName,
    RunWorkerPoolName,
)
from tests.paths import AUDIT_SAMPLES

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLES = AUDIT_SAMPLES
PROJECT, REGION = "eg-demo-project", "europe-west2"


def fixture_name(method: str, *, last: bool = False) -> str:
    spec = METHODS[method]
    return f"{spec.service_name.split('.')[0]}-{method}{'.last' if last else ''}.json"


AUDIT_FIXTURES = sorted(
    [fixture_name(spec.method_name) for spec in TRIGGERS]
    + [fixture_name(spec.method_name, last=True) for spec in TRIGGERS if spec.long_running]
)


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def as_audit_cloudevent(entry: dict[str, Any]) -> CloudEvent:
    payload = entry["protoPayload"]
    return CloudEvent({
        "type": AUDIT_LOG_EVENT_TYPE,
        "source": f"//cloudaudit.googleapis.com/projects/{PROJECT}/logs/activity",
        "subject": f"{payload['serviceName']}/{payload['resourceName']}",
        "id": f"{entry['logName']}{entry['insertId']}",
        "servicename": payload["serviceName"],
        "methodname": payload["methodName"],
        "resourcename": payload["resourceName"],
    }, entry)


def as_pubsub_body(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(json.dumps(entry).encode()).decode(),
            "attributes": {"logging.googleapis.com/timestamp": entry["timestamp"]},
            "messageId": "4242",
            "publishTime": entry["timestamp"],
        },
        "subscription": f"projects/{PROJECT}/subscriptions/egress-guard-audit",
    }


def as_pubsub_cloudevent(entry: dict[str, Any]) -> CloudEvent:
    return CloudEvent({"type": PUBSUB_EVENT_TYPE, "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/audit",
                       "id": "4242"}, as_pubsub_body(entry))


def delivery_forms(entry: dict[str, Any]) -> list[tuple[Delivery, object]]:
    audit_ce = as_audit_cloudevent(entry)
    pubsub_ce = as_pubsub_cloudevent(entry)
    structured_audit = {**dict(audit_ce.get_attributes()), "data": entry}
    structured_pubsub = {**dict(pubsub_ce.get_attributes()), "data": as_pubsub_body(entry)}
    binary_audit = CloudEvent(dict(audit_ce.get_attributes()), json.dumps(entry).encode())
    return [
        (Delivery.LOG_ENTRY, entry),
        (Delivery.LOG_ENTRY, json.dumps(entry)),
        (Delivery.AUDIT_LOG_EVENT, audit_ce),
        (Delivery.AUDIT_LOG_EVENT, structured_audit),
        (Delivery.AUDIT_LOG_EVENT, binary_audit),
        (Delivery.PUBSUB_MESSAGE, pubsub_ce),
        (Delivery.PUBSUB_MESSAGE, structured_pubsub),
        (Delivery.PUBSUB_MESSAGE, as_pubsub_body(entry)),
    ]


# --------------------------------------------------------------------------- the table


def test_triggers_every_method_has_a_fixture_and_last_entries_only_for_operations() -> None:
    present = {p.name for p in FIXTURES.glob("*.json")}
    for spec in TRIGGERS:
        assert fixture_name(spec.method_name) in present
        assert (fixture_name(spec.method_name, last=True) in present) == spec.long_running


def test_triggers_mark_only_v1_jobs_and_worker_pools_unconfirmed() -> None:
    unconfirmed = {spec.method_name for spec in TRIGGERS if not spec.confirmed}
    assert unconfirmed == {"google.cloud.run.v1.Jobs.CreateJob", "google.cloud.run.v1.Jobs.ReplaceJob",
                           "google.cloud.run.v2.WorkerPools.CreateWorkerPool",
                           "google.cloud.run.v2.WorkerPools.UpdateWorkerPool"}


def test_triggers_cover_design_list() -> None:
    assert len(METHODS) == len(TRIGGERS) == 23
    assert methods_for(EventKind.CONNECTOR_CREATED) == ("google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector",)
    assert methods_for(EventKind.ROUTER_CHANGED) == (
        "v1.compute.routers.patch", "v1.compute.routers.update", "v1.compute.routers.delete")
    assert len(methods_for(EventKind.RUN_SERVICE_WRITTEN, EventKind.RUN_JOB_WRITTEN)) == 8
    assert methods_for(EventKind.RUN_WORKER_POOL_WRITTEN) == ("google.cloud.run.v2.WorkerPools.CreateWorkerPool",
                                                              "google.cloud.run.v2.WorkerPools.UpdateWorkerPool")
    assert methods_for(EventKind.FUNCTION_WRITTEN) == (
        "google.cloud.functions.v2.FunctionService.CreateFunction",
        "google.cloud.functions.v2.FunctionService.UpdateFunction",
        "google.cloud.functions.v1.CloudFunctionsService.CreateFunction",
        "google.cloud.functions.v1.CloudFunctionsService.UpdateFunction")


# --------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("name", AUDIT_FIXTURES)
def test_parse_event_fixture_parses_the_same_in_every_delivery_form(name: str) -> None:
    entry = load(name)
    parsed = [(expected, parse_event(form)) for expected, form in delivery_forms(entry)]
    reference = parsed[0][1]
    for expected, event in parsed:
        assert event.delivery is expected
        assert event == _with_delivery(reference, expected)
    assert reference.method_name == entry["protoPayload"]["methodName"]
    assert reference.spec is METHODS[reference.method_name]
    assert reference.project == PROJECT
    assert reference.principal == "alice@example.com"
    assert reference.insert_id == entry["insertId"]
    assert reference.succeeded
    assert reference.resource_type == METHODS[reference.method_name].resource_type


def _with_delivery(event: Any, delivery: Delivery) -> Any:
    from dataclasses import replace

    return replace(event, delivery=delivery)


EXPECTED_RESOURCES = {
    "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector": ConnectorName(PROJECT, REGION, "conn-a"),
    "google.cloud.run.v1.Services.CreateService": RunServiceName(PROJECT, REGION, "web"),
    "google.cloud.run.v1.Services.ReplaceService": RunServiceName(PROJECT, REGION, "web"),
    "google.cloud.run.v2.Services.CreateService": RunServiceName(PROJECT, REGION, "api"),
    "google.cloud.run.v2.Services.UpdateService": RunServiceName(PROJECT, REGION, "api"),
    "google.cloud.run.v1.Jobs.CreateJob": RunJobName(PROJECT, REGION, "nightly"),
    "google.cloud.run.v1.Jobs.ReplaceJob": RunJobName(PROJECT, REGION, "nightly"),
    "google.cloud.run.v2.Jobs.CreateJob": RunJobName(PROJECT, REGION, "batch"),
    "google.cloud.run.v2.Jobs.UpdateJob": RunJobName(PROJECT, REGION, "batch"),
    "google.cloud.run.v2.WorkerPools.CreateWorkerPool": RunWorkerPoolName(PROJECT, REGION, "pool-a"),
    "google.cloud.run.v2.WorkerPools.UpdateWorkerPool": RunWorkerPoolName(PROJECT, REGION, "pool-a"),
    "google.cloud.functions.v2.FunctionService.CreateFunction": FunctionName(PROJECT, REGION, "fn-a"),
    "google.cloud.functions.v2.FunctionService.UpdateFunction": FunctionName(PROJECT, REGION, "fn-a"),
    "google.appengine.v1.Versions.CreateVersion": AppEngineVersionName(PROJECT, "default", "v1"),
    "v1.compute.routers.patch": RouterName(PROJECT, REGION, "router-a"),
    "v1.compute.routers.update": RouterName(PROJECT, REGION, "router-a"),
    "v1.compute.routers.delete": RouterName(PROJECT, REGION, "router-a"),
    "v1.compute.firewalls.insert": FirewallName(PROJECT, "aet-europewest2-conn--a-sbntfw"),
    "v1.compute.firewalls.patch": FirewallName(PROJECT, "egress-guard-deny-europe-west2-conn-a"),
    "v1.compute.firewalls.update": FirewallName(PROJECT, "egress-guard-deny-europe-west2-conn-a"),
    "v1.compute.firewalls.delete": FirewallName(PROJECT, "egress-guard-deny-europe-west2-conn-a"),
}


@pytest.mark.parametrize("method", sorted(EXPECTED_RESOURCES))
def test_parse_event_fixture_resource_region_and_operation(method: str) -> None:
    spec = METHODS[method]
    first = parse_event(load(fixture_name(method)))
    assert first.resource == EXPECTED_RESOURCES[method]
    assert first.region == ("" if spec.kind in (EventKind.FIREWALL_CHANGED, EventKind.APP_ENGINE_VERSION_CREATED)
                            else REGION)
    if spec.long_running:
        last = parse_event(load(fixture_name(method, last=True)))
        assert (first.operation_first, first.operation_last) == (True, False)
        assert (last.operation_first, last.operation_last) == (False, True)
        assert first.operation_id == last.operation_id != ""
        assert first.trigger.operationId == last.trigger.operationId
        assert last.resource == first.resource
        assert last.timestamp > first.timestamp
    else:
        assert not first.is_operation and not first.operation_first and not first.operation_last


def test_parse_event_run_v1_service_keeps_the_body_as_logged() -> None:
    event = parse_event(load(fixture_name("google.cloud.run.v1.Services.CreateService")))
    assert event.api is ApiVersion.RUN_V1 and event.action is Action.CREATE
    spec = event.response["spec"]["template"]["metadata"]["annotations"]
    assert spec["run.googleapis.com/vpc-access-egress"] == "all-traffic"


def test_parse_event_v2_last_entry_names_the_resource_without_a_request_body() -> None:
    event = parse_event(load(fixture_name("google.cloud.run.v2.Jobs.CreateJob", last=True)))
    assert event.request == {"@type": "type.googleapis.com/google.cloud.run.v2.CreateJobRequest"}
    assert event.resource == RunJobName(PROJECT, REGION, "batch")


def test_parse_event_bodies_are_read_only() -> None:
    event = parse_event(load(fixture_name("v1.compute.routers.patch")))
    with pytest.raises(TypeError):
        event.request["nats"] = []  # type: ignore[index]
    assert isinstance(event.request["nats"], tuple)
    assert thaw(event.request)["nats"][0]["name"] == "nat-a"
    with pytest.raises(AttributeError):
        event.project = "other"  # type: ignore[misc]


def test_parse_event_trigger_and_age() -> None:
    event = parse_event(load(fixture_name("google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector")))
    assert event.timestamp == datetime(2026, 3, 2, 10, 0, 1, 204000, tzinfo=timezone.utc)
    assert event.age(event.timestamp + timedelta(seconds=30)) == timedelta(seconds=30)
    assert event.age(datetime(2026, 3, 2, 10, 0, 31, 204000)) == timedelta(seconds=30)  # naive = UTC
    trigger = event.trigger
    assert trigger.methodName == event.method_name
    assert trigger.resourceName == f"projects/{PROJECT}/locations/{REGION}/connectors/conn-a"
    assert trigger.insertId == event.insert_id
    assert trigger.operationId.startswith(f"projects/{PROJECT}/locations/{REGION}/operations/")
    assert trigger.timestamp == "2026-03-02T10:00:01.204000Z"
    assert event.resource.ref.type == "vpcaccess.connector"


# --------------------------------------------------------------------------- screen


def test_screen_passes_fresh_successful_foreign_event() -> None:
    event = parse_event(load(fixture_name("v1.compute.routers.delete")))
    screen(event, max_age=timedelta(minutes=10), self_principals={"eg@p.iam.gserviceaccount.com"},
           now=event.timestamp + timedelta(minutes=1))


def test_screen_rejects_stale_event_with_reason() -> None:
    event = parse_event(load(fixture_name("v1.compute.routers.delete")))
    with pytest.raises(StaleEvent, match="660s ago, more than the 600s limit"):
        screen(event, max_age=timedelta(minutes=10), self_principals=(), now=event.timestamp + timedelta(minutes=11))


def test_screen_rejects_own_writes() -> None:
    event = parse_event(load(fixture_name("v1.compute.firewalls.insert")))
    with pytest.raises(NotOurEvent, match="egress-guard itself"):
        screen(event, max_age=timedelta(minutes=10), self_principals={"ALICE@example.com "}, now=event.timestamp)


def test_screen_rejects_failed_calls() -> None:
    sample = SAMPLES / "audit-logentry-run-v1-ReplaceService-failure-conflict.cloud-run-slack-bot.json"
    event = parse_event(sample.read_text())
    assert event.status_code == 10 and not event.succeeded
    with pytest.raises(NotOurEvent, match="failed with status 10"):
        screen(event, max_age=timedelta(days=9999), self_principals=(), now=event.timestamp)


# --------------------------------------------------------------------------- real samples


def test_real_sample_run_v1_replace_service_parses() -> None:
    entry = json.loads((SAMPLES / "audit-logentry-run-v1-ReplaceService-success.cloud-run-slack-bot.json").read_text())
    event = parse_event(entry)
    assert event.kind is EventKind.RUN_SERVICE_WRITTEN
    assert event.resource == RunServiceName("test-project-1234", "asia-northeast1", "cloud-run-slack-bot")
    assert event.principal == "masatonaka1989@gmail.com"


def test_real_sample_compute_firewall_insert_parses() -> None:
    entry = json.loads((SAMPLES / "audit-logentry-compute-v1-firewalls-insert.unidentified-public-repo.json").read_text())
    event = parse_event(entry)
    assert event.kind is EventKind.FIREWALL_CHANGED and event.action is Action.CREATE
    assert event.resource == FirewallName("scc-log-pubsub", "firewall-rule-01")
    assert event.operation_first and event.operation_id.startswith("operation-")
    assert event.request["alloweds"][0]["IPProtocol"] == "tcp"


NOT_OURS = [
    "audit-logentry-compute-v1-instances-insert-operation-first.elastic-integrations.json",
    "audit-logentry-pubsub-CreateTopic.google-cloudevents.json",
    "cloudevent-structured-audit-log-v1-written.bigquery-jobcompleted.google-cloudevents.json",
]


@pytest.mark.parametrize("name", NOT_OURS)
def test_real_sample_of_other_methods_is_not_ours(name: str) -> None:
    with pytest.raises(NotOurEvent, match="is not a method egress-guard handles"):
        parse_event((SAMPLES / name).read_text())


def test_real_sample_jsonl_lines_are_not_ours() -> None:
    lines = (SAMPLES / "audit-logentries-compute-operation-first-and-last.elastic-integrations.jsonl").read_text()
    for line in lines.splitlines():
        with pytest.raises(NotOurEvent, match=r"compute\.(images\.insert|instances\.stop)"):
            parse_event(line)


@pytest.mark.parametrize("name,reason", [
    ("cloudevent-structured-pubsub-messagePublished.google-cloudevents.json", "Pub/Sub message data is not JSON"),
    ("pubsub-MessagePublishedData-data.google-cloudevents.json", "Pub/Sub message data is not JSON"),
    ("audit-service-catalog-subset.google-cloudevents.json", "not a CloudEvent, a Pub/Sub message or a LogEntry"),
])
def test_real_sample_that_is_no_log_entry_is_malformed(name: str, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        parse_event((SAMPLES / name).read_text())


def test_every_real_sample_parses_or_is_rejected_permanently() -> None:
    for path in sorted(SAMPLES.glob("*.json*")):
        for text in path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]:
            try:
                parse_event(text)
            except PermanentError as exc:
                assert exc.reason


# --------------------------------------------------------------------------- bad input


def _entry(**changes: Any) -> dict[str, Any]:
    entry = load(fixture_name("google.cloud.run.v1.Services.CreateService"))
    for dotted, value in changes.items():
        target = entry
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    return entry


@pytest.mark.parametrize("source,error,reason", [
    (None, MalformedEvent, "got NoneType"),
    ([], MalformedEvent, "got list"),
    ("{not json", MalformedEvent, "is not JSON"),
    ("[1, 2]", MalformedEvent, "not an object"),
    (b"\xff\xfe", MalformedEvent, "not UTF-8"),
    ({"protoPayload": "x"}, MalformedEvent, "protoPayload should be an object"),
    ({"jsonPayload": {}}, NotOurEvent, "without protoPayload"),
    ({"specversion": "1.0", "type": "google.cloud.storage.object.v1.finalized", "data": {}}, NotOurEvent,
     "CloudEvent type 'google.cloud.storage.object.v1.finalized'"),
    ({"specversion": "1.0", "data": {}}, MalformedEvent, "no 'type' attribute"),
    ({"specversion": "1.0", "type": PUBSUB_EVENT_TYPE, "data": {"message": {"data": "@@@"}}}, MalformedEvent,
     "data is not JSON"),
    ({"specversion": "1.0", "type": PUBSUB_EVENT_TYPE, "data": {"message": {}}}, MalformedEvent, "has no data"),
    ({"specversion": "1.0", "type": PUBSUB_EVENT_TYPE, "data": {"message": {"data": 7}}}, MalformedEvent,
     "not a base64 string"),
    ({"specversion": "1.0", "type": AUDIT_LOG_EVENT_TYPE, "data": [1]}, MalformedEvent, "not a LogEntry object"),
])
def test_parse_event_rejects_bad_envelopes(source: object, error: type, reason: str) -> None:
    with pytest.raises(error, match=reason):
        parse_event(source)


@pytest.mark.parametrize("changes,error,field", [
    ({"logName": "organizations/1/logs/x"}, MalformedEvent, "logName"),
    ({"logName": "projects/UPPER/logs/cloudaudit.googleapis.com%2Factivity"}, InvalidName, "logName (project)"),
    ({"timestamp": "yesterday"}, MalformedEvent, "timestamp"),
    ({"timestamp": "2026-02-30T00:00:00Z"}, MalformedEvent, "timestamp"),
    ({"insertId": ""}, MalformedEvent, "insertId"),
    ({"protoPayload__serviceName": "compute.googleapis.com"}, MalformedEvent, "protoPayload.serviceName"),
    ({"protoPayload__methodName": 42}, MalformedEvent, "protoPayload.methodName"),
    ({"protoPayload__status": {"code": "ten"}}, MalformedEvent, "protoPayload.status.code"),
    ({"protoPayload__resourceName": "namespaces/eg-demo-project/services/../../x"}, InvalidName,
     "protoPayload.resourceName"),
    ({"protoPayload__resourceName": "namespaces/eg-demo-project/services/web%2F..%2Fx"}, InvalidName,
     "protoPayload.resourceName"),
    ({"protoPayload__resourceName": "namespaces/eg-demo-project/services/wéb"}, InvalidName,
     "protoPayload.resourceName"),
    ({"protoPayload__resourceName": "namespaces/eg-demo-project/services/web x"}, InvalidName,
     "protoPayload.resourceName"),
    ({"protoPayload__resourceName": "namespaces/eg-demo-project/services/web/extra"}, InvalidName,
     "protoPayload.resourceName"),
    ({"resource__labels__location": "Europe West"}, InvalidName, "resource.labels.location"),
    ({"resource__labels": {"location": 5}}, MalformedEvent, "resource.labels.location"),
    ({"operation": {"id": "x", "first": "yes"}}, MalformedEvent, "operation.first"),
])
def test_parse_event_rejects_bad_entries_naming_the_field(changes: dict[str, Any], error: type, field: str) -> None:
    with pytest.raises(error) as caught:
        parse_event(_entry(**changes))
    assert field in caught.value.reason
    assert caught.value.field is not None and field.split(" ")[0].split("[")[0] in caught.value.field


def test_parse_event_takes_created_name_from_request_when_resource_name_is_parent() -> None:
    entry = load(fixture_name("google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"))
    entry["protoPayload"]["resourceName"] = f"projects/{PROJECT}/locations/{REGION}"
    assert parse_event(entry).resource == ConnectorName(PROJECT, REGION, "conn-a")
    entry["protoPayload"]["request"]["connectorId"] = "a/b"
    with pytest.raises(InvalidName, match="connectorId"):
        parse_event(entry)


def test_parse_time_accepts_nanoseconds_and_offsets() -> None:
    assert parse_time("2024-05-07T00:52:20.371331938Z") == datetime(2024, 5, 7, 0, 52, 20, 371331, tzinfo=timezone.utc)
    assert parse_time("2018-09-06T07:22:16.474-07:00") == datetime(2018, 9, 6, 14, 22, 16, 474000, tzinfo=timezone.utc)
    with pytest.raises(MalformedEvent):
        parse_time("0001-01-01T00:00:00+01:00")


# --------------------------------------------------------------------------- property


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
envelope_keys = st.sampled_from(["protoPayload", "specversion", "type", "data", "message", "logName", "insertId",
                                 "timestamp", "operation", "resource", "data_base64"])
envelopes = st.dictionaries(envelope_keys | st.text(max_size=8), json_values, max_size=6)
base64_payloads = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=60).map(lambda raw: base64.b64encode(raw).decode()),
    json_values.map(lambda value: base64.b64encode(json.dumps(value).encode()).decode()),
)
cloudevents = st.fixed_dictionaries(
    {"specversion": st.just("1.0"), "type": st.sampled_from([AUDIT_LOG_EVENT_TYPE, PUBSUB_EVENT_TYPE])},
    optional={
        "data": json_values | st.fixed_dictionaries({}, optional={
            "message": json_values | st.fixed_dictionaries({}, optional={"data": base64_payloads | json_values})}),
        "data_base64": base64_payloads,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=json_values | envelopes | cloudevents | cloudevents.map(json.dumps))
def test_parse_event_on_arbitrary_json_raises_only_permanent_errors(source: object) -> None:
    try:
        parse_event(source)
    except PermanentError:
        pass


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, prefix + (index,))
    return found


FIXTURE_ENTRIES = [load(name) for name in AUDIT_FIXTURES]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parse_event_on_mutated_fixtures_raises_only_permanent_errors(data: st.DataObject) -> None:
    entry = copy.deepcopy(data.draw(st.sampled_from(FIXTURE_ENTRIES)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(entry)))
        target = entry
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = data.draw(json_values)
    form = data.draw(st.sampled_from(["entry", "pubsub", "audit"]))
    source: object = entry
    if form == "pubsub":
        source = {"specversion": "1.0", "type": PUBSUB_EVENT_TYPE, "data": as_pubsub_body(entry)}
    elif form == "audit":
        source = {"specversion": "1.0", "type": AUDIT_LOG_EVENT_TYPE, "data": entry}
    try:
        event = parse_event(source)
    except PermanentError:
        return
    assert event.insert_id and event.resource.relative
