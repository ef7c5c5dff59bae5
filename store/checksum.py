"""Content checksums of table rows: identical for identical rows, independent of row order.

Computed in Python over Arrow batches, so the hot side (QuestDB, streamed out for the
load) and the warm side (read back from PostgreSQL/TimescaleDB) go through the very same
code. Definition (stable across versions; it only uses numpy integer arithmetic and
BLAKE2b):

* every column value becomes a 64-bit word: timestamps their integer microseconds, doubles
  their IEEE-754 bit pattern, integers and booleans their value, strings the first 8 bytes
  of ``blake2b(utf8, digest_size=8)``; NULL becomes a fixed word (``NULL_WORD``);
* a row's hash folds the words of ALL its columns, in the table's column order (dedup
  key columns and values alike), with FNV-style multiply-xor and a final avalanche
  (``fmix64`` of MurmurHash3);
* a group's checksum is the pair (row count, sum of its row hashes mod 2**64). A sum is
  order-independent and *additive*: the checksum of a union of disjoint row sets is the
  sum of their checksums, and a duplicated row changes both the count and the sum.

``ChecksumAccumulator`` keeps one such pair per value of the table's ``segment_by``
column (per instrument), so a mismatch names the instrument.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickarchive.tables import ColumnType, Table

MASK64 = (1 << 64) - 1
NULL_WORD = np.uint64(0x9E3779B97F4A7C15)
_FNV_PRIME = np.uint64(0x100000001B3)
_SEED = np.uint64(0xCBF29CE484222325)
_C1 = np.uint64(0xFF51AFD7ED558CCD)
_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _S33)
    h = h * _C1
    h = h ^ (h >> _S33)
    h = h * _C2
    out: np.ndarray = h ^ (h >> _S33)
    return out


def string_word(value: str) -> int:
    """The 64-bit word of one string (BLAKE2b-64 of its UTF-8 bytes, little-endian)."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little")


def _string_words(array: pa.Array) -> np.ndarray:
    encoded = pc.dictionary_encode(array)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    dictionary = encoded.dictionary.to_pylist()
    table = np.fromiter((string_word(v) for v in dictionary), dtype=np.uint64, count=len(dictionary))
    indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    words = table[indices] if len(dictionary) else np.zeros(len(array), dtype=np.uint64)
    return np.where(encoded.indices.is_null().to_numpy(zero_copy_only=False), NULL_WORD, words)


def column_words(array: pa.Array, kind: ColumnType) -> np.ndarray:
    """One uint64 word per value of ``array`` (a column of type ``kind``)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    nulls = array.is_null().to_numpy(zero_copy_only=False)
    if kind in (ColumnType.SYMBOL, ColumnType.VARCHAR):
        return _string_words(array.cast(pa.string()))
    if kind is ColumnType.TIMESTAMP:
        values = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
    elif kind is ColumnType.DOUBLE:
        values = array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False).view(np.uint64)
    elif kind is ColumnType.BOOLEAN:
        values = array.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint64)
    else:
        values = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
    return np.where(nulls, NULL_WORD, values)


def row_hashes(table: Table, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """The 64-bit hash of every row of ``batch`` (columns looked up by name)."""
    h = np.full(batch.num_rows, _SEED, dtype=np.uint64)
    for i, col in enumerate(table.columns):
        words = column_words(batch.column(col.name), col.type)
        h = (h ^ (words + np.uint64(i + 1))) * _FNV_PRIME
        h = _fmix64(h)
    return h


@dataclass(frozen=True, slots=True)
class GroupSum:
    rows: int
    sum64: int

    def hex(self) -> str:
        return f"{self.sum64:016x}"


@dataclass(frozen=True, slots=True)
class Checksum:
    """Per-group (instrument) row counts and hash sums of one table's rows."""

    groups: Mapping[str, GroupSum]

    @property
    def rows(self) -> int:
        return sum(g.rows for g in self.groups.values())

    @property
    def sum64(self) -> int:
        return sum(g.sum64 for g in self.groups.values()) & MASK64

    def hex(self) -> str:
        """The whole table's checksum as 16 hex digits (what the rollover ledger stores)."""
        return f"{self.sum64:016x}"

    def differences(self, other: Checksum) -> list[str]:
        """Human-readable differences per group (empty when equal), self = hot, other = warm."""
        out = []
        for key in sorted(set(self.groups) | set(other.groups)):
            a = self.groups.get(key, GroupSum(0, 0))
            b = other.groups.get(key, GroupSum(0, 0))
            if a != b:
                out.append(f"{key}: hot {a.rows} rows/{a.hex()}, warm {b.rows} rows/{b.hex()}")
        return out


class ChecksumAccumulator:
    """Feed batches of one table, in any order and split; ``result()`` gives the checksum."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._rows: dict[str, int] = {}
        self._sums: dict[str, int] = {}

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        hashes = row_hashes(self.table, batch)
        seg = batch.column(self.table.segment_by)
        encoded = pc.dictionary_encode(seg.combine_chunks() if isinstance(seg, pa.ChunkedArray) else seg)
        keys = ["" if k is None else str(k) for k in encoded.dictionary.to_pylist()]
        idx = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        sums = np.zeros(max(len(keys), 1), dtype=np.uint64)
        np.add.at(sums, idx, hashes)
        counts = np.bincount(idx, minlength=len(keys))
        for i, key in enumerate(keys):
            if counts[i]:
                self._rows[key] = self._rows.get(key, 0) + int(counts[i])
                self._sums[key] = (self._sums.get(key, 0) + int(sums[i])) & MASK64

    def add_all(self, batches: Iterable[pa.RecordBatch | pa.Table]) -> None:
        for b in batches:
            self.add(b)

    def result(self) -> Checksum:
        return Checksum({k: GroupSum(self._rows[k], self._sums[k]) for k in sorted(self._rows)})


def checksum_of(table: Table, batches: Iterable[pa.RecordBatch | pa.Table]) -> Checksum:
    acc = ChecksumAccumulator(table)
    acc.add_all(batches)
    return acc.result()
