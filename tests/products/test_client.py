"""The Python client's product methods (``tickarchive.client.Client``) against the real API
over the test stores: each returns what the endpoint answers (the DataFrame from Parquet
equals the JSON rows; the Tardis CSVs are the endpoint's bytes)."""

from __future__ import annotations

import io
from typing import Any

import polars as pl

from tests.api import data
from tests.api.conftest import Api
from tickarchive.api.timefmt import iso
from tickarchive.client import Client
from tickarchive.store.stack.handles import QuestDBHandle

D1, D2, D3 = data.DAYS
START, END = iso(data.us(D1, 6)), iso(data.us(D3, 6))


def as_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """``frame`` as the JSON answer shows it with time_format=epoch_us (NaN as null)."""
    out = frame.with_columns(
        [pl.col(c).dt.epoch("us") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
        + [pl.col(c).fill_nan(None) for c, t in frame.schema.items() if t.is_float()]
        + [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if isinstance(t, pl.Date)]
    )
    return out.to_dicts()


def test_client_product_methods_equal_the_endpoints(api: Api, questdb_clean: QuestDBHandle) -> None:
    data.write(questdb_clean, data.all_events())
    client = Client(http=api.client)
    tf = {"time_format": "epoch_us"}

    chain = client.chain_snapshots("ETH", START, END, interval="1h", max_age_s=6 * 3600)
    want = api.get("/chain/snapshots", currency="ETH", start=START, end=END, interval="1h", max_age_s=6 * 3600, **tf)
    assert chain.height == want["count"] > 0
    assert as_rows(chain) == want["rows"]
    one = client.chain_snapshots("ETH", at=END, max_age_s=86_400)
    assert set(one["at"].dt.epoch("us")) == {data.us(D3, 6)}

    for level, interval in (("expiries", "3h"), ("points", "6h")):
        surf = client.surface("ETH", START, END, interval=interval, level=level, max_age_s=86_400)
        want = api.get("/surface", currency="ETH", start=START, end=END, interval=interval, level=level,
                       max_age_s=86_400, **tf)
        assert surf.height == want["count"] > 0
        assert as_rows(surf) == want["rows"]

    book = client.book_snapshots(data.BOOK_INSTRUMENT, START, END, interval="10m", depth=3)
    want = api.get("/book/snapshots", instrument=data.BOOK_INSTRUMENT, start=START, end=END, interval="10m",
                   depth=3, **tf)
    assert book.height == want["count"] > 0
    assert as_rows(book) == want["rows"]
    tardis = client.book_snapshots_tardis(data.BOOK_INSTRUMENT, START, END, interval="10m", depth=3)
    assert tardis == api.client.get("/book/snapshots", params={
        "instrument": data.BOOK_INSTRUMENT, "start": START, "end": END, "interval": "10m", "depth": 3,
        "format": "tardis"}).content

    window = {"start": iso(data.us(D1, 6)), "end": iso(data.us(D1, 18))}
    csv_bytes = client.options_chain("ETH", **window)
    assert csv_bytes == api.client.get("/options_chain", params={"currency": "ETH", **window}).content
    lo, hi = data.us(D1, 6), data.us(D1, 18)
    quotes = [q for q in data.quotes() if q.instrument.startswith("ETH-") and lo <= q.ts_us < hi]
    assert pl.read_csv(io.BytesIO(csv_bytes)).height == len(quotes) > 0

    cond = client.condition("2026-10-05", "2026-10-08", table="quotes")
    want = api.get("/condition", start="2026-10-05", end="2026-10-08", table="quotes")
    assert cond.height == 3
    assert as_rows(cond) == want["rows"]
    assert cond["condition"].to_list() == ["pending"] * 3
