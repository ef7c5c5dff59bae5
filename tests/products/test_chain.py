"""Chain snapshots equal a brute-force "last quote as of each instant" over the same rows,
whatever the window size, on both bases; staleness, expiry and gap marking."""

from __future__ import annotations

import polars as pl
import pytest

from tests.products.synth import EXPIRY_US, NAMES, T0, S, expected_chain, quote_rows, quotes_frame
from tickarchive.products import build
from tickarchive.products.build import ChainSpec, chain_snapshots
from tickarchive.products.chain import Basis
from tickarchive.products.errors import InvalidProductRequest
from tickarchive.products.source import FrameSource

SPAN_S = 6 * 3600


def _all(spec: ChainSpec, src: FrameSource) -> pl.DataFrame:
    parts = list(chain_snapshots(src, spec))
    return pl.concat(parts) if parts else pl.DataFrame()


@pytest.mark.parametrize("basis", [Basis.EXCHANGE, Basis.RECEIVE])
@pytest.mark.parametrize(("interval_s", "max_age_s"), [(60, 600), (900, 120), (7, 3600)])
def test_snapshots_equal_brute_force(basis: Basis, interval_s: int, max_age_s: int) -> None:
    rows = quote_rows(seed=interval_s + max_age_s, span_s=SPAN_S)
    src = FrameSource(quotes_frame(rows))
    start, end = T0 + 1800 * S, T0 + SPAN_S * S
    if interval_s == 7:  # fine interval: keep the brute force affordable
        end = start + 1800 * S
    spec = ChainSpec("ETH", start, end, interval_s * S, max_age_s * S, basis)
    got = _all(spec, src)
    assert got.height > 0
    assert got.get_column("at").is_sorted()
    by_at: dict[int, dict[str, tuple[int, int, float, float | None]]] = {}
    for at, inst, ts, recv, stale, bid in got.select("at", "instrument", "ts", "recv_ts", "staleness_s",
                                                       "bid_price").iter_rows():
        by_at.setdefault(at, {})[inst] = (ts, recv, stale, bid)
    key = "ts" if basis is Basis.EXCHANGE else "recv_ts"
    for at in spec.instants:
        want = expected_chain(rows, at, max_age_s * S, basis.value)
        have = by_at.get(at, {})
        assert set(have) == set(want), at
        for inst, (ts, recv, stale, bid) in have.items():
            w = want[inst]
            assert (ts, recv, bid) == (w["ts"], w["recv_ts"], w["bid_price"])
            assert stale == pytest.approx((at - w[key]) / S, abs=1e-9)
            assert w[key] <= at  # never a future quote


def test_window_size_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = quote_rows(seed=3, span_s=SPAN_S)
    src = FrameSource(quotes_frame(rows))
    spec = ChainSpec("ETH", T0 + 3600 * S, T0 + SPAN_S * S, 60 * S, 1800 * S, Basis.RECEIVE)
    whole = _all(spec, src)
    monkeypatch.setattr(build, "MAX_WINDOW_US", 137 * S)
    monkeypatch.setattr(build, "INSTANTS_PER_WINDOW", 2)
    assert _all(spec, src).equals(whole)


def test_expired_options_leave_the_chain_and_columns_are_chosen() -> None:
    rows = quote_rows(seed=5, span_s=34 * 3600, mean_gap_s=300)
    src = FrameSource(quotes_frame(rows))
    exp = EXPIRY_US["23SEP26"]
    spec = ChainSpec("ETH", exp - 3600 * S, exp + 3600 * S, 600 * S, 7200 * S, values=("mark_iv", "delta"))
    got = _all(spec, src)
    assert got.columns[:9] == ["at", "instrument", "expiration", "strike", "option_type", "ts", "recv_ts",
                               "staleness_s", "in_gap"]
    assert got.columns[9:] == ["mark_iv", "delta"]
    before = got.filter(pl.col("at") < exp)
    after = got.filter(pl.col("at") >= exp)
    assert before.filter(pl.col("instrument").str.contains("23SEP26")).height > 0
    assert after.filter(pl.col("instrument").str.contains("23SEP26")).height == 0
    assert after.height > 0
    row = got.row(0, named=True)
    name = row["instrument"]
    assert row["expiration"] == EXPIRY_US[name.split("-")[1]]
    assert row["strike"] == float(name.split("-")[2])
    assert row["option_type"] == ("call" if name.endswith("C") else "put")


def test_points_inside_gaps_are_marked() -> None:
    rows = quote_rows(seed=9, span_s=4 * 3600)
    one = NAMES[0]
    gaps = pl.DataFrame(
        {
            "ts": [T0 + 3600 * S, T0 + 7200 * S],
            "end_ts": [T0 + 3700 * S, None],
            "instrument": ["*", one],
            "kind": ["disconnect", "stale"],
            "status": ["resolved", "open"],
        },
        schema={"ts": pl.Int64, "end_ts": pl.Int64, "instrument": pl.String, "kind": pl.String, "status": pl.String},
    )
    src = FrameSource(quotes_frame(rows), gap_rows=gaps)
    spec = ChainSpec("ETH", T0 + 1800 * S, T0 + 4 * 3600 * S, 60 * S, 900 * S)
    got = _all(spec, src)
    for at, inst, ts, in_gap in got.select("at", "instrument", "ts", "in_gap").iter_rows():
        star = ts < T0 + 3700 * S and at >= T0 + 3600 * S
        own = inst == one and at >= T0 + 7200 * S
        assert in_gap == (star or own), (at, inst, ts)
    assert got.get_column("in_gap").any()
    assert not got.get_column("in_gap").all()


def test_a_trade_seq_gap_does_not_mark_quotes() -> None:
    rows = quote_rows(seed=2, span_s=3600)
    gaps = pl.DataFrame({"ts": [T0], "end_ts": [T0 + 3600 * S], "instrument": ["*"], "kind": ["trade_seq"],
                         "status": ["open"]})
    spec = ChainSpec("ETH", T0 + 600 * S, T0 + 3600 * S, 300 * S, 600 * S)
    got = _all(spec, FrameSource(quotes_frame(rows), gap_rows=gaps))
    assert got.height
    assert not got.get_column("in_gap").any()


def test_invalid_specs() -> None:
    with pytest.raises(InvalidProductRequest, match="start"):
        ChainSpec("ETH", T0, T0, S, S)
    with pytest.raises(InvalidProductRequest, match="columns"):
        ChainSpec("ETH", T0, T0 + S, S, S, values=("nope",))
