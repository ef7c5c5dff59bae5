from typing import Any

def encode_frame(
    frame: bytes, recv_ts_us: int, /
) -> tuple[str, str, bytes, int, str, int, int | None, int | None, bool | None] | None: ...
def set_types(notification: type, encoded_rows: type, book_ids: type, /) -> None:
    """Raises TypeError when a class's ``__struct_fields__`` differ from the order the
    native parser builds it with."""
def fast_notification(frame: bytes, recv_ts_us: int, /) -> Any: ...

# journal.rs
def encode_records(frames: list[tuple[bytes, int]], first_seq: int, connection: bytes, /) -> bytes: ...

# sim.rs
class SimEngine:
    def __init__(
        self, tick_prices: list[float], book_levels: int, seed: int, year_ms: float, min_t: float, /
    ) -> None: ...
    def add_option(
        self,
        name: str,
        ticker_ch: str,
        book_ch: str,
        strike: float,
        is_call: bool,
        expiry_ms: int,
        mid1: bytes,
        mid2: bytes,
        bids: list[tuple[float, float]],
        asks: list[tuple[float, float]],
        targets: tuple[list[float], list[float]],
        targets_version: int,
        change_id: int,
        book_ts_ms: int,
        stats: tuple[int, float, float, float, float, float, float],
        last_steps: tuple[int, int],
        /,
    ) -> int: ...
    def set_rows(self, rows: list[tuple[int, float, float]], burst_rows: list[tuple[int, float, float]], /) -> None: ...
    def set_trade(
        self,
        id: int,
        trade_seq: int,
        last_price: float,
        volume: float,
        open_interest: float,
        low: float,
        high: float,
        /,
    ) -> None: ...
    def set_book_ts(self, id: int, ts_ms: int, /) -> None: ...
    def state(
        self, id: int, /
    ) -> tuple[
        list[tuple[float, float]],
        list[tuple[float, float]],
        int,
        int,
        tuple[list[float], list[float]],
        int,
        tuple[int, int],
    ]: ...
    def step(
        self,
        step: int,
        now_ms: int,
        sim_ms: int,
        spot: float,
        base_vol: float,
        spot_version: int,
        index_price: float,
        burst: bool,
        min_steps: int,
        /,
    ) -> list[tuple[str, bytes, tuple[Any, ...]]]: ...

# wsframe.rs
def ws_scan(buf: bytes, pos: int, out: list[bytes], /) -> int: ...

# tjz.rs
def tjz_encode_body(segment: bytes, /) -> bytes: ...
def tjz_decode_body(body: bytes, /) -> bytes:
    """Raises ValueError when the body is damaged."""
class TjzFrames:
    """A structured journal-archive body's frames, a batch at a time (replay)."""

    def __init__(self, body: bytes, /) -> None: ...
    def read(self, max_frames: int, /) -> tuple[bytes, bytes, bytes, bytes] | None: ...
    @property
    def damaged(self) -> int: ...
    @property
    def tail_bytes(self) -> int: ...

# tjz_columns.rs
class TjzColumns:
    """``TjzFrames`` with the Deribit ticker and book frames decoded straight into columns
    (``read``: ``(buf, starts, ends, recv_ts, deribit_columns' tuple)``; taken frames have no text)."""

    def __init__(self, body: bytes, /, columns: bool = True) -> None: ...
    def read(self, max_frames: int, /) -> tuple[bytes, bytes, bytes, bytes, tuple[Any, ...]] | None: ...
    @property
    def damaged(self) -> int: ...
    @property
    def direct(self) -> int: ...
    @property
    def tail_bytes(self) -> int: ...

def tjz_number_f64(value: int, scale: int, /) -> float: ...

# columns.rs
def deribit_columns(buf: bytes, starts: bytes, ends: bytes, recv_ts: bytes, /) -> tuple[Any, ...]: ...

# frames.rs
def replay_lines(
    buf: bytes, last_ts: int, first_line_no: int, final: bool, /
) -> tuple[bytes, bytes, bytes, int, int, int, int, int, list[int]]: ...
def journal_frames(buf: bytes, /) -> tuple[bytes, bytes, bytes, int, int, int]: ...
