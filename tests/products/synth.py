"""Synthetic inputs for the product tests and the brute-force expectations they are
checked against (plain Python over the same rows, no polars as-of machinery)."""

from __future__ import annotations

import random
from typing import Any

import polars as pl

from tickarchive.products.chain import VALUE_COLUMNS

S = 1_000_000
T0 = 1_790_035_200 * S  # 2026-09-22T00:00:00Z
EXPIRIES = ("23SEP26", "30OCT26")
EXPIRY_US = {"23SEP26": 1_790_150_400 * S, "30OCT26": 1_793_347_200 * S}  # 08:00 UTC
STRIKES = (2000, 2500, 3000, 3500, 4000)
NAMES = tuple(f"ETH-{e}-{k}-{cp}" for e in EXPIRIES for k in STRIKES for cp in "CP")


def quote_rows(
    seed: int, span_s: int, mean_gap_s: float = 40.0, names: tuple[str, ...] = NAMES
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for n in names:
        t = T0 + rng.randrange(0, 30) * S
        while t < T0 + span_s * S:
            recv = t + rng.choice((500, 2_000, 80_000, 1_500_000))  # some arrive late
            k = int(n.split("-")[2])
            call = n.endswith("-C")
            row: dict[str, Any] = {c: None for c in VALUE_COLUMNS}
            row.update(
                ts=t,
                recv_ts=recv,
                instrument=n,
                mark_iv=round(60 + (k - 3000) / 100 + rng.random(), 2),
                bid_iv=55.0,
                ask_iv=65.0,
                delta=round((0.95 - (k - 2000) / 2200) if call else -(0.05 + (k - 2000) / 2200), 5),
                underlying_price=round(3000 + rng.uniform(-5, 5), 2),
                underlying_index="SYN.ETH-" + n.split("-")[1],
                bid_price=round(rng.uniform(0.01, 0.2), 4),
                ask_price=round(rng.uniform(0.2, 0.3), 4),
                bid_amount=float(rng.randrange(1, 50)),
                ask_amount=float(rng.randrange(1, 50)),
                mark_price=0.15,
                open_interest=float(rng.randrange(0, 100)),
            )
            rows.append(row)
            t += int(rng.expovariate(1 / mean_gap_s) * S) + 1000
    return rows


def quotes_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema: dict[str, Any] = {"ts": pl.Int64, "recv_ts": pl.Int64, "instrument": pl.String}
    schema.update({c: (pl.String if c == "underlying_index" else pl.Float64) for c in VALUE_COLUMNS})
    return pl.DataFrame(rows, schema=schema).select(list(schema))


def expected_chain(
    rows: list[dict[str, Any]], at: int, max_age_us: int, basis: str = "exchange"
) -> dict[str, dict[str, Any]]:
    """Per live option: its last quote known at ``at`` (never a later one) within max_age."""
    key = "ts" if basis == "exchange" else "recv_ts"
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r[key] <= at and at - r[key] <= max_age_us and EXPIRY_US[r["instrument"].split("-")[1]] > at:
            best = out.get(r["instrument"])
            if best is None or r[key] > best[key] or (r[key] == best[key] and r["ts"] > best["ts"]):
                out[r["instrument"]] = r
    return out
