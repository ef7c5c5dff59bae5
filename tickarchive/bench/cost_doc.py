"""What ``tickarchive bench cost`` prints, and docs/cost-model.md written from its result
(``--markdown``): the measured bytes, the assumptions (``cost_model.ASSUMPTIONS``) and
the five-year projection, in one document that cannot drift from the model."""

from __future__ import annotations

import datetime as dt

from tickarchive.bench import cost_model as cm
from tickarchive.bench.cost import TABLES, CostResult
from tickarchive.bench.cost_model import ASSUMPTIONS, Assumptions


def summary(r: CostResult, a: Assumptions = ASSUMPTIONS) -> str:
    j = r.as_json(a)
    d = j["details"]
    lines = [f"data: {r.data}", f"frames: {r.frames:,}; rows: " + ", ".join(f"{k} {v:,}" for k, v in r.rows.items())]
    lines.append("bytes per row      " + "".join(f"{t.name:>14}" for t in TABLES))
    for label, values in (
        ("QuestDB (disk)", j["questdb_bytes_per_row"]),
        ("TimescaleDB before", d["timescaledb_bytes_per_row_before"]),
        ("TimescaleDB after", d["timescaledb_bytes_per_row"]),
        ("Parquet archive", j["parquet_bytes_per_row"]),
    ):
        lines.append(f"{label:<19}" + "".join(f"{values.get(t.name, 0):>14.1f}" for t in TABLES))
    ratio = j["timescaledb_compression_ratio"]
    lines.append("TimescaleDB ratio  " + "".join(f"{ratio.get(t.name, 0):>13.2f}x" for t in TABLES))
    lines.append(
        f"journal: {d['journal_local_bytes_per_frame']:.1f} B/frame local, archive "
        f"{j['journal_archive_bytes_per_frame']:.2f} B/frame (zstd-9 of the same segments: "
        f"{d['journal_zstd9_bytes_per_frame']:.2f}), archived in {d['journal_archive_s']:.1f} s"
    )
    lines.append(
        f"replay from the journal archive: {r.replay_frames:,} frames in {r.replay_cpu_s:.2f} CPU-s = "
        f"{j['replay_frames_per_s']:,} frames/s per core (wall {r.replay_wall_s:.1f} s, "
        f"max RSS {r.replay_rss_mb:.0f} MB); beyond start-up ({r.replay_startup_cpu_s:.2f} CPU-s, a one-frame "
        f"replay): {j['replay_frames_per_s_beyond_startup']:,} frames/s per core"
    )
    lines.append("archive export rows/s: " + ", ".join(f"{k} {v:,}" for k, v in d["export_rows_per_s"].items()))
    if d["restore_rows_per_s"]:
        lines.append("archive restore rows/s: " + ", ".join(f"{k} {v:,}" for k, v in d["restore_rows_per_s"].items()))
    usd = j["five_year_usd_per_month"]
    lines.append(
        f"five years, $/month at the end of year {a.years} (server ${a.server_usd_per_month:g} + B2): "
        + ", ".join(f"{k} ${v:,.0f}" for k, v in usd.items())
    )
    lines.append(f"load average during the run: {' / '.join(f'{x:.1f}' for x in r.load_avg)}")
    lines.append(
        f"measured on {r.spec.hours:g} simulated hour(s) (TimescaleDB on {r.spec.warm_instruments} of "
        f"{r.spec.instruments} instruments); the dollars extrapolate the bytes per row to the assumed daily volumes"
    )
    return "\n".join(lines)


