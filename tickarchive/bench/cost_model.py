"""The cost model: what the archive costs per month over five years (docs/cost-model.md).

``ASSUMPTIONS`` is the one place holding what is assumed rather than measured (instrument
count, ticker rates, book rows per frame, trades, the server and its price, the B2 price,
retention); ``tickarchive bench cost`` measures bytes per row (or frame) in every tier and
``project`` multiplies the two. docs/cost-model.md is written by ``render`` from a
benchmark's result, so the document, the model and the benchmark cannot drift apart.

Growth: the cold tier (Parquet lake + journal archive on B2) only grows; the server's disk
holds a moving window (local journal, hot QuestDB days, warm months). The monthly cost at
the end of year N is the server's price plus B2's price of everything archived by then.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

SECONDS_PER_DAY: Final = 86_400
DAYS_PER_YEAR: Final = 365.25
TB: Final = 1e12


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    ticker_frames_per_instrument_s: float
    source: str


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Everything the model assumes; change a figure here and the model and the benchmark
    (which reads its run's shape from it) both follow."""

    instruments: int = 1000
    instruments_source: str = (
        "assumed: 418-492 ETH options in 2021 (real get_instruments captures), 688 / 932 in the 2026 chain "
        "snapshots (issue #15's comparison); 1,000 leaves room for BTC or more expiries"
    )
    scenarios: tuple[Scenario, ...] = (
        Scenario("low", 0.3, "measured in the real 2021 capture: 89 ticker frames from 10 instruments in 31 s"),
        Scenario("mid", 1.0, "assumed"),
        Scenario("high", 3.0, "assumed (the 100ms channel allows 10)"),
    )
    book_messages_per_ticker: float = 0.52
    book_messages_source: str = "measured in the real 2021 capture: 46 book / 89 ticker frames"
    book_rows_per_message: float = 1.14
    book_rows_source: str = "measured in the real 2021 capture: 41 level changes in 36 change messages"
    trades_per_day: int = 20_000
    index_ticks_per_day: int = SECONDS_PER_DAY
    """One ``deribit_price_index`` tick per second."""
    years: int = 5
    b2_usd_per_tb_month: float = 6.0
    b2_source: str = (
        "assumed: Backblaze B2's list price ($6 per TB-month since October 2023; check it). Egress and "
        "API calls are left out (the archive is written once and read rarely)"
    )
    server_usd_per_month: float = 55.0
    server_description: str = (
        "one dedicated server with 8 cores, 64 GB RAM and 2 x 3.84 TB NVMe (RAID 1: 3.84 TB usable), "
        "e.g. a rented Ryzen box at Hetzner (AX52 class)"
    )
    server_source: str = "assumed: a 2025 list price of that class of server in Europe; check it"
    server_disk_tb: float = 3.84
    budget_usd_per_month: float = 100.0
    hot_retention_days: int = 7
    """``lifecycle.hot_retention_days``."""
    warm_retention_months: int = 12
    """``lifecycle.warm_retention_months``."""
    journal_local_days: int = 3
    """``journal.retain_days``: days of raw journal kept on the server past archiving."""

    def scenario(self, name: str) -> Scenario:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(name)


ASSUMPTIONS: Final = Assumptions()


@dataclass(frozen=True, slots=True)
class Measured:
    """Bytes per unit in every tier (from ``tickarchive bench cost``)."""

    parquet_bytes_per_row: dict[str, float]
    journal_archive_bytes_per_frame: float
    journal_local_bytes_per_frame: float
    timescaledb_bytes_per_row: dict[str, float]
    """Compressed warm bytes per row (TimescaleDB)."""
    questdb_bytes_per_row: dict[str, float]


@dataclass(frozen=True, slots=True)
class Daily:
    quotes: float
    book_rows: float
    frames: float
    trades: float
    index_ticks: float


def daily(a: Assumptions, s: Scenario) -> Daily:
    quotes = a.instruments * s.ticker_frames_per_instrument_s * SECONDS_PER_DAY
    book_msgs = quotes * a.book_messages_per_ticker
    return Daily(
        quotes=quotes,
        book_rows=book_msgs * a.book_rows_per_message,
        frames=quotes + book_msgs + a.index_ticks_per_day,
        trades=float(a.trades_per_day),
        index_ticks=float(a.index_ticks_per_day),
    )


@dataclass(frozen=True, slots=True)
class Projection:
    scenario: str
    parquet_bytes_per_day: float
    journal_archive_bytes_per_day: float
    cold_tb_by_year: list[float]
    b2_usd_by_year: list[float]
    usd_per_month_by_year: list[float]
    """Server + B2, at the end of each year."""
    disk_tb: dict[str, float]
    """Server disk per local tier at steady state: journal, hot, warm."""
    disk_fits: bool

    @property
    def cold_bytes_per_day(self) -> float:
        return self.parquet_bytes_per_day + self.journal_archive_bytes_per_day


