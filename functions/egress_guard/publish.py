"""Publish a Finding to the findings topic, and log it: the last step of every decision.

Any failure to publish is a ``TransientError``: the event is redelivered, the guardrail runs
again (idempotently, finding nothing left to change) and publishes a finding with the same
``id``, which notify_slack uses to drop duplicates. A finding is never dropped silently.
"""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, TransientError
from .findings import Finding
from .log import log_finding

if TYPE_CHECKING:
    from .clients import Clients


class FindingPublisher:
    """Publishes findings with their attributes and waits (bounded) for the message id.

    ``publisher`` is a ``google.cloud.pubsub_v1.PublisherClient`` or anything with the same
    ``publish(topic, data, **attributes) -> future`` method (tests pass a recorder).
    """

    def __init__(self, publisher: Any, topic: str, *, timeout: float = 30.0) -> None:
        if not topic:
            raise ConfigError("no findings topic: set EGRESS_GUARD_FINDINGS_TOPIC (projects/P/topics/T)")
        self.publisher = publisher
        self.topic = topic
        self.timeout = timeout

    @classmethod
    def from_clients(cls, clients: "Clients") -> "FindingPublisher":
        settings = clients.settings
        if not settings.findings_topic:
            raise ConfigError("no findings topic: set EGRESS_GUARD_FINDINGS_TOPIC (projects/P/topics/T)")
        return cls(clients.publisher, settings.findings_topic, timeout=settings.publish_timeout_seconds)

    def publish(self, finding: Finding) -> str:
        """Publish ``finding``, log the decision, return the Pub/Sub message id."""
        data = finding.to_json().encode("utf-8")
        try:
            future = self.publisher.publish(self.topic, data, **finding.attributes)
            message_id = future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            error = f"Pub/Sub did not accept the finding within {self.timeout:g}s"
            log_finding(finding, error=error)
            raise TransientError(f"publishing finding {finding.id} to {self.topic}: {error} (will retry)") from None
        except Exception as exc:  # any failure: retry the event rather than lose the finding
            error = f"{type(exc).__name__}: {exc}"
            log_finding(finding, error=error)
            raise TransientError(f"publishing finding {finding.id} to {self.topic} failed (will retry): {error}") \
                from exc
        log_finding(finding, message_id=str(message_id))
        return str(message_id)
