"""A finding out of the Pub/Sub CloudEvent that carries it (google.cloud.pubsub.topic.v1.messagePublished)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from egress_guard.findings import Finding


class NotAFinding(ValueError):
    """The message is not an egress-guard finding: permanent, redelivery cannot fix it."""


def finding_from_pubsub(data: Any) -> Finding:
    """`data.message.data` is the base64 of Finding.to_json()."""
    if not isinstance(data, Mapping):
        raise NotAFinding(f"CloudEvent data is {type(data).__name__}, expected a Pub/Sub push body")
    message = data.get("message")
    if not isinstance(message, Mapping) or not message.get("data"):
        raise NotAFinding("the Pub/Sub message has no data")
    message_id = message.get("messageId") or message.get("message_id") or "?"
    try:
        text = base64.b64decode(message["data"], validate=True)
    except (binascii.Error, TypeError, ValueError) as error:
        raise NotAFinding(f"message {message_id}: data is not base64 ({error})") from None
    try:
        return Finding.from_json(text)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # JSONDecodeError is a ValueError
        detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise NotAFinding(f"message {message_id}: not an egress-guard finding: {detail}") from None


def pubsub_push_body(finding: Finding, *, message_id: str = "1", subscription: str = "") -> dict[str, Any]:
    """The body Pub/Sub (and Eventarc) put in the CloudEvent's data: the inverse of finding_from_pubsub."""
    return {
        "message": {
            "data": base64.b64encode(finding.to_json().encode()).decode(),
            "attributes": finding.attributes,
            "messageId": message_id,
            "publishTime": finding.time,
        },
        "subscription": subscription,
    }