def render(r: CostResult, a: Assumptions = ASSUMPTIONS, when: dt.date | None = None) -> str:
    j = r.as_json(a)
    d = j["details"]
    m = r.measured()
    when = when or dt.datetime.now(dt.UTC).date()
    ratio = j["timescaledb_compression_ratio"]
    mid = cm.project(a, a.scenario("mid"), m)
    out: list[str] = []
    w = out.append
    w("# Cost model\n")
    w(f"Bytes per tick in each tier, projected over {a.years} years against the budget of "
      f"**${a.budget_usd_per_month:g}/month** for the whole system (server + offsite storage). This file is written by "
      "`tickarchive bench cost --json cost.json --markdown docs/cost-model.md` "
      "(`tickarchive/bench/cost.py`, `cost_model.py`, `cost_doc.py`): every measured figure below comes from "
      "one run of it, every assumed one from `cost_model.ASSUMPTIONS`, the one place the model and the "
      "benchmark share. Change an assumption there and re-run.\n")
    w("## 1. Measured: bytes per row (or frame) in every tier\n")
    w(f"Run of {when.isoformat()}: {r.data}; {r.frames:,} frames journaled, load average "
      f"{' / '.join(f'{x:.1f}' for x in r.load_avg)} (other work was running on the 2-core machine).\n")
    w(f"What is measured and what is extrapolated: bytes per row (or frame) are measured on this run's "
      f"{r.spec.hours:g} simulated hour(s); sections 3 and 4 multiply them by the assumed daily volumes of "
      "section 2 (a run of a day, let alone five years, is not practical here). The TimescaleDB ratio is "
      f"measured on a sample ({r.spec.warm_instruments} of the {r.spec.instruments} instruments, every row of "
      "each); the rollover, the export and the restore handle every row, against the plain PostgreSQL "
      "dialect.\n")
    rows = []
    for t in TABLES:
        n = t.name
        rows.append([
            n,
            f"{r.rows.get(n, 0):,}",
            f"{j['questdb_bytes_per_row'].get(n, 0):.1f}",
            f"{d['timescaledb_bytes_per_row_before'].get(n, 0):.1f} → {d['timescaledb_bytes_per_row'].get(n, 0):.1f} "
            f"({ratio.get(n, 0):.1f}x)",
            f"{j['parquet_bytes_per_row'].get(n, 0):.1f}",
        ])
    w(cm._md(["table", "rows", "hot QuestDB, on disk", "warm TimescaleDB, before → after compression",
              "cold Parquet"], rows) + "\n")
    w(f"* **Raw journal**: {d['journal_local_bytes_per_frame']:.0f} bytes/frame on the server's disk; in the "
      f"**journal archive** {j['journal_archive_bytes_per_frame']:.2f} bytes/frame (the `.tjz` format, "
      f"[archive.md](archive.md#the-journal-archive-format); zstd-9 of the same segments, the format before it, "
      f"{d['journal_zstd9_bytes_per_frame']:.2f}); every file decoded and compared with its segment before upload.")
    w(f"* **Replay** from the journal archive (`tickarchive replay DAY/*.tjz --to DIR`, one process, start-up "
      f"included): **{j['replay_frames_per_s']:,} frames/s per core** ({r.replay_frames:,} frames in "
      f"{r.replay_cpu_s:.1f} CPU-s, max RSS {r.replay_rss_mb:.0f} MB); **"
      f"{j['replay_frames_per_s_beyond_startup']:,} frames/s per core beyond start-up**, the rate of a long "
      f"re-derivation (start-up: {r.replay_startup_cpu_s:.2f} CPU-s, measured as the same command on a one-frame "
      "input; a day of the mid scenario is 131 million frames).")
    w("* Archive export / restore rows/s: " + "; ".join(
        f"{k} {d['export_rows_per_s'].get(k, 0):,} / {d['restore_rows_per_s'].get(k, 0):,}"
        for k in d["export_rows_per_s"]) + ".")
    w("* QuestDB: the bytes of each table's partition directories per row, read after QuestDB stopped "
      "(while it writes a partition it holds a 16 MiB append page per column, which `table_partitions()`'s "
      "`diskSize` counts: a short run would cost hundreds of bytes per row more than a day; on close each "
      "column file is trimmed to its data, rounded to 4 KiB, which is still most of the small tables' "
      "figure here; WAL segments, purged once applied, are left out). "
      f"TimescaleDB: `hypertable_compression_stats` after loading every row of {r.spec.warm_instruments} "
      "instruments (" + ", ".join(f"{k} {v.rows:,} rows" for k, v in r.timescaledb_before.items()) + ") with "
      "the rollover's loader and compressing each day as the rollover does, on the PGlite TimescaleDB test "
      "server (WASM PostgreSQL 17 + TimescaleDB, one backend, in memory: the only TimescaleDB installable "
      "here, and too small for a whole hour of the chain; compression works per instrument segment, so the "
      "ratio of a sample is the chain's; the speed is not production's). Parquet: the archive's files for the "
      "month, exported from the warm store after the rollover.\n")
    w("## 2. Assumed\n")
    arows = [["instruments", f"{a.instruments:,}", a.instruments_source]]
    for s in a.scenarios:
        arows.append([f"ticker frames per instrument per second, {s.name}", f"{s.ticker_frames_per_instrument_s:g}",
                      s.source])
    arows += [
        ["book messages per ticker frame", f"{a.book_messages_per_ticker:g}", a.book_messages_source],
        ["book rows per book message", f"{a.book_rows_per_message:g}", a.book_rows_source],
        ["trades per day", f"{a.trades_per_day:,}", "assumed; negligible next to quotes either way"],
        ["index ticks per day", f"{a.index_ticks_per_day:,}", "one `deribit_price_index` tick per second"],
        ["B2 price", f"${a.b2_usd_per_tb_month:g} per TB-month", a.b2_source],
        ["server", f"${a.server_usd_per_month:g}/month, {a.server_disk_tb:g} TB usable disk",
         f"{a.server_description}; {a.server_source}"],
        ["retention on the server", f"journal {a.journal_local_days} days, hot {a.hot_retention_days} days, "
         f"warm {a.warm_retention_months} months", "`journal.retain_days`, `lifecycle.hot_retention_days`, "
         "`lifecycle.warm_retention_months`"],
    ]
    w(cm._md(["quantity", "value", "source"], arows) + "\n")
    w("Rates per day:\n")
    w(cm.volume_table(a, m) + "\n")
    w(f"## 3. {a.years} years: the cold tier on B2 and the whole bill\n")
    w("Cold storage (Parquet lake + journal archive) only grows; the monthly bill at the end of each year is "
      "the server plus B2's price of everything stored by then:\n")
    w(cm.money_table(a, m) + "\n")
    w("## 4. The server's disk\n")
    w("Steady state of the local tiers (they hold a moving window):\n")
    w(cm.disk_table(a, m) + "\n")
    w(f"## 5. Against ${a.budget_usd_per_month:g}/month\n")
    for s in a.scenarios:
        p = cm.project(a, s, m)
        total = p.usd_per_month_by_year[-1]
        verdict = "fits" if total <= a.budget_usd_per_month and p.disk_fits else "does not fit"
        w(f"* **{s.name}** ({s.ticker_frames_per_instrument_s:g} ticker/s per instrument): "
          f"${total:,.0f}/month in year {a.years} (B2 ${p.b2_usd_by_year[-1]:,.0f} for "
          f"{p.cold_tb_by_year[-1]:.1f} TB) — {verdict}"
          + ("" if p.disk_fits else
             f"; the server's disk does not hold the local tiers ({sum(p.disk_tb.values()):.1f} TB)")
          + ".")
    share = mid.journal_archive_bytes_per_day / mid.cold_bytes_per_day if mid.cold_bytes_per_day else 0.0
    w("")
    w(f"At mid activity the journal archive is {share:.0%} of the cold bytes. The levers, in order of least "
      "loss: keep the journal archive for a bounded time once the month's Parquet verified (`tickarchive "
      "archive retention`; the cost: no re-derivation with a future parser for older months), fewer warm "
      "months on the server (`lifecycle.warm_retention_months`: older months stay queryable from the lake), "
      "books only for liquid instruments (`deribit.book`), a cheaper object store.")
    w("")
    return "\n".join(out)
