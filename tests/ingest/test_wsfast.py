"""``ingest.wsfast``: the fast receive path yields exactly what websockets yields.

Each case drives two connections over real loopback sockets (``socket.socketpair``,
the event loop's own transport): a plain ``ClientConnection`` and a
``FastClientConnection``. Both perform the real opening handshake (the 101 response
comes from websockets' ``ServerProtocol``) and are then fed the *same* server byte
stream cut at the *same* random points (hypothesis): real Deribit capture frames and
synthetic frames (``tickarchive.bench.deribit_frames``), 126/127 length forms, pings, pongs, fragmented
messages, and an ending: a close frame, EOF, EOF inside a frame, or a protocol error
(RSV bit, masked frame, bad opcode). Checked equal: the messages, in order; what each
client wrote back (pongs, the close echo/close 1002), frame by frame; how the stream
ended (the ``ConnectionClosed`` type and close codes).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import struct
from collections.abc import Sequence
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import BINARY, CLOSE, CONT, PING, PONG, TEXT, Close, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.uri import parse_uri

from tests.real import WS_CAPTURE
from tickarchive import native_ext
from tickarchive.bench import deribit_frames as synth
from tickarchive.ingest import wsfast
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.ingest.wsfast import FastClientConnection, frame_end, scan_simple

# ---- the byte stream -------------------------------------------------------------------


@cache
def real_frames() -> list[bytes]:
    _, records = read_capture(WS_CAPTURE)
    return [r.frame for r in itertools.islice(records, 400) if not r.rest]


@cache
def synth_frames() -> list[bytes]:
    return [f for _ts, f in synth.frames(300, seed=7)]


def ser(frame: Frame) -> bytes:
    return frame.serialize(mask=False, extensions=[])


def raw_frame(b0: int, payload: bytes, *, mask: bool = False, force127: bool = False) -> bytes:
    """A frame with any first byte (RSV bits, opcodes websockets would never write)."""
    n = len(payload)
    m = 0x80 if mask else 0
    if force127:
        head = bytes([b0, m | 127]) + struct.pack("!Q", n)
    elif n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if mask:
        key = b"\x01\x02\x03\x04"
        return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return head + payload


ENDINGS = ("close", "close_empty", "eof", "eof_in_frame", "rsv1", "masked", "bad_opcode", "control_fragment")


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], list[tuple[str, Any]], str]:
    """(frame bytes, what each is, ending)."""
    rf, sf = real_frames(), synth_frames()
    parts: list[bytes] = []
    kinds: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(
            st.sampled_from(
                (
                    "real",
                    "real",
                    "synth",
                    "synth",
                    "binary",
                    "big126",
                    "big127",
                    "wide127",
                    "ping",
                    "pong",
                    "fragmented",
                    "empty",
                )
            )
        )
        if kind == "real":
            p = rf[draw(st.integers(0, len(rf) - 1))]
            parts.append(ser(Frame(TEXT, p)))
        elif kind == "synth":
            p = sf[draw(st.integers(0, len(sf) - 1))]
            parts.append(ser(Frame(TEXT, p)))
        elif kind == "binary":
            p = draw(st.binary(max_size=300))
            parts.append(ser(Frame(BINARY, p)))
        elif kind == "big126":
            p = b"x" * draw(st.integers(126, 70_000))
            parts.append(ser(Frame(TEXT, p)))
        elif kind == "big127":
            p = bytes(range(256)) * 300  # 76,800 bytes: the 8-byte length form
            parts.append(ser(Frame(BINARY, p)))
        elif kind == "wide127":  # a short payload in the 8-byte form (legal, unusual)
            p = draw(st.binary(max_size=50))
            parts.append(raw_frame(0x81, p, force127=True))
        elif kind == "ping":
            p = draw(st.binary(max_size=20))
            parts.append(ser(Frame(PING, p)))
        elif kind == "pong":
            p = draw(st.binary(max_size=20))
            parts.append(ser(Frame(PONG, p)))
        elif kind == "empty":
            p = b""
            parts.append(ser(Frame(TEXT, p)))
        else:  # fragmented, with a ping between two fragments
            p = rf[draw(st.integers(0, len(rf) - 1))]
            k = draw(st.integers(1, 4))
            cuts = sorted(draw(st.lists(st.integers(0, len(p)), min_size=k, max_size=k)))
            pieces = [p[a:b] for a, b in zip([0, *cuts], [*cuts, len(p)], strict=True)]
            for i, piece in enumerate(pieces):
                op = TEXT if i == 0 else CONT
                parts.append(ser(Frame(op, piece, fin=i == len(pieces) - 1)))
                if i == 0 and len(pieces) > 1 and draw(st.booleans()):
                    parts.append(ser(Frame(PING, b"mid")))
        kinds.append((kind, p))
    ending = draw(st.sampled_from(ENDINGS))
    if ending == "close":
        parts.append(ser(Frame(CLOSE, Close(1001, "going away").serialize())))
    elif ending == "close_empty":
        parts.append(ser(Frame(CLOSE, b"")))
    elif ending == "eof_in_frame":
        parts.append(ser(Frame(TEXT, b"y" * 500))[: draw(st.integers(1, 499))])
    elif ending == "rsv1":
        parts.append(raw_frame(0x80 | 0x40 | 0x1, b"compressed?"))
    elif ending == "masked":
        parts.append(raw_frame(0x81, b"masked", mask=True))
    elif ending == "bad_opcode":
        parts.append(raw_frame(0x83, b"opcode 3"))
    elif ending == "control_fragment":
        parts.append(raw_frame(0x09, b"ping without fin"))
    # what follows an error or a close must be ignored by both
    if ending not in ("eof", "eof_in_frame"):
        parts.append(ser(Frame(TEXT, b"after the end")))
    return parts, kinds, ending


# ---- driving a connection ----------------------------------------------------------------


def parse_written(data: bytes) -> list[tuple[Opcode, bytes, bool]]:
    """The frames a client wrote (masked), after its HTTP request."""
    i = data.index(b"\r\n\r\n") + 4
    reader = StreamReader()
    reader.feed_data(data[i:])
    reader.feed_eof()
    out = []
    while reader.buffer:
        gen = Frame.parse(reader.read_exact, mask=True)
        try:
            next(gen)
        except StopIteration as stop:
            f = stop.value
            out.append((f.opcode, bytes(f.data), f.fin))
            continue
        raise AssertionError("truncated frame written")
    return out


def drain(sock: socket.socket) -> bytes:
    """What a non-blocking socket holds now."""
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return bytes(out)
        if not chunk:
            return bytes(out)
        out += chunk


class Outcome:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.closed: tuple[str, int | None, int | None, str] | None = None
        self.written: list[tuple[Opcode, bytes, bool]] = []
        self.fast_frames = 0
        self.held = 0
        """Most bytes of a partial frame the fast path held at once."""


async def drive(fast: bool, stream: bytes, cuts: Sequence[int], batch: int, max_size: int | None = None) -> Outcome:
    """Handshake, feed ``stream`` (starting with the 101 response) cut at ``cuts``,
    close the server side, read until ConnectionClosed."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1:1/ws/api/v2"), max_size=max_size)
    cls = FastClientConnection if fast else ClientConnection
    _, conn = await loop.create_connection(lambda: cls(protocol, ping_interval=None, close_timeout=2), sock=ours)
    handshake = asyncio.create_task(conn.handshake())
    request_bytes = await loop.sock_recv(theirs, 65536)  # waits for the handshake task to write it
    server = ServerProtocol()
    server.receive_data(request_bytes)
    [request] = server.events_received()
    assert isinstance(request, Request)
    response = server.accept(request).serialize()
    data = response + stream
    edges = [0, *sorted(set(c for c in cuts if 0 < c < len(data))), len(data)]
    held = 0
    for a, b in itertools.pairwise(edges):
        conn.data_received(data[a:b])
        if isinstance(conn, FastClientConnection):
            held = max(held, len(conn._tail))
    await handshake
    out = Outcome()

    async def read() -> None:
        try:
            if isinstance(conn, FastClientConnection):
                while True:
                    msgs = await conn.recv_batch(batch)
                    assert 1 <= len(msgs) <= batch
                    out.messages.extend(msgs)
            else:
                while True:
                    out.messages.append(await conn.recv(decode=False))
        except ConnectionClosed as exc:
            out.closed = (
                type(exc).__name__,
                exc.rcvd.code if exc.rcvd else None,
                exc.sent.code if exc.sent else None,
                type(exc.__cause__).__name__,
            )

    reader = asyncio.create_task(read())
    written = bytearray(request_bytes)
    written += drain(theirs)  # what the client wrote so far (the rest is read after the close)
    theirs.shutdown(socket.SHUT_WR)  # the server closes TCP (EOF to the client)
    async with asyncio.timeout(5):
        await reader
        await conn.wait_closed()
    theirs.setblocking(True)
    theirs.settimeout(2)
    while chunk := theirs.recv(65536):
        written += chunk
    theirs.close()
    out.written = parse_written(bytes(written))
    if isinstance(conn, FastClientConnection):
        out.fast_frames = conn.fast_frames
        out.held = held
    return out


