"""Schemathesis over the OpenAPI document, against the app on stores **filled by a simulator
run**: the simulator and a real collector write a few seconds of the market into QuestDB;
those rows are copied to a day 40 days back (rolled over into the warm store) and to a day
of an earlier month (rolled over, archived to Parquet, its warm month dropped), so every
tier holds real data. Every generated request must pass two checks: not a server error
(no 5xx; ``/health`` answers 503 by design here: no collector is running any more) and
response-schema conformance (the body is what the document says, for every status)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.conftest import make_settings
from tests.ingest.conditions import until_stored
from tests.ingest.test_collector import collector_settings, quiesce, running, sim_config
from tickarchive.api.app import create_app
from tickarchive.api.stores import Stores
from tickarchive.archive.export import ExportOptions, export_month
from tickarchive.archive.targets import open_target
from tickarchive.loadtest.sim import Simulator
from tickarchive.months import Month
from tickarchive.store.hot import HotReader, HotStore
from tickarchive.store.rollover import RolloverOptions, run
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle
from tickarchive.store.warm import WarmStore
from tickarchive.tables import BY_NAME, MARKET_TABLES, ColumnType, Table

US_PER_DAY = 86_400_000_000
COPIED = ("quotes", "trades", "book_changes", "instruments", "gaps")
OPERATIONS = ["/health", "/metrics", "/quotes", "/trades", "/gaps", "/chain", "/book", "/ohlcv", "/instruments",
              "/coverage", "/chain/snapshots", "/surface", "/book/snapshots", "/options_chain", "/condition"]


def _copy_to(qdb: QuestDBHandle, table: Table, days_back: int, since_us: int) -> None:
    """Copy ``table``'s rows received since ``since_us`` to ``days_back`` days earlier."""
    exprs = []
    for c in table.columns:
        shift = c.type is ColumnType.TIMESTAMP and c.name in ("ts", "recv_ts", "end_ts")
        exprs.append(f"dateadd('d', -{days_back}, {c.name}) {c.name}" if shift else c.name)
    cols = ", ".join(table.column_names)
    qdb.query(
        f"INSERT INTO {table.name} ({cols}) SELECT {', '.join(exprs)} FROM {table.name} WHERE ts >= {since_us}"
    )


def fill(qdb: QuestDBHandle, warm: WarmHandle, tmp: Path) -> dict[str, Any]:
    """The simulator's market for a few seconds (about 1000 quotes), then copies of it 40 days
    back (warm) and in an earlier month (cold)."""
    now = dt.datetime.now(dt.UTC)
    since = int(now.timestamp() * 1_000_000) - 60_000_000

    async def simulate() -> None:
        config = sim_config(tmp, rate_per_s=800.0, instruments=24, trades_per_s=40.0)
        async with Simulator(config) as sim, running(collector_settings(connections=2), sim, qdb, tmp / "journal") as c:
            # rows of every market table (what 3 s gave on an idle machine: counts, not 3 s, in
            # which a loaded machine's simulator makes fewer; each tier is asserted to hold 10
            # quotes)
            await until_stored(c, quotes=1000, book_changes=1000, trades=60)
            await quiesce(sim, c)

    asyncio.run(simulate())
    qdb.wait_for_wal()
    today = now.date()
    warm_day = today - dt.timedelta(days=40)
    cold_day = (today.replace(day=1) - dt.timedelta(days=70)).replace(day=10)
    for days_back in ((today - warm_day).days, (today - cold_day).days):
        for name in COPIED:
            _copy_to(qdb, BY_NAME[name], days_back, since)
    qdb.wait_for_wal()
    now_us = int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
    with (
        HotStore(qdb.pg_dsn, qdb.http_url) as h,
        WarmStore(warm.owner_dsn, warm.dialect, pglite=warm.pglite) as w,
    ):
        for day in (cold_day, warm_day):
            report = run(h, w, now_us, RolloverOptions(hot_retention_days=1, reader=HotReader.PG), day=day)
            assert report.ok, report.problems
    target = open_target(str(tmp / "lake"))
    month = Month.of(cold_day)
    with WarmStore.open(warm.owner_dsn) as source:
        for t in (*MARKET_TABLES, BY_NAME["gaps"]):
            export_month(source, target, t, month, ExportOptions(staging_dir=tmp / "staging"))
    for t in (*MARKET_TABLES, BY_NAME["gaps"]):
        warm.query(f"DELETE FROM {t.name} WHERE ts >= %s AND ts < %s",
                   (dt.datetime.combine(cold_day.replace(day=1), dt.time(), dt.UTC),
                    dt.datetime.combine(cold_day.replace(day=28) + dt.timedelta(days=4), dt.time(), dt.UTC)
                    .replace(day=1)))
    qdb.wait_for_wal()
    return {"today": today, "warm_day": warm_day, "cold_day": cold_day}


@pytest.fixture(scope="module")
def filled(
    questdb: QuestDBHandle, postgres: WarmHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[schemathesis.BaseSchema, Stores, dict[str, Any]]]:
    questdb.truncate_all()
    postgres.truncate_all()
    tmp = tmp_path_factory.mktemp("schemathesis")
    days = fill(questdb, postgres, tmp)
    # spans as long as the generated times can be: more generated requests get past validation
    s = make_settings(questdb, postgres, tmp, max_span_days=40_000, ohlcv_max_span_days=40_000,
                      max_concurrent_requests=64, statement_timeout_s=60)
    stores = Stores(s)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(s, stores, live=False)), stores, days
    stores.close()


def test_the_stores_are_filled_in_every_tier(filled: tuple[Any, Stores, dict[str, Any]]) -> None:
    _, stores, days = filled
    from tickarchive.api.timefmt import day_start_us
    from tickarchive.tables import QUOTES

    tiers = {}
    for key in ("cold_day", "warm_day", "today"):
        lo = day_start_us(days[key])
        segs = stores.segments(QUOTES, lo, lo + US_PER_DAY)
        tiers[key] = [s.tier.value for s in segs]
        rows = stores.reader(segs[0].tier).rows(QUOTES, ("ts", "instrument"), lo, lo + US_PER_DAY, None, {}, 10)
        assert rows.height == 10, (key, tiers[key])
    assert tiers == {"cold_day": ["cold"], "warm_day": ["warm"], "today": ["hot"]}


def _check(case: schemathesis.Case[Any]) -> None:
    response = case.call()
    checks = [response_schema_conformance]
    if not (case.path == "/health" and response.status_code == 503):  # unhealthy by design: no collector
        checks.append(not_a_server_error)
    case.validate_response(response, checks=checks)
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "detail", "request_id"}
        assert "Traceback" not in response.text


def test_generated_requests_find_nothing(filled: tuple[schemathesis.BaseSchema, Stores, dict[str, Any]]) -> None:
    """Each operation of the document, 40 generated requests (positive and negative modes)."""
    schema = filled[0]
    paths = []
    for result in schema.get_all_operations():
        op = result.ok()  # type: ignore[union-attr]  # Err has no ok(): an invalid spec fails here
        paths.append(op.path)

        @given(case=op.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run_case(case: schemathesis.Case[Any]) -> None:
            _check(case)

        run_case()
    assert sorted(paths) == sorted(OPERATIONS)
