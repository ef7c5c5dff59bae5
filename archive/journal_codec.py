"""The journal archive's segment codec (``.tjz``): a structured, lossless transform of a
journal segment (docs/archive.md, "The journal archive format").

A journal segment (``tickarchive.ingest.journal.format``) is a run of records, each a
28-byte header, the connection id and the raw frame. Compressed as one block of bytes,
most of what zstd spends goes to things a model of the records predicts almost exactly:
the sequence number (+1), the CRC (a function of the rest), the receive time (a few µs
after the previous one), and inside each frame the JSON keys and instrument names
(repeated in every frame of a channel) and numbers that differ from the same field of the
channel's previous frame by a few units of their last digit. The transform takes each
record apart into streams, zstd compresses the streams, and the decoder puts every byte
back; the SHA-256 of the rebuilt segment is checked on every restore.

Container: ``b"TJZ" + version (1) + mode`` then one zstd frame. Mode 1 (``RAW``) holds the
segment bytes as they are (what the encoder falls back to whenever the structured form
would not rebuild them exactly); mode 0 (``STRUCTURED``) holds the *body*:

``varint(records)`` then the streams below, each ``varint(length) + bytes``, in order:

* ``conns``: connection ids (``varint(len) + bytes``), in order of first use;
* ``rec_conn``, ``rec_seq``, ``rec_ts``: per record the connection's index (new ones are
  the next index), ``zz(seq - previous seq - 1)`` and ``zz(recv_ts_us - previous)``;
* ``crc_bad``: records whose stored CRC is not the computed one: ``varint(count)`` then
  ``varint(index delta)`` and the 4 stored bytes each (normally empty);
* ``ctx``: per frame its channel (``"channel":"..."`` string, the context every other
  prediction is made in): 0 none, k the k-th known channel, known + 1 a new one (its bytes
  in ``ctx_lit``);
* ``skel``: per frame its skeleton (the frame with every number and string value cut out):
  0 the context's previous skeleton, k + 1 the k-th known one, known + 1 a new one (in
  ``skel_lit``);
* ``str``: per string hole 0 = the context's previous value at that path, 1 = the channel,
  2 + k = the k-th known string, 2 + known = a new one (in ``str_lit``);
* ``scale``: per number hole 0 = the scale of its reference value, else scale + 1;
* ``pred``: one byte per number path: the predictor its deltas are taken against;
* ``nums``: per number path (in path order) ``varint(length) + `` the zigzag deltas;
* ``tail``: bytes after the last whole record (a torn or damaged end), as they are.

A *number* is the longest prefix of a run outside strings matching
``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` with at most 18 digits and not a negative zero, held as
(value, scale) with scale 0 for an integer and d + 1 for d decimals: its text is a pure
function of the pair, so ``0.0115`` and ``0.01150`` stay themselves. Anything else stays
in the skeleton, where the bytes 0, 1 and 2 (hole markers) are escaped with a 2.

This module is the reference (and the fallback without the native extension);
``tickarchive_native.tjz_encode_body`` / ``tjz_decode_body`` produce and read the same
bodies byte for byte (tests/archive/test_journal_codec.py).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import zstandard

from tickarchive import native_ext
from tickarchive.archive.errors import IntegrityError

MAGIC: Final = b"TJZ"
VERSION: Final = 1
STRUCTURED: Final = 0
RAW: Final = 1
HEADER_BYTES: Final = 5

NUM: Final = 0
STR: Final = 1
ESC: Final = 2

_REC: Final = struct.Struct("<2sBBIQqI")
_REC_SIZE: Final = _REC.size  # 28, as tickarchive.ingest.journal.format
_REC_MAGIC: Final = b"TJ"
_REC_VERSION: Final = 1

P_ZERO, P_CTX, P_GLOBAL, P_FRAME, P_RECV_MS, P_NEXT = range(6)
PREDICTORS: Final = 6
_MAX_DIGITS: Final = 18
_NUMBER = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
_MAX_ARRAY_POS: Final = 7


# ---------------------------------------------------------------------------- varints


def zz(x: int) -> int:
    return x << 1 if x >= 0 else ((-x) << 1) - 1


def unzz(u: int) -> int:
    return u >> 1 if not u & 1 else -((u + 1) >> 1)


def put(out: bytearray, x: int) -> None:
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)


class Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def varint(self) -> int:
        buf, pos = self.buf, self.pos
        x = shift = 0
        while True:
            if pos >= len(buf):
                raise IntegrityError("journal archive: a stream ends inside a number")
            b = buf[pos]
            pos += 1
            x |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 140:
                raise IntegrityError("journal archive: a number is too long")
        self.pos = pos
        return x

    def take(self, n: int) -> bytes:
        if n > len(self.buf) - self.pos:
            raise IntegrityError("journal archive: a stream ends early")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def stream(self) -> Reader:
        return Reader(self.take(self.varint()))

    @property
    def done(self) -> bool:
        return self.pos >= len(self.buf)


# ---------------------------------------------------------------------------- numbers


def fmt_number(v: int, s: int) -> bytes:
    """The text of (value, scale): scale 0 = integer, d + 1 = d decimals."""
    neg = v < 0
    digits = str(-v if neg else v)
    if s:
        d = s - 1
        digits = digits.rjust(d + 1, "0")
        digits = digits[: len(digits) - d] + "." + digits[len(digits) - d :]
    return (b"-" if neg else b"") + digits.encode()


def _decimals(s: int) -> int:
    return s - 1 if s else 0


def delta_of(v: int, s: int, rv: int, rs: int) -> int:
    """``v`` minus the reference, both at the larger number of decimals."""
    d, rd = _decimals(s), _decimals(rs)
    top = max(d, rd)
    return int(v * 10 ** (top - d) - rv * 10 ** (top - rd))


def value_of(delta: int, s: int, rv: int, rs: int) -> int:
    d, rd = _decimals(s), _decimals(rs)
    top = max(d, rd)
    whole = delta + rv * 10 ** (top - rd)
    q, r = divmod(whole, 10 ** (top - d))
    if r:
        raise IntegrityError("journal archive: a number delta does not land on its scale")
    return int(q)


# ---------------------------------------------------------------------------- frames


@dataclass(slots=True)
class Tokens:
    skeleton: bytes
    kinds: list[int]
    """NUM or STR per hole, in order."""
    nums: list[tuple[int, int]]
    """(value, scale) of each number hole."""
    strs: list[bytes]
    """Content (between the quotes, as sent) of each string hole."""


def _esc(out: bytearray, chunk: bytes) -> None:
    for c in chunk:
        if c <= ESC:
            out.append(ESC)
        out.append(c)


_TOKEN = re.compile(
    rb'(?P<s>"(?:[^"\\]|\\.)*")'  # a complete string (backslash escapes any byte)
    rb'|(?P<u>"[\s\S]*)'  # an unterminated one: the rest of the frame
    rb"|[^\"\-0-9\x00-\x02]+"  # a run of plain bytes
    rb"|[\s\S]",  # one byte: '-', a digit, a marker byte
    re.DOTALL,
)


def tokenize(frame: bytes) -> Tokens:
    """Cut a frame into its skeleton and holes (never fails: any bytes tokenize)."""
    sk = bytearray()
    kinds: list[int] = []
    nums: list[tuple[int, int]] = []
    strs: list[bytes] = []
    i, n = 0, len(frame)
    match = _TOKEN.match
    number = _NUMBER.match
    while i < n:
        c = frame[i]
        if c == 0x2D or 0x30 <= c <= 0x39:
            m = number(frame, i)
            if m is not None:
                intpart, frac = m.group(1), m.group(2)
                digits = intpart + (frac[1:] if frac else b"")
                v = int(digits)
                neg = c == 0x2D
                if len(digits) <= _MAX_DIGITS and not (neg and v == 0):
                    sk.append(NUM)
                    kinds.append(NUM)
                    nums.append((-v if neg else v, len(frac) if frac else 0))
                    i = m.end()
                    continue
            sk.append(c)
            i += 1
            continue
        t = match(frame, i)
        assert t is not None
        j = t.end()
        tok = t.group(0)
        if c == 0x22:
            if t.lastgroup == "u" or (j < n and frame[j] == 0x3A):  # unterminated, or a key
                _esc(sk, tok)
            else:
                sk += b'"\x01"'
                kinds.append(STR)
                strs.append(tok[1:-1])
        elif c <= ESC:
            sk.append(ESC)
            sk.append(c)
        else:
            sk += tok
        i = j
    return Tokens(bytes(sk), kinds, nums, strs)


@dataclass(frozen=True, slots=True)
class Shape:
    """What a skeleton says about its holes: kind and path id of each, and for each
    number hole the path id of the next number hole (-1: none)."""

    kinds: tuple[int, ...]
    paths: tuple[int, ...]
    next_num_path: tuple[int, ...]
    channel_hole: int
    """Index of the first string hole whose key is ``channel`` (-1: none)."""
    lits: bytes
    """The skeleton unescaped and without its hole markers..."""
    cuts: tuple[int, ...]
    """...and where in it each hole goes: hole k follows ``lits[:cuts[k]]``."""


class Paths:
    """Path ids in order of first appearance (the encoder and decoder build the same)."""

    def __init__(self) -> None:
        self.num: dict[bytes, int] = {}
        self.str: dict[bytes, int] = {}

    def shape(self, skeleton: bytes) -> Shape:
        kinds: list[int] = []
        paths: list[int] = []
        channel = -1
        stack: list[list[object]] = []  # ["o", key] or ["a", position]
        sk = skeleton
        i, n = 0, len(sk)

        def path_key() -> bytes:
            parts: list[bytes] = []
            last = len(stack) - 1
            for k, (typ, val) in enumerate(stack):
                if typ == "o":
                    parts.append(val)  # type: ignore[arg-type]
                elif k == last:
                    parts.append(b"[%d]" % min(val, _MAX_ARRAY_POS))  # type: ignore[call-overload]
                else:
                    parts.append(b"[]")
            return b"/".join(parts)

        while i < n:
            c = sk[i]
            if c == ESC:
                i += 2
                continue
            if c == 0x7B:  # {
                stack.append(["o", b""])
            elif c == 0x5B:  # [
                stack.append(["a", 0])
            elif c in (0x7D, 0x5D):  # } ]
                if stack:
                    stack.pop()
            elif c == 0x2C:  # ,
                if stack:
                    top = stack[-1]
                    if top[0] == "a":
                        top[1] = int(top[1]) + 1  # type: ignore[call-overload]
                    else:
                        top[1] = b""
            elif c == 0x22:  # '"': a string hole or a key
                if i + 2 < n and sk[i + 1] == STR and sk[i + 2] == 0x22:
                    key = path_key()
                    if channel < 0 and stack and stack[-1][0] == "o" and stack[-1][1] == b"channel":
                        channel = len(kinds)
                    kinds.append(STR)
                    paths.append(self.str.setdefault(key, len(self.str)))
                    i += 3
                    continue
                j = i + 1
                while j < n and sk[j] != 0x22:
                    j += 2 if sk[j] in (0x5C, ESC) else 1
                if stack and stack[-1][0] == "o":
                    stack[-1][1] = bytes(_unesc(sk[i + 1 : min(j, n)]))
                i = j + 1
                continue
            elif c == NUM:
                kinds.append(NUM)
                paths.append(self.num.setdefault(path_key(), len(self.num)))
            i += 1
        nxt = [-1] * len(kinds)
        following = -1
        for k in range(len(kinds) - 1, -1, -1):
            if kinds[k] == NUM:
                nxt[k] = following
                following = paths[k]
        lits = bytearray()
        cuts: list[int] = []
        i = 0
        while i < n:
            c = sk[i]
            if c == ESC:
                lits += sk[i + 1 : i + 2]
                i += 2
                continue
            if c in (NUM, STR):
                cuts.append(len(lits))
            else:
                lits.append(c)
            i += 1
        return Shape(tuple(kinds), tuple(paths), tuple(nxt), channel, bytes(lits), tuple(cuts))


def _unesc(chunk: bytes) -> bytearray:
    out = bytearray()
    i = 0
    while i < len(chunk):
        if chunk[i] == ESC and i + 1 < len(chunk):
            i += 1
        out.append(chunk[i])
        i += 1
    return out


def rebuild(shape: Shape, nums: list[tuple[int, int]], strs: list[bytes]) -> bytes:
    """The frame of a skeleton (its shape) with its holes filled."""
    out = bytearray()
    lits = shape.lits
    at = ni = si = 0
    for kind, cut in zip(shape.kinds, shape.cuts, strict=True):
        out += lits[at:cut]
        at = cut
        if kind == NUM:
            out += fmt_number(*nums[ni])
            ni += 1
        else:
            out += strs[si]
            si += 1
    out += lits[at:]
    return bytes(out)


# ---------------------------------------------------------------------------- state


_Value = tuple[int, int]
_ZERO: Final[_Value] = (0, 0)


@dataclass(slots=True)
class _State:
    """The prediction state both sides keep while walking the frames."""

    ctx_num: dict[tuple[int, int], _Value] = field(default_factory=dict)
    glob_num: dict[int, _Value] = field(default_factory=dict)
    ctx_str: dict[tuple[int, int], bytes] = field(default_factory=dict)
    ctx_skel: dict[int, int] = field(default_factory=dict)

    def reference(self, pred: int, ctx: int, path: int, nxt: int, frame_prev: _Value | None, recv_ms: int) -> _Value:
        if pred == P_ZERO:
            return _ZERO
        if pred == P_GLOBAL:
            return self.glob_num.get(path, _ZERO)
        if pred == P_RECV_MS:
            return (recv_ms, 0)
        if pred == P_FRAME and frame_prev is not None:
            return frame_prev
        if pred == P_NEXT and nxt >= 0:
            got = self.ctx_num.get((ctx, nxt))
            if got is not None:
                return got
        got = self.ctx_num.get((ctx, path))
        return got if got is not None else self.glob_num.get(path, _ZERO)

    def update(self, ctx: int, path: int, value: _Value) -> None:
        self.ctx_num[(ctx, path)] = value
        self.glob_num[path] = value


def _varint_len(x: int) -> int:
    n = 1
    while x >= 0x80:
        x >>= 7
        n += 1
    return n


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class _Rec:
    seq: int
    recv_ts_us: int
    conn: bytes
    frame: bytes
    crc: int
    crc_ok: bool


def split_records(segment: bytes) -> tuple[list[_Rec], bytes]:
    """The whole records of a segment and the bytes after them (torn or damaged)."""
    recs: list[_Rec] = []
    off, end = 0, len(segment)
    while end - off >= _REC_SIZE:
        magic, version, conn_len, length, seq, recv, crc = _REC.unpack_from(segment, off)
        body = off + _REC_SIZE
        stop = body + conn_len + length
        if magic != _REC_MAGIC or version != _REC_VERSION or stop > end:
            break
        conn = segment[body : body + conn_len]
        frame = segment[body + conn_len : stop]
        got = zlib.crc32(frame, zlib.crc32(conn, zlib.crc32(segment[off : off + 24])))
        recs.append(_Rec(seq, recv, conn, frame, crc, got == crc))
        off = stop
    return recs, segment[off:]


def _record(seq: int, recv: int, conn: bytes, frame: bytes, crc: int | None) -> bytes:
    prefix = struct.pack("<2sBBIQq", _REC_MAGIC, _REC_VERSION, len(conn), len(frame), seq, recv)
    if crc is None:
        crc = zlib.crc32(frame, zlib.crc32(conn, zlib.crc32(prefix)))
    return prefix + crc.to_bytes(4, "little") + conn + frame


# ---------------------------------------------------------------------------- encode


def _channel_of(tok: Tokens, shape: Shape) -> bytes | None:
    if shape.channel_hole < 0:
        return None
    k = sum(1 for x in shape.kinds[: shape.channel_hole] if x == STR)
    return tok.strs[k]


def encode_body_py(segment: bytes) -> bytes:
    """The structured body of a segment (reference implementation)."""
    recs, tail = split_records(segment)
    paths = Paths()
    skel_ids: dict[bytes, int] = {}
    shapes: list[Shape] = []
    ctx_ids: dict[bytes, int] = {}
    toks: list[tuple[Tokens, int, int]] = []  # tokens, ctx, skeleton id
    for r in recs:
        tok = tokenize(r.frame)
        sid = skel_ids.get(tok.skeleton)
        if sid is None:
            sid = skel_ids[tok.skeleton] = len(skel_ids)
            shapes.append(paths.shape(tok.skeleton))
        ch = _channel_of(tok, shapes[sid])
        ctx = 0 if ch is None else ctx_ids.setdefault(ch, len(ctx_ids) + 1)
        toks.append((tok, ctx, sid))

    # pass 1: the cost of every predictor on every number path
    cost = [[0] * PREDICTORS for _ in range(len(paths.num))]
    st = _State()
    for r, (tok, ctx, sid) in zip(recs, toks, strict=True):
        shape = shapes[sid]
        recv_ms = r.recv_ts_us // 1000
        frame_prev: _Value | None = None
        ni = 0
        for k, kind in enumerate(shape.kinds):
            if kind != NUM:
                continue
            path, nxt = shape.paths[k], shape.next_num_path[k]
            v, s = tok.nums[ni]
            ni += 1
            row = cost[path]
            for p in range(PREDICTORS):
                rv, rs = st.reference(p, ctx, path, nxt, frame_prev, recv_ms)
                row[p] += _varint_len(zz(delta_of(v, s, rv, rs))) + (0 if s == rs else 1)
            st.update(ctx, path, (v, s))
            frame_prev = (v, s)
    preds = bytes(min(range(PREDICTORS), key=lambda p, row=row: (row[p], p)) for row in cost)  # type: ignore[misc]

    # pass 2: the streams
    conns: dict[bytes, int] = {}
    s_conns, s_conn, s_seq, s_ts, s_crc = bytearray(), bytearray(), bytearray(), bytearray(), bytearray()
    s_ctx, s_ctx_lit, s_skel, s_skel_lit = bytearray(), bytearray(), bytearray(), bytearray()
    s_str, s_str_lit, s_scale = bytearray(), bytearray(), bytearray()
    s_nums = [bytearray() for _ in paths.num]
    bad: list[tuple[int, int]] = []
    prev_seq, prev_ts = -1, 0
    st = _State()
    known_ctx = 0
    known_skel = 0
    strings: dict[bytes, int] = {}
    channels: list[bytes] = [b""]
    for idx, (r, (tok, ctx, sid)) in enumerate(zip(recs, toks, strict=True)):
        ci = conns.get(r.conn)
        if ci is None:
            ci = conns[r.conn] = len(conns)
            put(s_conns, len(r.conn))
            s_conns += r.conn
        put(s_conn, ci)
        put(s_seq, zz(r.seq - prev_seq - 1))
        put(s_ts, zz(r.recv_ts_us - prev_ts))
        prev_seq, prev_ts = r.seq, r.recv_ts_us
        if not r.crc_ok:
            bad.append((idx, r.crc))
        # context
        if ctx == 0:
            put(s_ctx, 0)
        elif ctx <= known_ctx:
            put(s_ctx, ctx)
        else:
            shape = shapes[sid]
            ch = _channel_of(tok, shape)
            assert ch is not None
            known_ctx += 1
            put(s_ctx, known_ctx)
            put(s_ctx_lit, len(ch))
            s_ctx_lit += ch
            channels.append(ch)
        # skeleton
        if st.ctx_skel.get(ctx) == sid:
            put(s_skel, 0)
        elif sid < known_skel:
            put(s_skel, sid + 1)
        else:
            known_skel += 1
            put(s_skel, known_skel)
            put(s_skel_lit, len(tok.skeleton))
            s_skel_lit += tok.skeleton
        st.ctx_skel[ctx] = sid
        # holes
        shape = shapes[sid]
        recv_ms = r.recv_ts_us // 1000
        frame_prev = None
        ni = si = 0
        for k, kind in enumerate(shape.kinds):
            path = shape.paths[k]
            if kind == STR:
                text = tok.strs[si]
                si += 1
                if st.ctx_str.get((ctx, path)) == text:
                    put(s_str, 0)
                elif ctx and text == channels[ctx]:
                    put(s_str, 1)
                else:
                    known = strings.get(text)
                    if known is None:
                        put(s_str, 2 + len(strings))
                        strings[text] = len(strings)
                        put(s_str_lit, len(text))
                        s_str_lit += text
                    else:
                        put(s_str, 2 + known)
                st.ctx_str[(ctx, path)] = text
                continue
            v, s = tok.nums[ni]
            ni += 1
            rv, rs = st.reference(preds[path], ctx, path, shape.next_num_path[k], frame_prev, recv_ms)
            put(s_scale, 0 if s == rs else s + 1)
            put(s_nums[path], zz(delta_of(v, s, rv, rs)))
            st.update(ctx, path, (v, s))
            frame_prev = (v, s)
    put(s_crc, len(bad))
    last = 0
    for idx, crc in bad:
        put(s_crc, idx - last)
        last = idx
        s_crc += crc.to_bytes(4, "little")
    s_all_nums = bytearray()
    for s_n in s_nums:
        put(s_all_nums, len(s_n))
        s_all_nums += s_n
    body = bytearray()
    put(body, len(recs))
    for stream in (
        s_conns, s_conn, s_seq, s_ts, s_crc, s_ctx, s_ctx_lit, s_skel, s_skel_lit,
        s_str, s_str_lit, s_scale, preds, s_all_nums, tail,
    ):  # fmt: skip
        put(body, len(stream))
        body += stream
    return bytes(body)


# ---------------------------------------------------------------------------- decode


def decode_body_py(body: bytes) -> bytes:
    """The segment a structured body rebuilds (reference implementation)."""
    rd = Reader(body)
    n = rd.varint()
    s_conns, s_conn, s_seq, s_ts, s_crc = (rd.stream() for _ in range(5))
    s_ctx, s_ctx_lit, s_skel, s_skel_lit = (rd.stream() for _ in range(4))
    s_str, s_str_lit, s_scale = (rd.stream() for _ in range(3))
    preds = rd.stream().buf
    s_all = rd.stream()
    tail = rd.stream().buf
    s_nums: list[Reader] = []
    while not s_all.done:
        s_nums.append(s_all.stream())
    if len(s_nums) != len(preds) or any(p >= PREDICTORS for p in preds):
        raise IntegrityError("journal archive: the number streams do not match the predictor table")
    bad: dict[int, int] = {}
    idx = 0
    for _ in range(s_crc.varint()):
        idx += s_crc.varint()
        bad[idx] = int.from_bytes(s_crc.take(4), "little")
    conns: list[bytes] = []
    paths = Paths()
    skeletons: list[tuple[bytes, Shape]] = []
    channels: list[bytes] = [b""]
    strings: list[bytes] = []
    st = _State()
    out = bytearray()
    prev_seq, prev_ts = -1, 0
    for i in range(n):
        ci = s_conn.varint()
        if ci == len(conns):
            conns.append(s_conns.take(s_conns.varint()))
        elif ci > len(conns):
            raise IntegrityError("journal archive: unknown connection")
        seq = prev_seq + 1 + unzz(s_seq.varint())
        recv = prev_ts + unzz(s_ts.varint())
        prev_seq, prev_ts = seq, recv
        c = s_ctx.varint()
        if c == len(channels):
            channels.append(s_ctx_lit.take(s_ctx_lit.varint()))
        elif c > len(channels):
            raise IntegrityError("journal archive: unknown channel")
        ctx = c
        code = s_skel.varint()
        if code == 0:
            sid = st.ctx_skel.get(ctx, -1)
            if sid < 0:
                raise IntegrityError("journal archive: no previous skeleton in this channel")
        elif code == len(skeletons) + 1:
            sk = s_skel_lit.take(s_skel_lit.varint())
            skeletons.append((sk, paths.shape(sk)))
            sid = code - 1
        elif code <= len(skeletons):
            sid = code - 1
        else:
            raise IntegrityError("journal archive: unknown skeleton")
        st.ctx_skel[ctx] = sid
        shape = skeletons[sid][1]
        if len(preds) < len(paths.num):
            raise IntegrityError("journal archive: a skeleton has more number paths than the table")
        recv_ms = recv // 1000
        frame_prev: _Value | None = None
        nums: list[_Value] = []
        strs: list[bytes] = []
        for k, kind in enumerate(shape.kinds):
            path = shape.paths[k]
            if kind == STR:
                code = s_str.varint()
                if code == 0:
                    got = st.ctx_str.get((ctx, path))
                    if got is None:
                        raise IntegrityError("journal archive: no previous string at this path")
                    text = got
                elif code == 1:
                    text = channels[ctx]
                elif code - 2 < len(strings):
                    text = strings[code - 2]
                elif code - 2 == len(strings):
                    text = s_str_lit.take(s_str_lit.varint())
                    strings.append(text)
                else:
                    raise IntegrityError("journal archive: unknown string")
                st.ctx_str[(ctx, path)] = text
                strs.append(text)
                continue
            rv, rs = st.reference(preds[path], ctx, path, shape.next_num_path[k], frame_prev, recv_ms)
            sc = s_scale.varint()
            s = rs if sc == 0 else sc - 1
            v = value_of(unzz(s_nums[path].varint()), s, rv, rs)
            st.update(ctx, path, (v, s))
            frame_prev = (v, s)
            nums.append((v, s))
        if len(shape.cuts) != len(shape.kinds):
            raise IntegrityError("journal archive: a skeleton's holes do not match its shape")
        frame = rebuild(shape, nums, strs)
        out += _record(seq, recv, conns[ci], frame, bad.get(i))
    out += tail
    return bytes(out)


# ---------------------------------------------------------------------------- container

_NATIVE_ENCODE: Final[Callable[[bytes], bytes] | None] = native_ext.enabled("tjz_encode_body")
_NATIVE_DECODE: Final[Callable[[bytes], bytes] | None] = native_ext.enabled("tjz_decode_body")
FRAMES: Final[Any] = native_ext.enabled("TjzFrames")
"""``tickarchive_native.TjzFrames``: a structured body's frames, a batch at a time, without
rebuilding the segment (replay's fast path), or None."""

encode_body: Final[Callable[[bytes], bytes]] = _NATIVE_ENCODE or encode_body_py
decode_body: Final[Callable[[bytes], bytes]] = _NATIVE_DECODE or decode_body_py

DEFAULT_LEVEL: Final = 19


def _zstd(data: bytes, level: int) -> bytes:
    return zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True).compress(data)


