"""An API app over the real test stores (QuestDB + a warm store + a local archive)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tickarchive.api.app import create_app
from tickarchive.api.stores import Stores
from tickarchive.settings import ApiSettings, ArchiveSettings, Settings, StreamSettings
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle


def make_settings(questdb: QuestDBHandle, warm: WarmHandle, tmp: Path, **api: Any) -> Settings:
    return Settings(
        questdb=questdb.settings(),
        postgres=warm.settings(),
        archive=ArchiveSettings(target=str(tmp / "lake"), cache_dir=tmp / "cache"),
        api=ApiSettings(**{"health_cache_s": 0.0, **api}),
        stream=StreamSettings(publish_socket=tmp / "stream.sock"),
    )


class Api:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stores = Stores(settings)
        self.client = TestClient(create_app(settings, self.stores), raise_server_exceptions=False)
        self.client.__enter__()  # the lifespan: background refreshes, the stream hub

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params)
        assert r.status_code == 200, (path, params, r.status_code, r.text)
        return r.json()

    def wait_for_store_figures(self, timeout_s: float = 120.0) -> None:
        """Wait until the start-up background refresh of the store-derived ``/metrics``
        figures (``tickarchive_storage_bytes``...) has finished: on a loaded machine it can
        still be running at a test's first scrape (the deadline only bounds a failure)."""
        gauges = self.client.app.state.ctx.metrics.gauges  # type: ignore[attr-defined]
        deadline = time.monotonic() + timeout_s
        while gauges._refreshed_at is None:  # set when a refresh has finished
            assert time.monotonic() < deadline, "the start-up refresh of the /metrics figures did not finish"
            time.sleep(0.02)  # polling a condition

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.stores.close()


@pytest.fixture
def api_pg(questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path) -> Iterator[Api]:
    api = Api(make_settings(questdb_clean, postgres_clean, tmp_path))
    yield api
    api.close()
