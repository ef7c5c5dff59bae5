"""Validation (422 with a message naming the problem), API keys and rate limits, output
formats round-tripping to the same rows, /health and /metrics, no stack traces."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet
import pytest

from tests.api import data
from tests.api.conftest import Api
from tickarchive.api import frames
from tickarchive.api.auth import TokenBuckets
from tickarchive.domain import ConnectionHeartbeat
from tickarchive.store.stack.handles import QuestDBHandle
from tickarchive.tables import QUOTES

Q = {"instrument": "ETH-30OCT26-3000-*", "start": "2026-10-05", "end": "2026-10-06"}
FORGED = "eyJ0IjoxLCJzIjoxMDAwMDAwMDAwMDAwfQ.AAAAAAAAAAAAAAAAAAAAAA"
"""A hand-made cursor ({"t": 1, "s": 10**12}): before signing, it made every store read 10**12 rows."""


@pytest.fixture
def loaded(api_pg: Api, questdb_clean: QuestDBHandle) -> Api:
    data.write(questdb_clean, [*data.quotes(), *data.trades()])
    return api_pg


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({**Q, "instrument": "eth-30oct26"}, "is not an instrument name"),
        ({**Q, "instrument": "ETH;DROP TABLE quotes"}, "is not an instrument name"),
        ({**Q, "instrument": "ETH-[0-9]*"}, "is not an instrument name"),
        ({**Q, "instrument": "ETH-*-*-*-*"}, "more than 3 (api.max_pattern_wildcards)"),
        ({**Q, "start": "yesterday"}, "parameter 'start'"),
        ({**Q, "start": "2026-10-06", "end": "2026-10-05"}, "start must be before end"),
        ({**Q, "end": "2026-12-30"}, "spans more than 31 days"),
        ({**Q, "limit": 0}, "greater than or equal to 1"),
        ({**Q, "limt": 5}, "unknown query parameter(s) 'limt'"),
        ({**Q, "limit": 2_000_000}, "exceeds the maximum result size 1000000"),
        ({**Q, "limit": "many"}, "query parameter 'limit'"),
        ({**Q, "cursor": "garbage"}, "parameter 'cursor'"),
        ({**Q, "cursor": FORGED}, "not a cursor this API returned"),
        ({**Q, "columns": "bid_price,nope"}, "is not a comma-separated list of this table's column names"),
        ({**Q, "format": "xml"}, "parameter 'format'"),
        ({**Q, "time_format": "unix"}, "query parameter 'time_format'"),
        ({"start": "2026-10-05", "end": "2026-10-06"}, "query parameter 'instrument': Field required"),
        ({**Q, "start": "1999-12-31"}, "'1999-12-31' is not a time"),
    ],
)
def test_invalid_quotes_queries_are_422_with_the_reason(api_pg: Api, params: dict[str, object], message: str) -> None:
    r = api_pg.client.get("/quotes", params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_request", body
    assert message in body["detail"], body
    assert "Traceback" not in r.text


def test_other_endpoints_validate(api_pg: Api) -> None:
    cases = [
        ("/chain", {"currency": "ETH$", "at": "2026-10-05"}, "not a currency code"),
        ("/chain", {"currency": "ETH", "at": "2026-10-05", "lookback_s": 0}, "lookback_s"),
        ("/book", {"instrument": "ETH-*", "at": "2026-10-05"}, "not a pattern"),
        ("/book", {"instrument": "ETH-30OCT26-3000-C", "at": "2026-10-05", "depth": 0}, "depth"),
        (
            "/ohlcv",
            {"instrument": "ETH-30OCT26-3000-C", "start": "2026-10-05", "end": "2026-10-06", "interval": "7m"},
            "does not divide a day",
        ),
        ("/gaps", {"kind": "meteor"}, "Input should be 'disconnect'"),
        ("/coverage", {"start_day": "2026-10-06", "end_day": "2026-10-05"}, "before start_day"),
        ("/instruments", {"expiry": "30OCT26"}, "not a date"),
    ]
    for path, params, message in cases:
        r = api_pg.client.get(path, params=params)
        assert r.status_code == 422, (path, r.text)
        assert message in r.json()["detail"], (path, r.text)


def test_pages_and_formats_round_trip(loaded: Api) -> None:
    full = loaded.get("/quotes", **Q, time_format="epoch_us")
    assert full["count"] == 60
    assert full["next_cursor"] is None
    pages, cursor = [], None
    while True:
        body = loaded.get("/quotes", **Q, limit=7, time_format="epoch_us", **({"cursor": cursor} if cursor else {}))
        pages += body["rows"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == full["rows"]
    want = pl.DataFrame(full["rows"], schema=frames.schema(QUOTES, QUOTES.column_names), orient="row")

    r = loaded.client.get(
        "/quotes", params={**Q, "time_format": "epoch_us"}, headers={"Accept": "application/x-ndjson"}
    )
    assert r.headers["content-type"].startswith("application/x-ndjson")
    nd = [json.loads(line) for line in r.text.splitlines()]
    assert nd == full["rows"]

    r = loaded.client.get("/quotes", params={**Q, "format": "csv", "time_format": "epoch_us"})
    got = pl.read_csv(io.StringIO(r.text), schema_overrides=want.schema)
    assert got.equals(want)
    assert next(csv.reader(io.StringIO(r.text)))[:3] == ["ts", "recv_ts", "instrument"]

    r = loaded.client.get("/quotes", params={**Q, "format": "parquet"})
    assert r.headers["content-disposition"].startswith("attachment")
    pq = pl.read_parquet(io.BytesIO(r.content))
    assert pq.schema["ts"] == pl.Datetime("us", "UTC")
    assert pq.with_columns(pl.col("ts", "recv_ts").cast(pl.Int64)).equals(want)
    meta = pyarrow.parquet.read_metadata(io.BytesIO(r.content))
    assert "DELTA_BINARY_PACKED" in meta.row_group(0).column(0).encodings  # ts
    assert meta.row_group(0).column(0).compression == "ZSTD"

    iso = loaded.get("/quotes", **Q, limit=1)["rows"][0]
    ms = loaded.get("/quotes", **Q, limit=1, time_format="epoch_ms")["rows"][0]
    assert iso["ts"].endswith("Z")
    assert ms["ts"] == full["rows"][0]["ts"] // 1000
    cols = loaded.get("/quotes", **Q, limit=1, columns="bid_price")["rows"][0]
    assert list(cols) == ["ts", "instrument", "bid_price"]


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    b = TokenBuckets(capacity=2, per_min=30, clock=lambda: now[0])
    assert [b.take("k"), b.take("k")] == [0.0, 0.0]
    assert b.take("k") == pytest.approx(2.0)
    now[0] = 2.0
    assert b.take("k") == 0.0
    assert b.take("other") == 0.0


def test_health_and_metrics(loaded: Api, questdb_clean: QuestDBHandle) -> None:
    r = loaded.client.get("/health")
    assert r.status_code == 503
    body = r.json()
    assert body["questdb"] == "ok"
    assert body["postgres"] == "ok"
    assert "no collector heartbeats in the last day (is the collector running?)" in body["reasons"]
    import time

    now = int(time.time() * 1_000_000)
    data.write(
        questdb_clean,
        [
            ConnectionHeartbeat("c0", now, True, 120, 5000, now, 1024),
            ConnectionHeartbeat("c1", now - 60_000_000, True, 80, 10, now - 60_000_000, 2048),
        ],
    )
    body = loaded.client.get("/health").json()
    assert [c["connection"] for c in body["connections"]] == ["c0", "c1"]
    assert body["journal_backlog_bytes"] == 3072
    assert any(r.startswith("collector connection c1: last heartbeat") for r in body["reasons"])
    assert any(r.startswith("newest quote is") for r in body["reasons"])  # the test quotes are from October
    assert body["last_tick_age_s"]["quotes"] > 3600

    loaded.get("/quotes", **Q, limit=1)
    loaded.wait_for_store_figures()  # storage_bytes come from the background refresh
    text = loaded.client.get("/metrics").text
    assert 'tickarchive_api_requests_total{endpoint="/quotes",status="200"} 1.0' in text
    assert 'tickarchive_api_request_seconds_count{endpoint="/quotes"} 1.0' in text
    assert 'tickarchive_storage_bytes{tier="hot"}' in text
    assert 'tickarchive_storage_bytes{tier="warm"}' in text
    assert "tickarchive_rollover_failures_total 0.0" in text


def test_recent_days_are_served_from_questdb_while_the_warm_store_is_down(
    questdb_clean: QuestDBHandle, tmp_path: Path
) -> None:
    import time

    from tickarchive.domain import QuoteTick
    from tickarchive.settings import ArchiveSettings, PostgresSettings, Settings

    now = int(time.time() * 1_000_000)
    data.write(questdb_clean, [QuoteTick("ETH-30OCT26-3000-C", now - 1_000_000, now, bid_price=0.05)])
    dead = "host=127.0.0.1 port=1 dbname=tickarchive user=tickarchive_reader connect_timeout=2"
    settings = Settings(
        questdb=questdb_clean.settings(),
        postgres=PostgresSettings(dsn=dead, reader_dsn=dead),
        archive=ArchiveSettings(target=str(tmp_path / "lake"), cache_dir=tmp_path / "cache"),
    )
    api = Api(settings)
    try:
        r = api.client.get("/quotes", params={"instrument": "ETH-*", "start": now - 3_600_000_000, "end": now})
        assert r.status_code == 200, r.text
        assert [row["bid_price"] for row in r.json()["rows"]] == [0.05]
        r = api.client.get("/quotes", params={"instrument": "ETH-*", "start": "2026-10-05", "end": "2026-10-06"})
        assert r.status_code == 503
        body = r.json()
        assert (body["error"], body["detail"]) == ("store_unavailable", "warm store is unavailable")
        assert body["request_id"] == r.headers["X-Request-Id"]  # the server log has the cause under this id
        health = api.client.get("/health").json()
        assert health["postgres"] == "down"
        assert health["questdb"] == "ok"
    finally:
        api.close()


def test_precise_answers_instead_of_silent_acceptance(loaded: Api) -> None:
    """#16 item 7: unknown instrument vs no data in the range, limit honoured on /instruments
    and /chain, unknown routes, the /ohlcv span setting named."""
    r = loaded.client.get("/quotes", params={**Q, "instrument": "ETH-1JAN99-1-C"})
    assert r.status_code == 404
    assert r.json()["error"] == "unknown_instrument"
    body = loaded.get("/quotes", instrument="ETH-30OCT26-3000-C", start="2026-10-20", end="2026-10-21")
    assert body["count"] == 0
    assert body["note"].startswith("ETH-30OCT26-3000-C has no quotes in [2026-10-20")
    assert loaded.get("/quotes", instrument="XRP-*", start="2026-10-05", end="2026-10-06")["note"].startswith(
        "no instrument matching the pattern"
    )
    r = loaded.client.get("/book", params={"instrument": "ETH-1JAN99-1-C", "at": "2026-10-05T12:00:00Z"})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_instrument")

    at = "2026-10-05T23:00:00Z"
    full = loaded.get("/chain", currency="ETH", at=at, lookback_s=86400)
    assert full["count"] == 4
    first = loaded.get("/chain", currency="ETH", at=at, lookback_s=86400, limit=3)
    assert first["count"] == 3
    rest = loaded.get("/chain", currency="ETH", at=at, lookback_s=86400, limit=3, cursor=first["next_cursor"])
    assert first["rows"] + rest["rows"] == full["rows"]
    assert rest["next_cursor"] is None

    r = loaded.client.get("/no-such-thing")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    r = loaded.client.post("/quotes")
    assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")

    r = loaded.client.get("/ohlcv", params={"instrument": "ETH-30OCT26-3000-C", "start": "2025-01-01",
                                            "end": "2026-10-06"})
    assert r.status_code == 422
    assert "(api.ohlcv_max_span_days)" in r.json()["detail"]
    assert "X-Request-Id" in r.headers
