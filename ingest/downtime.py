"""Where the previous run's data ended: the start of the ``downtime`` gaps a collector
writes at start-up (``tickarchive.ingest.collector``). docs/collector.md ("Gaps").
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from pathlib import Path

import httpx

from tickarchive.ingest.journal import JournalReader
from tickarchive.venue import Venue


def journaled_ends(journal_dir: Path, venue: Venue, skip: Collection[str]) -> dict[str, int]:
    """Per exchange connection of the previous run (connections in ``skip`` aside), where
    its journaled data ended: the earlier of the receive time and the exchange time of its
    last journaled frame. Frames in flight when the collector died (in the socket, never
    journaled) were sent after that frame, so they carry exchange times from about its
    exchange time on; a gap from its receive time would miss them when the receive lag is
    long (a loaded machine). Per connection, because each socket has a backlog of its own."""
    out: dict[str, int] = {}
    for conn, rec in JournalReader(journal_dir).last_per_connection().items():
        if conn in skip:
            continue
        start = rec.recv_ts_us
        for row in venue.rows_of_frame(rec.frame, rec.recv_ts_us):
            ts = getattr(row, "ts_us", None)
            if isinstance(ts, int) and 0 < ts < start:
                start = ts
        out[conn] = start
    return out


async def last_heartbeat_us(questdb_http_url: str) -> int | None:
    """The newest ``collector_heartbeats`` row in QuestDB (µs), None if there is none or
    QuestDB does not answer (a journal with no exchange frames: a fresh or emptied one)."""
    try:
        async with httpx.AsyncClient(timeout=3.0) as client:
            r = await client.get(
                f"{questdb_http_url}/exec", params={"query": "SELECT max(ts) FROM collector_heartbeats"}
            )
        rows = r.json().get("dataset") or []
    except (httpx.HTTPError, ValueError):
        return None
    if not rows or rows[0][0] is None:
        return None
    try:
        return int(datetime.fromisoformat(str(rows[0][0]).replace("Z", "+00:00")).timestamp() * 1_000_000)
    except ValueError:
        return None
