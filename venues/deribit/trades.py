"""Trade payloads → ``TradeTick`` (pure; docs/collector.md).

``trade_id``, ``block_trade_id`` and ``combo_trade_id`` are strings whatever the wire
type. A combo trade (on a combo instrument's channel) yields its own ``TradeTick`` (combo
instrument, combo trade_seq) followed by one ``TradeTick`` per ``legs[]`` element on the
*leg's* instrument with the leg's own trade_id/trade_seq/iv and ``combo_id``/
``combo_trade_id`` (falling back to the parent's instrument and trade_id). The same legs
also arrive on the legs' own instrument streams; the dedup key (ts, instrument, trade_id)
makes that overlap harmless and the sequence tracker treats a repeated trade_seq as a
duplicate, not a gap.
"""

from __future__ import annotations

from tickarchive.domain import Event, TradeSource, TradeTick
from tickarchive.venues.deribit import wire


def _opt_str(v: str | int | None) -> str | None:
    return v if v is None or isinstance(v, str) else str(v)


def trade_from_wire(
    t: wire.TradeWire,
    recv_ts_us: int,
    source: TradeSource = TradeSource.WS,
    combo_id: str | None = None,
    combo_trade_id: str | None = None,
) -> TradeTick:
    """A ``TradeTick`` from one decoded trade (legs are not expanded here)."""
    tid = t.trade_id
    return TradeTick(
        t.instrument_name,
        t.timestamp * 1000,
        recv_ts_us,
        tid if isinstance(tid, str) else str(tid),
        t.trade_seq,
        t.price,
        t.amount,
        t.direction,
        t.tick_direction,
        t.mark_price,
        t.index_price,
        t.iv,
        t.contracts,
        _opt_str(t.block_trade_id),
        t.liquidation,
        t.combo_id or combo_id,
        _opt_str(t.combo_trade_id) or combo_trade_id,
        source,
    )


def trades_from_wire(
    trades: list[wire.TradeWire], recv_ts_us: int, source: TradeSource = TradeSource.WS
) -> list[Event]:
    """Every trade of a ``trades.*`` array, combo legs expanded after their combo."""
    out: list[Event] = []
    for t in trades:
        out.append(trade_from_wire(t, recv_ts_us, source))
        legs = t.legs
        if legs:
            parent_tid = _opt_str(t.trade_id)
            for leg in legs:
                out.append(trade_from_wire(leg, recv_ts_us, source, t.instrument_name, parent_tid))
    return out
