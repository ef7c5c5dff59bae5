"""Schemathesis over the OpenAPI spec, against the ASGI app on the real stores: whatever
the generated parameters, no response is a 5xx (and every response conforms to the
status codes and content types the handlers produce)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api import data
from tests.api.conftest import make_settings
from tickarchive.api.app import create_app
from tickarchive.api.stores import Stores
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle


@pytest.fixture(scope="module")
def api_schema(
    questdb: QuestDBHandle, postgres: WarmHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    questdb.truncate_all()
    postgres.truncate_all()
    data.write(questdb, [*data.quotes(per_day=5), *data.trades(per_day=3), *data.book()])
    s = make_settings(questdb, postgres, tmp_path_factory.mktemp("schemathesis"), max_span_days=3)
    stores = Stores(s)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(s, stores))
    stores.close()


def _check(case: schemathesis.Case[Any]) -> None:
    response = case.call()
    if case.path == "/health" and response.status_code == 503:  # unhealthy by design: no collector here
        assert response.json()["status"] == "unhealthy"
        return
    assert response.status_code < 500, (case.path, case.query, response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "detail"}, body
        assert "Traceback" not in response.text


def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    """Each operation of the spec, 12 generated requests (positive and negative modes)."""
    paths = []
    for result in api_schema.get_all_operations():
        op = result.ok()  # type: ignore[union-attr]  # Err has no ok(): an invalid spec fails here
        paths.append(op.path)

        @given(case=op.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case[Any]) -> None:
            _check(case)

        run()
    assert sorted(paths) == sorted(
        ["/health", "/metrics", "/quotes", "/trades", "/gaps", "/chain", "/book", "/ohlcv", "/instruments", "/coverage",
         "/chain/snapshots", "/surface", "/book/snapshots", "/options_chain", "/condition"]
    )
