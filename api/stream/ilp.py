"""QuestDB ILP lines back into rows (pure): what the collector's publisher sends is the
exact request body QuestDB acknowledged (``tickarchive.store.ilp``, protocol version 2).

A line is ``table,sym=value,... field=value,... <timestamp>t\\n``: symbols with ``\\``
escaping ``,``, `` `` and ``=``; fields are a binary double (``==`` + type byte 16 + 8
bytes little-endian), a string in double quotes (``\\"`` and ``\\\\`` escaped), an integer
(``123i``), a timestamp (``123t`` µs, ``123n`` ns), a boolean (``t``/``f``) or a text
double (protocol version 1); the designated timestamp ends the line (``t`` µs, ``n`` or no
suffix ns). Binary doubles may
contain any byte, so the body is scanned field by field, never split on newlines.

``decode(body)`` returns, per table, the rows as tuples in the order of the table's
columns (``tickarchive.tables``); absent fields are ``None``; ``ts`` is the designated
timestamp in µs. Anything malformed raises ``IlpDecodeError``.

Two paths, one result: the native ``IlpDecoder`` (``native/src/ilp_decode.rs``, about ten
times faster) when the extension is built, else ``decode_py``; ``tests/api/test_stream_ilp.py``
holds them equal on encoded rows of every table and on damaged bodies.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from tickarchive import native_ext
from tickarchive.api.errors import ApiError
from tickarchive.tables import BY_NAME, Table

_DOUBLE = struct.Struct("<d")
_BINARY_DOUBLE = 16


class IlpDecodeError(ApiError):
    """The body is not ILP as ``tickarchive.store.ilp`` writes it."""


_INDEX: dict[str, dict[str, int]] = {t.name: {c: i for i, c in enumerate(t.column_names)} for t in BY_NAME.values()}


def _unescape_symbol(raw: bytes) -> str:
    if b"\\" not in raw:
        return raw.decode()
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):  # backslash
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return out.decode()


def _scan_symbol(body: bytes, pos: int, stops: bytes) -> int:
    """Index of the first unescaped byte of ``stops`` at or after ``pos``."""
    n = len(body)
    while pos < n:
        c = body[pos]
        if c == 0x5C:
            pos += 2
            continue
        if c in stops:
            return pos
        pos += 1
    raise IlpDecodeError("line ends inside the symbol set")


def _number(text: bytes) -> Any:
    last = text[-1:]
    if last == b"i":
        return int(text[:-1])
    if last == b"t":
        return int(text[:-1])
    if last == b"n":
        return int(text[:-1]) // 1000
    return float(text)


def _designated(text: bytes) -> int:
    """The line's timestamp in µs: ``123t`` µs, ``123n`` ns, or (no suffix) ns."""
    if text[-1:] in (b"t", b"n"):
        v = _number(text)
        assert isinstance(v, int)
        return v
    return int(text) // 1000


def decode(body: bytes) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per table of an ILP body (see the module docstring)."""
    if _NATIVE is not None:
        try:
            rows: dict[str, list[tuple[Any, ...]]] = _NATIVE.decode(body)
        except ValueError as exc:
            raise IlpDecodeError(str(exc)) from None
        return rows
    return decode_py(body)


def decode_py(body: bytes) -> dict[str, list[tuple[Any, ...]]]:
    """The pure-Python path of ``decode``."""
    try:
        return _decode(body)
    except (IndexError, ValueError, struct.error) as exc:  # a cut or damaged body
        raise IlpDecodeError(f"malformed ILP ({type(exc).__name__}: {exc})") from None


def _decode(body: bytes) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    n = len(body)
    pos = 0
    find = body.find
    while pos < n:
        # measurement (table name): up to ',' (symbols follow) or ' ' (fields follow)
        end = _scan_symbol(body, pos, b", ")
        table = body[pos:end].decode()
        index = _INDEX.get(table)
        if index is None:
            raise IlpDecodeError(f"unknown table {table[:40]!r}")
        row: list[Any] = [None] * len(index)
        pos = end
        if body[pos] == 0x2C:  # symbols
            while True:
                eq = _scan_symbol(body, pos + 1, b"=")
                stop = _scan_symbol(body, eq + 1, b", ")
                col = index.get(_unescape_symbol(body[pos + 1 : eq]))
                if col is not None:
                    row[col] = _unescape_symbol(body[eq + 1 : stop])
                pos = stop
                if body[pos] == 0x20:
                    break
        pos += 1  # the space before the fields
        while True:
            eq = find(b"=", pos)
            if eq < 0:
                raise IlpDecodeError("field without '='")
            col = index.get(body[pos:eq].decode())
            v = eq + 1
            c = body[v]
            if c == 0x3D:  # '=': binary value
                if body[v + 1] != _BINARY_DOUBLE:
                    raise IlpDecodeError(f"binary field type {body[v + 1]} is not a double")
                value: Any = _DOUBLE.unpack_from(body, v + 2)[0]
                stop = v + 10
            elif c == 0x22:  # '"': string
                j = v + 1
                while True:
                    q = find(b'"', j)
                    if q < 0:
                        raise IlpDecodeError("unterminated string")
                    k = q - 1
                    slashes = 0
                    while body[k] == 0x5C:
                        slashes += 1
                        k -= 1
                    if slashes % 2 == 0:
                        break
                    j = q + 1
                raw = body[v + 1 : q]
                value = (raw.replace(b'\\"', b'"').replace(b"\\\\", b"\\") if b"\\" in raw else raw).decode()
                stop = q + 1
            else:
                comma = find(b",", v)
                space = find(b" ", v)
                stop = space if comma < 0 or (0 <= space < comma) else comma
                if stop < 0:
                    raise IlpDecodeError("field runs past the end of the body")
                text = body[v:stop]
                if text in (b"t", b"T", b"true", b"True"):
                    value = True
                elif text in (b"f", b"F", b"false", b"False"):
                    value = False
                else:
                    value = _number(text)
            if col is not None:
                row[col] = value
            pos = stop
            if body[pos] == 0x20:
                break
            pos += 1
        nl = find(b"\n", pos + 1)
        if nl < 0:
            raise IlpDecodeError("line without a newline")
        row[index["ts"]] = _designated(body[pos + 1 : nl])
        out.setdefault(table, []).append(tuple(row))
        pos = nl + 1
    return out


def _native_decoder() -> Any | None:
    cls = native_ext.enabled("IlpDecoder")
    if cls is None:
        return None
    return cls({name: (idx, idx["ts"]) for name, idx in _INDEX.items()})


_NATIVE = _native_decoder()


def columns_of(table: str) -> Sequence[str]:
    return BY_NAME[table].column_names


def table_of(name: str) -> Table:
    return BY_NAME[name]
