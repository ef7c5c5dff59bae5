"""Statistics of a Deribit option chain and of its streams, for real data and for the
simulator alike, and the ranges the simulator must fall in (issue #15).

Real references:

* ``ISSUE_CHAINS``: two full real ETH option chains (every listed option's ticker, taken
  from Deribit's public API on 2026-01-01 and 2026-08-22), as tabulated in issue #15:
  the data are not in this repository, the figures are;
* the real captures under ``tests/fixtures/deribit/real`` (2021-04-17 and 2021-07-22
  ``.raw`` streams of 20 options), from which the stream statistics are computed here,
  at test time.

Ranges: two real chains differ by up to ``SPREAD`` (1.77×, the p90 relative spread of one
against the other), so a spread percentile must lie within the real pair widened by that
factor; a count or share within the real values widened by ``TOLERANCE`` (1.5×); the
stream statistics of the 2021 captures (181 tickers, 102 book messages) likewise. Nothing
is derived from the simulator's own output.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.real import WS_CAPTURES, notifications

SPREAD = 42.5 / 24.0
TOLERANCE = 1.5

ISSUE_CHAINS: dict[str, tuple[float, float]] = {
    "options": (688, 932),
    "expiries": (13, 12),
    "nearest expiry strike/spot low": (0.81, 0.71),
    "nearest expiry strike/spot high": (1.34, 1.12),
    "distinct strike steps in one expiry (max)": (3, 5),
    "relative spread % p10": (1.7, 2.0),
    "relative spread % p50": (8.0, 5.9),
    "relative spread % p90": (42.5, 24.0),
    "IV spread (ask - bid, points) p50": (1.7, 3.4),
    "call and put share mark_iv, %": (100.0, 99.6),
    "quoted prices in 0.0001 steps below 0.005, % of options": (182 / 688 * 100, 303 / 932 * 100),
    "mark_price = 0, % of options": (4 / 688 * 100, 12 / 932 * 100),
    "vega = 0, % of options": (4 / 688 * 100, 13 / 932 * 100),
    "open_interest = 0, %": (21.9, 22.6),
    "ATM IV, % (every expiry)": (35.0, 65.0),
}
"""The two real 2026 ETH chains of issue #15 (ATM IV: the lowest and highest of both
term structures: rising 35→65, humped 59→54→56)."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    real: str
    lo: float
    hi: float
    sim: float

    @property
    def ok(self) -> bool:
        return self.lo <= self.sim <= self.hi