def encode(segment: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    """A ``.tjz`` file of ``segment``: structured when that rebuilds it exactly (checked
    here, by decoding), else the raw segment."""
    try:
        body = encode_body(segment)
    except (ValueError, OverflowError, RecursionError):
        body = None
    if body is not None and decode_body(body) == segment:
        return MAGIC + bytes((VERSION, STRUCTURED)) + _zstd(body, level)
    return MAGIC + bytes((VERSION, RAW)) + _zstd(segment, level)


def payload(data: bytes) -> tuple[int, bytes]:
    """(mode, zstd-decompressed payload) of a ``.tjz`` file (``IntegrityError`` if it is
    not one)."""
    if len(data) < HEADER_BYTES or data[:3] != MAGIC:
        raise IntegrityError("not a journal archive file (no TJZ magic)")
    if data[3] != VERSION:
        raise IntegrityError(f"journal archive version {data[3]} is not supported (this code reads {VERSION})")
    mode = data[4]
    if mode not in (RAW, STRUCTURED):
        raise IntegrityError(f"journal archive: unknown mode {mode}")
    try:
        return mode, zstandard.ZstdDecompressor().decompress(data[HEADER_BYTES:])
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"journal archive: not valid zstd: {exc}") from None


def decode(data: bytes) -> bytes:
    """The segment a ``.tjz`` file holds (``IntegrityError`` if it is not one)."""
    mode, body = payload(data)
    if mode == RAW:
        return body
    try:
        return decode_body(body)
    except (ValueError, IndexError, KeyError) as exc:
        raise IntegrityError(f"journal archive: damaged body: {exc}") from None
