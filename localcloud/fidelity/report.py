"""The fidelity report: per file and per exchange, what was replayed and how it compared.

``build`` turns replays into a ``Report`` (a decision: the verdict of every exchange and the gate);
``render_text``, ``render_summary`` and ``to_json`` only format it.

Verdicts: ``identical`` (structurally identical after normalisation), ``known`` (every structural
difference explained, see known.py), ``differs`` (a structural difference nobody explained),
``skipped`` (an API localcloud does not emulate: the recording answered), ``unknown-route``
(localcloud has no route for a call it should serve), ``transport-error``, ``no-recorded-answer``.
Value differences (wording, numbers) are listed beside the verdict and never decide it.

The gate fails on: a ``differs`` exchange in a file recorded against real Google (REAL, or the
probably-real audit probes); and, in any file, an unknown route, a transport error or a 5xx.
MOCK and MOCK-DERIVED files are a second opinion: their differences are listed, not evidence.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from localcloud.fidelity.compare import ABSENT, Difference, Normaliser, compare_step
from localcloud.fidelity.known import EXPLANATIONS, Explanation, explain
from localcloud.fidelity.recording import Provenance
from localcloud.fidelity.replay import (
    NOT_RECORDED, SENT, SKIPPED, TRANSPORT_ERROR, UNKNOWN_ROUTE, EnvironmentStep, FileReplay, Step,
)

IDENTICAL, KNOWN, DIFFERS = "identical", "known", "differs"


@dataclass(frozen=True)
class Finding:
    difference: Difference
    known: Explanation | None


@dataclass(frozen=True)
class ExchangeResult:
    index: int
    line: int
    method: str
    path: str  # as recorded (placeholders in)
    service: str
    outcome: str
    verdict: str
    recorded_status: int | None
    status: int | None
    note: str
    findings: tuple[Finding, ...] = ()

    @property
    def structural(self) -> list[Finding]:
        return [f for f in self.findings if f.difference.structural]

    @property
    def unexplained(self) -> list[Finding]:
        return [f for f in self.structural if f.known is None]

    @property
    def values(self) -> list[Finding]:
        return [f for f in self.findings if not f.difference.structural]

    @property
    def server_error(self) -> bool:
        return self.outcome == SENT and self.status is not None and self.status >= 500


@dataclass(frozen=True)
class FileResult:
    name: str
    provenance: Provenance
    environment: tuple[EnvironmentStep, ...]
    exchanges: tuple[ExchangeResult, ...]

    def count(self, verdict: str) -> int:
        return sum(1 for e in self.exchanges if e.verdict == verdict)

    @property
    def replayed(self) -> int:
        return sum(1 for e in self.exchanges if e.outcome == SENT)

    @property
    def failures(self) -> list[str]:
        out = []
        for e in self.exchanges:
            where = f"{self.name} #{e.index} (line {e.line}) {e.method} {e.path}"
            if e.outcome in (UNKNOWN_ROUTE, TRANSPORT_ERROR):
                out.append(f"{where}: {e.outcome} {e.note}".rstrip())
            elif e.server_error:
                out.append(f"{where}: localcloud answered {e.status}")
            elif e.verdict == DIFFERS and self.provenance.is_evidence:
                paths = ", ".join(f.difference.path for f in e.unexplained)
                out.append(f"{where}: differs from {self.provenance.value} Google traffic at {paths}")
        return out


@dataclass(frozen=True)
class Report:
    files: tuple[FileResult, ...]
    known: dict[str, list[str]] = field(default_factory=dict)  # explanation key -> where it applied

    @property
    def failures(self) -> list[str]:
        return [failure for f in self.files for failure in f.failures]

    @property
    def passed(self) -> bool:
        return not self.failures

    def totals(self) -> dict[str, int]:
        exchanges = [e for f in self.files for e in f.exchanges]
        verdicts = Counter(e.verdict for e in exchanges)
        return {
            "files": len(self.files),
            "exchanges": len(exchanges),
            "replayed": sum(1 for e in exchanges if e.outcome == SENT),
            "skipped": verdicts[SKIPPED],
            "identical": verdicts[IDENTICAL],
            "known": verdicts[KNOWN],
            "differs": verdicts[DIFFERS],
            "differs_in_real_traffic": sum(f.count(DIFFERS) for f in self.files if f.provenance.is_evidence),
            "unknown_route": verdicts[UNKNOWN_ROUTE],
            "transport_error": verdicts[TRANSPORT_ERROR],
            "server_errors": sum(1 for e in exchanges if e.server_error),
            "value_differences": sum(len(e.values) for e in exchanges),
            "environment_steps": sum(len(f.environment) for f in self.files),
        }


# ---- decide ------------------------------------------------------------------------------------------
def build(replays: Iterable[FileReplay]) -> Report:
    files: list[FileResult] = []
    known: dict[str, list[str]] = {}
    for replay in replays:
        normaliser = Normaliser(replay.names)
        results = []
        for step in replay.steps:
            result = _exchange_result(step, normaliser)
            for finding in result.findings:
                if finding.known is not None:
                    known.setdefault(finding.known.key, []).append(
                        f"{replay.recording.name} #{result.index} {finding.difference.path}")
            results.append(result)
        files.append(FileResult(replay.recording.name, replay.recording.provenance, tuple(replay.environment),
                                tuple(results)))
    return Report(tuple(files), known)


def _exchange_result(step: Step, normaliser: Normaliser) -> ExchangeResult:
    ex = step.exchange
    recorded_status = ex.response.status if ex.response else None
    findings: tuple[Finding, ...] = ()
    if step.outcome == SENT:
        findings = tuple(Finding(d, explain(d, step)) for d in compare_step(step, normaliser))
        structural = [f for f in findings if f.difference.structural]
        if not structural:
            verdict = IDENTICAL
        elif all(f.known is not None for f in structural):
            verdict = KNOWN
        else:
            verdict = DIFFERS
    else:
        verdict = step.outcome
    return ExchangeResult(ex.index, ex.line, ex.request.method, ex.request.path, step.target.service,
                          step.outcome, verdict, recorded_status, step.status, step.note, findings)


# ---- format ------------------------------------------------------------------------------------------
_COLUMNS = ("file", "provenance", "exchanges", "replayed", "skipped", "identical", "known", "differs", "failures")


def render_summary(report: Report) -> str:
    rows = [_COLUMNS]
    for f in report.files:
        rows.append((f.name, f.provenance.value, str(len(f.exchanges)), str(f.replayed), str(f.count(SKIPPED)),
                     str(f.count(IDENTICAL)), str(f.count(KNOWN)), str(f.count(DIFFERS)), str(len(f.failures))))
    t = report.totals()
    rows.append(("TOTAL", "", str(t["exchanges"]), str(t["replayed"]), str(t["skipped"]), str(t["identical"]),
                 str(t["known"]), str(t["differs"]), str(len(report.failures))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    verdict = "PASS" if report.passed else f"FAIL ({len(report.failures)})"
    lines.append(f"gate: {verdict}; {t['unknown_route']} unknown route(s), {t['server_errors']} 5xx, "
                 f"{t['differs_in_real_traffic']} unexplained difference(s) from real Google traffic; "
                 f"{t['value_differences']} value difference(s) listed, not gating")
    return "\n".join(lines)


def render_text(report: Report) -> str:
    out = ["localcloud fidelity: recorded Google traffic replayed against localcloud", "",
           "Verdicts are structural, after the recorder's normalisation (NOTES.md §0) on both sides.", "",
           render_summary(report), ""]
    if report.failures:
        out += ["FAILURES (the gate)"] + [f"  - {f}" for f in report.failures] + [""]
    out.append("KNOWN differences (each listed once; where it applied is in the JSON report)")
    for explanation in EXPLANATIONS:
        where = report.known.get(explanation.key, [])
        if where:
            out.append(f"  [{explanation.key}] {explanation.category}, {len(where)} occurrence(s): "
                       f"{explanation.reason} Evidence: {explanation.evidence}")
    out.append("")
    for f in report.files:
        out += _render_file(f)
    return "\n".join(out).rstrip() + "\n"


def _render_file(f: FileResult) -> list[str]:
    trust = "evidence" if f.provenance.is_evidence else "second opinion only, NOT evidence of Google's behaviour"
    out = [f"== {f.name} [{f.provenance.value}: {trust}]",
           f"   {len(f.exchanges)} exchanges: {f.replayed} replayed, {f.count(SKIPPED)} skipped, "
           f"{f.count(IDENTICAL)} identical, {f.count(KNOWN)} known, {f.count(DIFFERS)} differ"]
    for env in f.environment:
        status = env.status if env.status is not None else "no answer"
        note = f" ({env.note})" if env.note else ""
        out.append(f"   environment before #{env.before_exchange}: {env.action} -> {status}{note}; {env.reason}")
    for e in f.exchanges:
        status = f"{e.recorded_status}->{e.status}" if e.outcome == SENT else f"{e.recorded_status}"
        note = f"  ({e.note})" if e.note else ""
        out.append(f"   #{e.index:<3} {e.verdict:<15} {status:<8} {e.method:<6} {e.path}{note}")
        for finding in e.structural:
            label = f"KNOWN[{finding.known.key}]" if finding.known else "DIFF"
            out.append(f"        {label} {finding.difference.describe()}")
        explained = Counter(f.known.key for f in e.values if f.known)
        if explained:
            counts = ", ".join(f"{n} {key}" for key, n in sorted(explained.items()))
            out.append(f"        (values, known: {counts})")
        for finding in e.values:
            if not finding.known:
                out.append(f"        (value) {finding.difference.describe()}")
    out.append("")
    return out


def to_json(report: Report) -> dict[str, Any]:
    return {
        "summary": {**report.totals(), "passed": report.passed, "failures": report.failures},
        "known": [
            {"key": e.key, "category": e.category, "reason": e.reason, "evidence": e.evidence,
             "occurrences": len(report.known.get(e.key, [])), "where": report.known.get(e.key, [])}
            for e in EXPLANATIONS
        ],
        "files": [_file_json(f) for f in report.files],
    }


def _file_json(f: FileResult) -> dict[str, Any]:
    return {
        "name": f.name, "provenance": f.provenance.value, "evidence": f.provenance.is_evidence,
        "exchanges": len(f.exchanges), "replayed": f.replayed, "skipped": f.count(SKIPPED),
        "identical": f.count(IDENTICAL), "known": f.count(KNOWN), "differs": f.count(DIFFERS),
        "failures": f.failures,
        "environment": [{"before_exchange": s.before_exchange, "action": s.action, "reason": s.reason,
                         "status": s.status, "note": s.note} for s in f.environment],
        "exchange_results": [
            {"index": e.index, "line": e.line, "method": e.method, "path": e.path, "service": e.service,
             "outcome": e.outcome, "verdict": e.verdict, "recorded_status": e.recorded_status,
             "status": e.status, "note": e.note,
             "differences": [
                 {"path": x.difference.path, "kind": x.difference.kind, "structural": x.difference.structural,
                  "recorded": _plain(x.difference.recorded), "actual": _plain(x.difference.actual),
                  "known": x.known.key if x.known else None}
                 for x in e.findings]}
            for e in f.exchanges
        ],
    }


def _plain(value: Any) -> Any:
    return "<absent>" if value is ABSENT else value


def dumps(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, sort_keys=False) + "\n"


__all__ = ["IDENTICAL", "KNOWN", "DIFFERS", "NOT_RECORDED", "Report", "FileResult", "ExchangeResult", "Finding",
           "build", "render_text", "render_summary", "to_json", "dumps"]
