"""``/health``: is the archive taking data right now?

Checks, each with a status and a reason when failing:

* QuestDB and the warm store answer ``SELECT 1``;
* every collector connection's latest heartbeat (``collector_heartbeats`` in QuestDB,
  ``LATEST ON ts PARTITION BY connection`` over the last day) is younger than
  ``api.health_heartbeat_max_age_s`` and says ``connected``; at least one exists;
* the journal backlog (sum over connections of their latest ``journal_backlog_bytes``)
  is at most ``api.health_max_backlog_bytes``;
* the age of the newest row per market table is reported; the newest quote must be
  younger than ``api.health_max_tick_age_s``.

Healthy → 200, else 503; the body is the same report either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tickarchive.api.errors import ApiError
from tickarchive.api.stores import Stores
from tickarchive.api.timefmt import US_PER_S, iso
from tickarchive.tables import MARKET_TABLES


@dataclass(slots=True)
class HealthReport:
    healthy: bool = True
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.healthy = False
        self.reasons.append(reason)

    def body(self) -> dict[str, Any]:
        return {"status": "ok" if self.healthy else "unhealthy", "reasons": self.reasons, **self.checks}


def check(stores: Stores, now_us: int | None = None) -> HealthReport:
    a = stores.settings.api
    now = now_us if now_us is not None else int(time.time() * US_PER_S)
    rep = HealthReport()
    try:
        stores.hot.ping()
        rep.checks["questdb"] = "ok"
        qdb_ok = True
    except ApiError as exc:
        rep.checks["questdb"] = "down"
        rep.fail(f"QuestDB: {exc.detail}")
        qdb_ok = False
    try:
        stores.warm.ping()
        rep.checks["postgres"] = "ok"
    except ApiError as exc:
        rep.checks["postgres"] = "down"
        rep.fail(f"warm store: {exc.detail}")
    if not qdb_ok:
        return rep
    try:
        hb = stores.qdb_pool.fetch(
            "SELECT connection, cast(ts AS long), connected, subscribed_channels, cast(last_frame_ts AS long), "
            "journal_backlog_bytes FROM collector_heartbeats WHERE ts >= dateadd('d', -1, now()) "
            "LATEST ON ts PARTITION BY connection"
        )
        conns = []
        backlog = 0
        for name, ts, connected, channels, last_frame, backlog_bytes in sorted(hb):
            age = (now - int(ts)) / US_PER_S
            backlog += int(backlog_bytes or 0)
            conns.append(
                {
                    "connection": name,
                    "heartbeat": iso(int(ts)),
                    "heartbeat_age_s": round(age, 3),
                    "connected": bool(connected),
                    "subscribed_channels": channels,
                    "last_frame": iso(int(last_frame)) if last_frame and last_frame > 0 else None,
                }
            )
            if age > a.health_heartbeat_max_age_s:
                rep.fail(f"collector connection {name}: last heartbeat {age:.1f} s ago")
            elif not connected:
                rep.fail(f"collector connection {name}: not connected")
        if not conns:
            rep.fail("no collector heartbeats in the last day (is the collector running?)")
        rep.checks["connections"] = conns
        rep.checks["journal_backlog_bytes"] = backlog
        if backlog > a.health_max_backlog_bytes:
            rep.fail(f"journal backlog {backlog} bytes > {a.health_max_backlog_bytes}")
        ages: dict[str, float | None] = {}
        for t in MARKET_TABLES:
            row = stores.qdb_pool.fetch(f"SELECT cast(max(ts) AS long) FROM {t.name}")
            last = row[0][0] if row else None
            ages[t.name] = round((now - int(last)) / US_PER_S, 3) if last and last > 0 else None
        rep.checks["last_tick_age_s"] = ages
        q_age = ages.get("quotes")
        if q_age is None:
            rep.fail("no quotes in QuestDB")
        elif q_age > a.health_max_tick_age_s:
            rep.fail(f"newest quote is {q_age:.1f} s old")
    except ApiError as exc:
        rep.fail(f"QuestDB: {exc.detail}")
    return rep
