"""Reconciling a load run: what the simulator sent against what QuestDB holds.

Pure over files: the simulator's send-log export (``<dir>/<table>.parquet``), key
columns exported from QuestDB as CSV (``<dir>/<table>.csv``, timestamps as integer
microseconds), the trade history and the gaps table. DuckDB anti-joins them on disk, so
tens of millions of keys never become Python objects.

Windows: a sent row counts when its ``wall_us`` is at most ``cutoff_us`` (after that the
collector was being stopped); a stored row counts as *extra* (a duplicate beyond the sent
keys) only when its ``ts_us`` is at most ``extra_cutoff_us`` (rows sent just after the
cutoff are legitimately stored and missing from the window). Trades are reconciled
against the simulator's complete trade history from ``start_us`` on (that is where the
collector was subscribed): a trade the collector never received (disconnected, silenced)
must have been backfilled.

A missing row (sent, not stored) is *quarantined* when the collector's quarantine lists
it (``quarantined.csv``, written by the harness from ``loadtest.quarantine_keys``): it was
set aside, kept and counted (a frame no parser reads, a row QuestDB refuses, a value the
encoder cannot write, a damaged journal record). Otherwise it is *covered* when a gap row
of its instrument (or ``*``) spans its exchange timestamp (``GAP_SLACK_US`` either side):
the collector reported the window. ``lost`` below counts only the rest: the real losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import duckdb

from tickarchive.loadtest.errors import ReconcileError

GAP_SLACK_US: Final = 50_000


@dataclass(frozen=True, slots=True)
class TableCount:
    table: str
    sent: int
    """Rows (book: level rows) the simulator wrote to the collector's sockets in the window."""
    stored: int
    """Rows of the table in QuestDB (whole run)."""
    lost: int
    """Sent keys not in QuestDB, not quarantined and not covered by a gap."""
    lost_in_gaps: int
    """Sent keys not in QuestDB, inside a reported gap."""
    duplicates: int
    """QuestDB keys (up to the extra cutoff) that the simulator never sent."""
    lost_sample: tuple[str, ...] = ()
    quarantined: int = 0
    """Sent keys not in QuestDB that the collector's quarantine lists (set aside, kept)."""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    tables: tuple[TableCount, ...]
    trades_backfilled: int = 0
    uncovered_disconnects: tuple[str, ...] = field(default_factory=tuple)
    """Simulator connection closes (mid-run) with no gap row starting near them."""

    @property
    def lost(self) -> int:
        return sum(t.lost for t in self.tables)

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables)

    @property
    def duplicates(self) -> int:
        return sum(t.duplicates for t in self.tables)

    def by_table(self) -> dict[str, TableCount]:
        return {t.table: t for t in self.tables}


@dataclass(frozen=True, slots=True)
class KeySpec:
    """How one table is matched: key columns in the send log and in the stored CSV."""

    table: str
    sent_keys: tuple[str, ...]
    stored_keys: tuple[str, ...]
    instrument_col: str = "instrument"
    rows_expr: str = "1"
    """Rows a send-log entry stands for (``n_rows`` for book messages)."""


SPECS: Final = (
    KeySpec("quotes", ("instrument", "ts_us"), ("instrument", "ts_us")),
    KeySpec(
        "book_changes",
        ("instrument", "ts_us", "change_id"),
        ("instrument", "ts_us", "change_id"),
        rows_expr="n_rows",
    ),
    KeySpec("index_ticks", ("index_name", "ts_us"), ("index_name", "ts_us"), instrument_col="index_name"),
)


