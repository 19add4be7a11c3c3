"""Invariants checked over the audit log (every write, in order), for the demo and the tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

BROAD_SUFFIXES = ("-sbntfw", "-tagfw")


def make_before_break_held(entries: Iterable[Mapping[str, Any]], *, managed_prefix: str = "egress-guard-",
                           managed_per_connector: int = 2) -> bool:
    """No broad aet rule was disabled while a managed rule was missing.

    A disable counts when it starts (its operation's first entry); a managed rule counts once its
    insert finished (the last entry) and stops counting when its delete starts. Managed rules are
    counted overall, which is exact for a scenario with one connector (the demo, the tests).
    """
    existing: set[str] = set()
    for entry in entries:
        payload = entry.get("protoPayload") or {}
        if (payload.get("status") or {}).get("code"):
            continue
        name = str(payload.get("resourceName", "")).rsplit("/", 1)[-1]
        method, operation = payload.get("methodName"), entry.get("operation") or {}
        if method == "v1.compute.firewalls.insert" and operation.get("last") and name.startswith(managed_prefix):
            existing.add(name)
        elif method == "v1.compute.firewalls.delete" and operation.get("first") and name.startswith(managed_prefix):
            existing.discard(name)
        elif method == "v1.compute.firewalls.patch" and operation.get("first") and name.endswith(BROAD_SUFFIXES):
            if (payload.get("request") or {}).get("disabled") is True and len(existing) < managed_per_connector:
                return False
    return True
