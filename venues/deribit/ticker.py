"""Ticker (and ``quote``) payloads → ``QuoteTick`` (pure; docs/collector.md).

Mapping decisions, each found on real frames (tests/venues/deribit/test_normalize.py):

* an empty book side comes as amount ``0.0`` (price ``0.0``) or ``null``: that side's
  price, amount *and* IV become ``None``. The amount decides, not the price: a combo
  (``BTC-FS-30SEP22_PERP``) is legitimately bid at ``-7.0`` and could be bid at ``0.0``;
* ``bid_iv`` / ``ask_iv`` of ``0.0`` is Deribit's "no implied volatility" (a bid below
  intrinsic value, an empty side), never a volatility: ``None``, so averages over the
  column are not dragged towards 0 (``ask_iv`` 500.0, Deribit's cap, is kept as sent);
* ``estimated_delivery_price: "expired"`` and ``last_price: "undefined"`` (any string)
  → ``None``; ``underlying_index`` is text (a number is ``repr``'d);
* ``stats.{volume, high, low, price_change, volume_usd, volume_notional}`` →
  ``volume_24h``, ``high_24h``, ``low_24h``, ``price_change_24h``, ``volume_usd_24h``,
  ``volume_notional_24h``; ``stats: null`` or a null field → ``None``;
* ``channel_interval`` = the channel's last part when it is ``raw``, ``100ms`` or
  ``agg2`` (``quote.{instrument}`` has none: ``None``).

``quote.{instrument}`` gives a ``QuoteTick`` with only the top of book: never subscribe
``quote`` and ``ticker`` for the same instrument, they share the quotes dedup key.
"""

from __future__ import annotations

from typing import Final

from tickarchive.domain import QuoteTick
from tickarchive.venues.deribit import wire

INTERVALS: Final = {"raw": "raw", "100ms": "100ms", "agg2": "agg2"}
"""Channel intervals, mapped to one interned string each."""


def interval_of(channel: str) -> str | None:
    """``raw`` / ``100ms`` / ``agg2`` from the end of a channel name, else ``None``."""
    return INTERVALS.get(channel[channel.rfind(".") + 1 :])


def quote_from_wire(t: wire.TickerWire, recv_ts_us: int, interval: str | None = None) -> QuoteTick:
    """A ``QuoteTick`` from a decoded ticker (or quote) payload."""
    bp = t.best_bid_price
    ba = t.best_bid_amount
    bid_iv = t.bid_iv
    if not ba or bp is None:  # empty side: amount 0 / null
        bp = ba = bid_iv = None
    elif not bid_iv:  # 0.0: Deribit's "no IV"
        bid_iv = None
    ap = t.best_ask_price
    aa = t.best_ask_amount
    ask_iv = t.ask_iv
    if not aa or ap is None:
        ap = aa = ask_iv = None
    elif not ask_iv:
        ask_iv = None
    g = t.greeks
    if g is None:
        delta = gamma = vega = theta = rho = None
    else:
        delta, gamma, vega, theta, rho = g.delta, g.gamma, g.vega, g.theta, g.rho
    ui = t.underlying_index
    if ui is not None and not isinstance(ui, str):
        ui = repr(ui)
    edp = t.estimated_delivery_price
    if isinstance(edp, str):
        edp = None
    last = t.last_price
    if isinstance(last, str):
        last = None
    stats = t.stats
    if stats is None:
        volume = high = low = change = volume_usd = notional = None
    else:
        volume, high, low = stats.volume, stats.high, stats.low
        change, volume_usd, notional = stats.price_change, stats.volume_usd, stats.volume_notional
    # positional: the field order of QuoteTick (faster than keywords on the hot path)
    return QuoteTick(
        t.instrument_name,
        t.timestamp * 1000,
        recv_ts_us,
        bp,
        ba,
        ap,
        aa,
        bid_iv,
        ask_iv,
        t.mark_iv,
        t.mark_price,
        t.underlying_price,
        ui,
        t.index_price,
        delta,
        gamma,
        vega,
        theta,
        rho,
        t.open_interest,
        last,
        t.settlement_price,
        t.min_price,
        t.max_price,
        t.interest_rate,
        volume,
        t.current_funding,
        t.funding_8h,
        edp,
        t.state,
        high,
        low,
        change,
        volume_usd,
        notional,
        t.interest_value,
        t.delivery_price,
        t.implied_bid,
        t.implied_ask,
        t.combo_state,
        interval,
    )
