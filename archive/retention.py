"""Warm-tier retention: which months of the warm store may be dropped.

A pure decision for the rollover job: a (table, month) of the warm tier may be dropped
only when the whole month is older than ``warm_retention_months`` (its last day is more
than that many months before today) **and** its archive has verified (see
``archive.catalog.is_verified`` / ``verified_pairs``). The job that acts on a ``DROP``
(``tickarchive.ops.lifecycle.warm_retention``) also compares the warm month's row count
and content checksum with the archive's first, and exports the month again when they
differ.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Set
from dataclasses import dataclass

from tickarchive.archive import catalog
from tickarchive.archive.target import Target
from tickarchive.months import Month


class Verdict(enum.StrEnum):
    DROP = "drop"
    KEEP_RECENT = "keep: within retention"
    KEEP_UNVERIFIED = "keep: archive not verified"
    REEXPORT = "re-export, verify, then drop"
    """(dry run) old and verified, but the warm rows differ from the archive's."""
    KEEP_DIFFERS = "keep: warm rows differ from the archive"
    """The re-export or its verify failed, or rows kept arriving: nothing dropped."""


@dataclass(frozen=True, slots=True, order=True)
class RetentionDecision:
    table: str
    month: Month
    verdict: Verdict

    @property
    def drop(self) -> bool:
        return self.verdict is Verdict.DROP


def oldest_kept_month(today: dt.date, retention_months: int) -> Month:
    """The oldest month that is still (partly) within retention on ``today``.

    With 12 months on 2026-11-24, 2025-11 still holds rows younger than 12 months
    (2025-11-30 > 2025-11-24), so it is kept; 2025-10 and older may go.
    """
    return Month.of(today).plus(-retention_months)


def decide(
    warm: Iterable[tuple[str, Month]],
    verified: Set[tuple[str, Month]],
    today: dt.date,
    retention_months: int,
) -> list[RetentionDecision]:
    """One decision per (table, month) present in the warm tier, sorted."""
    if retention_months < 1:
        raise ValueError("retention_months must be at least 1")
    keep_from = oldest_kept_month(today, retention_months)
    out = []
    for table, month in set(warm):
        if month >= keep_from:
            verdict = Verdict.KEEP_RECENT
        elif (table, month) not in verified:
            verdict = Verdict.KEEP_UNVERIFIED
        else:
            verdict = Verdict.DROP
        out.append(RetentionDecision(table, month, verdict))
    return sorted(out)


def verified_pairs(target: Target, candidates: Iterable[tuple[str, Month]]) -> set[tuple[str, Month]]:
    """The candidates whose current manifest has a passing verify record at ``target``."""
    return {(t, m) for t, m in candidates if catalog.is_verified(target, t, m)}
