"""Reading a Pub/Sub subscription without consuming it: lease every message, then hand them back.

Both ``egress-guard dead-letters`` (the dead-letter inbox) and ``egress-guard undo FINDING_ID``
(the findings archive) look at what a subscription holds without taking it out:

- ``lease_all`` pulls until the subscription answers empty. ``return_immediately`` makes an empty
  pull answer at once instead of holding it open until its deadline (a snapshot is wanted); each
  message is leased to this caller, not removed;
- ``release`` hands messages back at once with ``modifyAckDeadline`` 0, a negative acknowledgement
  (docs/gcp-facts.md §13), so that listing loses nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import api

if TYPE_CHECKING:
    from .clients import Clients

PULL_BATCH = 100


def lease_all(clients: "Clients", subscription: str, *, limit: int | None = None) -> list[Any]:
    """Every message the subscription holds (at most ``limit``), each once, leased until released."""
    subscriber = clients.subscriber
    leased: dict[str, Any] = {}
    while limit is None or len(leased) < limit:
        batch = PULL_BATCH if limit is None else min(PULL_BATCH, limit - len(leased))
        with warnings.catch_warnings():  # return_immediately is deprecated for streaming consumers, not snapshots
            warnings.simplefilter("ignore", DeprecationWarning)
            response = api.call(f"pubsub.subscriptions.pull {subscription}", subscriber.pull,
                                request={"subscription": subscription, "max_messages": batch,
                                         "return_immediately": True},
                                timeout=api.READ_TIMEOUT_S, retry=None)
        fresh = 0
        for received in response.received_messages:
            if received.message.message_id not in leased:  # a lease ran out and it came again
                leased[received.message.message_id] = received
                fresh += 1
        if not fresh:
            break
    return list(leased.values())


def release(clients: "Clients", subscription: str, ack_ids: Sequence[str]) -> None:
    """Hand messages back to the subscription at once (modifyAckDeadline 0)."""
    for start in range(0, len(ack_ids), PULL_BATCH):
        api.call(f"pubsub.subscriptions.modifyAckDeadline {subscription}", clients.subscriber.modify_ack_deadline,
                 request={"subscription": subscription, "ack_ids": list(ack_ids[start:start + PULL_BATCH]),
                          "ack_deadline_seconds": 0})
