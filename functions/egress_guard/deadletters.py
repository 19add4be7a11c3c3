"""What waits in the dead-letter inbox, and sending it back (``egress-guard dead-letters``).

The dead-letter topic catches every event a function failed on after ``max_delivery_attempts``
(design §2 notify_slack); its inbox subscription keeps them. Reading them must not take them out:

1. read: ``pull`` until the inbox answers empty (each message is leased, not removed;
   ``subscriptions.py``);
2. plan: for each message, what it is (a finding, an audit entry) and where it came from. Pub/Sub
   names the subscription that gave up on it in the attribute
   ``CloudPubSubDeadLetterSourceSubscription``; that subscription's topic is where it goes back
   (docs/gcp-facts.md §13). A message without it cannot be redriven and says why;
3. act: listing hands every message back at once (``modifyAckDeadline`` 0, a negative
   acknowledgement); ``--redrive`` publishes each message again to its topic, data and attributes
   unchanged but for Pub/Sub's dead-letter attributes, and acknowledges it only after the publish
   was accepted. A publish that fails hands that message back: nothing is lost on error.

The functions drop what they already handled (notify_slack remembers the finding ids it posted;
the guardrails converge), so a redriven duplicate changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import api
from .errors import ConfigError, EgressGuardError
from .findings import SCHEMA as FINDING_SCHEMA
from .subscriptions import lease_all, release

if TYPE_CHECKING:
    from .clients import Clients

# Attributes Pub/Sub adds when it dead-letters a message (docs/gcp-facts.md §13).
# The source subscription's id, and its project in a second attribute (the emulator writes the
# short id; a full projects/P/subscriptions/S is accepted too).
SOURCE_SUBSCRIPTION_ATTRIBUTE = "CloudPubSubDeadLetterSourceSubscription"
SOURCE_PROJECT_ATTRIBUTE = "CloudPubSubDeadLetterSourceSubscriptionProject"
DELIVERY_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"  # tries before it was given up on
_DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"

# What Pub/Sub puts in a subscription's topic field once its topic is deleted.
DELETED_TOPIC = "_deleted-topic_"
# The inbox the notifications module creates: "<name_prefix>-dead-letter-inbox"; the variable
# names another (the local stack's dead-letter watch subscription).
INBOX_ENV = "EGRESS_GUARD_DEAD_LETTER_SUBSCRIPTION"
DEFAULT_INBOX = "egress-guard-dead-letter-inbox"
PUBLISH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class DeadLetter:
    """One message read from the inbox, and what the plan says about it."""

    ack_id: str
    message_id: str
    publish_time: str
    data: bytes
    attributes: Mapping[str, str]
    delivery_attempt: int
    what: str  # "finding 3f2a... remediated replace_connector_firewalls conn-a", "audit entry ..."
    source_subscription: str  # "" when Pub/Sub did not say
    topic: str  # where a redrive publishes it; "" when it cannot be redriven
    why_not: str = ""  # why it cannot be redriven

    @property
    def republished_attributes(self) -> dict[str, str]:
        """Its own attributes, without the ones Pub/Sub added when it dead-lettered it."""
        return {k: v for k, v in self.attributes.items() if not k.startswith(_DEAD_LETTER_ATTRIBUTE_PREFIX)}

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "publish_time": self.publish_time, "what": self.what,
                "delivery_attempt": self.delivery_attempt, "source_subscription": self.source_subscription,
                "topic": self.topic, "why_not": self.why_not, "attributes": dict(self.attributes),
                "data": self.data.decode("utf-8", errors="replace")}


@dataclass(frozen=True)
class Outcome:
    letter: DeadLetter
    redriven: bool
    error: str = ""


def describe(data: bytes, attributes: Mapping[str, str]) -> str:
    """What a message is, in a line: a finding, an audit entry, or so many bytes."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return f"{len(data)} bytes, not JSON"
    if isinstance(body, Mapping) and body.get("schema") == FINDING_SCHEMA:
        resource = body.get("resource") or {}
        name = str(resource.get("name", "")).rsplit("/", 1)[-1] if isinstance(resource, Mapping) else ""
        return f"finding {body.get('id')} {body.get('outcome')} {body.get('guardrail')} {name}".strip()
    if isinstance(body, Mapping) and isinstance(body.get("protoPayload"), Mapping):
        payload = body["protoPayload"]
        return f"audit entry {payload.get('methodName', '?')} {payload.get('resourceName', '')}".strip()
    return f"{len(data)} bytes of JSON"


def _attempts(attributes: Mapping[str, str], received: Any) -> int:
    """How many times the source subscription delivered it (0 when nobody said)."""
    raw = attributes.get(DELIVERY_COUNT_ATTRIBUTE, "")
    return int(raw) if raw.isdigit() else int(getattr(received, "delivery_attempt", 0) or 0)


def _source_subscription(attributes: Mapping[str, str], *, default_project: str) -> str:
    """projects/P/subscriptions/S of the subscription that gave up on a message; "" when not named."""
    name = attributes.get(SOURCE_SUBSCRIPTION_ATTRIBUTE, "").strip()
    if not name or name.startswith("projects/"):
        return name
    project = attributes.get(SOURCE_PROJECT_ATTRIBUTE, "").strip() or default_project
    return f"projects/{project}/subscriptions/{name}"