def expected_messages(kinds: list[tuple[str, Any]]) -> list[bytes]:
    return [p for k, p in kinds if k not in ("ping", "pong")]


def run_both(
    stream: bytes, cuts: Sequence[int], batch: int = 256, max_size: int | None = None
) -> tuple[Outcome, Outcome]:
    async def both() -> tuple[Outcome, Outcome]:
        return (await drive(False, stream, cuts, batch, max_size),
                await drive(True, stream, cuts, batch, max_size))

    return asyncio.run(both())


# ---- the tests -----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams(), st.lists(st.integers(0, 400_000), max_size=30), st.integers(1, 300), st.booleans())
def test_same_messages_writes_and_ending_as_websockets(
    stream: tuple[list[bytes], list[tuple[str, Any]], str], cuts: list[int], batch: int, small_cuts: bool
) -> None:
    parts, kinds, ending = stream
    data = b"".join(parts)
    if small_cuts:  # cut inside headers and the HTTP response too
        cuts = [c % 200 for c in cuts] + cuts
    plain, fast = run_both(data, cuts, batch)
    assert fast.messages == plain.messages
    assert fast.written == plain.written
    assert fast.closed == plain.closed
    assert plain.closed is not None
    if ending in ("close", "close_empty", "eof", "eof_in_frame"):
        assert plain.messages == expected_messages(kinds)
    if ending.startswith("close"):
        assert plain.written[-1][0] is CLOSE  # the echo
        assert plain.closed[0] == "ConnectionClosedOK"
    # every ping answered by a pong with its payload
    pings = [bytes(f.data) for f in _frames(parts) if f.opcode is PING]
    assert [p for op, p, _ in fast.written if op is PONG] == pings


