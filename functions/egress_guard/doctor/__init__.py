"""``egress-guard doctor``: check a deployment end to end, read-only, and judge the UNCONFIRMED
constants against the user's own audit log.

read (``read.Reader``: every Google read, into typed ``readings``) → judge (``checks``,
``assumed``: pure functions) → render (``render``). Nothing is written except ``--export``'s files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .assumed import AssumptionResult, export, judge_assumptions
from .checks import Check, Status, judge
from .readings import AuditEntries, Readings, Scope, Unreadable
from .read import Reader

__all__ = ["Diagnosis", "Reader", "Scope", "diagnose", "export_entries"]


@dataclass(frozen=True)
class Diagnosis:
    readings: Readings
    checks: tuple[Check, ...]
    assumptions: tuple[AssumptionResult, ...]

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)


def diagnose(reader: Reader, scope: Scope) -> Diagnosis:
    readings = reader.read(scope)
    entries = readings.audit_entries.entries if isinstance(readings.audit_entries, AuditEntries) else ()
    return Diagnosis(readings, tuple(judge(readings)), tuple(judge_assumptions(entries)))


def export_entries(diagnosis: Diagnosis, directory: Path) -> list[Path]:
    entries = diagnosis.readings.audit_entries
    if isinstance(entries, Unreadable):
        return export(directory, [], diagnosis.assumptions)
    return export(directory, entries.entries, diagnosis.assumptions)
