"""functions/notify_slack/main.py through the real Functions Framework (create_app(...).test_client()),
posting to the local Slack receiver, with structured Pub/Sub CloudEvents."""

from __future__ import annotations

import base64
import json
import logging
import urllib.request

import pytest
from functions_framework import create_app

from egress_guard.notify.settings import DEFAULT_OUTCOMES, SettingsError, notify_outcomes
from egress_guard.findings import Outcome
from localcloud.slack_receiver import RunningReceiver
from tests.slack_helpers import (  # noqa: F401  (slack_receiver is a fixture)
    NOTIFY_MAIN,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    load_finding,
    pubsub_cloud_event,
    slack_receiver,
)


def control(receiver: RunningReceiver, **fault: object) -> None:
    request = urllib.request.Request(f"{receiver.url}/_control", data=json.dumps(fault).encode(), method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def messages(receiver: RunningReceiver) -> list[dict]:
    with urllib.request.urlopen(f"{receiver.url}/_messages", timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def client(slack_receiver: RunningReceiver, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_receiver.webhook_url(WEBHOOK_PATH))
    monkeypatch.setenv("EGRESS_GUARD_SLACK_MAX_RETRIES", "1")
    monkeypatch.delenv("EGRESS_GUARD_POLICY", raising=False)
    return create_app("notify_slack", str(NOTIFY_MAIN), "cloudevent").test_client()


def test_notify_slack_posts_a_finding(client, slack_receiver: RunningReceiver) -> None:
    finding = load_finding("remediated-nat-created")
    headers, body = pubsub_cloud_event(finding)
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200
    [message] = messages(slack_receiver)
    assert finding.id in json.dumps(message)
    assert message["blocks"][0]["type"] == "header"


def test_notify_slack_posts_a_redelivered_finding_once(client, slack_receiver: RunningReceiver) -> None:
    finding = load_finding("blocked")
    for event_id in ("1", "2", "1"):  # a redelivery, and the same finding published twice
        headers, body = pubsub_cloud_event(finding, event_id=event_id)
        assert client.post("/", headers=headers, data=body).status_code == 200
    assert len(messages(slack_receiver)) == 1


def test_notify_slack_skips_compliant_by_default(client, slack_receiver: RunningReceiver) -> None:
    headers, body = pubsub_cloud_event(load_finding("compliant"))
    assert client.post("/", headers=headers, data=body).status_code == 200
    assert messages(slack_receiver) == []


@pytest.mark.parametrize(
    "data",
    [
        {"message": {"data": "!!! not base64 !!!", "messageId": "9"}},
        {"message": {"data": base64.b64encode(b"{not json").decode(), "messageId": "9"}},
        {"message": {"data": base64.b64encode(b'{"schema": "something-else/v1"}').decode()}},
        {"message": {"data": base64.b64encode(b"[1, 2]").decode()}},
        {"message": {}},
        {"subscription": "projects/p/subscriptions/s"},
    ],
    ids=["not-base64", "not-json", "other-schema", "json-list", "no-data", "no-message"],
)
def test_notify_slack_acknowledges_what_is_not_a_finding(
    client, slack_receiver: RunningReceiver, caplog: pytest.LogCaptureFixture, data: dict
) -> None:
    headers, body = pubsub_cloud_event(load_finding("failed"), data=data)
    with caplog.at_level(logging.ERROR):
        response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200  # acknowledged: redelivery cannot fix it
    assert messages(slack_receiver) == []
    assert any("ignoring CloudEvent" in record.getMessage() for record in caplog.records)


def test_notify_slack_fails_while_slack_is_down_then_posts_on_redelivery(
    client, slack_receiver: RunningReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    finding = load_finding("remediated-firewalls")
    headers, body = pubsub_cloud_event(finding)
    control(slack_receiver, status=503, count=100)
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 500  # the function failed: Pub/Sub will redeliver
    assert messages(slack_receiver) == []

    control(slack_receiver, status=503, count=0)
    assert client.post("/", headers=headers, data=body).status_code == 200
    assert len(messages(slack_receiver)) == 1
    assert WEBHOOK_SECRET not in caplog.text


def test_notify_slack_refuses_to_start_without_a_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    with pytest.raises(SettingsError, match="SLACK_WEBHOOK_URL"):
        create_app("notify_slack", str(NOTIFY_MAIN), "cloudevent")


def test_outcomes_posted_come_from_the_policy(tmp_path) -> None:
    assert notify_outcomes({}) == DEFAULT_OUTCOMES == frozenset(Outcome) - {Outcome.COMPLIANT}
    policy = tmp_path / "policy.yaml"
    policy.write_text("notify:\n  outcomes: [blocked, failed]\n")
    assert notify_outcomes({"EGRESS_GUARD_POLICY": str(policy)}) == {Outcome.BLOCKED, Outcome.FAILED}


def test_notify_slack_main_imports_no_heavy_client() -> None:
    """Cold start: no google-cloud client, no discovery client, no rich (checked in a fresh process)."""
    import subprocess
    import sys

    code = (
        "import importlib.util, sys, json\n"
        f"spec = importlib.util.spec_from_file_location('main', {str(NOTIFY_MAIN)!r})\n"
        "module = importlib.util.module_from_spec(spec); sys.modules['main'] = module; spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    modules = json.loads(result.stdout)
    # google.cloud.functions is the Functions Framework's own small Context module; nothing else of google.
    heavy = [
        name for name in modules
        if name.startswith(("google.", "googleapiclient", "grpc", "rich", "proto"))
        and not name.startswith("google.cloud.functions")
        and name != "google.cloud"
    ]
    assert heavy == []
