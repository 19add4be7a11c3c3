"""FindingPublisher (with a recording publisher) and the JSON log lines."""

from __future__ import annotations

import concurrent.futures
import io
import json
import logging
from typing import Any

import pytest

from egress_guard.errors import ConfigError, TransientError
from egress_guard.findings import Finding, Mode, Outcome, ResourceRef, Trigger
from egress_guard.log import LABELS_KEY, fields, setup_logging
from egress_guard.publish import FindingPublisher

TOPIC = "projects/eg-demo-project/topics/egress-guard-findings"


def a_finding(outcome: Outcome = Outcome.REMEDIATED) -> Finding:
    return Finding(
        guardrail="ensure_nat", mode=Mode.ENFORCE, outcome=outcome, project="eg-demo-project",
        resource=ResourceRef("vpcaccess.connector", "projects/eg-demo-project/locations/europe-west2/connectors/conn-a"),
        trigger=Trigger(methodName="google.cloud.vpcaccess.v1.VpcAccessService.CreateConnector", insertId="i1",
                        operationId="op-1", principal="alice@example.com"),
        reason="Created Cloud NAT egress-guard-nat-europe-west2.", region="europe-west2", network="net-a",
    )


class Recorder:
    def __init__(self, result: Any = "msg-1") -> None:
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []
        self.result = result

    def publish(self, topic: str, data: bytes, **attributes: str) -> concurrent.futures.Future[str]:
        self.calls.append((topic, data, attributes))
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        if isinstance(self.result, BaseException):
            future.set_exception(self.result)
        elif self.result is not None:
            future.set_result(self.result)
        return future  # result None: never completes (a timeout)


@pytest.fixture
def log_stream() -> Any:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    setup_logging(stream=stream)
    yield stream
    for handler in [h for h in root.handlers if type(h).__name__ == "_StructuredHandler"]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_finding_publisher_publishes_json_with_attributes(log_stream: io.StringIO) -> None:
    recorder = Recorder()
    finding = a_finding()
    assert FindingPublisher(recorder, TOPIC).publish(finding) == "msg-1"
    (topic, data, attributes), = recorder.calls
    assert topic == TOPIC
    assert Finding.from_json(data) == finding
    assert attributes == {"guardrail": "ensure_nat", "outcome": "remediated", "project": "eg-demo-project"}
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert line["severity"] == "NOTICE" and line["message_id"] == "msg-1" and line["finding_id"] == finding.id
    assert line[LABELS_KEY] == {"guardrail": "ensure_nat", "outcome": "remediated", "project": "eg-demo-project",
                                "mode": "enforce"}
    assert line["message"].startswith("ensure_nat remediated projects/eg-demo-project/locations/europe-west2/")


def test_finding_publisher_timeout_is_transient(log_stream: io.StringIO) -> None:
    with pytest.raises(TransientError, match="did not accept the finding within 0.01s"):
        FindingPublisher(Recorder(result=None), TOPIC, timeout=0.01).publish(a_finding())
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert line["severity"] == "ERROR" and "publish_error" in line


def test_finding_publisher_failure_is_transient(log_stream: io.StringIO) -> None:
    from google.api_core.exceptions import NotFound

    with pytest.raises(TransientError, match="NotFound"):
        FindingPublisher(Recorder(result=NotFound("topic")), TOPIC).publish(a_finding())


def test_finding_publisher_needs_a_topic() -> None:
    with pytest.raises(ConfigError, match="EGRESS_GUARD_FINDINGS_TOPIC"):
        FindingPublisher(Recorder(), "")


def test_setup_logging_is_idempotent_and_writes_cloud_logging_json(log_stream: io.StringIO) -> None:
    setup_logging(stream=log_stream)
    setup_logging(stream=log_stream)
    ours = [h for h in logging.getLogger().handlers if type(h).__name__ == "_StructuredHandler"]
    assert len(ours) == 1
    logging.getLogger("egress_guard.test").warning(
        "router %s busy", "router-a", extra=fields(labels={"guardrail": "ensure_nat"}, attempt=2))
    logging.getLogger("egress_guard.test").info("plain", extra={"connector": "conn-a"})
    first, second = (json.loads(line) for line in log_stream.getvalue().splitlines()[-2:])
    assert first["severity"] == "WARNING" and first["message"] == "router router-a busy"
    assert first[LABELS_KEY] == {"guardrail": "ensure_nat"} and first["attempt"] == 2
    assert "trace" not in json.dumps(first)
    assert second["severity"] == "INFO" and second["connector"] == "conn-a"


def test_finding_json_carries_every_field_and_round_trips_with_changes() -> None:
    import dataclasses

    from egress_guard.findings import Change

    finding = dataclasses.replace(a_finding(), changes=(
        Change("compute.routers.patch", "projects/p/regions/r/routers/x", {"nats": [{"name": "a"}]}, {"nats": []}),),
        links=("https://console.cloud.google.com/x",))
    body = finding.to_dict()
    fields_written = {f.name for f in dataclasses.fields(Finding)} | {"severity"}
    assert set(body) == fields_written  # a new field cannot be left out of the written-out form
    assert body["changes"] == [{"action": "compute.routers.patch", "resource": "projects/p/regions/r/routers/x",
                                "before": {"nats": [{"name": "a"}]}, "after": {"nats": []}}]
    assert Finding.from_json(finding.to_json()) == finding
