"""The review's ways to exhaust the API (#17 hardening 1, 2, 5), each reproduced against
real stores: forged cursors, expensive patterns, statements without a deadline, no
concurrency limit, scrapes that query every store, QuestDB read as admin, raw errors."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.api import data
from tests.api.conftest import Api, make_settings
from tickarchive.api import query
from tickarchive.api.cursor import Cursor
from tickarchive.api.errors import InvalidRequest, Saturated, StoreTimeout, StoreUnavailable
from tickarchive.api.params import glob_regexes, instrument_match
from tickarchive.api.pool import Pool
from tickarchive.store import job_runs
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

Q = {"instrument": "ETH-30OCT26-3000-*", "start": "2026-10-05", "end": "2026-10-06"}


# -- 1. cursors ------------------------------------------------------------------------------


def test_cursors_are_signed_bound_to_their_query_and_bounded() -> None:
    secret = b"k" * 32
    text = Cursor(1_000, 3).encode(secret, "quotes|ETH-*|1|2")
    assert Cursor.decode(text, secret, "quotes|ETH-*|1|2", max_skip=10) == Cursor(1_000, 3)
    for binding, key in (("quotes|BTC-*|1|2", secret), ("quotes|ETH-*|1|2", b"other")):
        with pytest.raises(InvalidRequest):
            Cursor.decode(text, key, binding, max_skip=10)
    with pytest.raises(Exception, match="not a cursor"):
        Cursor.decode(Cursor(1_000, 11).encode(secret, "b"), secret, "b", max_skip=10)
    payload, _, mac = text.partition(".")
    with pytest.raises(Exception, match="not a cursor"):
        Cursor.decode(payload[:-2] + "zz." + mac, secret, "quotes|ETH-*|1|2", max_skip=10)


def test_a_forged_cursor_never_reaches_a_store(api_pg: Api, questdb_clean: QuestDBHandle,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    data.write(questdb_clean, data.quotes())
    asked: list[int] = []
    real = query.rows

    def spy(*args: object, **kw: object) -> query.Page:
        cursor = args[8]
        asked.append(cursor.skip if isinstance(cursor, Cursor) else 0)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr("tickarchive.api.routes_rows.query.rows", spy)
    page = api_pg.get("/quotes", **Q, limit=5)
    good = api_pg.get("/quotes", **Q, limit=5, cursor=page["next_cursor"])
    assert good["count"] == 5
    forged = Cursor(0, 10**12).encode(b"guessed", "quotes")
    r = api_pg.client.get("/quotes", params={**Q, "cursor": forged})
    assert r.status_code == 422
    assert asked == [0, 1]  # the second page skipped one row with the first page's last ts; nothing else


# -- 2. patterns, deadlines, concurrency -----------------------------------------------------


def test_too_many_wildcards_are_refused(api_pg: Api) -> None:
    r = api_pg.client.get("/quotes", params={**Q, "instrument": "*?*?*?*?*?*?*?*?*?*?-Z"})
    assert r.status_code == 422
    assert "(api.max_pattern_wildcards)" in r.json()["detail"]


GLOB = st.text(alphabet="AB-*?", min_size=1, max_size=12).filter(lambda g: not g.startswith("-") and "--" not in g)


@given(GLOB, st.lists(st.text(alphabet="AB-", min_size=1, max_size=14), min_size=1, max_size=20))
@settings(max_examples=300, deadline=None)
def test_the_linear_pattern_form_matches_exactly_what_the_glob_means(glob: str, names: list[str]) -> None:
    portable, atomic = glob_regexes(glob)
    meaning = re.compile("^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob) + "$")
    for name in names:
        want = bool(meaning.match(name))
        assert bool(re.match(portable, name)) == want, (glob, name)
        assert bool(re.match(atomic, name)) == want, (glob, name, atomic)


def test_questdb_is_sent_the_linear_form(api_pg: Api, questdb_clean: QuestDBHandle) -> None:
    """The same pattern matches the same rows on QuestDB (atomic form), the warm store and
    polars (portable form): the tier equality tests cover those; here QuestDB's answer."""
    data.write(questdb_clean, data.quotes())
    m = instrument_match("ETH-*-*-C")
    assert m.hot_regex == "^ETH-(?>.*?-).*-C$"
    got = api_pg.get("/quotes", instrument="ETH-*-*-C", start="2026-10-05", end="2026-10-08", limit=10_000)
    want = [q for q in data.quotes() if re.match(m.regex or "", q.instrument)]
    assert got["count"] == len(want) > 0


def test_every_statement_has_a_deadline(questdb: QuestDBHandle, postgres: WarmHandle) -> None:
    slow_qdb = "SELECT sum(x * x) FROM long_sequence(3000000000) WHERE x % 7 = 3"
    pool = Pool("QuestDB", questdb.pg_dsn, size=1, wait_s=1, deadline_s=0.3)
    with pytest.raises(StoreTimeout) as err:
        pool.fetch(slow_qdb)
    assert err.value.status == 503
    assert err.value.headers == {"Retry-After": "5"}
    assert pool.fetch("SELECT 1") == [(1,)]  # the pool recovers: the cut connection was discarded
    pool.close()
    warm = Pool("warm store", postgres.reader_dsn, size=1, wait_s=1, deadline_s=5,
                setup=("SET statement_timeout = 300",))
    with pytest.raises(StoreTimeout):
        warm.fetch("SELECT pg_sleep(3)")
    assert warm.fetch("SELECT 1") == [(1,)]
    warm.close()


