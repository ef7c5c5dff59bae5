"""What the collector's quarantine holds, as table keys the reconciliation can match
against the simulator's send log (``loadtest.reconcile``).

A row that was sent and is not in QuestDB is *quarantined*, not lost, when the
quarantine (``<journal>/quarantine/``, ``tickarchive.ingest.quarantine``) lists it:

* ``malformed:<kind>`` and ``unencodable:<table>``: the item's bytes are the raw frames
  (replay lines); their keys are read loosely from the JSON (a frame the venue's parser
  refused still names its instrument and timestamp);
* ``rejected:<table>``: the ILP rows QuestDB refused (``meta.rows``, the first 100) give
  exact keys; past 100 rows the item's frames stand for the rest;
* ``journal_damage``: the damaged bytes no longer parse; the harness saved the records it
  corrupted, intact, before it flipped their bytes (``CorruptedRecord``), and a damaged
  region stands for every such record it overlaps or whose seq it lists as lost.

Keys: ``(table, instrument, ts_us, change_id, trade_id)`` with the columns of the table's
identity that the reconciliation matches on (quotes, index ticks: instrument/index and
ts; book changes: + change_id; trades: instrument and trade_id).
"""

from __future__ import annotations

import base64
import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from tickarchive.loadtest.journal_files import QuarantineItem, quarantine_blob, quarantine_items, replay_frames

Key = tuple[str, str, int | None, int | None, str | None]
"""(table, instrument or index name, ts_us, change_id, trade_id)."""
CSV_COLUMNS: Final = ("table", "instrument", "ts_us", "change_id", "trade_id", "reason", "item")
_ROWS_IN_META: Final = 100
_TAG_INSTRUMENT: Final = re.compile(rb",(?:instrument|index_name)=((?:[^,\\ ]|\\.)*)")
_CHANGE_ID: Final = re.compile(rb"[ ,]change_id=(-?\d+)i")
_TRADE_ID: Final = re.compile(rb'[ ,]trade_id="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class CorruptedRecord:
    """A journal record the harness damaged, as it was before (``loadtest.chaos_journal``)."""

    segment: str
    offset: int
    size: int
    seq: int
    what: str
    """``length`` or ``payload``: the field whose bytes were flipped."""
    keys: tuple[Key, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment, "offset": self.offset, "size": self.size, "seq": self.seq,
            "what": self.what, "keys": [list(k) for k in self.keys],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CorruptedRecord:
        keys = tuple((str(k[0]), str(k[1]), k[2], k[3], k[4]) for k in d["keys"])
        return cls(str(d["segment"]), int(d["offset"]), int(d["size"]), int(d["seq"]), str(d["what"]), keys)


@dataclass(slots=True)
class QuarantineReport:
    items: Counter[str] = field(default_factory=Counter)
    """Items by reason (the quarantine's index)."""
    keys: list[tuple[Key, str, int]] = field(default_factory=list)
    """(key, reason, item n) of every row the items stand for."""
    unresolved: list[str] = field(default_factory=list)
    """Rejected or unencodable items whose rows could not be told (bytes not kept). (A
    malformed frame without a readable key is not a row: it is not listed here.)"""


def frame_keys(frame: bytes) -> list[Key]:
    """The keys of the market rows a Deribit notification carries, read loosely (no
    validation: a frame the parser refused still names what it was about)."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return []
    params = msg.get("params") if isinstance(msg, dict) else None
    if not isinstance(params, dict):
        return []
    channel = params.get("channel")
    data = params.get("data")
    if not isinstance(channel, str):
        return []
    family = channel.split(".", 1)[0]
    out: list[Key] = []
    items = data if isinstance(data, list) else [data]
    for d in items:
        if not isinstance(d, dict):
            continue
        ts = d.get("timestamp")
        ts_us = ts * 1000 if isinstance(ts, int) else None
        name = d.get("instrument_name")
        if family == "ticker" and isinstance(name, str):
            out.append(("quotes", name, ts_us, None, None))
        elif family == "book" and isinstance(name, str):
            cid = d.get("change_id")
            out.append(("book_changes", name, ts_us, cid if isinstance(cid, int) else None, None))
        elif family == "trades" and isinstance(name, str):
            out.append(("trades", name, ts_us, None, str(d.get("trade_id"))))
        elif family == "deribit_price_index":
            idx = d.get("index_name")
            if isinstance(idx, str):
                out.append(("index_ticks", idx, ts_us, None, None))
    return out


def ilp_row_key(row: bytes) -> Key | None:
    """The key of one ILP row (``table,instrument=...,... fields ts``), or None."""
    body = row.rstrip(b"\n")
    i = 0
    while i < len(body) and body[i] not in b", ":
        i += 2 if body[i] == 0x5C else 1
    table = body[:i].replace(b"\\", b"").decode("utf-8", "replace")
    m = _TAG_INSTRUMENT.search(body)
    if not m or b" " not in body:
        return None
    instrument = re.sub(rb"\\(.)", rb"\1", m.group(1)).decode("utf-8", "replace")
    ts_text = body.rsplit(b" ", 1)[1]
    unit = ts_text[-1:]
    digits = ts_text[:-1] if unit in (b"t", b"n", b"m", b"u") else ts_text
    try:
        ts = int(digits)
    except ValueError:
        return None
    ts_us = ts // 1000 if unit in (b"n", b"") else ts * 1000 if unit == b"m" else ts
    change = _CHANGE_ID.search(body)
    trade = _TRADE_ID.search(body)
    return (
        table,
        instrument,
        ts_us,
        int(change.group(1)) if change else None,
        trade.group(1).decode("utf-8", "replace") if trade else None,
    )


def read_quarantine(journal_dir: Path, corrupted: Sequence[CorruptedRecord] = ()) -> QuarantineReport:
    """Every item of the journal's quarantine, by reason, and the keys it stands for."""
    rep = QuarantineReport()
    for item in quarantine_items(journal_dir):
        rep.items[item.reason] += 1
        keys = list(_item_keys(journal_dir, item, corrupted))
        if not keys and item.reason.startswith(("rejected:", "unencodable:")):  # rows, by definition
            rep.unresolved.append(f"#{item.n} {item.reason}: {item.detail[:160]}")
        rep.keys.extend((k, item.reason, item.n) for k in keys)
    return rep


def _item_keys(journal_dir: Path, item: QuarantineItem, corrupted: Sequence[CorruptedRecord]) -> Iterable[Key]:
    if item.reason == "journal_damage":
        seg = str(item.meta.get("segment", ""))
        off = int(item.meta.get("offset", -1))
        lo, hi = item.seqs if item.seqs else (None, None)
        for c in corrupted:
            overlaps = c.segment == seg and off <= c.offset < off + max(item.size, 1)
            listed = lo is not None and hi is not None and lo <= c.seq <= hi
            if overlaps or listed:
                yield from c.keys
        return
    blob = quarantine_blob(journal_dir, item)
    rows = item.meta.get("rows") if item.reason.startswith("rejected:") else None
    if isinstance(rows, list) and rows:
        for r in rows:
            try:
                k = ilp_row_key(base64.b64decode(r))
            except ValueError:
                k = None
            if k is not None:
                yield k
        if len(rows) < _ROWS_IN_META:
            return
    if blob is not None:
        for frame in replay_frames(blob):
            yield from frame_keys(frame)


def write_keys_csv(path: Path, report: QuarantineReport) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for (table, inst, ts, cid, tid), reason, n in report.keys:
            w.writerow([table, inst, "" if ts is None else ts, "" if cid is None else cid, tid or "", reason, n])
