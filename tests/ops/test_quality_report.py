"""The quality report on a real QuestDB (and the warm store): planted defects are found and
counted exactly, the figures match counts made from the rows, the HTML references PNGs
that exist, and the CLI picks the tier from the rollover ledger."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.ops import quality_data as data
from tickarchive.ops.quality.model import QualityReport
from tickarchive.ops.quality.report import build_report, write_report
from tickarchive.ops.quality.source import DaySource, choose_source
from tickarchive.settings import Settings
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

NOW_US = data.NEXT_DAY + 3600 * data.S  # the report is made at 01:00 the next day


@pytest.fixture(scope="module")
def loaded_questdb(questdb: QuestDBHandle) -> QuestDBHandle:
    questdb.truncate_all()
    data.load_questdb(questdb.ilp_conf)
    questdb.wait_for_rows("quotes", len(data.QUOTES) + len(data.QUOTES2))
    questdb.wait_for_rows("trades", len(data.TRADES) + len(data.TRADES2))
    questdb.wait_for_rows("gaps", len(data.GAPS) + len(data.GAPS2))
    questdb.wait_for_rows("collector_heartbeats", len(data.HEARTBEATS) + len(data.HEARTBEATS2))
    questdb.wait_for_rows("instruments", 1)
    return questdb


@pytest.fixture(scope="module")
def hot_report(loaded_questdb: QuestDBHandle) -> QualityReport:
    source = DaySource("hot", loaded_questdb.pg_dsn, "hot (test QuestDB)")
    return build_report(source, data.DAY, now_us=NOW_US)


def _assert_figures(report: QualityReport) -> None:
    # row counts: only the day's rows
    assert report.quote_rows == sum(1 for q in data.QUOTES if data.in_day(q.ts_us)) == 59
    assert report.trade_rows == sum(1 for t in data.TRADES if data.in_day(t.ts_us)) == 22
    # every planted defect, exactly
    assert {c.name: c.count for c in report.checks} == data.PLANTED
    crossed = report.check("crossed_quote")
    assert sorted((f.instrument, f.ts_us - data.T0) for f in crossed.examples) == [
        (data.A, 7 * data.H + 1 * data.S), (data.A, 7 * data.H + 2 * data.S), (data.A, 7 * data.H + 3 * data.S)
    ]
    assert crossed.examples[0].detail == "bid 0.07 > ask 0.06"
    dup = report.check("duplicate_trade_id").examples[0]
    assert (dup.detail, dup.ts_us) == ("trade_id ETH-8007 received before", data.T0 + 15 * data.H)
    assert report.check("trade_ts_backwards").examples[0].detail == (
        "trade ETH-9113: ts 1800000.000 ms before a trade received earlier"
    )
    assert report.check("quote_ts_backwards").examples[0].detail == "ts 1000.000 ms before a quote received earlier"
    # heatmap matrix = counts per (instrument, hour) straight from the rows
    expected = data.expected_coverage()
    cov = report.coverage
    assert cov.instruments == (data.B, data.A)  # sorted by name: ...3000-P before ...4000-C
    for i, inst in enumerate(cov.instruments):
        assert list(cov.counts[i]) == [expected.get((inst, h), 0) for h in range(24)]
    a = cov.counts[cov.instruments.index(data.A)]
    assert a[5] == 4
    assert a[7] == 4
    assert a[10] == 2
    assert a[0] == 1
    b = cov.counts[cov.instruments.index(data.B)]
    assert b[3] == 4
    assert b[11] == 2
    assert b[12:] == (0,) * 12
    assert cov.cells_with_data_pct == pytest.approx(100.0 * (24 + 12) / 48)
    # trade completeness from trade_seq
    comp = {c.instrument: c for c in report.completeness}
    assert (comp[data.A].first_seq, comp[data.A].last_seq, comp[data.A].missing) == (100, 119, 2)
    assert comp[data.A].pct == pytest.approx(90.0)
    assert (comp[data.B].trades, comp[data.B].missing, comp[data.B].pct) == (4, 0, 100.0)
    assert report.trade_completeness_pct == pytest.approx(100.0 * 21 / 23)
    # volume: like with like, the exchange's 24 h window at the last quote against the trades in it
    assert report.collection_start_us == data.T0 - 24 * data.H
    assert report.coverage.collected == (True,) * 24
    vol = {v.instrument: v for v in report.volume}
    assert (vol[data.A].traded, vol[data.A].exchange_24h, vol[data.A].status) == (17.0, 17.0, "ok")
    assert (vol[data.B].traded, vol[data.B].exchange_24h, vol[data.B].status) == (0.0, 5.0, "mismatch")
    assert vol[data.B].diff_pct == pytest.approx(-100.0)
    # gaps overlapping the day, clipped to it; the open one runs to the day's end
    seconds: dict[str, float] = {}
    for s in report.gaps:
        seconds[s.gap.kind] = seconds.get(s.gap.kind, 0.0) + s.seconds
    assert seconds == data.EXPECTED_GAP_SECONDS
    assert [s.open for s in report.gaps] == [False, False, False, True]


def test_report_figures_from_questdb(hot_report: QualityReport) -> None:
    assert hot_report.source == "hot (test QuestDB)"
    _assert_figures(hot_report)


def test_flagged_rows_are_not_dropped(loaded_questdb: QuestDBHandle, hot_report: QualityReport) -> None:
    # the report read every row and left the store as it was
    assert loaded_questdb.count("quotes") == len(data.QUOTES) + len(data.QUOTES2)
    assert loaded_questdb.count("trades") == len(data.TRADES) + len(data.TRADES2)
    # flagged rows are part of the coverage counts (hour 7 of A holds the 3 crossed quotes)
    a = hot_report.coverage.counts[hot_report.coverage.instruments.index(data.A)]
    assert a[7] == 1 + 3


def test_html_lists_the_figures_and_references_existing_pngs(hot_report: QualityReport, tmp_path: Path) -> None:
    files = write_report(hot_report, tmp_path)
    assert files.directory == tmp_path / "2026-11-20"
    html = files.html.read_text()
    counts = {m[0]: int(m[1]) for m in re.findall(r'<h3 id="check-\w+" data-check="(\w+)" data-count="(\d+)"', html)}
    assert counts == data.PLANTED
    # the rows each check lists
    listed = re.findall(r'<tr class="flag" data-check="(\w+)">', html)
    assert {name: listed.count(name) for name in set(listed)} == data.PLANTED
    assert re.search(r'data-instrument="ETH-27DEC26-4000-C" data-pct="90.0000" data-missing="2"', html)
    assert 'data-volume="ETH-27DEC26-3000-P" data-status="mismatch"' in html
    assert 'data-figure="trade_completeness_pct">91.304 %' in html
    assert 'data-gap-kind="stale" data-seconds="3660.000"' in html
    images = re.findall(r'<img id="\w+" src="([^"]+)"', html)
    assert images == ["coverage.png", "gaps.png", "completeness.png", "volume.png"]
    for name in images:
        png = files.directory / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5_000
    # self-contained: no scripts, no external stylesheets or images
    assert "<script" not in html
    assert "<link" not in html
    assert "http" not in html
    figures = json.loads(files.json.read_text())
    assert figures["checks"] == data.PLANTED
    assert figures["coverage"]["counts"] == [list(row) for row in hot_report.coverage.counts]


def test_empty_day_renders(loaded_questdb: QuestDBHandle, tmp_path: Path) -> None:
    import datetime as dt

    source = DaySource("hot", loaded_questdb.pg_dsn, "hot")
    report = build_report(source, dt.date(2026, 11, 22), now_us=NOW_US)
    assert (report.quote_rows, report.trade_rows, report.gaps, report.flagged_rows) == (0, 0, (), 0)
    assert report.trade_completeness_pct is None
    files = write_report(report, tmp_path)
    assert all(p.is_file() for p in files.pngs)
    assert 'data-figure="trade_completeness_pct">–' in files.html.read_text()


def _settings(questdb: QuestDBHandle, warm: WarmHandle) -> Settings:
    return Settings(questdb=questdb.settings(), postgres=warm.settings())


def test_the_ledger_decides_the_tier(loaded_questdb: QuestDBHandle, postgres_clean: WarmHandle) -> None:
    with postgres_clean.connect(postgres_clean.writer_dsn) as conn:
        data.load_warm(conn, partitioned=True)
    settings = _settings(loaded_questdb, postgres_clean)
    assert choose_source(settings, data.DAY, "auto").tier == "hot"  # no ledger rows yet
    postgres_clean.query(
        "INSERT INTO rollover_ledger (day, table_name, rows_hot, rows_warm, status) VALUES "
        "(%s, 'quotes', 59, 59, 'verified'), (%s, 'trades', 22, 22, 'loaded')",
        (data.DAY, data.DAY),
    )
    assert choose_source(settings, data.DAY, "auto").tier == "hot"  # trades not verified yet
    postgres_clean.query("UPDATE rollover_ledger SET status = 'verified' WHERE table_name = 'trades'")
    warm = choose_source(settings, data.DAY, "auto")
    assert warm.tier == "warm"
    report = build_report(warm, data.DAY, now_us=NOW_US)
    assert report.source.startswith("warm (127.0.0.1:")
    _assert_figures(report)


def test_cli_writes_the_report(
    loaded_questdb: QuestDBHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickarchive.cli import app

    for key, value in (
        ("HOST", loaded_questdb.host), ("PG_PORT", loaded_questdb.pg_port),
        ("USER", loaded_questdb.user), ("PASSWORD", loaded_questdb.password),
    ):
        monkeypatch.setenv(f"TICKARCHIVE_QUESTDB__{key}", str(value))
    result = CliRunner().invoke(
        app, ["report", "quality", "--day", "2026-11-20", "--out", str(tmp_path), "--source", "hot"]
    )
    assert result.exit_code == 0, result.output
    assert ("59 quotes, 22 trades, 2 instruments, coverage 75.00 % of 24 collected hours, trade completeness "
            "91.304 %, 4 gaps") in result.output
    assert "crossed_quote 3" in result.output
    assert "duplicate_trade_id 1" in result.output
    assert (tmp_path / "2026-11-20" / "index.html").is_file()


def test_cli_rejects_a_bad_day(tmp_path: Path) -> None:
    from tickarchive.cli import app

    result = CliRunner().invoke(app, ["report", "quality", "--day", "2026-13-01", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "expected YYYY-MM-DD, today or yesterday" in str(result.exception)


# ---- a partial day, rendered in headless Chromium ------------------------------------------


@pytest.fixture(scope="module")
def partial_report(loaded_questdb: QuestDBHandle) -> QualityReport:
    source = DaySource("hot", loaded_questdb.pg_dsn, "hot (test QuestDB)")
    return build_report(source, data.DAY2, now_us=data.NOW2)


def test_a_partial_day_reads_as_what_was_collected(partial_report: QualityReport) -> None:
    r = partial_report
    cov = r.coverage
    # hours before collection began (09:30) and after the report was made (15:20): not collected
    assert cov.collected == data.COLLECTED2
    assert cov.collected_hours == 7
    # the percentage counts collected hours, while listed, only: P1 7, P2 6 (silent at 12), F 3 (stops at 12)
    # of 7 each; L 4 of 4 (listed at 12:00: hours 09-11 cannot be missing)
    assert cov.cells_with_data_pct == pytest.approx(100.0 * 20 / 25)
    assert cov.silent() == [(data.F, 4), (data.P2, 1)]
    groups = {g.group: g for g in cov.groups()}
    assert set(groups) == {"ETH-28NOV26", "ETH-4DEC26", "ETH-PERPETUAL"}
    assert groups["ETH-4DEC26"].listed == tuple(1 if h >= 12 else 0 for h in range(24))
    assert [h for h in range(24) if data.COLLECTED2[h] and groups["ETH-4DEC26"].pct(h) == 100.0] == [12, 13, 14, 15]
    assert groups["ETH-28NOV26"].instruments == 2
    assert groups["ETH-28NOV26"].quoted == tuple(0 if h < 9 or h > 15 else 1 if h == 12 else 2 for h in range(24))
    # backfilled trades received hours late are counted, not flagged
    assert r.backfilled_trades == 2
    assert r.check("trade_ts_backwards").count == 0
    assert r.flagged_rows == 0
    assert {c.instrument: c.missing for c in r.completeness} == {data.P1: 0}
    # a 24 h volume window reaching before 09:30 cannot be compared, and is not called a mismatch
    assert r.collection_start_us == data.START2
    assert {v.instrument: v.status for v in r.volume} == {data.P1: "partial_window", data.P2: "partial_window",
                                                           data.F: "partial_window"}
    assert r.volume_count("mismatch") == 0


def _serve(directory: Path) -> tuple[Any, str]:
    """A loopback HTTP server of ``directory`` on a port bound here (the page and its PNGs are
    same-origin, so the page's canvas may read the PNGs' pixels)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


