"""Figures a test measured, shown whether or not pytest captures output.

``record(request, line)`` prints the line (seen with ``-s``), writes it to the terminal at once with
capture suspended (seen without ``-s``), and keeps it for the final summary that
``tests/reliability/conftest.py`` prints at the end of the run (``reliability figures`` section).

``tally(name, amount)`` adds to one row of the table that heads that section (instances, runs,
faults by kind, redeliveries, make-before-break violations, subnets dropped...): each test adds
what it measured, so the table sums whatever part of the suite ran. ``note(name, text)`` sets a row
that is not a count (instances per function).
"""

from __future__ import annotations

from typing import Any

FIGURES: list[str] = []
TABLE: dict[str, Any] = {}


def record(request: Any, line: str) -> None:
    print(line)
    FIGURES.append(line)
    config = request.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(f"FIGURE {line}")


def tally(name: str, amount: int = 1) -> None:
    TABLE[name] = int(TABLE.get(name, 0)) + amount


def note(name: str, text: str) -> None:
    TABLE[name] = text
