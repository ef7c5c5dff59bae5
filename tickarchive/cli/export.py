"""``tickarchive export ...``: the products as files a backtester reads without glue.

Every command reads stored ticks through the API's tier router (QuestDB, the warm store,
the Parquet archive: the same settings as ``tickarchive api``), computes the product
window by window (``tickarchive.products.build``) and streams it to a file, so a month of
one-second snapshots never sits in memory at once:

* ``chain``         chain snapshots (Parquet or CSV)
* ``surface``       surface points or per-expiry rows (Parquet or CSV)
* ``book``          top-N book snapshots (Parquet, CSV, or Tardis ``book_snapshot_N`` CSV)
* ``options-chain`` Tardis ``options_chain`` CSV, one gzip file per UTC day
  (``deribit_options_chain_<day>_OPTIONS.csv.gz``), rows sorted by receive time

Parquet files store the time columns as ``timestamp[us, UTC]``; CSV writes them as
ISO-8601 (``--time-format epoch_us`` for integers). See docs/api.md, "Products".
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import typer

from tickarchive.errors import InvalidValue
from tickarchive.products import book as bookmod
from tickarchive.products import build, chain, surface, tardis
from tickarchive.products.chain import VALUE_COLUMNS, Basis
from tickarchive.products.timegrid import parse_interval

if TYPE_CHECKING:
    from tickarchive.api.stores import Stores

US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
ISO = "%Y-%m-%dT%H:%M:%S%.6fZ"
"""CSV time columns, as the API writes them (``2026-10-05T12:00:00.123000Z``)."""

CurrencyOpt = Annotated[str, typer.Option("--currency", metavar="CURRENCY", help="ETH, BTC, ...")]
StartOpt = Annotated[str, typer.Option("--start", metavar="TIME", help="ISO-8601 (naive = UTC) or epoch s/ms/µs")]
EndOpt = Annotated[str, typer.Option("--end", metavar="TIME", help="end, exclusive")]
OutOpt = Annotated[Path, typer.Option("--out", metavar="FILE", help="file to write: .parquet or .csv")]
MaxAgeOpt = Annotated[
    int | None, typer.Option("--max-age-s", help="leave out quotes older than this (default api.chain_lookback_s)")
]
BasisOpt = Annotated[
    Basis, typer.Option("--basis", help="exchange (quote ts <= instant) or receive (recv_ts <= instant)")
]
TimeFormatOpt = Annotated[str, typer.Option("--time-format", help="CSV time columns: iso or epoch_us")]


def _stores() -> Stores:
    from tickarchive.api.stores import Stores
    from tickarchive.settings import load_settings

    return Stores(load_settings())


def _time(name: str, text: str) -> int:
    from tickarchive.api.timefmt import parse_time

    return parse_time(name, text)


def write_frames(
    frames: Iterator[pl.DataFrame], out: Path, time_columns: Sequence[str], schema: dict[str, pl.DataType],
    time_format: str = "iso",
) -> int:
    """Stream ``frames`` to ``out`` (Parquet or CSV by its suffix); the rows written."""
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InvalidValue(f"--out {out}: name a .parquet or .csv file")
    if time_format not in ("iso", "epoch_us"):
        raise InvalidValue(f"--time-format {time_format!r}: iso or epoch_us")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    times = [c for c in time_columns if c in schema]

    def conform(f: pl.DataFrame) -> pl.DataFrame:
        return f.cast(schema).with_columns(pl.col(c).cast(pl.Datetime("us", "UTC")) for c in times)  # type: ignore[arg-type]

    rows = 0
    if suffix == ".parquet":
        arrow_schema = conform(pl.DataFrame(schema=schema)).to_arrow().schema
        with pq.ParquetWriter(tmp, arrow_schema, compression="zstd") as writer:
            for f in frames:
                writer.write_table(pa.Table.from_batches(conform(f).to_arrow().to_batches(), arrow_schema))
                rows += f.height
    else:
        with tmp.open("wb") as fh:
            header = True
            for f in frames:
                shown = conform(f) if time_format == "iso" else f.cast(schema)  # type: ignore[arg-type]
                fh.write(shown.write_csv(include_header=header, null_value="", datetime_format=ISO).encode())
                header = False
                rows += f.height
            if header:
                fh.write(pl.DataFrame(schema=schema).write_csv().encode())
    tmp.replace(out)
    return rows


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Products as files: chain snapshots, surfaces, books, Tardis CSV.", no_args_is_help=True)

    def _spec(currency: str, start: str, end: str, interval: str, max_age_s: int | None, basis: Basis,
              values: tuple[str, ...] | None, stores: Stores) -> build.ChainSpec:
        age = stores.settings.api.chain_lookback_s if max_age_s is None else max_age_s
        return build.ChainSpec(currency.strip().upper(), _time("start", start), _time("end", end),
                               parse_interval(interval, "--interval", US_PER_S), age * US_PER_S, basis,
                               values or VALUE_COLUMNS)

    @group.command("chain")
    def chain_cmd(
        currency: CurrencyOpt,
        start: StartOpt,
        end: EndOpt,
        out: OutOpt,
        interval: Annotated[str, typer.Option("--interval", help="1s, 1m, 1h, 1d (end of day), ...")] = "1m",
        max_age_s: MaxAgeOpt = None,
        basis: BasisOpt = Basis.EXCHANGE,
        columns: Annotated[str | None, typer.Option("--columns", help="comma-separated quote columns")] = None,
        time_format: TimeFormatOpt = "iso",
    ) -> None:
        """Chain snapshots: per instant, every live option's last quote and its staleness."""
        from tickarchive.api.routes_products import StoresSource

        stores = _stores()
        try:
            values = tuple(dict.fromkeys(c.strip() for c in columns.split(",") if c.strip())) if columns else None
            spec = _spec(currency, start, end, interval, max_age_s, basis, values, stores)
            n = write_frames(build.chain_snapshots(StoresSource(stores), spec), out, chain.TIME_COLUMNS,
                             chain.snapshot_schema(spec.values), time_format)
        finally:
            stores.close()
        typer.echo(f"{out}: {n:,} chain snapshot rows")

    @group.command("surface")
    def surface_cmd(
        currency: CurrencyOpt,
        start: StartOpt,
        end: EndOpt,
        out: OutOpt,
        interval: Annotated[str, typer.Option("--interval", help="1m, 1h, 1d, ...")] = "1h",
        level: Annotated[str, typer.Option("--level", help="expiries (ATM, RR, BF, term structure) or points")] = (
            "expiries"
        ),
        max_age_s: MaxAgeOpt = None,
        basis: BasisOpt = Basis.EXCHANGE,
        time_format: TimeFormatOpt = "iso",
    ) -> None:
        """IV surfaces from the exchange's IVs: per expiry (default) or per option."""
        from tickarchive.api.routes_products import StoresSource

        stores = _stores()
        try:
            spec = _spec(currency, start, end, interval, max_age_s, basis, surface.SNAPSHOT_VALUES, stores)
            schema = surface.EXPIRIES_SCHEMA if level == "expiries" else surface.POINTS_SCHEMA
            n = write_frames(build.surfaces(StoresSource(stores), spec, level), out, surface.TIME_COLUMNS, schema,
                             time_format)
        finally:
            stores.close()
        typer.echo(f"{out}: {n:,} surface {level} rows")

    @group.command("book")
    def book_cmd(
        instrument: Annotated[str, typer.Option("--instrument", metavar="INSTRUMENT", help="one instrument name")],
        start: StartOpt,
        end: EndOpt,
        out: OutOpt,
        interval: Annotated[str, typer.Option("--interval", help="100ms, 1s, ...")] = "100ms",
        depth: Annotated[int, typer.Option("--depth", help="levels per side")] = 25,
        only_changed: Annotated[bool, typer.Option("--only-changed", help="only instants whose top N changed")] = False,
        tardis_csv: Annotated[bool, typer.Option("--tardis", help="write Tardis book_snapshot_N CSV")] = False,
        time_format: TimeFormatOpt = "iso",
    ) -> None:
        """Top-N book snapshots every X ms, rebuilt from stored snapshots + changes."""
        from tickarchive.api.routes_products import StoresSource

        stores = _stores()
        try:
            spec = build.BookSpec(instrument.strip(), _time("start", start), _time("end", end),
                                  parse_interval(interval, "--interval"), depth,
                                  stores.settings.api.book_lookback_s * US_PER_S, only_changed)
            frames = build.book_snapshots(StoresSource(stores), spec)
            if tardis_csv:
                if out.suffix.lower() != ".csv":
                    raise InvalidValue(f"--out {out}: --tardis writes CSV, name a .csv file")
                out.parent.mkdir(parents=True, exist_ok=True)
                n = 0
                with out.open("wb") as fh:
                    fh.write(tardis.csv_bytes(pl.DataFrame(schema=dict.fromkeys(tardis.book_snapshot_columns(depth),
                                                                                  pl.String))))
                    for f in frames:
                        fh.write(tardis.csv_bytes(tardis.book_snapshots(f, depth), header=False))
                        n += f.height
            else:
                n = write_frames(frames, out, bookmod.TIME_COLUMNS, build.book_schema(depth), time_format)
        finally:
            stores.close()
        typer.echo(f"{out}: {n:,} book snapshots")

    @group.command("options-chain")
    def options_chain_cmd(
        currency: CurrencyOpt,
        day: Annotated[str, typer.Option("--day", metavar="YYYY-MM-DD", help="first UTC day, YYYY-MM-DD")],
        out_dir: Annotated[Path, typer.Option("--out-dir", metavar="DIR", help="directory for the .csv.gz files")],
        days: Annotated[int, typer.Option("--days", min=1, max=366, help="how many days")] = 1,
    ) -> None:
        """Tardis options_chain CSV (gzip), one file per UTC day, rows by receive time."""
        from tickarchive.api.routes_products import StoresSource

        try:
            first = dt.date.fromisoformat(day)
        except ValueError:
            raise InvalidValue(f"--day {day!r}: expected YYYY-MM-DD") from None
        stores = _stores()
        out_dir.mkdir(parents=True, exist_ok=True)
        cur = currency.strip().upper()
        try:
            for i in range(days):
                d = first + dt.timedelta(days=i)
                lo = (d - dt.date(1970, 1, 1)).days * US_PER_DAY
                parts = list(build.options_chain(StoresSource(stores), cur, lo, lo + US_PER_DAY))
                frame = pl.concat(parts).sort("local_timestamp", "symbol", "timestamp") if parts else pl.DataFrame(
                    schema=dict.fromkeys(tardis.OPTIONS_CHAIN_COLUMNS, pl.String))
                path = out_dir / tardis.options_chain_file_name(d.isoformat())
                tmp = path.with_name(f".{path.name}.part")
                with gzip.open(tmp, "wb", compresslevel=6) as fh:
                    fh.write(tardis.csv_bytes(frame))
                tmp.replace(path)
                typer.echo(f"{path}: {frame.height:,} rows")
        finally:
            stores.close()

    app.add_typer(group, name="export")