_PIXELS_JS = """
(async () => {
  const img = document.getElementById(%(id)s);
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return %(points)s.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3)));
})()
"""


def _rgb(hex_color: str) -> tuple[int, int, int]:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(hex_color)
    return round(r * 255), round(g * 255), round(b * 255)


def _close(a: list[int] | tuple[int, ...], b: tuple[int, ...], tol: int = 10) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_the_report_in_chromium_shows_the_data(partial_report: QualityReport, tmp_path: Path) -> None:
    from matplotlib import colormaps

    from tests.browser import chromium
    from tickarchive.ops.quality import plots

    files = write_report(partial_report, tmp_path)
    server, base = _serve(files.directory)
    try:
        with chromium() as page:
            page.goto(f"{base}/index.html", 1280, 900)
            # every image loaded, sized for a person, and drawn at its own size
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight, "
                "i.width, i.height, i.alt])"
            )
            assert [i[0] for i in images] == ["coverage", "gaps", "completeness", "volume"]
            for name, complete, nw, nh, w, h, alt in images:
                assert complete, name
                assert 0 < nw <= 1000, (name, nw)
                assert 0 < nh <= 900, (name, nh)
                assert (w, h) == (nw, nh), name
                assert alt, name
            # the summary says what the data says
            figures = page.evaluate(
                "Object.fromEntries(Array.from(document.querySelectorAll('[data-figure]'))"
                ".map(e => [e.dataset.figure, e.textContent.trim()]))"
            )
            assert figures["collected_hours"] == "7 of 24 (09–15)"
            assert figures["coverage_pct"] == f"{100.0 * 20 / 25:.2f} %"
            assert figures["backfilled_trades"] == "2"
            assert figures["volume_mismatches"] == "0 of 0"
            assert figures["volume_partial"] == "3"
            assert figures["flagged_rows"] == "0"
            assert figures["silent_instruments"].startswith("2 instruments had hours collected while they were listed")
            silent = page.evaluate(
                "Array.from(document.querySelectorAll('[data-silent]')).map(e => [e.dataset.silent, +e.dataset.hours])"
            )
            assert silent == [[data.F, 4], [data.P2, 1]]
            # the heatmap, cell by cell: grey where not collected, red where collected without a quote,
            # the colour of the share quoted elsewhere
            geo = page.evaluate(
                "(() => { const i = document.getElementById('coverage'); "
                "return [i.dataset.axes.split(' ').map(Number), +i.dataset.rows, +i.dataset.cols]; })()"
            )
            (x0, y0, x1, y1), rows, cols = geo
            groups = partial_report.coverage.groups()
            assert (rows, cols) == (len(groups), 24)
            points = [
                (round(x0 + (h + 0.5) * (x1 - x0) / cols), round(y0 + (i + 0.5) * (y1 - y0) / rows))
                for i in range(rows) for h in range(cols)
            ]
            pixels = page.evaluate(_PIXELS_JS % {"id": "'coverage'", "points": json.dumps(points)})
    finally:
        server.shutdown()
    cmap = colormaps[plots.CMAP]
    grey, red, white = _rgb(plots.NOT_COLLECTED), _rgb(plots.NO_QUOTES), _rgb(plots.NOT_LISTED)
    for k, pixel in enumerate(pixels):
        g, h = groups[k // 24], k % 24
        if not data.COLLECTED2[h]:
            expected = grey
        elif g.live(h) == 0:
            expected = white
        elif g.quoted[h] == 0:
            expected = red
        else:
            expected = tuple(round(v * 255) for v in cmap(g.quoted[h] / g.live(h))[:3])
        assert _close(pixel, expected), (g.group, h, pixel, expected)
    # and the picture is the day described above: F red from 12:00 to 15:59, P2's expiry half-quoted at 12
    f_row = [g.group for g in groups].index("ETH-PERPETUAL")
    assert [h for h in range(24) if _close(pixels[f_row * 24 + h], red)] == [12, 13, 14, 15]
    assert sum(1 for p in pixels if _close(p, grey)) == rows * 17
    l_row = [g.group for g in groups].index("ETH-4DEC26")
    assert [h for h in range(24) if _close(pixels[l_row * 24 + h], white)] == [9, 10, 11]  # before its listing


def test_a_day_only_the_archive_holds_is_refused_with_what_to_do(
    loaded_questdb: QuestDBHandle, postgres_clean: WarmHandle
) -> None:
    from tickarchive.ops.quality.errors import QualitySourceError

    postgres_clean.query(
        "INSERT INTO rollover_ledger (day, table_name, rows_hot, rows_warm, status) VALUES "
        "(%s, 'quotes', 59, 59, 'dropped'), (%s, 'trades', 22, 22, 'dropped')",
        (data.DAY, data.DAY),
    )
    # rolled over, then its month dropped from the warm store after archiving: no rows anywhere but the archive
    with pytest.raises(QualitySourceError, match=r"2026-11-20 is only in the archive \(cold\).*"
                       r"`tickarchive archive restore --month 2026-11`"):
        choose_source(_settings(loaded_questdb, postgres_clean), data.DAY, "auto")
