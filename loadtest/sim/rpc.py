"""JSON-RPC: the public methods (shared by WebSocket and HTTP) and the per-connection
session state machine (sans-I/O: text in, reply bytes and effects out).

Errors are Deribit-shaped ``{"message":..., "code":..., "data":...}``:

=========  =====================================================  ======================
code       message                                                when
=========  =====================================================  ======================
-32700     Parse error                                            frame is not JSON
-32600     Invalid Request                                        not an object / no id
-32600     request entity too large                               > 500 channels
-32601     Method not found                                       unknown method
-32602     Invalid params                                         bad params, unknown channel
10028      too_many_requests                                      subscribe rate exceeded
                                                                  (then the connection closes)
10040      retry                                                  ``reject`` fault (mode=error)
13778      raw_subscriptions_not_available_for_unauthorized       ``*.raw`` channel
13009      unauthorized                                           any ``private/*`` method
=========  =====================================================  ======================
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from tickarchive.loadtest.errors import RpcError
from tickarchive.loadtest.sim import encode
from tickarchive.loadtest.sim.channels import ChannelRule, Verdict, judge
from tickarchive.loadtest.sim.config import SimConfig
from tickarchive.loadtest.sim.history import TradeHistory

API_VERSION = "1.2.26"
CURRENCY_PARAMS = ("ETH", "BTC", "USDC", "USDT", "EURR", "any")
MAX_HISTORY_COUNT = 1000


def invalid_params(param: str, reason: str) -> RpcError:
    return RpcError(-32602, "Invalid params", {"reason": reason, "param": param})


class Catalog(Protocol):
    """What the public methods need to know about the instruments on offer."""

    def instruments(self, currency: str, kind: str | None, expired: bool) -> list[dict[str, Any]]: ...

    def combos(self, currency: str) -> list[dict[str, Any]]: ...

    def ticker(self, name: str) -> dict[str, Any] | None: ...

    def currencies(self) -> tuple[str, ...]: ...

    def index_names(self) -> tuple[str, ...]: ...

    def instrument_exists(self, name: str) -> bool: ...

    def index_price(self, index_name: str) -> float | None: ...

    def extra_channels(self) -> frozenset[str]: ...

    def locked(self) -> bool: ...


def now_us() -> int:
    return time.time_ns() // 1000


# ---- parameter helpers (HTTP gives strings, WS gives JSON types) --------------------


def _get_str(params: dict[str, Any], key: str, default: str | None = None) -> str:
    value = params.get(key, default)
    if not isinstance(value, str):
        raise invalid_params(key, "missing" if value is None else "must be a string")
    return value


def _get_int(params: dict[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key, default)
    if isinstance(value, bool):
        raise invalid_params(key, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise invalid_params(key, "missing" if value is None else "must be an integer")


def _get_bool(params: dict[str, Any], key: str, default: bool) -> bool:
    value = params.get(key, default)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise invalid_params(key, "must be a boolean")


def _get_sorting(params: dict[str, Any]) -> str:
    sorting = params.get("sorting", "default")
    if sorting not in ("asc", "desc", "default"):
        raise invalid_params("sorting", "must be asc, desc or default")
    return "asc" if sorting == "asc" else "desc"


def _get_count(params: dict[str, Any]) -> int:
    count = _get_int(params, "count", 10)
    if not 1 <= count <= MAX_HISTORY_COUNT:
        raise invalid_params("count", f"must be between 1 and {MAX_HISTORY_COUNT}")
    return count


class PublicApi:
    """The connection-independent public methods (also served over HTTP GET)."""

    HTTP_METHODS = (
        "public/get_instruments",
        "public/get_combos",
        "public/ticker",
        "public/get_time",
        "public/test",
        "public/status",
        "public/get_index_price",
        "public/get_last_trades_by_instrument_and_time",
        "public/get_last_trades_by_currency_and_time",
        "public/get_last_trades_by_instrument",
    )

    def __init__(self, catalog: Catalog, history: TradeHistory) -> None:
        self.catalog = catalog
        self.history = history
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "public/get_instruments": self.get_instruments,
            "public/get_combos": self.get_combos,
            "public/ticker": self.ticker,
            "public/get_time": lambda _p: time.time_ns() // 1_000_000,
            "public/test": lambda _p: {"version": API_VERSION},
            "public/hello": lambda _p: {"version": API_VERSION},
            "public/status": self.status,
            "public/get_index_price": self.get_index_price,
            "public/get_last_trades_by_instrument_and_time": self.trades_by_instrument_and_time,
            "public/get_last_trades_by_currency_and_time": self.trades_by_currency_and_time,
            "public/get_last_trades_by_instrument": self.trades_by_instrument,
        }

    def has(self, method: str) -> bool:
        return method in self._methods

    def call(self, method: str, params: dict[str, Any]) -> Any:
        handler = self._methods.get(method)
        if handler is None:
            if method.startswith("private/"):
                raise RpcError(13009, "unauthorized")
            raise RpcError(-32601, "Method not found")
        return handler(params)

    def get_instruments(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        currency = _get_str(params, "currency")
        kind = params.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise invalid_params("kind", "must be a string")
        expired = _get_bool(params, "expired", False)
        if currency not in CURRENCY_PARAMS:
            raise invalid_params("currency", "must be one of BTC, ETH, USDC, USDT, EURR, any")
        return self.catalog.instruments(currency, kind, expired)

    def get_combos(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        currency = _get_str(params, "currency")
        if currency not in CURRENCY_PARAMS:
            raise invalid_params("currency", "must be one of BTC, ETH, USDC, USDT, EURR, any")
        return self.catalog.combos(currency)

    def ticker(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _get_str(params, "instrument_name")
        got = self.catalog.ticker(name)
        if got is None:
            raise invalid_params("instrument_name", "wrong format or not found")
        return got

    def status(self, _params: dict[str, Any]) -> dict[str, Any]:
        locked = self.catalog.locked()
        indices = list(self.catalog.index_names()) if locked else []
        return {"locked": "true" if locked else "false", "locked_indices": indices}

    def get_index_price(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _get_str(params, "index_name")
        price = self.catalog.index_price(name)
        if price is None:
            raise invalid_params("index_name", f"only {', '.join(self.catalog.index_names())} are simulated")
        return {"index_price": price, "estimated_delivery_price": price}

    def trades_by_instrument_and_time(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _get_str(params, "instrument_name")
        start = _get_int(params, "start_timestamp")
        end = _get_int(params, "end_timestamp")
        return self.history.by_instrument_and_time(name, start, end, _get_count(params), _get_sorting(params))

    def trades_by_currency_and_time(self, params: dict[str, Any]) -> dict[str, Any]:
        currency = _get_str(params, "currency")
        kind = params.get("kind", "any")
        start = _get_int(params, "start_timestamp")
        end = _get_int(params, "end_timestamp")
        count, sorting = _get_count(params), _get_sorting(params)
        if currency not in CURRENCY_PARAMS:
            raise invalid_params("currency", "must be one of BTC, ETH, USDC, USDT, EURR, any")
        if not isinstance(kind, str) or kind not in ("option", "future", "option_combo", "combo", "any"):
            raise invalid_params("kind", "must be one of option, future, option_combo, combo, any")
        return self.history.by_currency_and_time(currency, kind, start, end, count, sorting)

    def trades_by_instrument(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _get_str(params, "instrument_name")
        start = _get_int(params, "start_seq", 1)
        end = _get_int(params, "end_seq", 2**62)
        return self.history.by_instrument_and_seq(name, start, end, _get_count(params), _get_sorting(params))


@dataclass(slots=True)
class Outcome:
    """What the server must do after one request."""

    replies: list[bytes] = field(default_factory=list)
    subscribed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    heartbeat_s: float | None = None
    """Wall seconds between test_requests; 0 = disable; None = unchanged."""
    close: tuple[int, str] | None = None
    test_answered: bool = False


class Session:
    """One WebSocket client's protocol state: subscriptions, rate limit, heartbeat."""

    def __init__(self, config: SimConfig, api: PublicApi, rule: Callable[[], ChannelRule]) -> None:
        self.config = config
        self.api = api
        self._rule = rule
        self.channels: set[str] = set()
        self.reject_mode: str | None = None
        """Set by the ``reject`` fault: 'error' or 'omit'."""
        self.rejected: list[str] = []
        """Channels refused by the reject fault (for the send log)."""
        self._tokens = float(config.subscribe_burst)
        self._tokens_at = time.monotonic()
        self.test_request_pending = False
        self.tests_answered = 0
        """``public/test`` requests received (answers to test_requests; ``Simulator.barrier``)."""

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(
            float(self.config.subscribe_burst),
            self._tokens + (now - self._tokens_at) * self.config.subscribe_rate_per_s,
        )
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def handle(self, text: str | bytes, us_in: int) -> Outcome:
        out = Outcome()
        testnet = self.config.testnet
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            out.replies.append(encode.error_response(None, -32700, "Parse error", None, us_in, now_us(), testnet))
            return out
        if not isinstance(msg, dict) or "id" not in msg or not isinstance(msg.get("method"), str):
            request_id = msg.get("id") if isinstance(msg, dict) else None
            out.replies.append(
                encode.error_response(request_id, -32600, "Invalid Request", None, us_in, now_us(), testnet)
            )
            return out
        request_id = msg["id"]
        method: str = msg["method"]
        params = msg.get("params") or {}
        try:
            if not isinstance(params, dict):
                raise RpcError(-32602, "Invalid params", {"reason": "params must be an object", "param": "params"})
            result = self._dispatch(method, params, out)
        except RpcError as exc:
            out.replies.append(
                encode.error_response(request_id, exc.code, exc.message, exc.data, us_in, now_us(), testnet)
            )
            if exc.code == 10028:
                out.close = (1008, "too_many_requests")
            return out
        out.replies.append(encode.response(request_id, result, us_in, now_us(), testnet))
        return out

    def _dispatch(self, method: str, params: dict[str, Any], out: Outcome) -> Any:
        if method == "public/subscribe":
            return self._subscribe(params, out)
        if method == "public/unsubscribe":
            return self._unsubscribe(params, out)
        if method == "public/unsubscribe_all":
            out.unsubscribed = sorted(self.channels)
            self.channels.clear()
            return "ok"
        if method == "public/set_heartbeat":
            interval = params.get("interval")
            if isinstance(interval, bool) or not isinstance(interval, (int, float)):
                raise invalid_params("interval", "must be a number")
            if interval < self.config.heartbeat_min_interval_s:
                raise invalid_params("interval", f"must be at least {self.config.heartbeat_min_interval_s:g}")
            out.heartbeat_s = float(interval) * self.config.heartbeat_scale
            self.test_request_pending = False
            return "ok"
        if method == "public/disable_heartbeat":
            out.heartbeat_s = 0.0
            self.test_request_pending = False
            return "ok"
        if method == "public/test":
            self.test_request_pending = False
            self.tests_answered += 1
            out.test_answered = True
        return self.api.call(method, params)

    def _channels_param(self, params: dict[str, Any]) -> list[str]:
        channels = params.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise invalid_params("channels", "must be an array of strings")
        if len(channels) > self.config.max_channels_per_request:
            raise RpcError(-32600, "request entity too large")
        return list(dict.fromkeys(channels))

    def _subscribe(self, params: dict[str, Any], out: Outcome) -> list[str]:
        channels = self._channels_param(params)
        if not self._take_token():
            raise RpcError(10028, "too_many_requests")
        rule = self._rule()
        raw = [c for c in channels if judge(c, rule) is Verdict.RAW]
        if raw:
            raise RpcError(
                13778, "raw_subscriptions_not_available_for_unauthorized", {"reason": raw[0], "param": "channels"}
            )
        unknown = [c for c in channels if judge(c, rule) is Verdict.UNKNOWN]
        if unknown:
            raise invalid_params("channels", f"invalid channel: {unknown[0]}")
        if self.reject_mode == "error":
            self.rejected.extend(channels)
            raise RpcError(10040, "retry")
        if self.reject_mode == "omit":
            self.rejected.extend(channels)
            return []
        new = [c for c in channels if c not in self.channels]
        self.channels.update(new)
        out.subscribed = new
        return channels

    def _unsubscribe(self, params: dict[str, Any], out: Outcome) -> list[str]:
        channels = self._channels_param(params)
        if not self._take_token():
            raise RpcError(10028, "too_many_requests")
        gone = [c for c in channels if c in self.channels]
        self.channels.difference_update(gone)
        out.unsubscribed = gone
        return gone
