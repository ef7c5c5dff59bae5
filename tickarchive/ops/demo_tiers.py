"""``tickarchive demo --days N``: past days through the whole lifecycle, so that all three
tiers answer within minutes of starting.

The plan (``plan_past``): the N days before today become **warm** days, and the last day of
the month before the first of them becomes the **cold** day (its month is closed, so it can
be archived, and it is not a warm day's month, so dropping its warm copy leaves the warm days
warm); today, live, is **hot**. The simulator generates the cold day and then the warm days
at ``past_speed`` times the wall clock before joining it (``loadtest/sim/clock.py``), the
collector stores them like any other frames, and then, in order (each step is what the
named command does, run in-process):

1. wait until every past day is *sealed* (``store/seal.py``: shipped, WAL applied, no open
   backfill) — ``tickarchive rollover --dry-run`` shows the same decisions;
2. roll them over into the warm store — ``tickarchive rollover``;
3. export the cold month to the archive and verify it — ``tickarchive archive export
   --month M`` and ``tickarchive archive verify --month M``;
4. drop the cold month's warm copy, table by table, only where its archive verified —
   what ``tickarchive warm-retention`` does once a month is older than
   ``lifecycle.warm_retention_months``;
5. ask the API for one day of each tier and check that it answers, from that tier.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from tickarchive.months import Month
from tickarchive.ops.errors import DemoError
from tickarchive.settings import Settings
from tickarchive.tables import TRADES

Say = Callable[[str], None]
US_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class PastPlan:
    today: dt.date
    warm_days: tuple[dt.date, ...]
    cold_day: dt.date

    @property
    def cold_month(self) -> Month:
        return Month.of(self.cold_day)

    @property
    def days(self) -> tuple[dt.date, ...]:
        """Every past day, in the order the simulator generates them."""
        return (self.cold_day, *self.warm_days)


def plan_past(today: dt.date, days: int) -> PastPlan:
    """The past days of ``demo --days N`` (N >= 1) on ``today``."""
    if days < 1:
        raise DemoError(f"--days {days}: give at least 1 (or leave it out for a live-only demo)")
    warm = tuple(today - dt.timedelta(days=n) for n in range(days, 0, -1))
    cold = warm[0].replace(day=1) - dt.timedelta(days=1)
    return PastPlan(today, warm, cold)


def day_ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1000


def _now_us() -> int:
    return time.time_ns() // 1000


def wait_stored(settings: Settings, after_us: int, timeout_s: float) -> None:
    """Until QuestDB holds a quote stamped at or after ``after_us`` (a live one, once the
    simulator joined the wall clock). The journal is written in receive order and
    acknowledged in that order, so every past frame received before it is stored too: the
    sealing rule (a row *received* after the day) cannot tell backdated days apart, this can."""
    import psycopg

    from tickarchive.store.hot import open_hot
    from tickarchive.store.seal import iso_us

    deadline = time.monotonic() + timeout_s
    with open_hot(settings) as hot:
        while True:
            try:
                found = hot.conn.execute(f"SELECT ts FROM quotes WHERE ts >= '{iso_us(after_us)}' LIMIT 1").fetchall()
            except psycopg.Error as exc:
                raise DemoError(f"cannot read QuestDB: {exc}") from None
            if found:
                return
            if time.monotonic() > deadline:
                raise DemoError(f"the collector stored no live quote within {timeout_s:g} s: is it running?")
            time.sleep(0.5)  # polling the store


def wait_sealed(settings: Settings, plan: PastPlan, timeout_s: float, say: Say) -> tuple[dt.date, ...]:
    """The past days that are sealed once every one is (or when ``timeout_s`` ran out:
    those sealed by then, and why the others are not)."""
    from tickarchive.store import seal
    from tickarchive.store.hot import open_hot
    from tickarchive.store.rollover import RolloverOptions

    life = RolloverOptions.from_settings(settings.lifecycle).lifecycle()
    deadline = time.monotonic() + timeout_s
    with open_hot(settings) as hot:
        while True:
            decisions = [seal.decide(d, _now_us(), seal.observe(hot.conn, d), life) for d in plan.days]
            sealed = tuple(d.day for d in decisions if d.sealed)
            if len(sealed) == len(plan.days) or time.monotonic() > deadline:
                for d in decisions:
                    if not d.sealed:
                        say(f"  {d.day}: not sealed: {'; '.join(d.reasons)}")
                return sealed
            time.sleep(1.0)  # polling the store's state: the WAL applies, the journal ships


def roll_over(settings: Settings, say: Say) -> None:
    """``tickarchive rollover``: every sealed day into the warm store, verified."""
    from tickarchive.store import rollover as ro
    from tickarchive.store.hot import open_hot
    from tickarchive.store.warm import open_warm

    with open_warm(settings) as warm, open_hot(settings) as hot:
        report = ro.run(hot, warm, _now_us(), ro.RolloverOptions.from_settings(settings.lifecycle))
    per_day: dict[dt.date, int] = {}
    for o in report.tables:
        per_day[o.day] = per_day.get(o.day, 0) + (o.rows_warm or 0)
    for day, rows in sorted(per_day.items()):
        say(f"  {day}: {rows:,} rows in the warm store, counts and checksums verified")
    if not report.ok:
        raise DemoError("rollover found mismatches: " + "; ".join(report.problems))


def archive_month(settings: Settings, month: Month, say: Say) -> None:
    """``archive export --month M`` then ``archive verify --month M`` of every archived table."""
    from tickarchive.archive.export import ExportOptions, export_month, refuse_empty_month
    from tickarchive.archive.targets import open_target
    from tickarchive.archive.verify import verify_month
    from tickarchive.ops.lifecycle import ARCHIVED_TABLES
    from tickarchive.store.dialect import warm_dsns
    from tickarchive.store.warm import WarmStore

    target = open_target(settings.archive.target)
    options = ExportOptions.from_settings(settings.archive)
    with WarmStore.open(warm_dsns(settings.postgres).reader) as source:
        refuse_empty_month(source, list(ARCHIVED_TABLES), month)
        for t in ARCHIVED_TABLES:
            r = export_month(source, target, t, month, options)
            if r.manifest.total_rows == 0:
                say(f"  {t.name} {month}: empty (no rows that month), recorded as empty")
                continue
            v = verify_month(target, t.name, month)
            say(f"  {t.name} {month}: {r.status}, {v.rows:,} rows in {v.files} file(s), verified")


def drop_warm_month(settings: Settings, month: Month, say: Say) -> None:
    """The month's warm copy goes, table by table, where its archive verified."""
    from tickarchive.archive import retention
    from tickarchive.archive.targets import open_target
    from tickarchive.ops.lifecycle import ARCHIVED_TABLES
    from tickarchive.store.warm import open_warm

    target = open_target(settings.archive.target)
    verified = retention.verified_pairs(target, [(t.name, month) for t in ARCHIVED_TABLES])
    with open_warm(settings) as warm:
        for t in ARCHIVED_TABLES:
            if (t.name, month) in verified and month in warm.stored_months(t):
                warm.drop_month(t, month)
    say(f"  {month}: dropped from the warm store ({len(verified)} tables verified in the archive)")


