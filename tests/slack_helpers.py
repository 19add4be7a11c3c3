"""Shared by the notify_slack tests: fixture findings, the in-process Slack receiver, CloudEvents."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from egress_guard.findings import Change, Finding
from egress_guard.notify.message import pubsub_push_body
from localcloud.slack_receiver import RunningReceiver, serve_in_thread

ROOT = pathlib.Path(__file__).resolve().parents[1]
SLACK_FIXTURES = ROOT / "tests" / "fixtures" / "slack"
FINDINGS_DIR = SLACK_FIXTURES / "findings"
GOLDEN_DIR = SLACK_FIXTURES / "golden"
NOTIFY_MAIN = ROOT / "functions" / "notify_slack" / "main.py"

# A webhook path in Slack's shape; the last part is the secret that must never reach a log.
WEBHOOK_PATH = "T0EGRESS01/B0GUARD001/s3cr3tW3bh00kT0k3nXYZ123"
WEBHOOK_SECRET = "s3cr3tW3bh00kT0k3nXYZ123"


def finding_names() -> list[str]:
    return sorted(path.stem for path in FINDINGS_DIR.glob("*.json"))


def load_finding(name: str) -> Finding:
    return Finding.from_json((FINDINGS_DIR / f"{name}.json").read_text())


def numbered(finding: Finding, index: int) -> Finding:
    """A distinct finding (its own id) with the same content."""
    return dataclasses.replace(finding, id=f"{finding.id[:16]}-{index:05d}")


def with_firewall_changes(finding: Finding, count: int) -> Finding:
    changes = tuple(
        Change(
            action="compute.firewalls.insert",
            resource=f"projects/{finding.project}/global/firewalls/egress-guard-allow-{index:04d}",
            before=None,
            after={
                "name": f"egress-guard-allow-{index:04d}",
                "direction": "INGRESS",
                "priority": 980,
                "allowed": [{"IPProtocol": "tcp", "ports": [str(1000 + index)]}],
                "sourceTags": ["vpc-connector-europe-west2-conn-payments"],
                "targetTags": [f"app-{index:04d}"],
            },
        )
        for index in range(count)
    )
    return dataclasses.replace(finding, changes=changes)


def pubsub_cloud_event(finding: Finding, *, event_id: str = "1", data: Any = None) -> tuple[dict[str, str], str]:
    """A structured-mode Pub/Sub CloudEvent (headers, body), as Eventarc delivers it to a function."""
    body = {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/acme-prod/topics/egress-guard-findings",
        "id": event_id,
        "time": finding.time,
        "datacontenttype": "application/json",
        "data": data if data is not None else pubsub_push_body(finding, message_id=event_id),
    }
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(body)


@pytest.fixture
def slack_receiver() -> Iterator[RunningReceiver]:
    """A Slack webhook receiver on a free 127.0.0.1 port, on a thread, stopped at the end."""
    receiver = serve_in_thread("127.0.0.1", 0)
    try:
        yield receiver
    finally:
        receiver.stop()
