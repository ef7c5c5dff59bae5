"""Surfaces from the exchange's IVs: ATM by linear interpolation in log-moneyness, the
25-delta wings in delta, exact points flagged as such, nothing extrapolated; checked
against numpy.interp on the same points."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tests.products.synth import EXPIRY_US, T0, S, quote_rows, quotes_frame
from tickarchive.products import surface
from tickarchive.products.build import ChainSpec, chain_snapshots, surfaces
from tickarchive.products.source import FrameSource

EXP = EXPIRY_US["30OCT26"]


def snaps(points: list[tuple[float, str, float | None, float | None]], forward: float, at: int = T0) -> pl.DataFrame:
    """(strike, call/put, mark_iv, delta) at one instant and expiry."""
    rows = []
    for i, (k, cp, iv, delta) in enumerate(points):
        rows.append({
            "at": at, "instrument": f"ETH-30OCT26-{int(k)}-{cp[0].upper()}", "expiration": EXP, "strike": k,
            "option_type": cp, "ts": at - 1000 * (i + 1), "recv_ts": at - 500, "staleness_s": 0.001 * (i + 1),
            "in_gap": i == 0, "bid_iv": (iv or 0) - 2, "ask_iv": (iv or 0) + 2, "mark_iv": iv, "delta": delta,
            "underlying_price": forward if i == 0 else forward + 50,  # the freshest quote names the forward
        })
    return pl.DataFrame(rows)


SMILE = [
    (2500.0, "put", 70.0, -0.2),
    (3000.0, "call", 60.0, 0.5),
    (3000.0, "put", 61.0, -0.5),
    (3500.0, "call", 65.0, 0.2),
]


def test_atm_exactly_at_a_strike_is_not_interpolated() -> None:
    s = snaps([(3000.0, "call", 60.0, 0.5), *[p for p in SMILE if p[:2] != (3000.0, "call")]], forward=3000.0)
    e = surface.expiries(s).row(0, named=True)
    assert e["forward"] == 3000.0
    assert e["atm_iv"] == 60.0  # the OTM option at K = F is the call
    assert e["atm_interpolated"] is False
    assert (e["atm_strike_below"], e["atm_strike_above"]) == (3000.0, 3000.0)


def test_atm_and_wings_equal_numpy_interp() -> None:
    fwd = 3100.0
    s = snaps(SMILE, forward=fwd)
    e = surface.expiries(s).row(0, named=True)
    # ATM: OTM IV per strike in log-moneyness: 2500 put, 3000 put (K < F), 3500 call
    k = [math.log(2500 / fwd), math.log(3000 / fwd), math.log(3500 / fwd)]
    atm = float(np.interp(0.0, k, [70.0, 61.0, 65.0]))
    call25 = float(np.interp(0.25, [0.2, 0.5], [65.0, 60.0]))
    put25 = float(np.interp(-0.25, [-0.5, -0.2], [61.0, 70.0]))
    assert e["atm_iv"] == pytest.approx(atm, rel=1e-12)
    assert e["atm_interpolated"] is True
    assert (e["atm_strike_below"], e["atm_strike_above"]) == (3000.0, 3500.0)
    assert e["call25_iv"] == pytest.approx(call25, rel=1e-12)
    assert e["put25_iv"] == pytest.approx(put25, rel=1e-12)
    assert e["rr25"] == pytest.approx(call25 - put25, rel=1e-12)
    assert e["bf25"] == pytest.approx((call25 + put25) / 2 - atm, rel=1e-12)
    assert e["wings_interpolated"] is True
    tte = (EXP - T0) / (365 * 86400 * S)
    assert e["atm_total_variance"] == pytest.approx((atm / 100) ** 2 * tte, rel=1e-12)
    assert e["tte_days"] == pytest.approx((EXP - T0) / (86400 * S))
    assert (e["options"], e["points_in_gap"], e["max_staleness_s"]) == (4, 1, pytest.approx(0.004))


def test_nothing_is_extrapolated() -> None:
    s = snaps([(3500.0, "call", 65.0, 0.2), (4000.0, "call", 68.0, 0.1)], forward=3000.0)
    e = surface.expiries(s).row(0, named=True)
    assert e["atm_iv"] is None
    assert e["atm_interpolated"] is None
    assert e["call25_iv"] is None
    assert e["put25_iv"] is None
    assert e["rr25"] is None
    assert e["bf25"] is None


def test_points_carry_moneyness_and_forward() -> None:
    p = surface.points(snaps(SMILE, forward=3100.0))
    assert p.columns == list(surface.POINT_COLUMNS)
    first = p.row(0, named=True)
    assert first["strike"] == 2500.0
    assert first["forward"] == 3100.0
    assert first["log_moneyness"] == pytest.approx(math.log(2500 / 3100))


def test_surfaces_over_a_range_follow_the_chain() -> None:
    rows = quote_rows(seed=4, span_s=3 * 3600)
    src = FrameSource(quotes_frame(rows))
    spec = ChainSpec("ETH", T0 + 3600 * S, T0 + 3 * 3600 * S, 600 * S, 1800 * S)
    chain = pl.concat(list(chain_snapshots(src, spec)))
    exp = pl.concat(list(surfaces(src, spec, "expiries")))
    pts = pl.concat(list(surfaces(src, spec, "points")))
    assert pts.height == chain.height
    assert exp.height == chain.select("at", "expiration").unique().height
    assert exp.get_column("atm_iv").null_count() == 0  # strikes on both sides of 3000 at every instant
    assert exp.select(pl.col("at").is_sorted()).item()