@dataclass(frozen=True, slots=True)
class TierAnswer:
    tier: str
    day: dt.date
    url: str
    rows: int
    first: str
    """the first trade answered, in words"""


def _get(url: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:  # a loopback URL of the demo's own API
            data: dict[str, object] = json.loads(r.read())
            return data
    except urllib.error.HTTPError as exc:
        raise DemoError(f"the API answered {exc.code} to {url}: {exc.read()[:300]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DemoError(f"the API did not answer {url}: {exc}") from None


def check_tiers(settings: Settings, api_url: str, plan: PastPlan, rolled: tuple[dt.date, ...],
                timeout_s: float = 90.0) -> list[TierAnswer]:
    """One ``/trades`` query per tier (the cold day, the newest warm day, today), each
    checked to come from that tier (``api.stores``) and to return rows."""
    from tickarchive.api.stores import Stores

    wanted: list[tuple[str, dt.date]] = [("hot", plan.today)]
    warm_days = [d for d in plan.warm_days if d in rolled]
    if warm_days:
        wanted.insert(0, ("warm", warm_days[-1]))
    if plan.cold_day in rolled:
        wanted.insert(0, ("cold", plan.cold_day))
    out = []
    deadline = time.monotonic() + timeout_s
    stores = Stores(settings)
    try:
        for tier, day in wanted:
            while True:  # the API caches the archive index for 30 s: the cold month shows up within that
                got = stores.day_tiers(TRADES, day, day)[day].value
                if got == tier or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
            if got != tier:
                raise DemoError(f"{day} is read from the {got} tier, not {tier}")
            query = urllib.parse.urlencode({
                "instrument": "ETH-*", "start": day.isoformat(), "end": (day + dt.timedelta(days=1)).isoformat(),
                "limit": 3, "columns": "price,amount,direction",
            }, safe="*,")
            url = f"{api_url}/trades?{query}"
            body = _get(url)
            rows, page = body.get("count"), body.get("rows")
            if not isinstance(rows, int) or rows == 0 or not isinstance(page, list) or not page:
                raise DemoError(f"the API answered no trades for {day} ({tier}): {url}")
            t = page[0]
            first = f"{t.get('ts')} {t.get('instrument')} {t.get('direction')} {t.get('amount')} @ {t.get('price')}"
            out.append(TierAnswer(tier, day, url, rows, first))
    finally:
        stores.close()
    return out
