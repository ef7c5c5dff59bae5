"""An API app over the real test stores (QuestDB + plain PostgreSQL + a local archive)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Api, make_settings
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle


@pytest.fixture
def api(questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path) -> Iterator[Api]:
    a = Api(make_settings(questdb_clean, postgres_clean, tmp_path))
    yield a
    a.close()
