"""Errors of the quality report (drawn in ``tickarchive.ops.errors``)."""

from __future__ import annotations

from tickarchive.ops.errors import OpsError


class QualityError(OpsError):
    """The quality report could not be produced."""


class QualitySourceError(QualityError):
    """A store could not be read (connection refused, bad SQL, missing table)."""


class DayError(QualityError):
    """The --day argument is not a day."""
