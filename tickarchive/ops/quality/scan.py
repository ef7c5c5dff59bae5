"""The pure core of the quality report: scanners fed one day's rows in DESCENDING exchange
ts order (the store's natural order read backwards: no server-side sort of a whole day).

Every check flags rows and counts them exactly; nothing is dropped or corrected, and the
coverage and volume figures include flagged rows (duplicate trade ids are counted once
in the volume sum, and flagged).

"ts going backwards per instrument in receive order" flags a row when some row of the same
instrument with a later ts was received before it. Read in descending ts, that is: the
smallest recv_ts among the instrument's rows with a strictly greater ts is below the row's
recv_ts (``_Order``). Each late row is one flag, however many rows it overtook. Trades
fetched from the history API after a gap (``source = backfill``) arrive late by design and
are left out of that check (they count everywhere else).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from tickarchive.ops.quality.model import (
    US_PER_DAY,
    US_PER_HOUR,
    CheckResult,
    Completeness,
    Coverage,
    Flag,
    GapRow,
    GapSpan,
    QuoteRow,
    TradeRow,
    VolumeCheck,
    WindowTrade,
)

MAX_EXAMPLES = 50
"""Flagged rows listed per check, the newest by ts (the count is always exact)."""

CHECKS: dict[str, str] = {
    "crossed_quote": "quotes whose best bid is above the best ask (bid > ask)",
    "locked_quote": "quotes whose best bid equals the best ask (bid = ask)",
    "nonpositive_quote": "quotes with a price or size ≤ 0 (an empty side is NULL and not flagged)",
    "nonpositive_trade": "trades with a price or amount ≤ 0",
    "duplicate_trade_id": "trades whose trade_id appeared earlier that day (each later-received repeat is flagged)",
    "quote_ts_backwards": "quotes received after a quote of the instrument with a later exchange ts",
    "trade_ts_backwards": (
        "live trades received after a trade of the instrument with a later exchange ts (backfilled trades, "
        "fetched after a gap, are late by design and not flagged)"
    ),
}


@dataclass(slots=True)
class _Check:
    name: str
    count: int = 0
    examples: list[Flag] = field(default_factory=list)

    def flag(self, table: str, instrument: str, ts_us: int, recv_us: int, detail: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(Flag(table, instrument, ts_us, recv_us, detail))

    def result(self) -> CheckResult:
        examples = sorted(self.examples, key=lambda f: (f.ts_us, f.instrument, f.recv_us))
        return CheckResult(self.name, CHECKS[self.name], self.count, tuple(examples))


class OrderError(ValueError):
    """Rows were not fed in descending ts order (a bug of the caller, not bad data)."""


class _Order:
    """Per-instrument receive-order check over rows arriving in descending ts."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        # instrument -> [min recv over greater ts, its ts, current ts group, group min recv, its ts]
        self._state: dict[str, list[int]] = {}

    def overtaken_by(self, inst: str, ts_us: int, recv_us: int) -> int | None:
        """The ts of a row with a greater ts received before this one, or None."""
        st = self._state.get(inst)
        if st is None:
            self._state[inst] = [_NEVER, 0, ts_us, recv_us, ts_us]
            return None
        if ts_us < st[2]:  # a new ts group: fold the previous one in
            if st[3] < st[0]:
                st[0], st[1] = st[3], st[4]
            st[2], st[3], st[4] = ts_us, recv_us, ts_us
        elif ts_us == st[2]:
            if recv_us < st[3]:
                st[3], st[4] = recv_us, ts_us
        else:
            raise OrderError(f"{inst}: ts {ts_us} after {st[2]}: rows must come in descending ts order")
        return st[1] if st[0] < recv_us else None


_NEVER = 2**63 - 1


