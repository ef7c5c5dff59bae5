"""A ``Progress`` (see ``tickarchive.progress``) drawn with rich progress bars on stderr."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichBars

from tickarchive.progress import Task


class _RichTask:
    def __init__(self, bars: RichBars, task_id: TaskID) -> None:
        self._bars = bars
        self._id = task_id

    def advance(self, amount: int) -> None:
        self._bars.advance(self._id, amount)

    def done(self) -> None:
        task = self._bars.tasks[self._id]
        if task.total is not None:
            self._bars.update(self._id, completed=task.total)
        self._bars.stop_task(self._id)


class RichProgress:
    """Use as a context manager around the work."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._rows = RichBars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )

    def task(self, label: str, total: int | None, unit: str) -> Task:
        description = f"{label} ({unit})"
        if unit == "bytes":
            # byte counts read better as sizes; MofN shows raw numbers, which is fine too
            description = f"{label}"
        return _RichTask(self._rows, self._rows.add_task(description, total=total))

    def note(self, message: str) -> None:
        self.console.print(message)

    def __enter__(self) -> RichProgress:
        self._rows.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._rows.stop()


__all__ = ["RichProgress"]
