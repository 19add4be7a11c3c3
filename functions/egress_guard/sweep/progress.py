"""Where a sweep says what it is doing: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Progress(Protocol):
    """Where a sweep reports what it is doing (a rich bar on a terminal, plain lines otherwise)."""

    def phase(self, description: str, total: int | None = None) -> None: ...

    def advance(self, note: str = "") -> None: ...


class NoProgress:
    def phase(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, note: str = "") -> None:
        pass


class RichProgress:
    """A rich progress bar on the terminal (stderr): one bar per phase, the current item beside it."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("[dim]{task.fields[note]}"), console=console)
        self._task: Any = None

    def __enter__(self) -> "RichProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self._bar.stop()

    def _finish(self) -> None:
        if self._task is not None:
            task = self._bar.tasks[-1]
            self._bar.update(self._task, total=task.completed, note="")

    def phase(self, description: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._bar.add_task(description, total=total, note="")

    def advance(self, note: str = "") -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=1, note=note[-70:])


class LineProgress:
    """Plain progress lines (not a terminal): each phase, and about every tenth of its items."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._name = ""
        self._total: int | None = None
        self._done = 0

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def phase(self, description: str, total: int | None = None) -> None:
        self._name, self._total, self._done = description, total, 0
        self._write(f"sweep: {description}" + (f" ({total} items)" if total is not None else ""))

    def advance(self, note: str = "") -> None:
        self._done += 1
        if self._total is None:
            self._write(f"sweep: {self._name}: {note}")
        elif self._done == self._total or self._done % max(1, self._total // 10) == 0:
            self._write(f"sweep: {self._name}: {self._done}/{self._total}")
