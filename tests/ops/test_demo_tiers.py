"""``tickarchive demo --days N``: which past days, the simulator's wire clock that generates
them, and the whole path — simulator → collector → QuestDB → sealed → rolled over → the
closed month archived and verified → its warm copy dropped — ending with the API answering
one day from each tier (cold, warm, hot), checked against the tier router and the rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest

from tests.ingest.test_collector import collector_settings, running, sim_config
from tests.ops.test_live_metrics import _api
from tickarchive.loadtest.sim import Simulator
from tickarchive.loadtest.sim.clock import DAY_MS, WireClock
from tickarchive.months import Month
from tickarchive.ops import demo_tiers
from tickarchive.ops.demo_tiers import PastPlan, day_ms, plan_past
from tickarchive.ops.errors import DemoError
from tickarchive.settings import ArchiveSettings
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

D = dt.date


@pytest.mark.parametrize(
    ("today", "days", "warm", "cold"),
    [
        (D(2026, 12, 6), 2, (D(2026, 12, 4), D(2026, 12, 5)), D(2026, 11, 30)),
        # the 1st: the warm days are the closed month's last days, so the month before is the cold one
        (D(2026, 12, 1), 2, (D(2026, 11, 29), D(2026, 11, 30)), D(2026, 10, 31)),
        (D(2027, 1, 1), 1, (D(2026, 12, 31),), D(2026, 11, 30)),
        (D(2028, 3, 2), 2, (D(2028, 2, 29), D(2028, 3, 1)), D(2028, 1, 31)),
    ],
)
def test_the_past_days(today: dt.date, days: int, warm: tuple[dt.date, ...], cold: dt.date) -> None:
    plan = plan_past(today, days)
    assert plan.warm_days == warm
    assert plan.cold_day == cold
    assert plan.days == (cold, *warm)
    # the cold month is closed and holds no warm day: dropping its warm copy leaves the warm days warm
    assert plan.cold_month < Month.of(today)
    assert all(Month.of(d) != plan.cold_month for d in plan.warm_days)


def test_no_past_days_is_said_plainly() -> None:
    with pytest.raises(DemoError, match="--days 0: give at least 1"):
        plan_past(D(2026, 12, 6), 0)


def test_the_wire_clock_runs_through_the_past_days_then_joins_the_wall_clock() -> None:
    d1, d2 = day_ms(D(2026, 11, 30)), day_ms(D(2026, 12, 5))
    wall0 = day_ms(D(2026, 12, 6)) + 12 * 3_600_000
    clock = WireClock(wall0, (d1, d2), past_speed=1440.0)  # a day a minute
    assert clock.past_wall_ms == 2 * 60_000
    assert clock.now_ms(wall0) == d1
    assert clock.now_ms(wall0 + 30_000) == d1 + DAY_MS // 2
    assert clock.now_ms(wall0 + 60_000) == d2  # the next past day starts at its own midnight
    assert clock.now_ms(wall0 + 119_999) == d2 + DAY_MS - 1440
    assert clock.in_past(wall0 + 119_999)
    assert clock.now_ms(wall0 + 120_000) == wall0 + 120_000  # then the wall clock
    assert not clock.in_past(wall0 + 120_000)
    assert WireClock(wall0).now_ms(wall0 + 5) == wall0 + 5  # without past days: the wall clock


def test_the_demo_lifecycle_answers_from_every_tier(
    questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    # two days back, not yesterday: yesterday is sealed only 30 min after midnight (the grace)
    warm_day = today - dt.timedelta(days=2)
    plan = PastPlan(today, (warm_day,), warm_day.replace(day=1) - dt.timedelta(days=1))
    speed = 2 * 86_400 / 8.0  # both past days in about 8 s
    base = collector_settings(connections=2)
    settings = base.model_copy(update={
        "questdb": questdb_clean.settings(),
        "postgres": postgres_clean.settings(),
        "archive": ArchiveSettings(target=str(tmp_path / "lake"), cache_dir=tmp_path / "cache",
                                   staging_dir=tmp_path / "staging"),
    })
    config = sim_config(tmp_path, start_ms=None, instruments=16, rate_per_s=400.0, trades_per_s=40.0,
                        past_days_ms=tuple(day_ms(d) for d in plan.days), past_speed=speed)
    said: list[str] = []

    async def collect_past() -> None:
        async with Simulator(config) as sim, running(settings, sim, questdb_clean, tmp_path / "journal"):
            deadline = time.monotonic() + 120
            while sim.status().get("in_past"):  # polling the simulator's clock, as the demo does
                assert time.monotonic() < deadline, "the simulator stayed in the past"
                await asyncio.sleep(0.2)
            await asyncio.to_thread(demo_tiers.wait_stored, settings, time.time_ns() // 1000 + 2_000_000, 120.0)

    asyncio.run(collect_past())
    # every past day was stored with its own timestamps
    stored = {r[0].date() for r in questdb_clean.query(f"SELECT ts, count() FROM quotes WHERE ts < '{today}' "
                                                       "SAMPLE BY 1d ALIGN TO CALENDAR")}
    assert stored == set(plan.days)

    sealed = demo_tiers.wait_sealed(settings, plan, 120.0, said.append)
    assert sealed == plan.days, said
    demo_tiers.roll_over(settings, said.append)
    demo_tiers.archive_month(settings, plan.cold_month, said.append)
    assert f"  quotes {plan.cold_month}: exported" in "\n".join(said)
    demo_tiers.drop_warm_month(settings, plan.cold_month, said.append)
    assert postgres_clean.query(
        "SELECT count(*) FROM quotes WHERE ts >= %s AND ts < %s",
        (plan.cold_day.replace(day=1), plan.cold_day + dt.timedelta(days=1)),
    ) == [(0,)]
    assert postgres_clean.query("SELECT count(*) FROM quotes WHERE ts >= %s AND ts < %s",
                                (warm_day, warm_day + dt.timedelta(days=1)))[0][0] > 0

    with _api(settings) as url:
        answers = demo_tiers.check_tiers(settings, url, plan, sealed)
    assert [(a.tier, a.day) for a in answers] == [("cold", plan.cold_day), ("warm", warm_day), ("hot", today)]
    for a in answers:
        assert a.rows == 3
        assert a.first.startswith(a.day.isoformat())  # the first trade answered is of that day
        assert "ETH-*" in a.url