def _q(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _csv(path: Path) -> str:
    return f"read_csv({_q(path)}, header=true, auto_detect=true)"


def reconcile(
    sendlog_dir: Path,
    stored_dir: Path,
    cutoff_us: int,
    extra_cutoff_us: int,
    start_us: int,
    specs: Sequence[KeySpec] = SPECS,
) -> Reconciliation:
    """Reconcile every table of ``specs`` plus trades (if ``stored_dir/trades.csv`` and
    ``stored_dir/history.csv`` exist). ``stored_dir`` also holds ``gaps.csv``
    (``ts_us, end_us, instrument, kind``), optionally ``quarantined.csv``
    (``loadtest.quarantine_keys.CSV_COLUMNS``) and, for each table, ``<table>_count.txt``
    (QuestDB's row count; else the CSV's row count is used)."""
    con = duckdb.connect()
    try:
        qk = stored_dir / "quarantined.csv"
        if qk.exists():
            con.execute(
                "CREATE TABLE qkeys AS SELECT CAST(\"table\" AS VARCHAR) qt, CAST(instrument AS VARCHAR) qi, "
                "TRY_CAST(NULLIF(ts_us, '') AS BIGINT) qts, TRY_CAST(NULLIF(change_id, '') AS BIGINT) qc, "
                f"NULLIF(trade_id, '') qtid FROM read_csv({_q(qk)}, header=true, all_varchar=true)"
            )
        else:
            con.execute("CREATE TABLE qkeys (qt VARCHAR, qi VARCHAR, qts BIGINT, qc BIGINT, qtid VARCHAR)")
        gaps = stored_dir / "gaps.csv"
        if gaps.exists():
            con.execute(
                f"CREATE TABLE gaps AS SELECT CAST(ts_us AS BIGINT) g0, CAST(end_us AS BIGINT) g1, "
                f"CAST(instrument AS VARCHAR) gi FROM {_csv(gaps)}"
            )
        else:
            con.execute("CREATE TABLE gaps (g0 BIGINT, g1 BIGINT, gi VARCHAR)")
        out: list[TableCount] = []
        for spec in specs:
            sent_path = sendlog_dir / f"{spec.table}.parquet"
            stored_path = stored_dir / f"{spec.table}.csv"
            if not sent_path.exists() or not stored_path.exists():
                raise ReconcileError(f"reconcile {spec.table}: missing {sent_path} or {stored_path}")
            out.append(_table(con, spec, sent_path, stored_path, stored_dir, cutoff_us, extra_cutoff_us))
        backfilled = 0
        trades = stored_dir / "trades.csv"
        history = stored_dir / "history.csv"
        if trades.exists() and history.exists():
            tc, backfilled = _trades(con, trades, history, stored_dir, start_us, cutoff_us, extra_cutoff_us)
            out.append(tc)
        return Reconciliation(tuple(out), backfilled)
    except duckdb.Error as exc:
        raise ReconcileError(f"reconcile: {exc}") from exc
    finally:
        con.close()


def _stored_count(stored_dir: Path, table: str, fallback: int) -> int:
    p = stored_dir / f"{table}_count.txt"
    return int(p.read_text().strip()) if p.exists() else fallback


def _covered_sql(alias: str, inst: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM gaps WHERE (gaps.gi = {alias}.{inst} OR gaps.gi = '*') "
        f"AND {alias}.ts_us >= gaps.g0 - {GAP_SLACK_US} "
        f"AND (gaps.g1 IS NULL OR {alias}.ts_us <= gaps.g1 + {GAP_SLACK_US}))"
    )


def _quarantined_sql(alias: str, spec: KeySpec) -> str:
    change = f" AND (qkeys.qc IS NULL OR qkeys.qc = {alias}.change_id)" if "change_id" in spec.sent_keys else ""
    return (
        f"EXISTS (SELECT 1 FROM qkeys WHERE qkeys.qt = '{spec.table}' AND qkeys.qi = {alias}.{spec.instrument_col} "
        f"AND qkeys.qts = {alias}.ts_us{change})"
    )


def _table(
    con: duckdb.DuckDBPyConnection,
    spec: KeySpec,
    sent_path: Path,
    stored_path: Path,
    stored_dir: Path,
    cutoff_us: int,
    extra_cutoff_us: int,
) -> TableCount:
    t = spec.table
    sk = ", ".join(spec.sent_keys)
    keys_cast = ", ".join(
        f"CAST({c} AS BIGINT) {c}" if c != spec.instrument_col else f"CAST({c} AS VARCHAR) {c}"
        for c in spec.stored_keys
    )
    con.execute(
        f"CREATE OR REPLACE TABLE sent AS SELECT DISTINCT {sk}, {spec.rows_expr} AS n "
        f"FROM read_parquet({_q(sent_path)}) "
        f"WHERE status = 'sent' AND wall_us <= {int(cutoff_us)} AND {spec.rows_expr} > 0"
    )
    con.execute(f"CREATE OR REPLACE TABLE sent_any AS SELECT DISTINCT {sk} FROM read_parquet({_q(sent_path)})")
    con.execute(f"CREATE OR REPLACE TABLE stored AS SELECT DISTINCT {keys_cast} FROM {_csv(stored_path)}")
    on = " AND ".join(f"s.{a} = q.{b}" for a, b in zip(spec.sent_keys, spec.stored_keys, strict=True))
    con.execute(f"CREATE OR REPLACE TABLE missing AS SELECT s.* FROM sent s ANTI JOIN stored q ON {on}")
    sent_rows = _one(con, "SELECT coalesce(sum(n), 0) FROM sent")
    inst = spec.instrument_col
    quarantined = _one(con, f"SELECT count(*) FROM missing m WHERE {_quarantined_sql('m', spec)}")
    con.execute(f"CREATE OR REPLACE TABLE missing AS SELECT * FROM missing m WHERE NOT {_quarantined_sql('m', spec)}")
    lost_in_gaps = _one(con, f"SELECT count(*) FROM missing m WHERE {_covered_sql('m', inst)}")
    lost = _one(con, "SELECT count(*) FROM missing") - lost_in_gaps
    sample = tuple(
        f"{r[0]} ts_us={r[1]}"
        for r in con.execute(
            f"SELECT m.{inst}, m.ts_us FROM missing m WHERE NOT {_covered_sql('m', inst)} ORDER BY ts_us LIMIT 5"
        ).fetchall()
    )
    on_any = " AND ".join(f"s.{a} = q.{b}" for a, b in zip(spec.sent_keys, spec.stored_keys, strict=True))
    extra = _one(
        con,
        f"SELECT count(*) FROM (SELECT * FROM stored WHERE ts_us <= {int(extra_cutoff_us)}) q "
        f"ANTI JOIN sent_any s ON {on_any}",
    )
    stored_rows = _stored_count(stored_dir, t, _one(con, "SELECT count(*) FROM stored"))
    return TableCount(t, sent_rows, stored_rows, lost, lost_in_gaps, extra, sample, quarantined)


def _trades(
    con: duckdb.DuckDBPyConnection,
    trades: Path,
    history: Path,
    stored_dir: Path,
    start_us: int,
    cutoff_us: int,
    extra_cutoff_us: int,
) -> tuple[TableCount, int]:
    """Trades against the simulator's history (every trade it generated), not the send log."""
    con.execute(
        f"CREATE OR REPLACE TABLE hist AS SELECT DISTINCT CAST(instrument AS VARCHAR) instrument, "
        f"CAST(trade_id AS VARCHAR) trade_id, CAST(ts_us AS BIGINT) ts_us FROM {_csv(history)}"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE tq AS SELECT DISTINCT CAST(instrument AS VARCHAR) instrument, "
        f"CAST(trade_id AS VARCHAR) trade_id, CAST(ts_us AS BIGINT) ts_us, CAST(source AS VARCHAR) source "
        f"FROM {_csv(trades)}"
    )
    window = f"ts_us >= {int(start_us)} AND ts_us <= {int(cutoff_us)}"
    con.execute(
        f"CREATE OR REPLACE TABLE tmissing AS SELECT h.* FROM (SELECT * FROM hist WHERE {window}) h "
        f"ANTI JOIN tq q ON h.instrument = q.instrument AND h.trade_id = q.trade_id"
    )
    sent = _one(con, f"SELECT count(*) FROM hist WHERE {window}")
    tq_sql = (
        "EXISTS (SELECT 1 FROM qkeys WHERE qkeys.qt = 'trades' AND qkeys.qi = m.instrument "
        "AND qkeys.qtid = m.trade_id)"
    )
    quarantined = _one(con, f"SELECT count(*) FROM tmissing m WHERE {tq_sql}")
    con.execute(f"CREATE OR REPLACE TABLE tmissing AS SELECT * FROM tmissing m WHERE NOT {tq_sql}")
    lost = _one(con, "SELECT count(*) FROM tmissing")
    sample = tuple(
        f"{r[0]} {r[1]} ts_us={r[2]}"
        for r in con.execute("SELECT instrument, trade_id, ts_us FROM tmissing ORDER BY ts_us LIMIT 5").fetchall()
    )
    extra = _one(
        con,
        f"SELECT count(*) FROM (SELECT * FROM tq WHERE ts_us >= {int(start_us)} AND ts_us <= {int(extra_cutoff_us)}) q "
        f"ANTI JOIN hist h ON h.instrument = q.instrument AND h.trade_id = q.trade_id",
    )
    backfilled = _one(con, "SELECT count(*) FROM tq WHERE source = 'backfill'")
    stored = _stored_count(stored_dir, "trades", _one(con, "SELECT count(*) FROM tq"))
    # a trade is never excused by a gap: gaps are backfilled from the history
    return TableCount("trades", sent, stored, lost, 0, extra, sample, quarantined), backfilled


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def uncovered_disconnects(
    closes_us: Sequence[int], gaps: Sequence[tuple[int, int | None]], slack_us: int = 5_000_000
) -> list[int]:
    """Connection closes that no gap window ``(start, end or None = open)`` spans
    (``slack_us`` either side: a disconnect gap starts at the last frame, a little before
    the close the simulator records)."""
    out: list[int] = []
    for c in closes_us:
        if not any(g0 - slack_us <= c and (g1 is None or c <= g1 + slack_us) for g0, g1 in gaps):
            out.append(c)
    return out