def pct(xs: Iterable[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return math.nan
    k = (len(s) - 1) * q
    f = math.floor(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def _band(a: float, b: float, factor: float) -> tuple[float, float]:
    return min(a, b) / factor, max(a, b) * factor


def _fmt(a: float, b: float) -> str:
    return f"{a:g} / {b:g}" if a != b else f"{a:g}"


# ---------------------------------------------------------------------------- chains


def chain_stats(instruments: list[dict[str, Any]], tickers: dict[str, dict[str, Any]], spot: float) -> dict[str, Any]:
    """The issue's chain statistics of one snapshot (``tickers``: instrument -> ticker)."""
    by_expiry: dict[int, list[float]] = defaultdict(list)
    for i in instruments:
        by_expiry[i["expiration_timestamp"]].append(i["strike"])
    expiries = sorted(by_expiry)
    near = sorted(set(by_expiry[expiries[0]]))
    steps = [len({round(b - a, 8) for a, b in itertools.pairwise(sorted(set(ks)))}) for ks in by_expiry.values()]
    rel, ivs = [], []
    fine = mark0 = vega0 = oi0 = 0
    pairs: dict[tuple[int, float], dict[bool, float]] = defaultdict(dict)
    for i in instruments:
        d = tickers[i["instrument_name"]]
        bid, ask = d["best_bid_price"], d["best_ask_price"]
        if d["best_bid_amount"] and d["best_ask_amount"]:
            rel.append((ask - bid) / ((ask + bid) / 2) * 100.0)
            if d["bid_iv"] and d["ask_iv"]:
                ivs.append(d["ask_iv"] - d["bid_iv"])
        fine += sum(1 for p in (bid, ask) if 0 < p < 0.005 and round(p / 0.0001) % 5)
        mark0 += d["mark_price"] == 0
        vega0 += d["greeks"]["vega"] == 0
        oi0 += d["open_interest"] == 0
        pairs[(i["expiration_timestamp"], i["strike"])][i["option_type"] == "call"] = d["mark_iv"]
    both = [p for p in pairs.values() if len(p) == 2]
    n = len(instruments)
    atm = []
    for e in expiries:
        ks = sorted(set(by_expiry[e]), key=lambda k: abs(math.log(k / spot)))
        k = ks[0]
        atm.append(next(tickers[i["instrument_name"]]["mark_iv"] for i in instruments
                        if i["expiration_timestamp"] == e and i["strike"] == k))
    return {
        "options": n,
        "expiries": len(expiries),
        "nearest expiry strike/spot low": near[0] / spot,
        "nearest expiry strike/spot high": near[-1] / spot,
        "distinct strike steps in one expiry (max)": max(steps),
        "relative spread % p10": pct(rel, 0.1),
        "relative spread % p50": pct(rel, 0.5),
        "relative spread % p90": pct(rel, 0.9),
        "IV spread (ask - bid, points) p50": pct(ivs, 0.5),
        "call and put share mark_iv, %": 100.0 * sum(p[True] == p[False] for p in both) / len(both),
        "quoted prices in 0.0001 steps below 0.005, % of options": 100.0 * fine / n,
        "mark_price = 0, % of options": 100.0 * mark0 / n,
        "vega = 0, % of options": 100.0 * vega0 / n,
        "open_interest = 0, %": 100.0 * oi0 / n,
        "ATM IV, % (every expiry)": (min(atm), max(atm)),
        "ATM term structure": atm,
    }


def chain_checks(sim: dict[str, Any]) -> list[Check]:
    out = []
    for name, (a, b) in ISSUE_CHAINS.items():
        if name == "call and put share mark_iv, %":
            lo, hi = 99.0, 100.0
        elif name.startswith("nearest expiry strike/spot"):  # the distance from spot, widened
            d_lo, d_hi = _band(abs(1.0 - a), abs(1.0 - b), TOLERANCE)
            lo, hi = (1.0 - d_hi, 1.0 - d_lo) if name.endswith("low") else (1.0 + d_lo, 1.0 + d_hi)
        elif name.startswith("distinct strike steps"):
            lo, hi = min(a, b) - 1.0, max(a, b) + 1.0
        elif name == "expiries":
            lo, hi = 10.0, 14.0  # 10–13 over 2021–2026 (1,340 daily instrument lists)
        elif name.startswith("relative spread") or name.startswith("IV spread"):
            lo, hi = _band(a, b, SPREAD if name.startswith("relative") else b / a)
        else:
            lo, hi = _band(a, b, TOLERANCE)
        value = sim[name]
        if isinstance(value, tuple):  # ATM IV: every expiry's within the band
            out.append(Check(name + " lowest", _fmt(a, b), lo, hi, value[0]))
            out.append(Check(name + " highest", _fmt(a, b), lo, hi, value[1]))
        else:
            out.append(Check(name, _fmt(round(a, 3), round(b, 3)), lo, hi, float(value)))
    return out


# ---------------------------------------------------------------------------- streams


def stream_stats(tickers: list[dict[str, Any]], books: list[dict[str, Any]]) -> dict[str, float]:
    """Statistics of a stream of option tickers and book messages (data objects)."""
    n = len(tickers)
    snaps = [b for b in books if b.get("type") == "snapshot"]
    changes = [b for b in books if b.get("type") == "change"]
    steps = [b["change_id"] - b["prev_change_id"] for b in changes]
    digits = Counter(d["timestamp"] % 10 for d in tickers + books)
    depth = [max(len(b["bids"]), len(b["asks"])) for b in snaps]
    return {
        "last_price null, % of tickers": 100.0 * sum(d.get("last_price") is None for d in tickers) / n,
        "stats null, % of tickers": 100.0 * sum(d["stats"]["volume"] is None for d in tickers) / n,
        "settlement_price absent, % of tickers": 100.0 * sum("settlement_price" not in d for d in tickers) / n,
        "empty bid, % of tickers": 100.0 * sum(not d["best_bid_amount"] for d in tickers) / n,
        "empty ask, % of tickers": 100.0 * sum(not d["best_ask_amount"] for d in tickers) / n,
        "both sides empty, % of tickers": 100.0 * sum(not d["best_bid_amount"] and not d["best_ask_amount"]
                                                      for d in tickers) / n,
        "snapshot depth (levels on the deeper side), max": max(depth),
        "snapshot depth, p50": pct(depth, 0.5),
        "empty snapshots, %": 100.0 * sum(not b["bids"] and not b["asks"] for b in snaps) / len(snaps),
        "change_id step p50": pct(steps, 0.5),
        "change_id step p90": pct(steps, 0.9),
        "change messages with one level, %": 100.0 * sum(len(b["bids"]) + len(b["asks"]) == 1 for b in changes)
        / len(changes),
        "most frequent last millisecond digit, % of messages": 100.0 * max(digits.values()) / (n + len(books)),
    }


def real_stream_stats() -> dict[str, float]:
    """``stream_stats`` of the real 2021 captures (option tickers and books)."""
    tickers = [p["data"] for path in WS_CAPTURES for p in notifications(path, "ticker.")]
    books = [p["data"] for path in WS_CAPTURES for p in notifications(path, "book.")]
    assert len(tickers) == 181
    assert len(books) == 102
    return stream_stats(tickers, books)


STREAM_RANGES: dict[str, tuple[float, float] | None] = {
    "settlement_price absent, % of tickers": (0.0, 25.0),
    "snapshot depth (levels on the deeper side), max": (9.0, 19.0),
    "most frequent last millisecond digit, % of messages": (0.0, 20.0),
    "change messages with one level, %": (50.0, 100.0),
}
"""Ranges that are not the real value ± ``TOLERANCE``: an option listed since the last
08:00 settlement has no settlement price (tardis' ETH-10JUN20-270-C, listed that
morning); with Deribit's four dailies a new expiry is listed every morning, a twelfth of
the chain and a busy one, while the 2021 captures followed mostly older options (3.3 %);
the issue asks for books up to ~12 levels (the real snapshots reach 9–19); any
millisecond (10 % each for uniform digits); 1–2 levels per change message."""


def stream_checks(sim: dict[str, float], real: dict[str, float]) -> list[Check]:
    out = []
    for name, value in sim.items():
        r = real[name]
        fixed = STREAM_RANGES.get(name)
        if fixed is not None:
            lo, hi = fixed
        elif name.startswith("change_id step"):
            lo, hi = r / 3.0, r * 3.0  # steps scale with the time between a book's changes
        else:
            lo, hi = r / TOLERANCE, r * TOLERANCE
        out.append(Check(name, f"{r:.4g}", lo, hi, value))
    return out


def table(checks: list[Check]) -> str:
    """The comparison as a Markdown table (docs/simulator.md holds one)."""
    rows = ["| statistic | real | accepted range | simulator | |", "|---|---|---|---|---|"]
    for c in checks:
        rows.append(f"| {c.name} | {c.real} | {c.lo:.3g} – {c.hi:.3g} | {c.sim:.4g} | {'ok' if c.ok else 'OUT'} |")
    return "\n".join(rows)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=float)
