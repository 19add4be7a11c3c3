"""SlackDelivery against the real local Slack receiver (a thread on a free 127.0.0.1 port).

Waits are kept short (Retry-After 1, backoff 0.01 s, windows under a second); nothing asserts a duration.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from egress_guard.findings import Finding
from egress_guard.notify.deliver import DeliveryResult, SlackDelivery, TransientError, redact_url
from localcloud.slack_receiver import RunningReceiver
from tests.slack_helpers import (  # noqa: F401  (slack_receiver is a fixture)
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    load_finding,
    numbered,
    slack_receiver,
)


def control(receiver: RunningReceiver, **fault: object) -> None:
    request = urllib.request.Request(
        f"{receiver.url}/_control", data=json.dumps(fault).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def messages(receiver: RunningReceiver) -> list[dict]:
    with urllib.request.urlopen(f"{receiver.url}/_messages", timeout=5) as response:
        return json.loads(response.read())


def health(receiver: RunningReceiver) -> dict:
    with urllib.request.urlopen(f"{receiver.url}/_health", timeout=5) as response:
        return json.loads(response.read())


def posted_ids(receiver: RunningReceiver, findings: list[Finding]) -> list[str]:
    """Which findings each recorded message is about (the footer carries the id)."""
    ids = []
    for message in messages(receiver):
        text = json.dumps(message)
        ids.extend(finding.id for finding in findings if finding.id in text)
    return ids


def make_delivery(receiver: RunningReceiver, **overrides: object) -> SlackDelivery:
    options: dict = {"max_retries": 3, "backoff_factor": 0.01, "timeout_s": 5.0}
    options.update(overrides)
    return SlackDelivery(receiver.webhook_url(WEBHOOK_PATH), **options)


def deliver_with_redelivery(delivery: SlackDelivery, finding: Finding, *, attempts: int = 200) -> tuple[DeliveryResult, int]:
    """What Pub/Sub does: call again after the function raised. Returns (result, failures seen)."""
    failures = 0
    for _ in range(attempts):
        try:
            return delivery.deliver(finding), failures
        except TransientError:
            failures += 1
            time.sleep(0.05)
    raise AssertionError(f"finding {finding.id} still not delivered after {attempts} deliveries")


def test_slack_delivery_posts_once_and_not_again(slack_receiver: RunningReceiver) -> None:
    delivery = make_delivery(slack_receiver)
    finding = load_finding("remediated-nat-created")
    assert delivery.deliver(finding) is DeliveryResult.POSTED
    assert delivery.deliver(finding) is DeliveryResult.ALREADY_POSTED
    assert posted_ids(slack_receiver, [finding]) == [finding.id]
    assert "blocks" in messages(slack_receiver)[0]


def test_slack_delivery_burst_of_429_loses_nothing_and_posts_nothing_twice(slack_receiver: RunningReceiver) -> None:
    findings = [numbered(load_finding("remediated-firewalls"), index) for index in range(6)]
    delivery = make_delivery(slack_receiver, max_retries=4)
    control(slack_receiver, status=429, retry_after=1, count=6)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(delivery.deliver, findings))
    assert results == [DeliveryResult.POSTED] * 6
    assert health(slack_receiver)["requests"] == 12  # six 429s answered, six posts recorded

    # Pub/Sub redelivers some of them (at least once): nothing is posted twice.
    with ThreadPoolExecutor(max_workers=6) as pool:
        again = list(pool.map(delivery.deliver, findings + findings))
    assert again == [DeliveryResult.ALREADY_POSTED] * 12
    assert sorted(posted_ids(slack_receiver, findings)) == sorted(finding.id for finding in findings)


def test_slack_delivery_raises_transient_when_429_outlasts_retries(slack_receiver: RunningReceiver) -> None:
    finding = load_finding("blocked")
    delivery = make_delivery(slack_receiver, max_retries=1)
    control(slack_receiver, status=429, retry_after=1, count=5)
    with pytest.raises(TransientError) as raised:
        delivery.deliver(finding)
    assert raised.value.code == 429
    control(slack_receiver, status=429, count=0)  # Slack recovers; Pub/Sub redelivers
    assert delivery.deliver(finding) is DeliveryResult.POSTED
    assert posted_ids(slack_receiver, [finding]) == [finding.id]


def test_slack_delivery_does_not_wait_for_a_retry_after_longer_than_the_function(slack_receiver: RunningReceiver) -> None:
    delivery = make_delivery(slack_receiver, max_retry_after_s=5)
    control(slack_receiver, status=429, retry_after=3600, count=1)
    with pytest.raises(TransientError):
        delivery.deliver(load_finding("blocked"))
    assert messages(slack_receiver) == []


def test_slack_delivery_stops_retrying_when_the_wait_would_outlast_the_invocation_budget(
        slack_receiver: RunningReceiver) -> None:
    # Retry-After 1 s (slack_sdk adds up to 1 s) and a request of up to 5 s: with 5.5 s, no retry fits, so
    # the invocation fails now (Pub/Sub redelivers later, to one instance) instead of posting after
    # the push's ack deadline, when another instance may be posting the same finding.
    finding = load_finding("blocked")
    delivery = make_delivery(slack_receiver, max_retries=3)
    control(slack_receiver, status=429, retry_after=1, count=1)
    with pytest.raises(TransientError) as raised:
        delivery.deliver(finding, deadline=time.monotonic() + 5.5)
    assert raised.value.code == 429 and health(slack_receiver)["requests"] == 1, "no retry started"
    # Not even a first request starts when a whole one does not fit.
    with pytest.raises(TransientError, match="no time left"):
        delivery.deliver(finding, deadline=time.monotonic() + 1)
    assert health(slack_receiver)["requests"] == 1
    # With room, the same 429 is retried within the call.
    control(slack_receiver, status=429, retry_after=1, count=1)
    assert delivery.deliver(finding, deadline=time.monotonic() + 60) is DeliveryResult.POSTED


def test_slack_delivery_retries_server_errors_within_one_call(slack_receiver: RunningReceiver) -> None:
    delivery = make_delivery(slack_receiver, max_retries=3)
    for status in (500, 502, 503, 504):
        finding = numbered(load_finding("exempt"), status)
        control(slack_receiver, status=status, count=2)
        assert delivery.deliver(finding) is DeliveryResult.POSTED
    assert len(messages(slack_receiver)) == 4


def test_slack_delivery_500_window_then_recovery(slack_receiver: RunningReceiver) -> None:
    finding = load_finding("failed")
    delivery = make_delivery(slack_receiver, max_retries=1)
    control(slack_receiver, status=500, seconds=0.6)
    result, failures = deliver_with_redelivery(delivery, finding)
    assert result is DeliveryResult.POSTED
    assert failures >= 1  # the window was real: at least one invocation failed and was redelivered
    assert posted_ids(slack_receiver, [finding]) == [finding.id]


def test_slack_delivery_falls_back_to_text_when_blocks_are_refused(slack_receiver: RunningReceiver) -> None:
    finding = load_finding("planned-dry-run")
    delivery = make_delivery(slack_receiver)
    control(slack_receiver, status=400, body="invalid_blocks", count=1)
    assert delivery.deliver(finding) is DeliveryResult.POSTED_TEXT_ONLY
    [message] = messages(slack_receiver)
    assert set(message) == {"text"}
    assert "DRY-RUN" in message["text"] and finding.id in message["text"]
    assert delivery.deliver(finding) is DeliveryResult.ALREADY_POSTED


def test_slack_delivery_permanent_400_is_logged_and_acknowledged(
    slack_receiver: RunningReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    finding = load_finding("blocked")
    delivery = make_delivery(slack_receiver)
    control(slack_receiver, status=400, body="invalid_blocks", count=2)
    with caplog.at_level(logging.INFO):
        assert delivery.deliver(finding) is DeliveryResult.REJECTED  # no exception: acknowledged
    assert messages(slack_receiver) == []
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert errors and finding.id in errors[-1].getMessage()
    assert finding.reason in errors[-1].getMessage()  # the finding itself is in the log: not lost silently


def test_slack_delivery_unknown_webhook_404_is_permanent(slack_receiver: RunningReceiver) -> None:
    delivery = SlackDelivery(f"{slack_receiver.url}/services/", max_retries=2, backoff_factor=0.01)
    assert delivery.deliver(load_finding("compliant")) is DeliveryResult.REJECTED


def test_slack_delivery_same_finding_concurrently_posts_once(slack_receiver: RunningReceiver) -> None:
    finding = load_finding("remediated-nat-added")
    delivery = make_delivery(slack_receiver)
    start = threading.Barrier(8)

    def deliver() -> DeliveryResult:
        start.wait()
        return delivery.deliver(finding)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [future.result() for future in [pool.submit(deliver) for _ in range(8)]]
    assert results.count(DeliveryResult.POSTED) == 1
    assert results.count(DeliveryResult.ALREADY_POSTED) == 7
    assert len(messages(slack_receiver)) == 1


def test_slack_delivery_remembers_a_bounded_number_of_findings(slack_receiver: RunningReceiver) -> None:
    delivery = make_delivery(slack_receiver, remember=2)
    first, second, third = (numbered(load_finding("exempt"), index) for index in range(3))
    for finding in (first, second, third):
        assert delivery.deliver(finding) is DeliveryResult.POSTED
    assert delivery.deliver(third) is DeliveryResult.ALREADY_POSTED
    assert delivery.deliver(first) is DeliveryResult.POSTED  # forgotten (LRU): posted again


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_slack_delivery_never_logs_the_webhook_url(
    slack_receiver: RunningReceiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    finding = load_finding("failed")

    delivery = make_delivery(slack_receiver, max_retries=1)
    control(slack_receiver, status=500, count=10)
    with pytest.raises(TransientError) as raised:
        delivery.deliver(finding)
    errors.append(str(raised.value))
    control(slack_receiver, status=400, body="invalid_blocks", count=2)
    assert delivery.deliver(finding) is DeliveryResult.REJECTED
    errors.append(repr(delivery))

    unreachable = SlackDelivery(f"http://127.0.0.1:{_closed_port()}/services/{WEBHOOK_PATH}", max_retries=1, backoff_factor=0.01)
    with pytest.raises(TransientError) as raised:
        unreachable.deliver(finding)
    errors.append(str(raised.value))
    errors.append(repr(raised.value.__cause__))
    with pytest.raises(ValueError) as bad:
        SlackDelivery(f"ftp://hooks.example/services/{WEBHOOK_PATH}", max_retries=1)
    errors.append(str(bad.value))

    captured = capsys.readouterr()
    everything = "\n".join([caplog.text, *errors, captured.out, captured.err])
    assert WEBHOOK_SECRET not in everything
    assert "[redacted]" in caplog.text  # slack_sdk did log the retry, and it was redacted
    assert redact_url(slack_receiver.webhook_url(WEBHOOK_PATH)) == f"{slack_receiver.url}/[redacted]"
