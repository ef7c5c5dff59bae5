"""The live feed's ILP decoder (``api.stream.ilp``): what the collector's writer encodes
comes back as the same rows, on the native and the pure-Python path alike, and a damaged
body is an ``IlpDecodeError`` on both (never another exception: the hub skips the batch
and stays up)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.store.test_ilp import FULL, REAL_WS, SPARSE
from tickarchive import domain as d
from tickarchive import rows
from tickarchive.api.stream import ilp
from tickarchive.bench.normalize import load_frames
from tickarchive.store.ilp import IlpEncoder
from tickarchive.tables import BY_NAME
from tickarchive.venues.deribit.normalize import Notification, parse_frame

REAL_EVENTS: list[d.Event] = [
    ev for ts, frame in load_frames(REAL_WS) if type(o := parse_frame(frame, ts)) is Notification for ev in o.events
]
EVENTS = FULL + SPARSE + REAL_EVENTS


def body_of(events: list[d.Event], protocol_version: int) -> bytes:
    """One request body with every table's rows, as the writer sends them (table by table)."""
    enc = IlpEncoder(protocol_version=protocol_version, batch_min_rows=1)
    enc.add_all(events)
    return b"".join(payload for payload, _ in enc.take_payloads().values())


def expected(events: list[d.Event]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for e in events:
        table, row = rows.event_row(e)
        out.setdefault(table.name, []).append(tuple(row[c] for c in table.column_names))
    return out


def native_decode(body: bytes) -> dict[str, list[tuple[Any, ...]]]:
    if ilp._NATIVE is None:  # the extension is built by make install; its tests need it
        pytest.fail("the native extension is not built (make install)")
    try:
        out: dict[str, list[tuple[Any, ...]]] = ilp._NATIVE.decode(body)
    except ValueError as exc:
        raise ilp.IlpDecodeError(str(exc)) from None
    return out


@pytest.mark.parametrize("protocol_version", [1, 2, 3])
def test_every_table_comes_back_as_written(protocol_version: int) -> None:
    body = body_of(EVENTS, protocol_version)
    want = expected(EVENTS)
    assert set(want) == {e.name for e in BY_NAME.values() if e.name in want}
    assert ilp.decode_py(body) == want
    assert native_decode(body) == want
    assert ilp.decode(body) == want


def test_values_stay_exact() -> None:
    q = d.QuoteTick("ETH-1", 1_000, 2_000, bid_price=0.1 + 0.2, ask_price=5e-324, mark_iv=float("inf"))
    for version in (1, 2, 3):
        (row,) = ilp.decode(body_of([q], version))["quotes"]
        got = dict(zip(BY_NAME["quotes"].column_names, row, strict=True))
        assert got["bid_price"] == 0.30000000000000004
        assert got["ask_price"] == 5e-324
        assert got["ts"] == 1_000
        assert got["recv_ts"] == 2_000
        assert got["mark_iv"] == float("inf")


def _outcome(fn: Any, body: bytes) -> Any:
    try:
        return fn(body)
    except ilp.IlpDecodeError:
        return "IlpDecodeError"


GOOD = body_of(FULL + SPARSE + REAL_EVENTS[:40], 3)
GOOD_V1 = body_of(FULL + SPARSE, 1)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([GOOD, GOOD_V1]),
    st.integers(0, len(GOOD)),
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=3),
)
def test_damaged_bodies_answer_alike_on_both_paths(body: bytes, cut: int, flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(body[:cut])
    for at, value in flips:
        if at < len(damaged):
            damaged[at] = value
    data = bytes(damaged)
    assert _outcome(native_decode, data) == _outcome(ilp.decode_py, data)


def test_a_cut_body_is_a_decode_error_not_a_crash() -> None:
    body = body_of(FULL, 2)
    for cut in range(1, len(body)):
        if body[cut - 1] == 0x0A:  # a whole line: a valid, shorter body
            continue
        for fn in (ilp.decode_py, native_decode):
            with pytest.raises(ilp.IlpDecodeError):
                fn(body[:cut])
