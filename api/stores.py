"""The stores the API reads, built once per app from the settings.

``Stores`` owns the QuestDB and warm-store connection pools and the archive reader, and
routes: ``segments(table, lo, hi)`` is the tier plan of ``api.tiers`` filled in from the
rollover ledger, the warm store and the archive manifests.

Credentials: the warm store is read with ``postgres.reader_dsn`` or, when unset, a DSN
derived for ``postgres.reader_role`` (the read-only role of the migrations); QuestDB with
``api.questdb_user``/``api.questdb_password`` when set (a QuestDB read-only user),
else ``questdb.user``/``questdb.password``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import polars as pl
from psycopg.conninfo import make_conninfo

from tickarchive.api.cold import ColdReader
from tickarchive.api.errors import StoreUnavailable
from tickarchive.api.hot import HotReader
from tickarchive.api.params import InstrumentMatch
from tickarchive.api.pool import Pool
from tickarchive.api.tiers import Segment, Tier, days, plan
from tickarchive.api.timefmt import day_start_us
from tickarchive.archive.targets import open_target
from tickarchive.months import Month
from tickarchive.settings import PostgresSettings, Settings
from tickarchive.store.questdb_http import QuestDBHttp
from tickarchive.tables import Table


class TierReader(Protocol):
    def rows(
        self,
        table: Table,
        columns: Sequence[str],
        lo_us: int,
        hi_us: int,
        match: InstrumentMatch | None,
        eq: Mapping[str, Any],
        limit: int,
    ) -> pl.DataFrame: ...

    def latest(
        self,
        table: Table,
        columns: Sequence[str],
        lo_us: int,
        at_us: int,
        match: InstrumentMatch | None,
        partition_by: str,
    ) -> pl.DataFrame: ...

    def minute_bars(self, instrument: str, lo_us: int, hi_us: int, minutes: int = 1) -> pl.DataFrame: ...

    def last_snapshot_ts(self, instrument: str, lo_us: int, at_us: int) -> int | None: ...


def reader_dsn(pg: PostgresSettings) -> str:
    """The API's read-only warm-store DSN."""
    if pg.reader_dsn:
        return pg.reader_dsn
    if pg.dsn:
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(pg.dsn)
        params["user"] = pg.reader_role
        params["password"] = pg.password
        return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
    return make_conninfo(
        host=pg.host, port=pg.port, user=pg.reader_role, password=pg.password, dbname=pg.database, sslmode="disable"
    )


def questdb_dsn(settings: Settings) -> str:
    q, a = settings.questdb, settings.api
    return make_conninfo(
        host=q.host,
        port=q.pg_port,
        user=a.questdb_user or q.user,
        password=a.questdb_password or q.password,
        dbname="qdb",
        sslmode="disable",
    )


class Stores:
    def __init__(self, settings: Settings) -> None:
        a = settings.api
        self.settings = settings
        self.qdb_pool = Pool("QuestDB", questdb_dsn(settings), size=a.pool_size, timeout_s=a.pool_timeout_s)
        timeout_ms = int(a.statement_timeout_s * 1000)
        self.warm_pool = Pool(
            "warm store",
            reader_dsn(settings.postgres),
            size=a.pool_size,
            timeout_s=a.pool_timeout_s,
            setup=(f"SET statement_timeout = {timeout_ms}",),
        )
        q = settings.questdb
        user = a.questdb_user or q.user
        password = a.questdb_password or q.password
        self.hot_export = (
            QuestDBHttp(f"http://{q.host}:{q.http_port}", (user, password) if user and password else None, 60.0)
            if a.hot_http_export
            else None
        )
        self.hot = HotReader(self.qdb_pool, self.hot_export)
        from tickarchive.api.warm import WarmReader

        self.warm = WarmReader(self.warm_pool, use_copy=a.warm_copy, use_columns=a.warm_copy)
        self.cold = ColdReader(open_target(settings.archive.target), settings.archive.cache_dir)

    def close(self) -> None:
        self.qdb_pool.close()
        self.warm_pool.close()
        if self.hot_export is not None:
            self.hot_export.close()

    def reader(self, tier: Tier) -> TierReader:
        if tier is Tier.HOT:
            return self.hot
        if tier is Tier.WARM:
            return self.warm
        return self.cold

    def segments(self, table: Table, lo_us: int, hi_us: int) -> list[Segment]:
        ds = days(lo_us, hi_us)
        try:
            rolled = self.warm.rolled_days(table.name, ds[0], ds[-1])
        except StoreUnavailable:
            # The ledger is unreadable (warm store down). Days QuestDB is certain to still hold
            # (the rollover drops a partition only once it is older than hot_retention_days)
            # are served from it; anything older needs the warm store.
            today = dt.datetime.now(dt.UTC).date()
            if ds[0] < today - dt.timedelta(days=self.settings.lifecycle.hot_retention_days):
                raise
            return [Segment(Tier.HOT, lo_us, hi_us)]

        def warm_has(month: Month) -> bool:
            return self.warm.has_rows(table, month.start_us, month.end_us)

        def cold_has(month: Month) -> bool:
            return self.cold.archived(table.name, month)

        return plan(lo_us, hi_us, rolled, warm_has, cold_has)

    def day_tiers(self, table: Table, first: dt.date, last: dt.date) -> dict[dt.date, Tier]:
        lo = day_start_us(first)
        hi = day_start_us(last + dt.timedelta(days=1))
        out: dict[dt.date, Tier] = {}
        for seg in self.segments(table, lo, hi):
            for d in days(seg.lo_us, seg.hi_us):
                out[d] = seg.tier
        return out
