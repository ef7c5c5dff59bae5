"""``SimConfig``: every knob of the simulator, frozen and typed, units in the names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from tickarchive.loadtest.errors import SimConfigError
from tickarchive.loadtest.sim.faults import FaultSpec

CURRENCY = "ETH"
"""The default (first) currency."""
INDEX_NAME = "eth_usd"
CURRENCIES = ("ETH", "BTC")
"""Currencies the simulator can list."""
KINDS = ("option", "future", "option_combo")
"""Kinds it can list (``future`` = dated futures and the perpetual, as on Deribit)."""
DEFAULT_SPOT_USD = {"ETH": 3000.0, "BTC": 90000.0}


def index_name(currency: str) -> str:
    """``eth_usd`` / ``btc_usd``: the price index of a currency."""
    return f"{currency.lower()}_usd"


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Configuration of one simulator instance.

    Rates are per second of **wall** time. ``time_scale`` only speeds up the market
    model's clock (spot random walk, time to expiry, listings and expiries); wire
    timestamps stay close to the wall clock so latency measurements stay meaningful.
    """

    host: str = "127.0.0.1"
    port: int = 0
    """0 = pick a free port (read it back from ``Simulator.port``)."""
    seed: int = 1
    rate_per_s: float = 2000.0
    """Ticker + book notifications generated per second over the whole chain (what a
    client subscribed to every channel would receive), before bursts."""
    instruments: int = 800
    """Approximate size of each currency's option chain (calls + puts over all expiries)."""
    currencies: tuple[str, ...] = (CURRENCY,)
    """Currencies listed (ETH, BTC): each has its own index, chain and change_id counter."""
    kinds: tuple[str, ...] = ("option",)
    """Kinds listed: option, future (dated futures and the perpetual), option_combo."""
    combos: int = 8
    """Option combos listed per currency (straddles, strangles, call/put spreads, ratios)."""
    spot_usd: float | None = None
    """Initial index price of the first currency; None (and for the others):
    ``DEFAULT_SPOT_USD`` (ETH 3,000, BTC 90,000)."""
    annual_vol: float = 0.7
    """Volatility of the index random walk (per year of simulated time)."""
    start_ms: int | None = None
    """Simulated clock at start (ms since the epoch); None = the wall clock. Fixing it makes
    the instrument names, and so every frame, reproducible."""
    time_scale: float = 1.0
    """Simulated seconds per wall second (1440 = a simulated day in a minute)."""
    tick_ms: int = 10
    """Generator step. Every step has its own millisecond timestamp."""
    min_interval_ms: int = 100
    """Shortest spacing between two notifications of one channel (Deribit's 100ms
    channels). Lowered automatically when ``rate_per_s`` needs it (see docs/simulator.md)."""
    ticker_share: float = 0.5
    """Fraction of generated ticker+book notifications that are tickers."""
    trades_per_s: float = 5.0
    index_interval_ms: int = 1000
    book_levels: int = 12
    """Deepest book side (each option draws its own depth up to this, some sides empty)."""
    burst_every_s: float = 0.0
    """0 = no bursts; else every this many wall seconds the rate is multiplied..."""
    burst_duration_s: float = 1.0
    burst_multiplier: float = 5.0
    """...by this factor for ``burst_duration_s``."""
    settle_delay_s: float = 60.0
    """Simulated seconds between an expiry ('settlement') and 'delivered'."""
    heartbeat_min_interval_s: float = 10.0
    """Smallest ``public/set_heartbeat`` interval accepted (Deribit: 10)."""
    heartbeat_scale: float = 1.0
    """Wall seconds per heartbeat second: tests use 0.02 so interval=10 means 0.2 s."""
    max_channels_per_request: int = 500
    subscribe_rate_per_s: float = 3.3
    subscribe_burst: int = 10
    send_queue_frames: int = 200_000
    """Per-connection bound of queued frames; past it the connection is closed with
    ``connection_too_slow``."""
    write_limit_bytes: int = 1 << 20
    """websockets write buffer high-water mark per connection."""
    sendlog_dir: Path | None = None
    """Where the send log spools its Parquet parts; None = a fresh temporary directory."""
    sendlog_batch_rows: int = 200_000
    """Rows kept in memory per table before a part file is written."""
    replay_file: Path | None = None
    replay_speed: float = 1.0
    """1 = original timing, 10 = ten times faster, 0 = as fast as possible."""
    replay_interval: str | None = "100ms"
    """Rewrite the interval suffix of replayed channel names (captures hold ``.raw``);
    None keeps the names as recorded."""
    faults: tuple[FaultSpec, ...] = field(default_factory=tuple)
    """Faults scheduled relative to the simulator start."""
    past_days_ms: tuple[int, ...] = ()
    """UTC midnights (ms) of past days to generate first, in order, before the wire clock
    joins the wall clock (``loadtest/sim/clock.py``; the demo's ``--days``)."""
    past_speed: float = 1440.0
    """Simulated milliseconds per wall millisecond while generating ``past_days_ms``."""
    testnet: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port {self.port} out of range")
        if self.rate_per_s < 0:
            problems.append("rate_per_s must be >= 0")
        if self.instruments < 2:
            problems.append("instruments must be >= 2")
        if self.time_scale <= 0:
            problems.append("time_scale must be > 0")
        if self.tick_ms < 1:
            problems.append("tick_ms must be >= 1")
        if self.min_interval_ms < 1:
            problems.append("min_interval_ms must be >= 1")
        if not 0 <= self.ticker_share <= 1:
            problems.append("ticker_share must be within [0, 1]")
        if self.trades_per_s < 0:
            problems.append("trades_per_s must be >= 0")
        if self.book_levels < 1:
            problems.append("book_levels must be >= 1")
        if self.send_queue_frames < 1:
            problems.append("send_queue_frames must be >= 1")
        if self.replay_speed < 0:
            problems.append("replay_speed must be >= 0")
        if self.spot_usd is not None and self.spot_usd <= 0:
            problems.append("spot_usd must be > 0")
        if self.past_speed <= 0:
            problems.append("past_speed must be > 0")
        if any(d % 86_400_000 for d in self.past_days_ms) or list(self.past_days_ms) != sorted(set(self.past_days_ms)):
            problems.append("past_days_ms must be distinct UTC midnights in increasing order")
        if not self.currencies or any(c not in CURRENCIES for c in self.currencies):
            problems.append(f"currencies must be some of {', '.join(CURRENCIES)}")
        if len(set(self.currencies)) != len(self.currencies):
            problems.append("currencies must not repeat")
        if not self.kinds or any(k not in KINDS for k in self.kinds):
            problems.append(f"kinds must be some of {', '.join(KINDS)}")
        if "option_combo" in self.kinds and "option" not in self.kinds:
            problems.append("option_combo needs option (a combo's legs are listed options)")
        if self.combos < 0:
            problems.append("combos must be >= 0")
        if problems:
            raise SimConfigError("invalid simulator config: " + "; ".join(problems))

    def spot_of(self, currency: str) -> float:
        """The initial index price of ``currency``."""
        if currency == self.currencies[0] and self.spot_usd is not None:
            return self.spot_usd
        return DEFAULT_SPOT_USD[currency]

    def replace(self, **changes: object) -> SimConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def effective_min_interval_ms(self) -> int:
        """The per-channel spacing actually used: ``min_interval_ms``, lowered (never
        below ``tick_ms``) when the chain could not otherwise carry ``rate_per_s``."""
        peak = self.rate_per_s * (self.burst_multiplier if self.burst_every_s > 0 else 1.0)
        channels = self.instruments * len(self.currencies)  # ticker+book channel pairs, about
        capacity = channels * 1000.0 / self.min_interval_ms
        if peak <= 0.8 * capacity:
            return self.min_interval_ms
        need = int(channels * 1000.0 * 0.8 / peak)
        return max(self.tick_ms, min(self.min_interval_ms, need - need % self.tick_ms or self.tick_ms))
