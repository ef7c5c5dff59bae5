"""The journal archive codec's encoder: a journal segment -> the structured body
(``encode_body_py``, the reference; ``tickarchive_native.tjz_encode_body`` makes the same
bytes). The format: ``archive.journal_codec``; the shared model:
``archive.journal_codec_model``."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from tickarchive.archive.journal_codec_model import (
    ESC,
    MAX_DIGITS,
    NUM,
    NUMBER,
    PREDICTORS,
    REC,
    REC_MAGIC,
    REC_SIZE,
    REC_VERSION,
    STR,
    Paths,
    Shape,
    State,
    Value,
    delta_of,
    put,
    varint_len,
    zz,
)

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
    number = NUMBER.match
    while i < n:
        c = frame[i]
        if c == 0x2D or 0x30 <= c <= 0x39:
            m = number(frame, i)
            if m is not None:
                intpart, frac = m.group(1), m.group(2)
                digits = intpart + (frac[1:] if frac else b"")
                v = int(digits)
                neg = c == 0x2D
                if len(digits) <= MAX_DIGITS and not (neg and v == 0):
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
    while end - off >= REC_SIZE:
        magic, version, conn_len, length, seq, recv, crc = REC.unpack_from(segment, off)
        body = off + REC_SIZE
        stop = body + conn_len + length
        if magic != REC_MAGIC or version != REC_VERSION or stop > end:
            break
        conn = segment[body : body + conn_len]
        frame = segment[body + conn_len : stop]
        got = zlib.crc32(frame, zlib.crc32(conn, zlib.crc32(segment[off : off + 24])))
        recs.append(_Rec(seq, recv, conn, frame, crc, got == crc))
        off = stop
    return recs, segment[off:]



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
    st = State()
    for r, (tok, ctx, sid) in zip(recs, toks, strict=True):
        shape = shapes[sid]
        recv_ms = r.recv_ts_us // 1000
        frame_prev: Value | None = None
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
                row[p] += varint_len(zz(delta_of(v, s, rv, rs))) + (0 if s == rs else 1)
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
    st = State()
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

