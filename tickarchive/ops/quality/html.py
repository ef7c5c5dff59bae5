"""The report's HTML page: one file, inline CSS, no scripts, PNGs next to it by name.

Figures carry ``data-*`` attributes (``data-check``/``data-count``, ``data-instrument``/
``data-pct``, ...) so that tools and tests can read them without scraping text.
"""

from __future__ import annotations

from html import escape

from tickarchive.ops.quality import plots
from tickarchive.ops.quality.model import CheckResult, QualityReport, iso_us

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fde0e0} .ok{color:#2ca02c} .bad{color:#d62728}
img{max-width:100%;border:1px solid #eee} h2{margin-top:1.6em}
"""


def _n(value: float | int | None, fmt: str = "{:,}") -> str:
    return "–" if value is None else fmt.format(value)


def _check_section(c: CheckResult) -> str:
    cls = "bad" if c.count else "ok"
    out = [
        f'<h3 id="check-{c.name}" data-check="{c.name}" data-count="{c.count}">{escape(c.name)}: '
        f'<span class="{cls}">{c.count:,} flagged</span></h3>',
        f"<p>{escape(c.description)}.</p>",
    ]
    if c.examples:
        shown = "" if len(c.examples) == c.count else f" ({len(c.examples)} of {c.count:,}: the latest by ts)"
        out.append(f"<table><caption>flagged rows{shown}</caption>")
        out.append("<tr><th>table</th><th>instrument</th><th>ts</th><th>recv_ts</th><th>detail</th></tr>")
        for f in c.examples:
            out.append(
                f'<tr class="flag" data-check="{c.name}"><td>{escape(f.table)}</td><td>{escape(f.instrument)}</td>'
                f"<td>{iso_us(f.ts_us)}</td><td>{iso_us(f.recv_us)}</td><td>{escape(f.detail)}</td></tr>"
            )
        out.append("</table>")
    return "\n".join(out)


def _img(info: plots.FigureInfo | None, name: str, alt: str) -> str:
    if info is None:
        return f'<img src="{name}" alt="{escape(alt)}">'
    axes = "" if info.axes_px is None else " ".join(str(v) for v in info.axes_px)
    return (f'<img id="{name.removesuffix(".png")}" src="{name}" alt="{escape(alt)}" width="{info.width_px}" '
            f'height="{info.height_px}" data-axes="{axes}" data-rows="{info.rows}" data-cols="{info.cols}">')


def _hours(collected: tuple[bool, ...]) -> str:
    """``00-08, 14`` style list of the hours collected."""
    spans: list[str] = []
    h = 0
    while h < 24:
        if not collected[h]:
            h += 1
            continue
        end = h
        while end + 1 < 24 and collected[end + 1]:
            end += 1
        spans.append(f"{h:02d}" if end == h else f"{h:02d}–{end:02d}")
        h = end + 1
    return ", ".join(spans) or "none"


MAX_SILENT = 50
"""Instruments listed in the coverage section's table (the count is always exact)."""


def render_html(report: QualityReport, figures: dict[str, plots.FigureInfo] | None = None) -> str:
    r = report
    figs = figures or {}
    comp = r.trade_completeness_pct
    cov = r.coverage
    gap_seconds: dict[str, float] = {}
    for s in r.gaps:
        gap_seconds[s.gap.kind] = gap_seconds.get(s.gap.kind, 0.0) + s.seconds
    mismatches = r.volume_count("mismatch")
    compared = mismatches + r.volume_count("ok")
    partial = r.volume_count("partial_window")
    silent = cov.silent()
    start = "–" if r.collection_start_us is None else iso_us(r.collection_start_us)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>tickarchive data quality {r.day}</title><style>{_CSS}</style></head><body>",
        f"<h1>Data quality, {r.day} (UTC)</h1>",
        f"<p>Source: {escape(r.source)}. Generated {iso_us(r.generated_us)}. Checks flag rows; nothing is "
        "dropped or changed. Hours the collector did not run, or that had not begun when the report was made, "
        "are <em>not collected</em>: they say nothing about the market and are left out of the percentages.</p>",
        '<table id="summary">',
        f'<tr><th>hours collected</th><td class="n" data-figure="collected_hours" data-hours="{_hours(cov.collected)}">'
        f"{cov.collected_hours} of 24 ({_hours(cov.collected)})</td></tr>",
        f'<tr><th>collection found since (looking back 24 h)</th><td class="n" data-figure="collection_start">'
        f"{start}</td></tr>",
        f'<tr><th>quotes</th><td class="n" data-figure="quote_rows">{r.quote_rows:,}</td></tr>',
        f'<tr><th>trades (of which backfilled)</th><td class="n" data-figure="trade_rows">{r.trade_rows:,} '
        f'(<span data-figure="backfilled_trades">{r.backfilled_trades:,}</span>)</td></tr>',
        f'<tr><th>instruments quoted</th><td class="n" data-figure="instruments">'
        f"{len(cov.instruments):,}</td></tr>",
        f'<tr><th>instrument-hours with quotes (of the hours collected)</th><td class="n" '
        f'data-figure="coverage_pct">{cov.cells_with_data_pct:.2f} %</td></tr>',
        f'<tr><th>trade completeness (trade_seq)</th><td class="n" data-figure="trade_completeness_pct">'
        f"{_n(comp, '{:.3f} %')}</td></tr>",
        f'<tr><th>gaps</th><td class="n" data-figure="gaps">{len(r.gaps):,}</td></tr>',
        f'<tr><th>volume mismatches (of instruments compared)</th><td class="n" data-figure="volume_mismatches">'
        f'{mismatches:,} of <span data-figure="volume_compared">{compared:,}</span></td></tr>',
        f'<tr><th>volume not comparable (24 h window not all collected)</th><td class="n" '
        f'data-figure="volume_partial">{partial:,}</td></tr>',
        f'<tr><th>flagged rows</th><td class="n" data-figure="flagged_rows">{r.flagged_rows:,}</td></tr>',
        "</table>",
        "<h2>Coverage</h2>",
        "<p>One row per expiry: the share of its instruments listed in the hour (a daily option expires at 08:00, "
        "its successor is listed then) with at least one quote (exchange ts) in each UTC hour. Red: collected, "
        "and not a single quote; white: none of the expiry's instruments listed; grey: not collected.</p>",
        _img(figs.get(plots.COVERAGE_PNG), plots.COVERAGE_PNG, "coverage heatmap"),
        f'<p data-figure="silent_instruments" data-count="{len(silent)}">{len(silent):,} instruments had '
        "hours collected while they were listed without a quote" + (":" if silent else ".") + "</p>",
    ]
    if silent:
        shown = silent[:MAX_SILENT]
        more = f" ({len(shown)} of {len(silent):,}: the most hours first)" if len(silent) > len(shown) else ""
        parts += [
            f"<table><caption>instruments with collected hours without a quote{more}</caption>",
            "<tr><th>instrument</th><th>hours without a quote</th></tr>",
            *(f'<tr data-silent="{escape(n)}" data-hours="{h}"><td>{escape(n)}</td><td class="n">{h}</td></tr>'
              for n, h in shown),
            "</table>",
        ]
    parts += [
        "<h2>Gaps</h2>",
        _img(figs.get(plots.GAPS_PNG), plots.GAPS_PNG, "gap timeline"),
        "<table><tr><th>kind</th><th>seconds in the day</th></tr>",
        *(f'<tr data-gap-kind="{escape(k)}" data-seconds="{v:.3f}"><td>{escape(k)}</td><td class="n">{v:,.3f}</td></tr>'
          for k, v in sorted(gap_seconds.items())),
        "</table>",
        "<table><tr><th>start</th><th>end</th><th>seconds</th><th>kind</th><th>instrument</th><th>connection</th>"
        "<th>status</th><th>cause</th></tr>",
        *(f'<tr class="gap"><td>{iso_us(s.start_us)}</td><td>{iso_us(s.end_us)}{" (open)" if s.open else ""}</td>'
          f'<td class="n">{s.seconds:,.3f}</td><td>{escape(s.gap.kind)}</td><td>{escape(s.gap.instrument)}</td>'
          f"<td>{escape(s.gap.connection)}</td><td>{escape(s.gap.status)}</td><td>{escape(s.gap.cause)}</td></tr>"
          for s in r.gaps),
        "</table>",
        "<h2>Trade completeness</h2>",
        "<p>Per instrument, within the day: distinct trade_seq / (last − first + 1). Sequence numbers "
        "before the first or after the last trade of the day are not counted. The chart shows the instruments "
        "that miss trades; the table lists every instrument.</p>",
        _img(figs.get(plots.COMPLETENESS_PNG), plots.COMPLETENESS_PNG, "trade completeness"),
        "<table><tr><th>instrument</th><th>trades</th><th>first seq</th><th>last seq</th><th>missing</th>"
        "<th>complete</th></tr>",
        *(f'<tr class="{"bad" if c.missing else ""}" data-instrument="{escape(c.instrument)}" '
          f'data-pct="{c.pct:.4f}" data-missing="{c.missing}"><td>{escape(c.instrument)}</td>'
          f'<td class="n">{c.trades:,}</td><td class="n">{c.first_seq}</td><td class="n">{c.last_seq}</td>'
          f'<td class="n">{c.missing:,}</td><td class="n">{c.pct:.3f} %</td></tr>'
          for c in r.completeness),
        "</table>",
        "<h2>Volume reconciliation</h2>",
        "<p>Like with like: the exchange's volume_24h at an instrument's last quote of the day covers the 24 hours "
        "before that quote, so it is compared with the trades stored in that same window (distinct trade ids, the "
        f"previous day's included); mismatch beyond {r.volume_tolerance_pct:g} %. When that window touches an hour "
        "that was not collected (before collection began, or while it was stopped) the store cannot hold all of "
        "it: <em>partial_window</em>, not compared.</p>",
        _img(figs.get(plots.VOLUME_PNG), plots.VOLUME_PNG, "volume reconciliation"),
        "<table><tr><th>instrument</th><th>traded in the window</th><th>exchange 24 h</th><th>difference</th>"
        "<th>%</th><th>last quote</th><th>status</th></tr>",
        *(f'<tr class="{"bad" if v.status == "mismatch" else ""}" data-volume="{escape(v.instrument)}" '
          f'data-status="{v.status}"><td>{escape(v.instrument)}</td><td class="n">{v.traded:,.4f}</td>'
          f'<td class="n">{_n(v.exchange_24h, "{:,.4f}")}</td><td class="n">{_n(v.diff, "{:,.4f}")}</td>'
          f'<td class="n">{_n(v.diff_pct, "{:.2f}")}</td>'
          f'<td>{"–" if v.last_quote_us is None else iso_us(v.last_quote_us)}</td><td>{v.status}</td></tr>'
          for v in r.volume),
        "</table>",
        "<h2>Checks</h2>",
        *(_check_section(c) for c in r.checks),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
