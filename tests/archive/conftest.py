"""Shared fixtures: a small synthetic month in memory, local and B2 (simulator) targets."""

from __future__ import annotations

from pathlib import Path

import pytest
from b2sdk.v2 import B2Api, B2HttpApiConfig, InMemoryAccountInfo, InMemoryCache, RawSimulator

from tickarchive.archive import synthetic
from tickarchive.archive.b2_target import B2Target
from tickarchive.archive.export import ExportOptions
from tickarchive.archive.local_target import LocalTarget
from tickarchive.archive.memory import MemoryStore
from tickarchive.months import Month
from tickarchive.tables import BOOK_CHANGES, QUOTES, TRADES

MONTH = Month(2026, 11)
OPTIONS = ExportOptions(zstd_level=3, row_group_rows=1000, file_rows=2000)


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore(batch_rows=700)
    s.insert(QUOTES, synthetic.quotes(4500, MONTH, n_instruments=40))
    s.insert(TRADES, synthetic.trades(900, MONTH, n_instruments=40))
    s.insert(BOOK_CHANGES, synthetic.book_changes(1500, MONTH, n_instruments=40))
    return s


@pytest.fixture
def local(tmp_path: Path) -> LocalTarget:
    return LocalTarget(tmp_path / "lake")


class B2Env:
    def __init__(self) -> None:
        self.api = B2Api(
            InMemoryAccountInfo(), cache=InMemoryCache(), api_config=B2HttpApiConfig(_raw_api_class=RawSimulator)
        )
        self.sim: RawSimulator = self.api.session.raw_api
        key_id, key = self.sim.create_account()
        self.api.authorize_account("production", key_id, key)
        self.api.create_bucket("tick-lake", "allPrivate")

    def target(self, *, small_uploads: bool = False) -> B2Target:
        """``small_uploads`` keeps files on the single-request path, where the simulator
        injects ``set_upload_errors``."""
        return B2Target(self.api, "tick-lake", "lake", min_part_size_bytes=10_000_000 if small_uploads else None)


@pytest.fixture
def b2() -> B2Env:
    return B2Env()
