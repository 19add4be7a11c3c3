"""Cloud Logging in localcloud, driven by the real clients: audit entries, sinks to the real Pub/Sub
emulator and to an Eventarc-style target, and entries.list through google-cloud-logging."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.pubsub_emulator import pubsub_emulator  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.contract

CONNECTOR_CREATE = "google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector"
WAIT_S = 30.0  # upper bound for asynchronous deliveries; tests end as soon as the condition holds


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# ---- real clients pointed at localcloud ----------------------------------------------------------
def anonymous():
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


@pytest.fixture
def firewalls(localcloud_url):
    from google.cloud import compute_v1

    return compute_v1.FirewallsClient(credentials=anonymous(), transport="rest",
                                      client_options={"api_endpoint": localcloud_url})


@pytest.fixture
def connectors(localcloud_url):
    from google.cloud import vpcaccess_v1

    return vpcaccess_v1.VpcAccessServiceClient(credentials=anonymous(), transport="rest",
                                               client_options={"api_endpoint": f"{localcloud_url}/vpcaccess"})


@pytest.fixture
def run_services(localcloud_url):
    from google.cloud import run_v2

    return run_v2.ServicesClient(credentials=anonymous(), transport="rest",
                                 client_options={"api_endpoint": f"{localcloud_url}/run"})


@pytest.fixture
def logging_client(localcloud_url, project):
    from google.cloud import logging as cloud_logging

    return cloud_logging.Client(project=project, credentials=anonymous(), _use_grpc=False,
                                client_options={"api_endpoint": f"{localcloud_url}/logging"})


@pytest.fixture
def pubsub(pubsub_emulator, monkeypatch):  # noqa: F811
    """Publisher and subscriber on the emulator (the env is restored after each test)."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    yield publisher, subscriber
    subscriber.close()


@pytest.fixture
def sinks(localcloud) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """Create sinks through the control API; every sink made is deleted after the test."""
    made: list[str] = []

    def create(body: dict[str, Any]) -> dict[str, Any]:
        made.append(body["name"])
        return localcloud.request("POST", "sinks", body)

    yield create
    for name in made:
        localcloud.request("DELETE", f"sinks/{name}")


def sink_stats(localcloud, name: str) -> dict[str, Any]:
    return next(s for s in localcloud.request("GET", "sinks")["sinks"] if s["name"] == name)


def entries(localcloud, method: str | None = None) -> list[dict[str, Any]]:
    found = localcloud.request("GET", "entries")["entries"]
    return [e for e in found if method is None or e["protoPayload"]["methodName"] == method]


def topic_with_subscription(pubsub, project: str) -> tuple[str, str]:
    publisher, subscriber = pubsub
    suffix = uuid.uuid4().hex[:8]
    topic = publisher.create_topic(name=f"projects/{project}/topics/audit-{suffix}").name
    subscription = subscriber.create_subscription(name=f"projects/{project}/subscriptions/audit-{suffix}",
                                                  topic=topic).name
    return topic, subscription


def pull_all(subscriber, subscription: str, expected: int) -> list[Any]:
    """Pull until ``expected`` messages arrived, then once more to see that no more come."""
    messages: list[Any] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        response = subscriber.pull(subscription=subscription, max_messages=100, timeout=5)
        if response.received_messages:
            messages += [m.message for m in response.received_messages]
            subscriber.acknowledge(subscription=subscription,
                                   ack_ids=[m.ack_id for m in response.received_messages])
        elif len(messages) >= expected:
            break
    return messages


# ---- the calls ---------------------------------------------------------------------------------
def create_connector(connectors, project: str, region: str, name: str, cidr: str) -> None:
    from google.cloud import vpcaccess_v1

    operation = connectors.create_connector(
        parent=f"projects/{project}/locations/{region}", connector_id=name,
        connector=vpcaccess_v1.Connector(network="default", ip_cidr_range=cidr, min_instances=2, max_instances=3))
    operation.result(timeout=WAIT_S)


def wait_global(firewalls, project: str, operation) -> None:
    """compute_v1's ExtendedOperation.result() polls through an operations client built without our
    endpoint (it would call compute.googleapis.com), so wait with one that has it."""
    from google.cloud import compute_v1

    ops = compute_v1.GlobalOperationsClient(credentials=anonymous(), transport="rest",
                                            client_options={"api_endpoint": firewalls.api_endpoint})
    done = ops.wait(project=project, operation=operation.name)
    if done.error and done.error.errors:
        raise RuntimeError(f"operation {operation.name} failed: {done.error.errors[0].message}")


