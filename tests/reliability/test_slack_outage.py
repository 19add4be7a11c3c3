"""Acceptance: Slack answers 500 for a whole window (default 60 s) while 100 findings arrive; all 100 are
posted afterwards, none twice.

notify_slack runs under the real Functions Framework; Pub/Sub's redelivery is simulated the way the
platform does it: an invocation that failed (HTTP 500) is delivered again after an exponential backoff
(Pub/Sub's retry policy, scaled down and capped at 5 s). Set EGRESS_GUARD_SLACK_OUTAGE_S to shorten the
window locally, e.g. EGRESS_GUARD_SLACK_OUTAGE_S=5.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections import Counter

import pytest
from functions_framework import create_app

from localcloud.slack_receiver import RunningReceiver
from tests.slack_helpers import (  # noqa: F401  (slack_receiver is a fixture)
    NOTIFY_MAIN,
    WEBHOOK_PATH,
    load_finding,
    numbered,
    pubsub_cloud_event,
    slack_receiver,
)

pytestmark = pytest.mark.reliability

OUTAGE_S = float(os.environ.get("EGRESS_GUARD_SLACK_OUTAGE_S", "60"))
MAX_REDELIVERY_BACKOFF_S = 5.0
POSTED_OUTCOMES = ["remediated-nat-created", "remediated-firewalls", "planned-dry-run", "exempt", "blocked", "failed"]
FINDINGS = 100  # issue 6: "Slack down for 60 s during 100 findings"


def _control(receiver: RunningReceiver, **fault: object) -> None:
    request = urllib.request.Request(f"{receiver.url}/_control", data=json.dumps(fault).encode(), method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def _messages(receiver: RunningReceiver) -> list[dict]:
    with urllib.request.urlopen(f"{receiver.url}/_messages", timeout=5) as response:
        return json.loads(response.read())


def test_slack_outage_window_of_500s_loses_nothing_and_posts_nothing_twice(
    slack_receiver: RunningReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_receiver.webhook_url(WEBHOOK_PATH))
    # No in-process retry (the retry handlers have their own tests): each failed post returns at once, so
    # 100 findings make many redelivery rounds within the outage instead of sleeping through it.
    monkeypatch.setenv("EGRESS_GUARD_SLACK_MAX_RETRIES", "0")
    client = create_app("notify_slack", str(NOTIFY_MAIN), "cloudevent").test_client()
    findings = [numbered(load_finding(POSTED_OUTCOMES[index % len(POSTED_OUTCOMES)]), index)
                for index in range(FINDINGS)]
    events = {finding.id: pubsub_cloud_event(finding, event_id=str(index)) for index, finding in enumerate(findings)}

    _control(slack_receiver, status=500, seconds=OUTAGE_S)
    pending = dict(events)
    deliveries: Counter[str] = Counter()
    backoff = 0.5
    deadline = time.monotonic() + OUTAGE_S + 120  # bounded: the test stops by itself
    while pending and time.monotonic() < deadline:
        for finding_id, (headers, body) in list(pending.items()):
            deliveries[finding_id] += 1
            status = client.post("/", headers=headers, data=body).status_code
            assert status in (200, 500), status
            if status == 200:
                del pending[finding_id]
        if pending:
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_REDELIVERY_BACKOFF_S)

    assert not pending, f"not delivered after the outage: {sorted(pending)}"
    assert all(deliveries[finding.id] >= 2 for finding in findings), "every finding met the outage and was redelivered"

    # Pub/Sub may deliver each once more (at-least-once): still posted once.
    for headers, body in events.values():
        assert client.post("/", headers=headers, data=body).status_code == 200
    posted = Counter(finding.id for message in _messages(slack_receiver) for finding in findings if finding.id in json.dumps(message))
    assert posted == Counter({finding.id: 1 for finding in findings})
    print(f"\nSlack down {OUTAGE_S:g} s during {len(findings)} findings: {len(posted)} posted afterwards, "
          f"{sum(1 for n in posted.values() if n > 1)} twice, {sum(deliveries.values())} deliveries "
          f"({sum(deliveries.values()) - len(findings)} redeliveries)")