def _hour(ts_us: int, day_start_us: int) -> int:
    return min(23, max(0, (ts_us - day_start_us) // US_PER_HOUR))


class QuoteScanner:
    """Coverage per instrument × hour, book checks, ts order and the last 24 h volume."""

    def __init__(self, day_start_us: int) -> None:
        self._day_start_us = day_start_us
        self.rows = 0
        self._counts: dict[str, list[int]] = {}
        self._order = _Order()
        self._last_volume: dict[str, tuple[int, float]] = {}
        self.crossed = _Check("crossed_quote")
        self.locked = _Check("locked_quote")
        self.nonpositive = _Check("nonpositive_quote")
        self.backwards = _Check("quote_ts_backwards")

    def feed(self, rows: Iterable[QuoteRow]) -> None:
        for q in rows:
            self.add(q)

    def add(self, q: QuoteRow) -> None:
        self.rows += 1
        inst = q.instrument
        hours = self._counts.get(inst)
        if hours is None:
            hours = self._counts[inst] = [0] * 24
        hours[_hour(q.ts_us, self._day_start_us)] += 1

        bid, ask = q.bid_price, q.ask_price
        if bid is not None and ask is not None:
            if bid > ask:
                self.crossed.flag("quotes", inst, q.ts_us, q.recv_us, f"bid {bid!r} > ask {ask!r}")
            elif bid == ask:
                self.locked.flag("quotes", inst, q.ts_us, q.recv_us, f"bid = ask = {bid!r}")
        bad = [
            f"{name} {value!r}"
            for name, value in (
                ("bid_price", bid), ("bid_amount", q.bid_amount), ("ask_price", ask), ("ask_amount", q.ask_amount)
            )
            if value is not None and value <= 0
        ]
        if bad:
            self.nonpositive.flag("quotes", inst, q.ts_us, q.recv_us, ", ".join(bad))

        later = self._order.overtaken_by(inst, q.ts_us, q.recv_us)
        if later is not None:
            detail = f"ts {(later - q.ts_us) / 1000:.3f} ms before a quote received earlier"
            self.backwards.flag("quotes", inst, q.ts_us, q.recv_us, detail)

        if q.volume_24h is not None:
            last = self._last_volume.get(inst)
            if last is None or q.ts_us >= last[0]:
                self._last_volume[inst] = (q.ts_us, q.volume_24h)

    def coverage(self) -> Coverage:
        names = tuple(sorted(self._counts))
        return Coverage(names, tuple(tuple(self._counts[n]) for n in names))

    def last_volume(self) -> dict[str, tuple[int, float]]:
        """instrument -> (ts of its last quote with stats, volume_24h)."""
        return dict(self._last_volume)

    def checks(self) -> list[CheckResult]:
        return [c.result() for c in (self.crossed, self.locked, self.nonpositive, self.backwards)]


class TradeScanner:
    """trade_seq completeness, traded amount, duplicate ids, values and ts order."""

    def __init__(self) -> None:
        self.rows = 0
        self.backfilled = 0
        self._seqs: dict[str, set[int]] = {}
        self._rows: dict[str, int] = {}
        self._amount: dict[str, float] = {}
        self._ids: dict[str, TradeRow] = {}
        self._order = _Order()
        self.duplicates = _Check("duplicate_trade_id")
        self.nonpositive = _Check("nonpositive_trade")
        self.backwards = _Check("trade_ts_backwards")

    def feed(self, rows: Iterable[TradeRow]) -> None:
        for t in rows:
            self.add(t)

    def add(self, t: TradeRow) -> None:
        self.rows += 1
        inst = t.instrument
        self._rows[inst] = self._rows.get(inst, 0) + 1
        self._seqs.setdefault(inst, set()).add(t.trade_seq)
        first = self._ids.get(t.trade_id)
        if first is None:
            self._ids[t.trade_id] = t
            self._amount[inst] = self._amount.get(inst, 0.0) + t.amount
        else:
            # the repeat is the occurrence received later (rows arrive in ts order, not recv order)
            repeat = t
            if (t.recv_us, t.ts_us) < (first.recv_us, first.ts_us):
                self._ids[t.trade_id] = t
                repeat = first
            self.duplicates.flag(
                "trades", repeat.instrument, repeat.ts_us, repeat.recv_us,
                f"trade_id {repeat.trade_id} received before",
            )
        bad = [f"{name} {value!r}" for name, value in (("price", t.price), ("amount", t.amount)) if value <= 0]
        if bad:
            self.nonpositive.flag("trades", inst, t.ts_us, t.recv_us, f"trade {t.trade_id}: " + ", ".join(bad))
        if t.source != "ws":
            self.backfilled += 1
            return  # a backfilled trade is received late by design: not a ts-order defect
        later = self._order.overtaken_by(inst, t.ts_us, t.recv_us)
        if later is not None:
            self.backwards.flag(
                "trades", inst, t.ts_us, t.recv_us,
                f"trade {t.trade_id}: ts {(later - t.ts_us) / 1000:.3f} ms before a trade received earlier",
            )

    def completeness(self) -> list[Completeness]:
        out = []
        for inst in sorted(self._seqs):
            seqs = self._seqs[inst]
            out.append(Completeness(inst, self._rows[inst], len(seqs), min(seqs), max(seqs)))
        return out

    def traded(self) -> dict[str, float]:
        """instrument -> summed amount of the day's distinct trade ids."""
        return dict(self._amount)

    def distinct(self) -> list[TradeRow]:
        """One row per trade id of the day (the earliest-received copy)."""
        return list(self._ids.values())

    def checks(self) -> list[CheckResult]:
        return [c.result() for c in (self.nonpositive, self.duplicates, self.backwards)]


def window_traded(
    day_trades: Iterable[TradeRow], earlier: Iterable[WindowTrade], last_volume: dict[str, tuple[int, float]]
) -> dict[str, float]:
    """instrument -> amount traded in the exchange's 24 h window ``(t - 24 h, t]`` ending at
    the instrument's last quote with stats ``t`` (distinct trade ids; ``earlier``: the trades
    of the 24 h before the day)."""
    out: dict[str, float] = {}
    seen: set[str] = set()
    rows: list[tuple[int, str, str, float]] = [(t.ts_us, t.instrument, t.trade_id, t.amount) for t in day_trades]
    rows += [(t.ts_us, t.instrument, t.trade_id, t.amount) for t in earlier]
    for ts_us, inst, trade_id, amount in rows:
        last = last_volume.get(inst)
        if last is None or trade_id in seen:
            continue
        if last[0] - US_PER_DAY < ts_us <= last[0]:
            seen.add(trade_id)
            out[inst] = out.get(inst, 0.0) + amount
    return out


def reconcile_volume(
    traded_window: dict[str, float],
    traded_day: dict[str, float],
    last_volume: dict[str, tuple[int, float]],
    tolerance_pct: float,
    collected_hours: AbstractSet[int],
) -> list[VolumeCheck]:
    """One row per instrument that traded that day or reported a 24 h volume > 0.

    The exchange's ``volume_24h`` at the instrument's last quote ``t`` covers ``(t - 24 h, t]``;
    it is compared with the trades stored in that window (``traded_window``), and only when
    every hour the window touches was collected (``collected_hours``: hours since the epoch,
    ``ts_us // US_PER_HOUR``) — else ``partial_window``: the store cannot hold the whole window
    (collection began later, or stopped meanwhile). ``ok`` within ``tolerance_pct``,
    ``mismatch`` beyond; ``no_stats`` when no quote carried a volume (its ``traded`` is the day's).
    """
    out = []
    for inst in sorted(set(traded_day) | set(last_volume)):
        last = last_volume.get(inst)
        if last is None:
            out.append(VolumeCheck(inst, traded_day.get(inst, 0.0), None, None, "no_stats"))
            continue
        ts_us, volume = last
        amount = traded_window.get(inst, 0.0)
        if amount == 0.0 and volume == 0.0:
            continue
        window = range((ts_us - US_PER_DAY) // US_PER_HOUR, ts_us // US_PER_HOUR + 1)
        if not all(h in collected_hours for h in window):
            status = "partial_window"
        else:
            status = "ok" if abs(amount - volume) <= tolerance_pct / 100.0 * abs(volume) else "mismatch"
        out.append(VolumeCheck(inst, amount, volume, ts_us, status))
    return out


def clip_gaps(gaps: Iterable[GapRow], day_start_us: int, day_end_us: int, now_us: int) -> list[GapSpan]:
    """Gaps overlapping [day start, day end), clipped to it; an open gap runs until now."""
    out = []
    for g in gaps:
        is_open = g.end_us is None
        end = min(now_us, day_end_us) if g.end_us is None else g.end_us
        start = max(g.start_us, day_start_us)
        end = min(end, day_end_us)
        if end < start or g.start_us >= day_end_us:
            continue
        out.append(GapSpan(g, start, end, is_open))
    out.sort(key=lambda s: (s.start_us, s.gap.kind, s.gap.instrument))
    return out
