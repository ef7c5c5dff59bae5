"""Errors of the quality report."""

from __future__ import annotations

from tickarchive.errors import TickarchiveError


class QualityError(TickarchiveError):
    """The quality report could not be produced."""


class SourceError(QualityError):
    """A store could not be read (connection refused, bad SQL, missing table)."""


class DayError(QualityError):
    """The --day argument is not a day."""