def _rows(m: dict[str, float], table: str) -> float:
    return m.get(table, 0.0)


def project(a: Assumptions, s: Scenario, m: Measured) -> Projection:
    d = daily(a, s)
    pq = m.parquet_bytes_per_row
    parquet = (
        d.quotes * _rows(pq, "quotes")
        + d.book_rows * _rows(pq, "book_changes")
        + d.trades * _rows(pq, "trades")
        + d.index_ticks * _rows(pq, "index_ticks")
    )
    journal = d.frames * m.journal_archive_bytes_per_frame
    per_year = (parquet + journal) * DAYS_PER_YEAR
    cold = [per_year * y / TB for y in range(1, a.years + 1)]
    b2 = [tb * a.b2_usd_per_tb_month for tb in cold]
    total = [a.server_usd_per_month + x for x in b2]
    ts, qd = m.timescaledb_bytes_per_row, m.questdb_bytes_per_row

    def per_day(w: dict[str, float]) -> float:
        return (
            d.quotes * _rows(w, "quotes")
            + d.book_rows * _rows(w, "book_changes")
            + d.trades * _rows(w, "trades")
            + d.index_ticks * _rows(w, "index_ticks")
        )

    disk = {
        "journal": d.frames * m.journal_local_bytes_per_frame * (a.journal_local_days + 1) / TB,
        "hot": per_day(qd) * a.hot_retention_days / TB,
        "warm": per_day(ts) * a.warm_retention_months * DAYS_PER_YEAR / 12 / TB,
    }
    return Projection(
        scenario=s.name,
        parquet_bytes_per_day=parquet,
        journal_archive_bytes_per_day=journal,
        cold_tb_by_year=cold,
        b2_usd_by_year=b2,
        usd_per_month_by_year=total,
        disk_tb=disk,
        disk_fits=sum(disk.values()) <= a.server_disk_tb,
    )


def five_year_usd_per_month(a: Assumptions, m: Measured) -> dict[str, float]:
    return {s.name: round(project(a, s, m).usd_per_month_by_year[-1], 2) for s in a.scenarios}


def assumptions_json(a: Assumptions) -> dict[str, Any]:
    out = asdict(a)
    out["scenarios"] = [asdict(s) for s in a.scenarios]
    return out


@dataclass(slots=True)
class Row:
    """One line of a markdown table."""

    cells: list[str] = field(default_factory=list)


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _gb(x: float) -> str:
    return f"{x / 1e9:,.1f} GB"


def money_table(a: Assumptions, m: Measured) -> str:
    rows = []
    for s in a.scenarios:
        p = project(a, s, m)
        for y in range(a.years):
            rows.append([
                s.name if y == 0 else "",
                str(y + 1),
                f"{p.cold_tb_by_year[y]:.1f} TB",
                f"${p.b2_usd_by_year[y]:.0f}",
                f"${p.usd_per_month_by_year[y]:.0f}",
            ])
    return _md(["scenario", "end of year", "cold tier stored", "B2 / month", "server + B2 / month"], rows)


def volume_table(a: Assumptions, m: Measured) -> str:
    rows = []
    for s in a.scenarios:
        d = daily(a, s)
        p = project(a, s, m)
        rows.append([
            f"{s.name} ({s.ticker_frames_per_instrument_s:g}/s)",
            f"{d.quotes / 1e6:,.1f} M",
            f"{d.book_rows / 1e6:,.1f} M",
            f"{d.frames / 1e6:,.1f} M",
            f"{_gb(p.cold_bytes_per_day)} ({_gb(p.parquet_bytes_per_day)} + {_gb(p.journal_archive_bytes_per_day)})",
        ])
    return _md(["scenario", "quotes/day", "book rows/day", "frames/day", "cold bytes/day (Parquet + journal archive)"],
               rows)


def disk_table(a: Assumptions, m: Measured) -> str:
    rows = []
    for s in a.scenarios:
        p = project(a, s, m)
        total = sum(p.disk_tb.values())
        rows.append([
            s.name,
            f"{p.disk_tb['journal'] * 1000:,.0f} GB",
            f"{p.disk_tb['hot'] * 1000:,.0f} GB",
            f"{p.disk_tb['warm']:.2f} TB",
            f"{total:.2f} TB of {a.server_disk_tb:g} TB: " + ("fits" if p.disk_fits else "**does not fit**"),
        ])
    return _md([
        "scenario",
        f"journal, local ({a.journal_local_days} days + today)",
        f"hot QuestDB ({a.hot_retention_days} days)",
        f"warm TimescaleDB ({a.warm_retention_months} months)",
        "total",
    ], rows)
