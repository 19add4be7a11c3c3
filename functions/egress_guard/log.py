"""Structured logging: one JSON object per line on stdout, in the shape Cloud Logging reads.

Cloud Run functions forward stdout to Cloud Logging and parse a JSON line into ``jsonPayload``,
lifting ``severity``, ``message`` and ``logging.googleapis.com/labels`` into the entry
(https://cloud.google.com/logging/docs/structured-logging). No trace fields are written.

Usage::

    setup_logging()                       # once, at cold start; calling it again changes nothing
    log = logging.getLogger(__name__)
    log.info("connector READY", extra=fields(labels={"guardrail": "ensure_nat"}, connector=name))
    log_finding(finding)                  # the one line per decision
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import IO, Any

from .findings import Finding

LABELS_KEY = "logging.googleapis.com/labels"
# The Pub/Sub message id of the delivery being handled (``runner.handle`` sets it): every line written
# while handling it carries it as ``delivery_id``, so one delivery's lines (received, acknowledged or
# decided, retried) are found together, and each copy of a duplicated message can be accounted for.
DELIVERY: ContextVar[str | None] = ContextVar("egress_guard_delivery", default=None)
_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
# Attributes every LogRecord has; anything else passed through ``extra`` is a field of ours.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

decision_log = logging.getLogger("egress_guard.decision")


def fields(*, labels: dict[str, str] | None = None, severity: str | None = None, **values: Any) -> dict[str, Any]:
    """Build ``extra=`` for a log call: labels (indexed by Cloud Logging), a severity override
    (e.g. ``NOTICE``, which Python logging lacks) and any JSON fields."""
    extra: dict[str, Any] = {"eg_fields": values}
    if labels:
        extra["eg_labels"] = {str(k): str(v) for k, v in labels.items()}
    if severity:
        extra["eg_severity"] = severity
    return extra


class JsonFormatter(logging.Formatter):
    """Formats a record as one Cloud Logging structured-log line."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "severity": getattr(record, "eg_severity", None) or _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "logger": record.name,
        }
        labels = getattr(record, "eg_labels", None)
        if labels:
            body[LABELS_KEY] = labels
        delivery = DELIVERY.get()
        if delivery is not None:
            body["delivery_id"] = delivery
        for key, value in (getattr(record, "eg_fields", None) or {}).items():
            body.setdefault(key, value)
        for key, value in vars(record).items():  # plain ``extra={...}`` keys, too
            if key not in _RECORD_ATTRS and not key.startswith("eg_"):
                body.setdefault(key, value)
        if record.exc_info:
            body["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False, separators=(",", ":"))


class _StructuredHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker class so that ``setup_logging`` can find its own handler."""


def setup_logging(level: int | str = logging.INFO, stream: IO[str] | None = None) -> None:
    """Send all logging to ``stream`` (stdout) as JSON lines. Idempotent: a second call only
    updates the level (and the stream, when one is given)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, _StructuredHandler):
            if stream is not None:
                handler.setStream(stream)
            root.setLevel(level)
            return
    handler = _StructuredHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def log_finding(finding: Finding, *, message_id: str | None = None, error: str | None = None) -> None:
    """The one log line per decision: what was decided, where, and why."""
    labels = {"guardrail": finding.guardrail, "outcome": finding.outcome.value, "project": finding.project,
              "mode": finding.mode.value}
    values: dict[str, Any] = {
        "finding_id": finding.id,
        "resource": finding.resource.name,
        "region": finding.region,
        "network": finding.network,
        "trigger": {"methodName": finding.trigger.methodName, "insertId": finding.trigger.insertId,
                    "operationId": finding.trigger.operationId, "principal": finding.trigger.principal},
        "changes": [change.action + " " + change.resource for change in finding.changes],
    }
    if message_id is not None:
        values["message_id"] = message_id
    severity = finding.severity
    if error is not None:
        values["publish_error"] = error
        severity = "ERROR"
    level = {"WARNING": logging.WARNING, "ERROR": logging.ERROR}.get(severity, logging.INFO)
    decision_log.log(
        level, "%s %s %s: %s", finding.guardrail, finding.outcome.value, finding.resource.name, finding.reason,
        extra=fields(labels=labels, severity=severity, **values),
    )
