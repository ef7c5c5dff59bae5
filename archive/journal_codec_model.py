"""The journal archive codec's model, shared by its encoder
(``archive.journal_codec_encode``) and decoder (``archive.journal_codec_decode``): the
constants of the body format, varints, numbers as (value, scale), a skeleton's shape and
path ids, and the prediction state both sides keep (the format: docs/archive.md, "The
journal archive format", and ``archive.journal_codec``)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Final

from tickarchive.archive.errors import IntegrityError

NUM: Final = 0
STR: Final = 1
ESC: Final = 2

REC: Final = struct.Struct("<2sBBIQqI")
REC_SIZE: Final = REC.size  # 28, as tickarchive.ingest.journal.format
REC_MAGIC: Final = b"TJ"
REC_VERSION: Final = 1

PZERO, P_CTX, P_GLOBAL, P_FRAME, P_RECV_MS, P_NEXT = range(6)
PREDICTORS: Final = 6
MAX_DIGITS: Final = 18
NUMBER = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
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



def varint_len(x: int) -> int:
    n = 1
    while x >= 0x80:
        x >>= 7
        n += 1
    return n


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



# ---------------------------------------------------------------------------- state


Value = tuple[int, int]
ZERO: Final[Value] = (0, 0)


@dataclass(slots=True)
class State:
    """The prediction state both sides keep while walking the frames."""

    ctx_num: dict[tuple[int, int], Value] = field(default_factory=dict)
    glob_num: dict[int, Value] = field(default_factory=dict)
    ctx_str: dict[tuple[int, int], bytes] = field(default_factory=dict)
    ctx_skel: dict[int, int] = field(default_factory=dict)

    def reference(self, pred: int, ctx: int, path: int, nxt: int, frame_prev: Value | None, recv_ms: int) -> Value:
        if pred == PZERO:
            return ZERO
        if pred == P_GLOBAL:
            return self.glob_num.get(path, ZERO)
        if pred == P_RECV_MS:
            return (recv_ms, 0)
        if pred == P_FRAME and frame_prev is not None:
            return frame_prev
        if pred == P_NEXT and nxt >= 0:
            got = self.ctx_num.get((ctx, nxt))
            if got is not None:
                return got
        got = self.ctx_num.get((ctx, path))
        return got if got is not None else self.glob_num.get(path, ZERO)

    def update(self, ctx: int, path: int, value: Value) -> None:
        self.ctx_num[(ctx, path)] = value
        self.glob_num[path] = value

