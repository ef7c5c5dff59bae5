"""Instrument discovery and channel planning.

* ``fetch_instruments`` calls ``public/get_instruments`` over REST for every configured
  currency × kind, at most one request per second (Deribit's limit for that method),
  and, for a currency whose kinds include a combo kind (``option_combo``,
  ``future_combo``), ``public/get_combos`` for the combos' legs (kept for the combos
  listed by the configured kinds). Each response body is returned raw so the collector
  journals it (connection ``rest``) before parsing, exactly like a WebSocket frame;
  replay and catch-up read the same instrument and leg rows back from it.
* ``ChannelPlan`` says which channels exist (docs/collector.md): per instrument
  ``ticker.{I}.{interval}`` and ``book.{I}.{interval}``; per currency × kind
  ``trades.{kind}.{currency}.{interval}`` and ``instrument.state.{kind}.{currency}``;
  ``deribit_price_index.{index}`` (the configured ones and each currency's
  ``{currency}_usd``) and ``platform_state``. Instruments are sharded over
  ``deribit.connections`` connections by a stable hash of the name (a listing always
  lands on the same connection; ticker and book of one instrument share it, so a book
  resubscribe touches one session). Global channels ride on connection 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tickarchive.domain import ComboLeg, InstrumentEvent
from tickarchive.venue import FetchedInstruments
from tickarchive.venues.deribit.errors import DiscoveryError
from tickarchive.venues.deribit.normalize import Response, events_of_response, parse_combos, parse_frame

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

LIVE_STATES: Final = frozenset({"open", "created", "started", "locked", "halted"})
COMBO_KINDS: Final = frozenset({"option_combo", "future_combo", "combo"})
"""Kinds whose instruments have legs (``public/get_combos``)."""
"""States whose instruments stay subscribed (locked/halted are temporary)."""
GLOBAL_SHARD: Final = 0


def shard_of(instrument: str, connections: int) -> int:
    return zlib.crc32(instrument.encode()) % connections


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """The channel layout of one collector configuration (pure)."""

    currencies: tuple[str, ...]
    kinds: tuple[str, ...]
    interval: str
    connections: int
    ticker: bool = True
    book: bool = True
    trades: bool = True
    index_names: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, deribit: object) -> ChannelPlan:
        from tickarchive.settings import DeribitSettings

        assert isinstance(deribit, DeribitSettings)
        return cls(
            currencies=tuple(deribit.currencies),
            kinds=tuple(deribit.kinds),
            interval=deribit.interval,
            connections=deribit.connections,
            ticker=deribit.ticker,
            book=deribit.book,
            trades=deribit.trades,
            index_names=tuple(deribit.index_names),
        )

    def instrument_channels(self, instrument: str) -> list[str]:
        out = []
        if self.ticker:
            out.append(f"ticker.{instrument}.{self.interval}")
        if self.book:
            out.append(f"book.{instrument}.{self.interval}")
        return out

    def global_channels(self) -> list[str]:
        out: list[str] = []
        for cur in self.currencies:
            for kind in self.kinds:
                if self.trades:
                    out.append(f"trades.{kind}.{cur}.{self.interval}")
                out.append(f"instrument.state.{kind}.{cur}")
        # every configured index, and each collected currency's own (eth_usd, btc_usd)
        names = dict.fromkeys([*self.index_names, *(f"{cur.lower()}_usd" for cur in self.currencies)])
        out.extend(f"deribit_price_index.{name}" for name in names)
        out.append("platform_state")
        return out

    def shard(self, instrument: str) -> int:
        return shard_of(instrument, self.connections)

    def layout(self, instruments: Iterable[str]) -> list[list[str]]:
        """Channels per connection (index = connection number)."""
        shards: list[list[str]] = [[] for _ in range(self.connections)]
        shards[GLOBAL_SHARD].extend(self.global_channels())
        for name in sorted(instruments):
            shards[self.shard(name)].extend(self.instrument_channels(name))
        return shards


def _response_of_body(body: bytes, what: str) -> Response:
    o = parse_frame(body, 0)
    if type(o) is not Response:
        raise DiscoveryError(f"{what} answer is not a JSON-RPC response: {body[:200]!r}")
    if o.error is not None:
        raise DiscoveryError(f"{what} refused: {o.error.code} {o.error.message}")
    return o


def combo_legs_of_body(body: bytes, recv_ts_us: int) -> list[ComboLeg]:
    """The legs of a journaled ``get_combos`` body."""
    o = _response_of_body(body, "get_combos")
    got = parse_combos(o.result or b"[]", recv_ts_us, o.server_us)
    if not isinstance(got, list):
        raise DiscoveryError(f"get_combos answer not understood: {got.detail}")
    return got


def instruments_of_body(body: bytes, recv_ts_us: int) -> list[InstrumentEvent]:
    """The rows of a journaled ``get_instruments`` body (the writer's catch-up path reads
    the same through ``events_of_response``)."""
    o = parse_frame(body, recv_ts_us)
    if type(o) is not Response:
        raise DiscoveryError(f"get_instruments answer is not a JSON-RPC response: {body[:200]!r}")
    if o.error is not None:
        raise DiscoveryError(f"get_instruments refused: {o.error.code} {o.error.message}")
    return [e for e in events_of_response(o, recv_ts_us) if isinstance(e, InstrumentEvent)]


async def fetch_instruments(
    client: httpx.AsyncClient, rest_url: str, currencies: Sequence[str], kinds: Sequence[str]
) -> list[FetchedInstruments]:
    """``public/get_instruments`` per currency × kind, then ``public/get_combos`` per
    currency with a combo kind; one request per second at most."""
    import httpx  # here, not at the top: replay imports this module and never fetches

    out: list[FetchedInstruments] = []
    base = rest_url.rstrip("/")
    first = True

    async def get(method: str, params: dict[str, str]) -> tuple[bytes, int]:
        nonlocal first
        if not first:
            await asyncio.sleep(1.0)
        first = False
        url = f"{base}/public/{method}"
        try:
            r = await client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise DiscoveryError(f"{url} unreachable: {exc or type(exc).__name__}") from exc
        recv = time.time_ns() // 1000
        if r.status_code != 200:
            query = "&".join(f"{k}={v}" for k, v in params.items())
            raise DiscoveryError(f"{url}?{query}: HTTP {r.status_code} {r.text[:200]}")
        return r.content, recv

    for cur in currencies:
        combos: set[str] = set()
        for kind in kinds:
            body, recv = await get("get_instruments", {"currency": cur, "kind": kind, "expired": "false"})
            listed = instruments_of_body(body, recv)
            if kind in COMBO_KINDS:
                combos.update(e.instrument for e in listed)
            out.append(FetchedInstruments(cur, kind, body, recv, list(listed)))
        if any(k in COMBO_KINDS for k in kinds):
            body, recv = await get("get_combos", {"currency": cur})
            legs = [leg for leg in combo_legs_of_body(body, recv) if leg.combo in combos]
            out.append(FetchedInstruments(cur, "combos", body, recv, list(legs)))
    return out


def rest_url_of_ws(ws_url: str) -> str:
    """``ws://h:p/ws/api/v2`` → ``http://h:p/api/v2`` (the simulator and Deribit alike)."""
    url = ws_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return url.replace("/ws/api/v2", "/api/v2")
