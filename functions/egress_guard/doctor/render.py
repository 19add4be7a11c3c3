"""Printing doctor's verdict: lines of ✓ / ✗ / ? by section, each ✗ followed by its fix, then the
assumption table; or all of it as one JSON document (``--json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .assumed import AssumptionResult
from .checks import Check, Status
from .readings import AuditEntries, Read, Unreadable


def text(checks: Sequence[Check], results: Sequence[AssumptionResult], entries: Read[AuditEntries],
         target: str) -> str:
    lines = [f"egress-guard doctor: {target}"]
    section = None
    for check in checks:
        if check.section != section:
            section = check.section
            lines += ["", section]
        lines.append(f"  {check.status.mark} {check.title}")
        for detail in check.detail:
            lines.append(f"      {detail}")
        if check.fix:
            lines.append(f"      fix: {check.fix}")
    lines += ["", "assumptions (UNCONFIRMED constants, judged against this scope's audit log)"]
    if isinstance(entries, Unreadable):
        lines.append(f"  ? audit entries could not be read: {entries.reason}")
    else:
        more = " (bound reached: older ones not read)" if entries.truncated else ""
        lines.append(f"  {len(entries.entries)} trigger-method entries since {entries.since}{more}")
    width = max((len(r.assumption.constant) for r in results), default=10)
    for r in results:
        cited = f"  {r.evidence.insert_id} {r.evidence.timestamp}" if r.evidence else ""
        lines.append(f"  {r.assumption.constant:<{width}}  {r.verdict:<9}{cited}")
        lines.append(f"  {'':<{width}}  {r.assumption.claim} ({r.assumption.doc})")
    failed = sum(c.status is Status.FAIL for c in checks)
    unknown = sum(c.status is Status.UNKNOWN for c in checks)
    lines += ["", f"{len(checks)} checks: {len(checks) - failed - unknown} ✓, {failed} ✗, {unknown} ?"]
    return "\n".join(lines) + "\n"


def as_json(checks: Sequence[Check], results: Sequence[AssumptionResult], entries: Read[AuditEntries],
            target: str) -> str:
    document: dict[str, Any] = {
        "target": target,
        "checks": [c.to_dict() for c in checks],
        "assumptions": [r.to_dict() for r in results],
        "audit_entries": ({"error": entries.reason} if isinstance(entries, Unreadable)
                          else {"count": len(entries.entries), "since": entries.since, "truncated": entries.truncated}),
        "summary": {status.value: sum(c.status is status for c in checks) for status in Status},
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