def _frames(parts: list[bytes]) -> list[Frame]:
    out = []
    for p in parts:
        if p[0] & 0x0F == PING and p[0] & 0x80 and not p[1] & 0x80:
            out.append(Frame(PING, p[2:]))
    return out


def test_fast_path_is_taken_for_simple_frames() -> None:
    msgs = real_frames()[:200]
    data = b"".join(ser(Frame(TEXT, m)) for m in msgs) + ser(Frame(CLOSE, Close(1000, "").serialize()))
    rng = random.Random(3)
    cuts = sorted(rng.sample(range(1, len(data)), 50))
    plain, fast = run_both(data, cuts)
    assert fast.messages == plain.messages == msgs
    assert len(msgs) > 100
    assert fast.fast_frames == len(msgs)
    assert fast.closed == plain.closed == ("ConnectionClosedOK", 1000, 1000, "NoneType")


def test_frames_after_the_response_in_the_same_read() -> None:
    msgs = synth_frames()[:20]
    data = b"".join(ser(Frame(TEXT, m)) for m in msgs)
    plain, fast = run_both(data, [])  # the 101 and all frames in one data_received
    assert fast.messages == plain.messages == msgs
    assert fast.fast_frames == 20
    assert fast.closed == plain.closed


def test_one_byte_at_a_time() -> None:
    msgs = [b"a", b"x" * 200, b"y" * 70_000, b"z"]
    data = b"".join(ser(Frame(TEXT, m)) for m in msgs)
    plain, fast = run_both(data, list(range(0, 400)) + list(range(70_000, 70_400)))
    assert fast.messages == plain.messages == msgs
    assert fast.closed == plain.closed