def test_a_busy_store_answers_503_with_retry_after(questdb: QuestDBHandle) -> None:
    pool = Pool("QuestDB", questdb.pg_dsn, size=1, wait_s=0.1, deadline_s=5)
    with pool.connection():
        with pytest.raises(Saturated) as err:
            pool.fetch("SELECT 1")
        assert (err.value.status, err.value.headers) == (503, {"Retry-After": "1"})
    pool.close()


def test_hot_exports_are_limited(api_pg: Api, questdb_clean: QuestDBHandle) -> None:
    data.write(questdb_clean, data.quotes())
    hot = api_pg.stores.hot
    assert hot.export is not None
    taken = [hot._export_slots.acquire(blocking=False) for _ in range(2)]  # api.export_concurrency = 2
    assert taken == [True, True]
    try:
        r = api_pg.client.get("/quotes", params={**Q, "columns": "bid_price"})
        assert r.status_code == 503
        assert (r.json()["error"], r.headers["Retry-After"]) == ("saturated", "5")
    finally:
        hot._export_slots.release()
        hot._export_slots.release()
    assert api_pg.client.get("/quotes", params={**Q, "columns": "bid_price"}).status_code == 200


@pytest.fixture
def one_at_a_time(questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path) -> Iterator[Api]:
    api = Api(make_settings(questdb_clean, postgres_clean, tmp_path, max_concurrent_requests=1))
    yield api
    api.close()


def test_requests_beyond_the_limit_are_told_to_come_back(one_at_a_time: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    inside, release = threading.Event(), threading.Event()
    real = query.rows

    def held(*args: object, **kw: object) -> query.Page:
        inside.set()
        release.wait(30)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr("tickarchive.api.routes_rows.query.rows", held)
    results: list[int] = []
    t = threading.Thread(target=lambda: results.append(one_at_a_time.client.get("/quotes", params=Q).status_code))
    t.start()
    assert inside.wait(30)
    r = one_at_a_time.client.get("/quotes", params=Q)
    assert r.status_code == 503
    assert (r.json()["error"], r.headers["Retry-After"]) == ("saturated", "1")
    assert one_at_a_time.client.get("/health").status_code in (200, 503)  # not counted
    release.set()
    t.join(30)
    assert results == [200]


# -- 5. scrapes, credentials, errors, bounds ----------------------------------------------------


def test_a_scrape_serves_figures_computed_in_the_background(
    questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one background refresh only (at start-up), and the stores are forbidden only after it
    # finished: on a loaded machine it was still running when they were, and failed there
    api = Api(make_settings(questdb_clean, postgres_clean, tmp_path, metrics_refresh_s=3600))
    try:
        gauges = api.client.app.state.ctx.metrics.gauges  # type: ignore[attr-defined]
        deadline = time.monotonic() + 120
        while gauges._refreshed_at is None:  # set when the start-up refresh has finished
            assert time.monotonic() < deadline, "the start-up refresh did not finish"
            time.sleep(0.02)
        with pytest.raises(RuntimeError), job_runs.recorded(postgres_clean.writer_dsn, "archive_export"):
            raise RuntimeError("B2 said no")
        with job_runs.recorded(postgres_clean.writer_dsn, "archive_verify"):
            pass
        gauges.refresh()

        def forbidden(*args: object) -> object:
            raise AssertionError("a scrape queried a store")

        for name in ("ledger_summary", "job_failures", "database_bytes"):
            monkeypatch.setattr(api.stores.warm, name, forbidden)
        monkeypatch.setattr(api.stores.qdb_pool, "fetch", forbidden)
        text = api.client.get("/metrics").text
    finally:
        api.close()
    assert "tickarchive_archive_failures_total 1.0" in text  # a real failure, not a constant 0
    assert 'tickarchive_storage_bytes{tier="warm"}' in text
    assert "tickarchive_api_gauges_age_seconds" in text
    assert postgres_clean.query("SELECT job, status, detail FROM job_runs ORDER BY job") == [
        ("archive_export", "failed", "RuntimeError: B2 said no"),
        ("archive_verify", "ok", ""),
    ]


def test_questdb_is_read_with_its_read_only_user(api_pg: Api) -> None:
    with api_pg.stores.qdb_pool.connection() as conn:
        user = conn.info.user
    assert user == "reader"
    with pytest.raises(StoreUnavailable) as err:
        api_pg.stores.qdb_pool.fetch("INSERT INTO quotes (ts, instrument) VALUES (now(), 'X')")
    assert "permission" in err.value.internal.lower()


def test_coverage_refuses_more_than_max_rows_without_reading_them(
    questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path
) -> None:
    data.write(questdb_clean, [*data.quotes(), *data.trades()])
    api = Api(make_settings(questdb_clean, postgres_clean, tmp_path, max_rows=3))
    try:
        r = api.client.get("/coverage", params={"start_day": "2026-10-05", "end_day": "2026-10-07"})
        assert r.status_code == 413
        assert api.client.get("/coverage", params={"start_day": "2026-10-05", "end_day": "2026-10-05",
                                                   "table": "trades", "instrument": "BTC-*"}).status_code == 200
    finally:
        api.close()
