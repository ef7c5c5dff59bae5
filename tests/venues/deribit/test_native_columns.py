"""Replay's native column decoder (native/src/columns.rs, ``native.columns``) and the
adapter's ``decode_batch``: the same rows, gaps and malformed frames as the reference
decoder, frame by frame, on the real captures, the synthetic stream and hypothesis-mutated
frames."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.real import WS_CAPTURE, WS_CAPTURE_2021_04
from tickarchive import rows
from tickarchive import tables as t
from tickarchive.bench.deribit_frames import frames as synthetic_frames
from tickarchive.domain import Event
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.settings import Settings
from tickarchive.venue import ORD_COLUMN, ORD_ROW_BITS, DecodedBatch, FrameBatch
from tickarchive.venues import deribit
from tickarchive.venues.deribit import native

VENUE = deribit.build(Settings())


def batch_of(frames: Sequence[tuple[int, bytes]]) -> FrameBatch:
    buf = b"".join(f for _, f in frames)
    starts, ends, recv = bytearray(), bytearray(), bytearray()
    at = 0
    for ts, f in frames:
        starts += at.to_bytes(8, "little")
        at += len(f)
        ends += at.to_bytes(8, "little")
        recv += ts.to_bytes(8, "little", signed=True)
    return FrameBatch(buf, bytes(starts), bytes(ends), bytes(recv))


def _arrow(table: t.Table, events: list[Event], ords: list[int]) -> pa.Table:
    data = rows.events_to_arrow(table, events)
    return data.append_column(pa.field(ORD_COLUMN, pa.uint64(), nullable=False), pa.array(ords, pa.uint64()))


def reference(frames: Sequence[tuple[int, bytes]]) -> tuple[dict[str, pa.Table], list[object], list[str]]:
    dec = VENUE.replay_decoder("replay")
    per_table: dict[str, tuple[list[Event], list[int]]] = {}
    gaps: list[object] = []
    bad: list[str] = []
    for i, (ts, f) in enumerate(frames):
        d = dec.decode(f, ts)
        for k, ev in enumerate(d.events):
            evs, ords = per_table.setdefault(rows.TABLE_OF_EVENT[type(ev)].name, ([], []))
            evs.append(ev)
            ords.append(i << ORD_ROW_BITS | k)
        gaps.extend(d.gaps)
        if d.malformed is not None:
            bad.append(d.malformed.key)
    return {n: _arrow(t.table(n), e, o) for n, (e, o) in per_table.items()}, gaps, bad


def flatten(out: DecodedBatch) -> dict[str, pa.Table]:
    """Native tables and reference events of a batch, per table, in input order."""
    per: dict[str, list[pa.Table]] = {n: [d] for n, d in out.tables.items() if d.num_rows}
    extra: dict[str, tuple[list[Event], list[int]]] = {}
    for i, events in out.events:
        for k, ev in enumerate(events):
            evs, ords = extra.setdefault(rows.TABLE_OF_EVENT[type(ev)].name, ([], []))
            evs.append(ev)
            ords.append(i << ORD_ROW_BITS | k)
    for n, (e, o) in extra.items():
        per.setdefault(n, []).append(_arrow(t.table(n), e, o))
    result = {}
    for n, parts in per.items():
        data = pa.concat_tables([p.cast(parts[0].schema) for p in parts])
        result[n] = data.take(pc.sort_indices(data, [(ORD_COLUMN, "ascending")]))
    return result


def check_equal(frames: Sequence[tuple[int, bytes]]) -> DecodedBatch:
    want, gaps, bad = reference(frames)
    out = VENUE.replay_decoder("replay").decode_batch(batch_of(frames), lambda f: False)
    got = flatten(out)
    assert sorted(got) == sorted(want)
    for name, data in want.items():
        assert got[name].cast(data.schema).equals(data), name
    assert out.gaps == gaps
    assert [m.key for m in out.malformed] == bad
    return out


def capture(path: object) -> list[tuple[int, bytes]]:
    _, recs = read_capture(path)  # type: ignore[arg-type]
    return [(r.recv_ts_us, r.frame) for r in recs]


def test_native_columns_are_there() -> None:
    assert native.COLUMNS_ENABLED, "the native column decoder is missing or disagrees with the table registry"


def test_real_captures_decode_the_same() -> None:
    for path in (WS_CAPTURE, WS_CAPTURE_2021_04):
        out = check_equal(capture(path))
        assert out.tables["quotes"].num_rows > 80  # natively decoded


def test_synthetic_stream_decodes_the_same() -> None:
    frames = list(synthetic_frames(3000, 7))
    out = check_equal(frames)
    assert out.tables["quotes"].num_rows > 1000
    assert out.tables["book_changes"].num_rows > 500


def test_sequence_gaps_in_frame_order_with_refused_frames() -> None:
    """A book chain broken while some of its frames go through the reference parser (an
    escape in a string makes the native path refuse them): the gaps come out in order."""

    def book(cid: int, prev: int | None, inst: str = "ETH-A", escape: bool = False) -> bytes:
        data = {"type": "snapshot" if prev is None else "change", "timestamp": 1_700_000_000_000 + cid,
                "instrument_name": inst, "change_id": cid, "prev_change_id": prev,
                "bids": [["new", 0.1, 1.0]], "asks": []}
        text = json.dumps({"jsonrpc": "2.0", "method": "subscription",
                           "params": {"channel": f"book.{inst}.100ms", "data": data}}, separators=(",", ":"))
        if escape:
            text = text.replace('"jsonrpc":"2.0"', '"jsonrpc":"2\\u002e0"')
        return text.encode()

    frames = [(1, book(10, None)), (2, book(11, 10, escape=True)), (3, book(13, 12)), (4, book(20, None, escape=True)),
              (5, book(21, 20)), (6, book(22, 25, "ETH-B")), (7, book(30, 21))]  # fmt: skip
    out = check_equal(frames)
    assert len(out.gaps) == 2


ticker_values = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
    st.text(max_size=6),
    st.just("expired"),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_frames_decode_the_same(data: st.DataObject) -> None:
    base = capture(WS_CAPTURE)
    picked = data.draw(st.lists(st.sampled_from(base), min_size=1, max_size=12))
    frames = []
    for ts, f in picked:
        msg = json.loads(f)
        d = msg.get("params", {}).get("data")
        if isinstance(d, dict) and d:
            key = data.draw(st.sampled_from(sorted(d)))
            action = data.draw(st.sampled_from(["set", "drop", "escape", "keep"]))
            if action == "set":
                d[key] = data.draw(ticker_values)
            elif action == "drop":
                del d[key]
        text = json.dumps(msg, separators=(",", ":"))
        if d and action == "escape":
            text = text.replace('"state"', '"st\\u0061te"')
        frames.append((data.draw(st.sampled_from([ts, -1, 0])), text.encode()))
    check_equal(frames)


def _book(inst: str, cid: int, prev: int | None, ts_ms: int, escape: bool = False) -> bytes:
    data = {"type": "snapshot" if prev is None else "change", "timestamp": ts_ms, "instrument_name": inst,
            "change_id": cid, "prev_change_id": prev, "bids": [["new", 0.1, 1.0]], "asks": []}
    text = json.dumps({"jsonrpc": "2.0", "method": "subscription",
                       "params": {"channel": f"book.{inst}.100ms", "data": data}}, separators=(",", ":"))
    if escape:  # the native path refuses it: the reference decodes it between the others
        text = text.replace('"jsonrpc":"2.0"', '"jsonrpc":"2\\u002e0"')
    return text.encode()


book_steps = st.lists(
    st.tuples(
        st.sampled_from(["ETH-A", "ETH-B"]),
        st.sampled_from(["next", "next", "next", "next", "snapshot", "break", "again", "again"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


def _chains(steps: list[tuple[str, str, bool]], escapes: bool) -> list[tuple[int, bytes]]:
    """Book frames of three instruments: mostly continuing chains, with snapshots, breaks
    and runs of re-delivered messages (``again``: the instrument's messages from three
    back, one more per ``again`` in a row: duplicates that continue each other)."""
    last: dict[str, int] = {}
    sent: dict[str, list[tuple[int, int | None]]] = {}
    cursor: dict[str, int] = {}
    frames = []
    for n, (inst, kind, escape) in enumerate(steps):
        mine = sent.setdefault(inst, [])
        if kind == "again" and mine:
            at = cursor.get(inst, max(0, len(mine) - 3))
            cid, prev = mine[min(at, len(mine) - 1)]
            cursor[inst] = at + 1
        else:
            cursor.pop(inst, None)
            cid = last.get(inst, 100) + 1 + n % 3
            prev = last.get(inst)
            if kind == "snapshot" or prev is None:
                prev = None
            elif kind == "break":
                prev -= 1
            last[inst] = cid
            mine.append((cid, prev))
        frames.append((n + 1, _book(inst, cid, prev, 1_700_000_000_000 + n, escape and escapes)))
    return frames


def test_redelivered_run_is_not_a_chain() -> None:
    """Two re-delivered messages continue each other but not the chain (duplicates): the
    message after them continues the chain, no gap (as the reference decides)."""
    steps = [("ETH-A", "next", False)] * 4 + [("ETH-A", "again", False)] * 2 + [("ETH-A", "next", False)]
    out = check_equal(_chains(steps, False))
    assert out.gaps == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book_steps, st.booleans())
def test_book_chains_give_the_reference_gaps(steps: list[tuple[str, str, bool]], escapes: bool) -> None:
    """The bulk book check (runs of continuing messages not fed one by one) opens and
    closes exactly the gaps of the reference decoder, duplicates and breaks included."""
    check_equal(_chains(steps, escapes))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book_steps, st.integers(1, 59))
def test_book_chains_across_batches(steps: list[tuple[str, str, bool]], cut: int) -> None:
    """The chains' state after a batch is the reference's: a second batch continues it."""
    frames = _chains(steps, False)
    _, want, _ = reference(frames)
    dec = VENUE.replay_decoder("replay")
    got = [*dec.decode_batch(batch_of(frames[:cut]), lambda f: False).gaps]
    got += dec.decode_batch(batch_of(frames[cut:]), lambda f: False).gaps if frames[cut:] else []
    assert got == want


def test_timestamps_whose_microseconds_overflow_are_malformed_on_both_paths() -> None:
    """A timestamp whose µs do not fit 64 bits (found by the test above in a suite round:
    the reference parser took -2**70 ms and the Arrow conversion overflowed) is invalid data
    on both paths; the frames around it decode as usual."""
    def notification(f: bytes) -> bool:
        ch = json.loads(f).get("params", {}).get("channel", "")
        return isinstance(ch, str) and ch.startswith(("ticker.", "book."))

    base = [(ts, f) for ts, f in capture(WS_CAPTURE) if notification(f)][:4]
    frames = list(base)
    for value in (-(2**70), 2**62, (2**63 - 1) // 1000 + 1, -(2**63 // 1000) - 1):
        for ts, f in base[:2]:
            msg = json.loads(f)
            msg["params"]["data"]["timestamp"] = value
            frames.append((ts, json.dumps(msg, separators=(",", ":")).encode()))
    books = [(ts, f) for ts, f in capture(WS_CAPTURE) if notification(f) and b'"book.' in f][:1]
    assert books
    for field in ("change_id", "prev_change_id"):  # LONG columns (found by the same test)
        for value in (2**63, -(2**63) - 1):
            msg = json.loads(books[0][1])
            msg["params"]["data"][field] = value
            frames.append((books[0][0], json.dumps(msg, separators=(",", ":")).encode()))
    out = check_equal(frames)
    assert len(out.malformed) == 12
    assert all(m.key.startswith("invalid_data") for m in out.malformed)
