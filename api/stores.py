"""The stores the API reads, built once per app from the settings.

``Stores`` owns the QuestDB and warm-store connection pools and the archive reader, and
routes: ``segments(table, lo, hi)`` is the tier plan of ``api.tiers`` filled in from the
rollover ledger, the warm store and the archive manifests.

Credentials: the warm store is read with ``postgres.reader_dsn`` or, when unset, a DSN
derived for ``postgres.reader_role`` (the read-only role of the migrations); QuestDB with
``api.questdb_user``/``api.questdb_password`` when set, else QuestDB's read-only PG user
(``questdb.readonly_user``, ``pg.readonly.user`` in its server.conf), else ``questdb.user``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import polars as pl
from psycopg.conninfo import make_conninfo

from tickarchive.api.cold import ColdReader
from tickarchive.api.cold_cache import check_location
from tickarchive.api.errors import ApiError, StoreUnavailable
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

KNOWN_CACHE = 100_000
"""Instrument names remembered as known (the set is cleared when it grows past this)."""


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


def questdb_credentials(settings: Settings) -> tuple[str, str]:
    """The API's QuestDB user: ``api.questdb_user``, else QuestDB's read-only user, else
    ``questdb.user``."""
    q, a = settings.questdb, settings.api
    if a.questdb_user:
        return a.questdb_user, a.questdb_password or ""
    if q.readonly_user:
        return q.readonly_user, q.readonly_password
    return q.user, q.password


def questdb_dsn(settings: Settings) -> str:
    q = settings.questdb
    user, password = questdb_credentials(settings)
    return make_conninfo(host=q.host, port=q.pg_port, user=user, password=password, dbname="qdb", sslmode="disable")


class Stores:
    def __init__(self, settings: Settings) -> None:
        a = settings.api
        self.settings = settings
        deadline = a.statement_timeout_s
        self.qdb_pool = Pool(
            "QuestDB", questdb_dsn(settings), size=a.pool_size, wait_s=a.pool_timeout_s, deadline_s=deadline
        )
        timeout_ms = int(deadline * 1000)
        self.warm_pool = Pool(
            "warm store",
            reader_dsn(settings.postgres),
            size=a.pool_size,
            wait_s=a.pool_timeout_s,
            deadline_s=deadline + 2.0,  # the server's statement_timeout answers first
            setup=(f"SET statement_timeout = {timeout_ms}",),
        )
        q = settings.questdb
        user, password = questdb_credentials(settings)
        self.hot_export = (
            QuestDBHttp(
                f"http://{q.host}:{q.http_port}",
                (user, password) if user and password else None,
                deadline + 5.0,
                statement_timeout_s=deadline,
            )
            if a.hot_http_export
            else None
        )
        self.hot = HotReader(
            self.qdb_pool, self.hot_export, export_concurrency=a.export_concurrency, wait_s=a.pool_timeout_s
        )
        from tickarchive.api.warm import WarmReader

        self.warm = WarmReader(self.warm_pool, use_copy=a.warm_copy, use_columns=a.warm_copy)
        check_location(settings.archive.cache_dir, settings.paths.journal_dir)
        self.cold = ColdReader(
            open_target(settings.archive.target), settings.archive.cache_dir, settings.archive.cache_max_bytes
        )
        self._known: set[str] = set()

    def instrument_known(self, name: str) -> bool:
        """Has the archive ever seen ``name``? (QuestDB, then the warm store; a store that
        cannot answer counts as yes: "no data in range" is the safer answer then.)"""
        if name in self._known:
            return True
        try:
            found = self.hot.instrument_known(name) or self.warm.instrument_known(name)
        except ApiError:
            return True
        if found:
            if len(self._known) >= KNOWN_CACHE:
                self._known.clear()
            self._known.add(name)
        return found

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
