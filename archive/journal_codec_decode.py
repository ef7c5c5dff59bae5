"""The journal archive codec's decoder: a structured body -> the journal segment it
rebuilds (``decode_body_py``, the reference; ``tickarchive_native.tjz_decode_body`` and
``TjzFrames`` read the same bodies). The format: ``archive.journal_codec``; the shared
model: ``archive.journal_codec_model``."""

from __future__ import annotations

import struct
import zlib
from typing import Final

from tickarchive.archive.errors import IntegrityError
from tickarchive.archive.journal_codec_model import (
    NUM,
    PREDICTORS,
    REC_MAGIC,
    REC_VERSION,
    STR,
    Paths,
    Shape,
    State,
    Value,
    fmt_number,
    unzz,
    value_of,
)

_PREFIX: Final = struct.Struct("<2sBBIQq")


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



def _record(seq: int, recv: int, conn: bytes, frame: bytes, crc: int | None) -> bytes:
    prefix = _PREFIX.pack(REC_MAGIC, REC_VERSION, len(conn), len(frame), seq, recv)
    if crc is None:
        crc = zlib.crc32(frame, zlib.crc32(conn, zlib.crc32(prefix)))
    return prefix + crc.to_bytes(4, "little") + conn + frame



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
    st = State()
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
        frame_prev: Value | None = None
        nums: list[Value] = []
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

