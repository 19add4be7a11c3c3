"""What the function instances of a local stack logged about each delivery: ``runner.handle`` writes
``<function> received delivery <Pub/Sub message id>`` with the process id first, before anything can
fail or be killed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from localcloud.stack import Stack


@dataclass(frozen=True)
class Delivery:
    id: str  # the Pub/Sub message id: the same on every redelivery of one message
    pid: int  # the instance (worker process) that received it


def deliveries(stack: Stack, function: str) -> list[Delivery]:
    """Every delivery the function's instances received, in log order."""
    out: list[Delivery] = []
    for line in (stack.log_dir / f"{function}.log").read_text(errors="replace").splitlines():
        if '"egress_guard.delivery"' not in line:
            continue
        try:
            body = json.loads(line)
        except ValueError:
            continue
        out.append(Delivery(str(body.get("delivery_id")), int(body.get("pid", 0))))
    return out


def decisions(stack: Stack, function: str) -> list[dict]:
    """The decision lines (one per finding) the function's instances logged."""
    out = []
    for line in (stack.log_dir / f"{function}.log").read_text(errors="replace").splitlines():
        if '"egress_guard.decision"' in line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def redeliveries(stack: Stack, function: str) -> int:
    """Deliveries of a message id delivered before (Pub/Sub delivered it again)."""
    return sum(n - 1 for n in Counter(d.id for d in deliveries(stack, function)).values())


def _outcome_lines(stack: Stack, function: str) -> Iterator[tuple[dict[str, Any], str]]:
    """(log line, outcome) for each line that ends a delivery's handling."""
    for line in (stack.log_dir / f"{function}.log").read_text(errors="replace").splitlines():
        if '"delivery_id"' not in line or '"egress_guard.delivery"' in line:
            continue
        try:
            body = json.loads(line)
        except ValueError:
            continue
        outcome = (body.get("logging.googleapis.com/labels") or {}).get("outcome")
        if outcome:
            yield body, outcome


def outcomes(stack: Stack, function: str) -> dict[str, list[str]]:
    """For each delivery id, what its handling ended in, from the lines that carry it: ``acknowledged``
    (refused or nothing to do, with its reason), the finding's outcome (``remediated``, ``compliant``...)
    or ``retry``. A delivery killed or still running has none."""
    out: dict[str, list[str]] = {}
    for body, outcome in _outcome_lines(stack, function):
        out.setdefault(str(body["delivery_id"]), []).append(outcome)
    return out


def outcomes_by_entry(stack: Stack, function: str) -> dict[str, list[str]]:
    """``outcomes`` by the audit entry's ``insertId`` instead of the delivery: every delivery of one entry
    (the stack's own push subscription and a test's direct pushes) under one key."""
    out: dict[str, list[str]] = {}
    for body, outcome in _outcome_lines(stack, function):
        # A finding names its entry in its trigger; an acknowledgement or a retry in insert_id.
        entry = (body.get("trigger") or {}).get("insertId") or body.get("insert_id")
        if entry:
            out.setdefault(str(entry), []).append(outcome)
    return out
