"""Conditions tests wait on instead of sleeping: "the collector stored this much" holds on a
loaded machine as on an idle one, where "two seconds passed" does not."""

from __future__ import annotations

import asyncio
import time

from tickarchive.ingest.collector import Collector


def stored_rows(c: Collector, table: str) -> int:
    """Rows of ``table`` QuestDB acknowledged to this collector."""
    value = c.metrics.registry.get_sample_value("tickarchive_stored_rows_total", {"table": table})
    return int(value or 0)


async def until_stored(c: Collector, timeout_s: float = 60.0, **minimum_rows: int) -> None:
    """Wait until QuestDB acknowledged at least ``minimum_rows[table]`` rows of each table."""
    deadline = time.monotonic() + timeout_s
    while any(stored_rows(c, t) < n for t, n in minimum_rows.items()):
        if time.monotonic() > deadline:
            have = {t: stored_rows(c, t) for t in minimum_rows}
            raise AssertionError(f"timed out after {timeout_s} s waiting for {minimum_rows} stored rows; have {have}")
        await asyncio.sleep(0.05)
