"""`egress-guard dead-letters [--redrive]` against the official Pub/Sub emulator.

A finding really dead-lettered by the emulator (a subscription whose consumer nacks it until
``max_delivery_attempts``), then: listing takes nothing out; a redrive whose publish fails keeps
it; a redrive to a topic that exists publishes it there and empties the inbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from egress_guard.deadletters import SOURCE_SUBSCRIPTION_ATTRIBUTE
from egress_guard.findings import Finding, Mode, Outcome, ResourceRef, Trigger
from tests.pubsub_emulator import EMULATOR_PROJECT as PROJECT
from tests.pubsub_emulator import pubsub_emulator  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.contract

MAX_ATTEMPTS = 5  # the smallest Pub/Sub accepts


@pytest.fixture
def pubsub(pubsub_emulator, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    yield publisher, subscriber
    subscriber.close()


def _finding() -> Finding:
    return Finding(guardrail="ensure_nat", mode=Mode.ENFORCE, outcome=Outcome.REMEDIATED, project=PROJECT,
                   resource=ResourceRef("vpcaccess.connector", f"projects/{PROJECT}/locations/r/connectors/c1"),
                   trigger=Trigger(insertId=uuid.uuid4().hex), reason="a NAT was created")


def _setup(pubsub) -> dict[str, str]:
    """findings topic -> notify subscription (dead letters after 5) ; dead-letter topic -> inbox."""
    publisher, subscriber = pubsub
    tag = uuid.uuid4().hex[:8]
    names = {
        "findings": publisher.topic_path(PROJECT, f"findings-{tag}"),
        "dead": publisher.topic_path(PROJECT, f"dead-{tag}"),
        "notify": subscriber.subscription_path(PROJECT, f"notify-{tag}"),
        "watch": subscriber.subscription_path(PROJECT, f"findings-watch-{tag}"),
        "inbox": subscriber.subscription_path(PROJECT, f"inbox-{tag}"),
    }
    for topic in ("findings", "dead"):
        publisher.create_topic(name=names[topic])
    subscriber.create_subscription(request={
        "name": names["notify"], "topic": names["findings"], "ack_deadline_seconds": 10,
        "dead_letter_policy": {"dead_letter_topic": names["dead"], "max_delivery_attempts": MAX_ATTEMPTS}})
    subscriber.create_subscription(name=names["inbox"], topic=names["dead"])
    return names


def _dead_letter_one(pubsub, names: dict[str, str], finding: Finding) -> None:
    """Publish the finding and refuse it MAX_ATTEMPTS times, as a failing notify_slack would."""
    publisher, subscriber = pubsub
    publisher.publish(names["findings"], finding.to_json().encode(), **finding.attributes).result(timeout=10)
    for _ in range(MAX_ATTEMPTS):
        response = subscriber.pull(request={"subscription": names["notify"], "max_messages": 10}, timeout=10)
        assert response.received_messages, "the emulator stopped delivering before dead-lettering"
        subscriber.modify_ack_deadline(request={"subscription": names["notify"], "ack_deadline_seconds": 0,
                                                "ack_ids": [m.ack_id for m in response.received_messages]})
    # The emulator forwards it to the dead-letter topic when it would deliver it once more.
    response = subscriber.pull(request={"subscription": names["notify"], "max_messages": 10,
                                        "return_immediately": True}, timeout=10)
    assert not response.received_messages


def _drain(subscriber, subscription: str) -> list:
    out = []
    while True:
        response = subscriber.pull(request={"subscription": subscription, "max_messages": 50,
                                            "return_immediately": True}, timeout=10)
        if not response.received_messages:
            return out
        out.extend(response.received_messages)
        subscriber.acknowledge(request={"subscription": subscription,
                                        "ack_ids": [m.ack_id for m in response.received_messages]})


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    """The installed command, as a person runs it (its own process, the emulator from the env)."""
    script = Path(sys.executable).parent / "egress-guard"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_GUARD_")}
    env["EGRESS_GUARD_PROJECT"] = PROJECT
    done = subprocess.run([str(script), "dead-letters", *argv], env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_dead_letters_lists_without_taking_out_then_redrives_to_the_source_topic(pubsub, capsys):
    publisher, subscriber = pubsub
    names = _setup(pubsub)
    finding = _finding()
    _dead_letter_one(pubsub, names, finding)
    subscriber.create_subscription(name=names["watch"], topic=names["findings"])  # made now: sees redrives only

    status, out, err = _run(capsys, "--subscription", names["inbox"], "--json")
    assert status == 0, err
    (listed,) = [json.loads(line) for line in out.splitlines()]
    assert listed["what"].startswith(f"finding {finding.id} remediated ensure_nat c1")
    assert listed["source_subscription"] == names["notify"]
    assert listed["topic"] == names["findings"]
    assert listed["delivery_attempt"] == MAX_ATTEMPTS

    # Listed twice: still there (handed back with modifyAckDeadline 0, not acknowledged).
    status, out, err = _run(capsys, "--subscription", names["inbox"])
    print(f"\n$ egress-guard dead-letters --subscription {names['inbox']}\n{out}{err}")
    assert status == 0 and finding.id in out and len(out.splitlines()) == 1

    status, _, err = _run(capsys, "--subscription", names["inbox"], "--redrive")
    print(f"$ egress-guard dead-letters --subscription {names['inbox']} --redrive\n{err}")
    assert status == 0, err
    assert "1 of 1 message(s) redriven" in err
    (again,) = _drain(subscriber, names["watch"])
    assert Finding.from_json(again.message.data).id == finding.id
    assert SOURCE_SUBSCRIPTION_ATTRIBUTE not in again.message.attributes
    assert dict(again.message.attributes)["outcome"] == "remediated"
    assert _drain(subscriber, names["inbox"]) == [], "a redriven message was left in the inbox"


def test_dead_letters_redrive_that_cannot_publish_keeps_the_message(pubsub, capsys):
    publisher, subscriber = pubsub
    names = _setup(pubsub)
    finding = _finding()
    _dead_letter_one(pubsub, names, finding)
    publisher.delete_topic(topic=names["findings"])  # the subscription stays, its topic is gone

    status, _, err = _run(capsys, "--subscription", names["inbox"], "--redrive")
    assert status == 1, err
    assert "kept" in err and "0 of 1 message(s) redriven" in err and "was deleted" in err
    (kept,) = _drain(subscriber, names["inbox"])
    assert Finding.from_json(kept.message.data).id == finding.id


def test_dead_letters_without_a_source_subscription_is_kept_and_says_why(pubsub, capsys):
    publisher, subscriber = pubsub
    names = _setup(pubsub)
    publisher.publish(names["dead"], b"not json").result(timeout=10)

    status, out, err = _run(capsys, "--subscription", names["inbox"], "--redrive")
    assert status == 1
    assert "8 bytes, not JSON" in out
    assert "did not name the subscription it came from" in err
    assert len(_drain(subscriber, names["inbox"])) == 1


def test_dead_letters_bad_subscription_name_is_a_clear_error(pubsub, capsys):
    status, _, err = _run(capsys, "--subscription", "projects/p/topics/t")
    assert status == 2 and "is not projects/P/subscriptions/S" in err


def test_dead_letters_redrive_whose_publish_fails_acknowledges_nothing(pubsub):
    """The publish itself fails (Pub/Sub refuses it): the message is handed back, not acknowledged.
    The client factory is the seam: the real subscriber, a publisher whose publish raises."""
    from egress_guard.clients import Clients
    from egress_guard.config import Settings
    from egress_guard.deadletters import DeadLetterInbox

    publisher, subscriber = pubsub
    names = _setup(pubsub)
    finding = _finding()
    _dead_letter_one(pubsub, names, finding)

    class RefusingPublisher:
        def publish(self, topic, data, **attributes):
            raise RuntimeError("503 the service is unavailable")

    clients = Clients(Settings(project=PROJECT))
    clients.__dict__["publisher"] = RefusingPublisher()  # the cached_property's slot
    inbox = DeadLetterInbox(clients, names["inbox"])
    (outcome,) = inbox.redrive(inbox.read())
    assert not outcome.redriven and "503" in outcome.error
    (kept,) = _drain(subscriber, names["inbox"])
    assert Finding.from_json(kept.message.data).id == finding.id
