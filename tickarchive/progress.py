"""Progress reporting without a UI dependency in the core.

Core functions take a ``Progress``; the CLI passes a rich-backed one, tests the silent
``NO_PROGRESS``.
"""

from __future__ import annotations

from typing import Protocol


class Task(Protocol):
    def advance(self, amount: int) -> None: ...

    def done(self) -> None: ...


class Progress(Protocol):
    def task(self, label: str, total: int | None, unit: str) -> Task: ...

    def note(self, message: str) -> None: ...


class _NullTask:
    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


class _NullProgress:
    def task(self, label: str, total: int | None, unit: str) -> Task:
        return _NullTask()

    def note(self, message: str) -> None:
        pass


NO_PROGRESS: Progress = _NullProgress()