def insert_firewall(firewalls, project: str, name: str) -> None:
    from google.cloud import compute_v1

    rule = compute_v1.Firewall(name=name, network=f"projects/{project}/global/networks/default",
                               direction="INGRESS", source_ranges=["10.0.0.0/8"],
                               allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["22"])])
    wait_global(firewalls, project, firewalls.insert(project=project, firewall_resource=rule))


def create_run_service(run_services, project: str, region: str, name: str) -> None:
    from google.cloud import run_v2

    service = run_v2.Service(template=run_v2.RevisionTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")]))
    run_services.create_service(parent=f"projects/{project}/locations/{region}", service=service,
                                service_id=name).result(timeout=WAIT_S)


def create_network(localcloud_url: str, project: str) -> None:
    response = requests.post(f"{localcloud_url}/compute/v1/projects/{project}/global/networks",
                             json={"name": "default", "autoCreateSubnetworks": True}, timeout=10)
    assert response.status_code == 200, response.text
    wait_for(lambda: requests.get(f"{localcloud_url}/compute/v1/projects/{project}/global/networks/default",
                                  timeout=10).status_code == 200, "the default network")


# ---- tests -------------------------------------------------------------------------------------
def test_pubsub_sink_delivers_exactly_the_connector_entries(localcloud, localcloud_url, project, region, pubsub,
                                                            pubsub_emulator, sinks, connectors, firewalls,  # noqa: F811
                                                            run_services):
    topic, subscription = topic_with_subscription(pubsub, project)
    created = sinks({"name": "connectors", "destination": f"pubsub.googleapis.com/{topic}",
                     "filter": f'protoPayload.methodName="{CONNECTOR_CREATE}"',
                     "pubsub_emulator_host": pubsub_emulator})
    assert created["delivered"] == 0 and created["destination"] == f"pubsub.googleapis.com/{topic}"

    create_network(localcloud_url, project)
    insert_firewall(firewalls, project, "allow-ssh")
    create_connector(connectors, project, region, "conn-a", "10.8.0.0/28")
    create_run_service(run_services, project, region, "web")
    with pytest.raises(Exception):  # a second connector of that name: 409, logged as an ERROR entry
        create_connector(connectors, project, region, "conn-a", "10.9.0.0/28")

    # first + last for the create (LRO_FIRST_AND_LAST), one ERROR entry for the failed one
    wanted = wait_for(lambda: len(e := entries(localcloud, CONNECTOR_CREATE)) == 3 and e, "3 connector entries")
    assert len(entries(localcloud)) > len(wanted)  # compute, vpcaccess side effects and run wrote entries too
    wait_for(lambda: (s := sink_stats(localcloud, "connectors"))["pending"] == 0
             and s["offered"] == len(entries(localcloud)), "the sink to process every entry")

    messages = pull_all(pubsub[1], subscription, expected=len(wanted))
    received = [json.loads(m.data) for m in messages]
    assert sorted(e["insertId"] for e in received) == sorted(e["insertId"] for e in wanted)
    assert received == sorted(received, key=lambda e: e["timestamp"])  # the sink delivers in write order
    by_id = {e["insertId"]: e for e in wanted}
    for message, entry in zip(messages, received):
        assert entry == by_id[entry["insertId"]]
        assert dict(message.attributes) == {"logging.googleapis.com/timestamp": entry["timestamp"]}
    stats = sink_stats(localcloud, "connectors")
    assert stats["delivered"] == 3 and stats["failed"] == 0 and stats["dropped"] == 0
    assert [e.get("operation", {}).get("first", False) for e in received] == [True, False, False]
    assert received[2]["severity"] == "ERROR" and received[2]["protoPayload"]["status"]["code"] == 6


def test_the_guardrails_parse_what_the_sink_publishes(localcloud, localcloud_url, project, region, pubsub,
                                                      pubsub_emulator, sinks, connectors):  # noqa: F811
    """The Pub/Sub CloudEvent a function receives, built from the emulator's message as Eventarc does."""
    import base64

    events = pytest.importorskip("egress_guard.events")
    topic, subscription = topic_with_subscription(pubsub, project)
    sinks({"name": "vpc", "destination": f"pubsub.googleapis.com/{topic}", "pubsub_emulator_host": pubsub_emulator,
           "filter": 'protoPayload.serviceName="vpcaccess.googleapis.com"'})
    create_network(localcloud_url, project)
    create_connector(connectors, project, region, "conn-b", "10.8.0.16/28")
    messages = pull_all(pubsub[1], subscription, expected=2)
    assert len(messages) == 2

    def parse_message(message):
        data = {"message": {"data": base64.b64encode(message.data).decode(), "messageId": message.message_id,
                            "attributes": dict(message.attributes)},
                "subscription": subscription}
        return events.parse_event({"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished",
                                   "source": f"//pubsub.googleapis.com/{topic}", "id": "1", "data": data})

    for message in messages:
        event = parse_message(message)
        assert event.method_name == CONNECTOR_CREATE
        assert (event.resource.project, event.resource.region, event.resource.name) == (project, region, "conn-b")
    assert [(e.operation_first, e.operation_last) for e in map(parse_message, messages)] == [(True, False),
                                                                                            (False, True)]


class Receiver:
    """An Eventarc-style HTTP target on a free loopback port; answers ``status_codes`` in turn, then 204.
    While ``gate`` is cleared, every request waits for it (a destination that hangs)."""

    def __init__(self, status_codes: list[int] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._codes = list(status_codes or [])
        self._lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _app(self, environ, start_response):
        request = Request(environ)
        self.gate.wait(WAIT_S)
        with self._lock:
            code = self._codes.pop(0) if self._codes else 204
            if code < 300:
                self.requests.append((dict(request.headers), request.get_data()))
        return Response(status=code)(environ, start_response)

    def stop(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(status_codes: list[int] | None = None) -> Receiver:
        made.append(Receiver(status_codes))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def test_eventarc_target_receives_structured_audit_cloudevents(localcloud, localcloud_url, project, sinks,
                                                               firewalls, receiver):
    from cloudevents.http import from_http

    target = receiver(status_codes=[503])  # the first POST fails: the sink retries
    sinks({"name": "firewalls", "eventarc_target": target.url,
           "filter": 'protoPayload.methodName="v1.compute.firewalls.insert" AND resource.type="gce_firewall_rule"'})
    create_network(localcloud_url, project)
    insert_firewall(firewalls, project, "allow-web")
    logged = wait_for(lambda: len(e := entries(localcloud, "v1.compute.firewalls.insert")) == 2 and e,
                      "first and last firewall entries")
    wait_for(lambda: len(target.requests) == 2, "two CloudEvents")

    for (headers, body), entry in zip(target.requests, logged):
        assert headers["Content-Type"].startswith("application/cloudevents+json")
        event = from_http(headers, body)  # what functions-framework does with the request
        assert event["type"] == "google.cloud.audit.log.v1.written"
        assert event["source"] == f"//cloudaudit.googleapis.com/projects/{project}/logs/activity"
        assert event["subject"] == f"compute.googleapis.com/projects/{project}/global/firewalls/allow-web"
        assert event["methodname"] == "v1.compute.firewalls.insert"
        assert event["servicename"] == "compute.googleapis.com"
        assert event["resourcename"] == f"projects/{project}/global/firewalls/allow-web"
        assert event.data == entry
    assert [e["operation"].get("first", False) for e in logged] == [True, False]
    stats = sink_stats(localcloud, "firewalls")
    assert stats["delivered"] == 2 and stats["failed"] == 1 and "HTTP 503" in stats["last_error"]


def test_a_hanging_destination_does_not_hold_up_the_api_call(localcloud, localcloud_url, project, sinks,
                                                             firewalls, receiver):
    from google.api_core import exceptions

    target = receiver()
    target.gate.clear()  # the target accepts the connection and then hangs
    sinks({"name": "slow", "eventarc_target": target.url, "filter": ""})
    for name in ("a", "b", "c"):  # answered while the first delivery is still hanging
        with pytest.raises(exceptions.NotFound):
            firewalls.delete(project=project, firewall=name)
    stats = sink_stats(localcloud, "slow")
    assert stats["delivered"] == 0 and stats["offered"] == 3 and stats["pending"] == 3
    target.gate.set()
    wait_for(lambda: sink_stats(localcloud, "slow")["delivered"] == 3, "the deliveries after the target recovers")
    assert [json.loads(body)["data"]["protoPayload"]["resourceName"].rsplit("/", 1)[1]
            for _, body in target.requests] == ["a", "b", "c"]


def test_entries_list_with_the_real_logging_client_filters_by_time(localcloud, localcloud_url, project,
                                                                   logging_client, firewalls):
    from google.cloud import logging as cloud_logging

    create_network(localcloud_url, project)
    insert_firewall(firewalls, project, "early")
    wait_for(lambda: len(entries(localcloud, "v1.compute.firewalls.insert")) == 2, "the early entries")
    cut = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    time.sleep(0.01)  # entries written from now on have later timestamps than the cut
    insert_firewall(firewalls, project, "late")
    wait_for(lambda: len(entries(localcloud, "v1.compute.firewalls.insert")) == 4, "the late entries")

    method = 'protoPayload.methodName="v1.compute.firewalls.insert"'
    late = list(logging_client.list_entries(resource_names=[f"projects/{project}"],
                                            filter_=f'{method} AND timestamp>="{cut}"'))
    assert [e.payload["resourceName"] for e in late] == [f"projects/{project}/global/firewalls/late"] * 2
    assert [bool(e.operation.get("first")) for e in late] == [True, False]

    everything = list(logging_client.list_entries(resource_names=[f"projects/{project}"], filter_=method,
                                                  order_by=cloud_logging.DESCENDING, page_size=1))
    assert [e.payload["resourceName"].rsplit("/", 1)[1] for e in everything] == ["late", "late", "early", "early"]
    assert [e.insert_id for e in everything] == [e["insertId"] for e in reversed(
        entries(localcloud, "v1.compute.firewalls.insert"))]
    assert list(logging_client.list_entries(resource_names=["projects/another-project"], filter_=method)) == []

    response = requests.post(f"{localcloud_url}/logging/v2/entries:list",
                             json={"resourceNames": [f"projects/{project}"], "filter": "timestamp>="}, timeout=10)
    assert response.status_code == 400 and "Unparseable filter" in response.json()["error"]["message"]


def test_failed_calls_write_error_entries_with_status(localcloud, localcloud_url, project, firewalls):
    from google.api_core import exceptions

    create_network(localcloud_url, project)
    insert_firewall(firewalls, project, "dup")
    with pytest.raises(exceptions.Conflict):
        insert_firewall(firewalls, project, "dup")
    with pytest.raises(exceptions.NotFound):
        firewalls.delete(project=project, firewall="missing")
    failed = [e for e in entries(localcloud) if e["severity"] == "ERROR"]
    by_method = {e["protoPayload"]["methodName"]: e for e in failed}
    assert by_method["v1.compute.firewalls.insert"]["protoPayload"]["status"]["code"] == 6  # ALREADY_EXISTS
    assert by_method["v1.compute.firewalls.delete"]["protoPayload"]["status"]["code"] == 5  # NOT_FOUND
    deleted = by_method["v1.compute.firewalls.delete"]
    assert deleted["protoPayload"]["resourceName"] == f"projects/{project}/global/firewalls/missing"
    assert "operation" not in deleted and "response" not in deleted["protoPayload"]


def test_run_v1_deploy_writes_one_synchronous_entry(localcloud, localcloud_url, project, region):
    service = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "hello"},
               "spec": {"template": {"spec": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]}}}}
    response = requests.post(f"http://{region}-run.localcloud/run/apis/serving.knative.dev/v1/namespaces/{project}"
                             "/services", json=service, proxies={"http": localcloud_url}, timeout=10)
    assert response.status_code == 200, response.text
    (entry,) = entries(localcloud, "google.cloud.run.v1.Services.CreateService")
    assert "operation" not in entry and entry["severity"] == "NOTICE"
    payload = entry["protoPayload"]
    assert payload["resourceName"] == f"namespaces/{project}/services/hello"
    assert payload["response"]["@type"] == "type.googleapis.com/google.cloud.run.v1.Service"
    assert payload["response"]["metadata"]["name"] == "hello"
    assert payload["request"]["region"] == region
    assert entry["resource"]["type"] == "cloud_run_revision"


def test_sink_control_api_rejects_bad_filters_and_survives_reset(localcloud, localcloud_url, sinks, receiver):
    bad_filter = 'protoPayload.methodName="x" AND ('
    response = requests.post(f"{localcloud_url}/_localcloud/sinks", timeout=10, json={
        "name": "bad", "eventarc_target": "http://127.0.0.1:9/", "filter": bad_filter})
    assert response.status_code == 400
    assert f"position {len(bad_filter)}" in response.json()["error"]["message"]  # the end: "(" is unclosed
    duplicate = {"name": "keep", "eventarc_target": receiver().url, "filter": ""}
    sinks(duplicate)
    assert requests.post(f"{localcloud_url}/_localcloud/sinks", json=duplicate, timeout=10).status_code == 409
    localcloud.reset()
    assert [s["name"] for s in localcloud.request("GET", "sinks")["sinks"]] == ["keep"]
    assert localcloud.request("GET", "entries") == {"entries": []}
    assert requests.delete(f"{localcloud_url}/_localcloud/sinks/nope", timeout=10).status_code == 404
