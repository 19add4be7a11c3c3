"""The assumption check: each UNCONFIRMED constant (``assumptions.ASSUMPTIONS``) judged against the
user's own audit entries, and those entries exported with the identities replaced.

Pure: ``judge_assumptions`` takes the entries read by ``read.py``; ``anonymise`` takes entries
and returns copies, with every principal e-mail and project number replaced by a stable
placeholder (the same value always gets the same placeholder, so pairs of entries still match).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..assumptions import ASSUMPTIONS, Assumption

CONFIRMED, REFUTED, NOT_SEEN = "confirmed", "refuted", "not seen"


@dataclass(frozen=True)
class Evidence:
    insert_id: str
    timestamp: str
    method: str


@dataclass(frozen=True)
class AssumptionResult:
    assumption: Assumption
    verdict: str  # confirmed | refuted | not seen
    evidence: Evidence | None  # the first refuting entry, else the first confirming one
    confirming: int
    refuting: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.assumption.key, "constant": self.assumption.constant,
                               "claim": self.assumption.claim, "doc": self.assumption.doc, "verdict": self.verdict,
                               "confirming": self.confirming, "refuting": self.refuting}
        if self.evidence:
            out["insertId"], out["timestamp"] = self.evidence.insert_id, self.evidence.timestamp
        return out


def _evidence(entry: Mapping[str, Any]) -> Evidence:
    payload = entry.get("protoPayload") or {}
    return Evidence(str(entry.get("insertId", "")), str(entry.get("timestamp", "")), str(payload.get("methodName", "")))


def judge_assumptions(entries: Sequence[Mapping[str, Any]],
                      assumptions: Iterable[Assumption] = ASSUMPTIONS) -> list[AssumptionResult]:
    """Refuted when any entry refutes it (one counter-example is enough), confirmed when some entry
    confirms it and none refutes, not seen otherwise."""
    out = []
    for assumption in assumptions:
        confirming, refuting = [], []
        for entry in entries:
            said = assumption.judge(dict(entry))
            if said is True:
                confirming.append(entry)
            elif said is False:
                refuting.append(entry)
        if refuting:
            verdict, evidence = REFUTED, _evidence(refuting[0])
        elif confirming:
            verdict, evidence = CONFIRMED, _evidence(confirming[0])
        else:
            verdict, evidence = NOT_SEEN, None
        out.append(AssumptionResult(assumption, verdict, evidence, len(confirming), len(refuting)))
    return out


# ---- export -----------------------------------------------------------------------------------------
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# A project number where Google writes one: projects/NUMBER, a Cloud Run v1 namespace, a service
# agent (service-NUMBER@), or a whole value of 10 to 13 digits (project numbers are 12 digits today;
# resource ids, 19 digits, are left alone).
_PROJECT_NUMBER = re.compile(r"(?<=projects/)\d{6,19}\b|(?<=namespaces/)\d{6,19}\b|(?<=service-)\d{6,19}(?=@)"
                             r"|^\d{10,13}$")


class Placeholders:
    """Stable replacements: the n-th distinct e-mail is principal-n@example.com, the n-th distinct
    project number 10000000000n; the same value always maps to the same placeholder."""

    def __init__(self) -> None:
        self.emails: dict[str, str] = {}
        self.numbers: dict[str, str] = {}

    def email(self, match: re.Match[str]) -> str:
        value = match.group(0)
        return self.emails.setdefault(value, f"principal-{len(self.emails) + 1}@example.com")

    def number(self, match: re.Match[str]) -> str:
        value = match.group(0)
        return self.numbers.setdefault(value, str(100000000000 + len(self.numbers) + 1))

    def text(self, value: str) -> str:
        return _EMAIL.sub(self.email, _PROJECT_NUMBER.sub(self.number, value))


def anonymise(entries: Iterable[Mapping[str, Any]], project_numbers: Iterable[str] = (),
              placeholders: Placeholders | None = None) -> list[dict[str, Any]]:
    """Copies of ``entries`` with principal e-mails and project numbers replaced (also a known
    project number wherever it appears as a whole value, e.g. a ``project_number`` label)."""
    ph = placeholders or Placeholders()
    known = {str(n) for n in project_numbers if str(n)}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            if value in known:
                return ph.numbers.setdefault(value, str(100000000000 + len(ph.numbers) + 1))
            return ph.text(value)
        if isinstance(value, int) and str(value) in known:
            return int(ph.numbers.setdefault(str(value), str(100000000000 + len(ph.numbers) + 1)))
        return value

    return [walk(copy.deepcopy(dict(entry))) for entry in entries]


def export(directory: Path, entries: Sequence[Mapping[str, Any]], results: Sequence[AssumptionResult],
           project_numbers: Iterable[str] = ()) -> list[Path]:
    """Write one fixture per entry (``<n>-<method>.json``) and ``assumptions.json``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for index, entry in enumerate(anonymise(entries, project_numbers), start=1):
        method = str((entry.get("protoPayload") or {}).get("methodName", "entry"))
        path = directory / f"{index:04d}-{re.sub(r'[^A-Za-z0-9._-]', '_', method)}.json"
        path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    summary = directory / "assumptions.json"
    summary.write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n", encoding="utf-8")
    return written + [summary]
