"""The rich tables a load run prints."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from tickarchive.loadtest.harness import Result


def render(r: Result) -> Group:
    t = Table(title=f"loadtest: {r.spec.rate:g}/s for {r.spec.duration_s:g} s, chaos {list(r.spec.chaos) or 'none'}")
    t.add_column("table")
    for c in ("sent", "stored", "lost", "lost in gaps", "quarantined", "duplicates"):
        t.add_column(c, justify="right")
    for tc in r.recon.tables:
        t.add_row(
            tc.table, f"{tc.sent:,}", f"{tc.stored:,}", str(tc.lost), str(tc.lost_in_gaps), str(tc.quarantined),
            str(tc.duplicates),
        )
    lat = r.latency_ms
    f = Table(show_header=False)
    f.add_column("figure")
    f.add_column("value", justify="right")
    f.add_row("write errors (failed flushes, retried)", str(r.write_errors))
    f.add_row("rate target / achieved (ticker+book frames/s)", f"{r.spec.rate:g} / {r.rate_achieved:,.0f}")
    f.add_row("rows acknowledged per s", f"{r.rows_per_s:,.0f}")
    f.add_row(
        "ack latency ms p50 / p95 / p99 / max (bucket bound)",
        f"{lat['p50']} / {lat['p95']} / {lat['p99']} / {lat['max']}",
    )
    f.add_row(
        "collector CPU % (mean, 100 = 1 core) / RSS MB (max)", f"{r.collector_cpu_pct:.1f} / {r.collector_rss_mb:.1f}"
    )
    f.add_row("simulator / QuestDB CPU % (mean, 100 = 1 core)", f"{r.sim_cpu_pct:.1f} / {r.questdb_cpu_pct:.1f}")
    bpr = "-" if r.bytes_per_row is None else f"{r.bytes_per_row:.1f}"
    f.add_row("QuestDB partition bytes per row / db dir bytes", f"{bpr} / {r.questdb_bytes or 0:,}")
    f.add_row(
        "reconnects / malformed frames / backfilled trades", f"{r.reconnects} / {r.malformed_frames} / {r.backfilled}"
    )
    f.add_row("gap rows / disconnects without a gap", f"{r.gap_rows} / {len(r.recon.uncovered_disconnects)}")
    f.add_row("collector starts", str(r.collector_starts))
    for reason in sorted(set(r.quarantined) | set(r.quarantined_counted)):
        f.add_row(
            f"quarantined {reason} (items listed / counted by the metric)",
            f"{r.quarantined.get(reason, 0)} / {r.quarantined_counted.get(reason, 0)}",
        )
    for line in r.quarantine_unresolved[:10]:
        f.add_row("quarantine item without readable rows", line)
    f.add_row("load average (1/5/15 min)", " / ".join(f"{x:.1f}" for x in r.load_avg))
    f.add_row("measured for", f"{r.duration_s:.1f} s")
    for line in r.chaos_log[:60]:
        f.add_row("chaos", line)
    for tc in r.recon.tables:
        for s in tc.lost_sample:
            f.add_row(f"lost {tc.table}", s)
    return Group(t, f)
