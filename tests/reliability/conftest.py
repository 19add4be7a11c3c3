"""The reliability figures, once more at the end of the run: each test prints its figure, and pytest
shows a passing test's output only with ``-s``; this ``reliability figures`` section shows them
either way: first the table the tests added to (``tests.figures.tally``: instances, runs, faults by
kind, redeliveries, make-before-break violations, subnets dropped, Slack, fuzz), then each test's
printed lines (JSON log lines left out) and what ``tests.figures.record`` kept)."""

from __future__ import annotations

import json
from typing import Any

from tests import figures

_PRINTED: list[str] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call" or not report.passed:
        return
    for line in report.capstdout.splitlines():
        text = line.strip()
        if text and not _is_json(text) and text not in _PRINTED:
            _PRINTED.append(text)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = list(_PRINTED) + [f for f in figures.FIGURES if f not in _PRINTED]
    if lines or figures.TABLE:
        terminalreporter.section("reliability figures")
        width = max((len(name) for name in figures.TABLE), default=0)
        for name, value in sorted(figures.TABLE.items()):
            terminalreporter.write_line(f"{name:<{width}}  {value}")
        if figures.TABLE:
            terminalreporter.write_line("")
        for line in lines:
            terminalreporter.write_line(line)