def test_ready_queue_is_bounded_by_pausing_the_transport() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        protocol = ClientProtocol(parse_uri("ws://127.0.0.1:1/"), max_size=None)
        _, conn = await loop.create_connection(lambda: FastClientConnection(protocol, ping_interval=None), sock=ours)
        hs = asyncio.create_task(conn.handshake())
        theirs.setblocking(False)
        server = ServerProtocol()
        server.receive_data(await loop.sock_recv(theirs, 65536))  # waits for the handshake task to write it
        [request] = server.events_received()
        assert isinstance(request, Request)
        theirs.sendall(server.accept(request).serialize())
        await hs
        frame = ser(Frame(TEXT, b"m" * 100))
        n = 20 * wsfast.READY_HIGH
        sent = 0
        payload = frame * 1000
        # the client stops reading: the server's sends eventually block (kernel buffers full)
        while sent < n:
            try:
                theirs.sendall(payload)
                sent += 1000
            except BlockingIOError:
                break
            await asyncio.sleep(0.001)
        for _ in range(10_000):  # the client reads until its ready queue is full and pauses
            if conn._reading_paused:
                break
            await asyncio.sleep(0.001)
        # bounded: at most one read (256 KiB) beyond the high-water mark
        assert wsfast.READY_HIGH < len(conn.ready) <= wsfast.READY_HIGH + 262_144 // len(frame) + 1
        assert conn._reading_paused
        got = 0
        while len(conn.ready) > wsfast.READY_LOW:
            got += len(await conn.recv_batch(64))
        assert not conn._reading_paused  # reading resumed
        theirs.close()
        ours.close()
        conn.transport.abort()

    asyncio.run(main())


# ---- the scanner ---------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0x81, 0x82, 0x01, 0x89, 0x8A, 0xC1, 0x80, 0x88]),
            st.binary(max_size=200),
            st.booleans(),
            st.booleans(),
        ),
        max_size=20,
    ),
    st.integers(0, 50),
)
def test_scan_simple_and_frame_end(frames: list[tuple[int, bytes, bool, bool]], trim: int) -> None:
    parts = [raw_frame(b0, p, mask=m, force127=w) for b0, p, m, w in frames]
    buf = b"".join(parts)
    buf = buf[: max(len(buf) - trim, 0)]
    out: list[bytes] = []
    pos = scan_simple(buf, 0, out)
    # reference: walk the frames
    ref: list[bytes] = []
    p = 0
    for (b0, payload, m, _w), part in zip(frames, parts, strict=True):
        end = p + len(part)
        assert frame_end(buf, p) == (end if len(buf) - p >= len(part) - len(payload) - (4 if m else 0) else -1)
        if end > len(buf) or b0 not in (0x81, 0x82) or m:
            break
        ref.append(payload)
        p = end
    assert out == ref
    assert pos == p
    native = native_ext.enabled("ws_scan")
    assert native is not None or native_ext.SWITCHED_OFF  # built by make install
    if native is not None:
        out2: list[bytes] = []
        assert native(buf, 0, out2) == pos
        assert out2 == out
        for start in range(0, min(len(buf), 12)):
            a: list[bytes] = []
            b: list[bytes] = []
            assert native(buf, start, a) == scan_simple(buf, start, b)
            assert a == b


def test_a_frame_past_max_size_is_refused_from_its_header_never_buffered() -> None:
    """Finding 8 of issue #14: the fast path kept a partial frame with no size limit, so a
    peer declaring a huge frame grew the collector's memory without bound. Past
    ``max_size`` the frame goes to websockets, which refuses it from its header (close
    1009): the messages before it are delivered, and the fast path never holds more than
    ``max_size`` of it."""
    limit = 64 * 1024
    before = ser(Frame(TEXT, real_frames()[0]))
    huge = struct.pack("!BBQ", 0x81, 127, 1 << 30) + b"x" * (4 * limit)  # declares 1 GB, sends 256 KB
    cuts = list(range(0, len(before) + len(huge), 4096))  # arrives in many reads
    plain, fast = run_both(before + huge, cuts, max_size=limit)
    assert fast.messages == plain.messages == [real_frames()[0]]
    assert fast.closed == plain.closed
    assert plain.closed is not None
    assert plain.closed[2] == 1009  # we sent "message too big"
    assert fast.held <= limit