class DeadLetterInbox:
    """The inbox subscription, read without losing anything (see the module docstring)."""

    def __init__(self, clients: "Clients", subscription: str) -> None:
        self._clients = clients
        self.subscription = subscription
        self._topics: dict[str, str] = {}

    @classmethod
    def named(cls, clients: "Clients", name: str | None, environ: Mapping[str, str] | None = None) -> "DeadLetterInbox":
        """``name``: projects/P/subscriptions/S, or S in the configured project; else
        ``EGRESS_GUARD_DEAD_LETTER_SUBSCRIPTION``, else the inbox the notifications module creates."""
        name = name or (environ or {}).get(INBOX_ENV, "").strip() or DEFAULT_INBOX
        if name.startswith("projects/"):
            parts = name.split("/")
            if len(parts) != 4 or parts[2] != "subscriptions" or not parts[1] or not parts[3]:
                raise ConfigError(f"--subscription: {name!r} is not projects/P/subscriptions/S")
            return cls(clients, name)
        if "/" in name:
            raise ConfigError(f"--subscription: {name!r} is not projects/P/subscriptions/S or a subscription id")
        project = clients.settings.project
        if not project:
            raise ConfigError("--subscription: give projects/P/subscriptions/S, or set EGRESS_GUARD_PROJECT")
        return cls(clients, f"projects/{project}/subscriptions/{name}")

    # -- read and plan

    def read(self, *, limit: int | None = None) -> list[DeadLetter]:
        """Every message in the inbox (at most ``limit``), leased to this caller until released."""
        letters = [self._plan(received) for received in lease_all(self._clients, self.subscription, limit=limit)]
        return sorted(letters, key=lambda letter: (letter.publish_time, letter.message_id))

    def _plan(self, received: Any) -> DeadLetter:
        message = received.message
        attributes = dict(message.attributes)
        source = _source_subscription(attributes, default_project=self.subscription.split("/")[1])
        topic, why_not = "", ""
        if not source:
            why_not = (f"Pub/Sub did not name the subscription it came from ({SOURCE_SUBSCRIPTION_ATTRIBUTE}); "
                       "it was published to the dead-letter topic directly")
        else:
            topic, why_not = self._topic_of(source)
        publish_time = message.publish_time.isoformat() if message.publish_time else ""
        return DeadLetter(ack_id=received.ack_id, message_id=message.message_id, publish_time=publish_time,
                          data=bytes(message.data), attributes=attributes,
                          delivery_attempt=_attempts(attributes, received),
                          what=describe(bytes(message.data), attributes), source_subscription=source,
                          topic=topic, why_not=why_not)

    def _topic_of(self, subscription: str) -> tuple[str, str]:
        if subscription not in self._topics:
            try:
                found = api.read_or_none(f"pubsub.subscriptions.get {subscription}",
                                         self._clients.subscriber.get_subscription,
                                         request={"subscription": subscription})
            except EgressGuardError as exc:
                return "", f"cannot read subscription {subscription}: {exc.reason}"
            if found is None:
                return "", f"subscription {subscription} it came from no longer exists"
            if found.topic == DELETED_TOPIC:
                return "", f"the topic of subscription {subscription} it came from was deleted"
            self._topics[subscription] = found.topic
        return self._topics[subscription], ""

    # -- act

    def release(self, letters: Iterable[DeadLetter]) -> None:
        """Hand messages back to the inbox at once (modifyAckDeadline 0): listing takes nothing out."""
        release(self._clients, self.subscription, [letter.ack_id for letter in letters])

    def redrive(self, letters: Iterable[DeadLetter], *,
                on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
        """Publish each message to its topic again; acknowledge it only once the publish was accepted.
        A message that cannot be redriven, or whose publish failed, is handed back."""
        outcomes: list[Outcome] = []
        for letter in letters:
            if not letter.topic:
                outcome = Outcome(letter, redriven=False, error=letter.why_not)
            else:
                outcome = self._redrive_one(letter)
            if not outcome.redriven:
                self._release_quietly(letter)
            outcomes.append(outcome)
            on_outcome(outcome)
        return outcomes

    def _redrive_one(self, letter: DeadLetter) -> Outcome:
        try:
            future = self._clients.publisher.publish(letter.topic, letter.data, **letter.republished_attributes)
            future.result(timeout=PUBLISH_TIMEOUT_S)
        except Exception as exc:  # any failure: the message stays in the inbox
            return Outcome(letter, redriven=False, error=f"publish to {letter.topic} failed: {type(exc).__name__}: {exc}")
        try:
            api.call(f"pubsub.subscriptions.acknowledge {self.subscription}", self._clients.subscriber.acknowledge,
                     request={"subscription": self.subscription, "ack_ids": [letter.ack_id]})
        except EgressGuardError as exc:
            # Published but still in the inbox: a later redrive publishes it once more, which the
            # functions drop as a repeat. Better twice than never.
            return Outcome(letter, redriven=True, error=f"republished, but not acknowledged: {exc.reason}")
        return Outcome(letter, redriven=True)

    def _release_quietly(self, letter: DeadLetter) -> None:
        try:
            self.release([letter])
        except EgressGuardError:
            pass  # its lease runs out by itself (the subscription's ack deadline): still not lost
