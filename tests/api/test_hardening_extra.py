"""#17 hardening findings whose main tests did not fail on the code before the hardening
(736b5b7), each reproduced here so that it does (docs/hardening-evidence.md):

* 5: ``/coverage`` read every row before checking ``api.max_rows`` (the main test checks only
  the 413, which the old code answered too, after reading everything);
* 5: a 503 carried raw exception text: here the archive manifest's file path;
* 6: the OpenAPI document says what the API accepts: every query parameter of the ten
  operations the finding counted carries a pattern, an enum or a range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api import data
from tests.api.conftest import Api, make_settings
from tickarchive.api.pool import Pool
from tickarchive.archive import layout
from tickarchive.months import Month
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

Q = {"instrument": "ETH-30OCT26-3000-*", "start": "2026-10-05", "end": "2026-10-06"}


def test_coverage_reads_at_most_max_rows_plus_one(
    questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stores hand /coverage at most ``api.max_rows + 1`` coverage rows (the one more
    proves the answer too large), however many (day, instrument, table) rows exist."""
    data.write(questdb_clean, [*data.quotes(), *data.trades()])
    existing = len({(q.instrument, q.ts_us // 86_400_000_000) for q in data.quotes()}) + len(
        {(t.instrument, t.ts_us // 86_400_000_000) for t in data.trades()}
    )
    read: list[int] = []
    real = Pool.fetch

    def counted(self: Pool, sql: Any, params: Any = None, **kw: Any) -> Any:
        rows = real(self, sql, params, **kw)
        text = str(sql)
        if "coverage_daily" in text or "GROUP BY" in text:  # the coverage statements of both tiers
            read.append(len(rows))
        return rows

    monkeypatch.setattr(Pool, "fetch", counted)
    api = Api(make_settings(questdb_clean, postgres_clean, tmp_path, max_rows=3))
    try:
        r = api.client.get("/coverage", params={"start_day": "2026-10-05", "end_day": "2026-10-07"})
    finally:
        api.close()
    assert r.status_code == 413
    assert existing > 20
    assert sum(read) <= 3 + 1, (read, existing)


def test_a_503_names_no_server_path(questdb_clean: QuestDBHandle, postgres_clean: WarmHandle, tmp_path: Path) -> None:
    """An unreadable archive manifest: the client gets a stable message and the request id,
    never the file path (nor the decoder's message) — those go to the server log."""
    data.write(questdb_clean, data.quotes())
    for day in data.DAYS[:2]:  # rolled over and dropped from the warm store: the month is cold
        postgres_clean.query(
            "INSERT INTO rollover_ledger (day, table_name, status) VALUES (%s, 'quotes', 'dropped')", (day,)
        )
    manifest = tmp_path / "lake" / layout.manifest_key("quotes", Month(2026, 10))
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"not": "a manifest"')
    api = Api(make_settings(questdb_clean, postgres_clean, tmp_path))
    try:
        r = api.client.get("/quotes", params=Q)
    finally:
        api.close()
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "store_unavailable"
    for leak in (str(tmp_path), "_manifests", "month=2026-10.json"):
        assert leak not in r.text, (leak, body)
    assert body["request_id"] == r.headers["X-Request-Id"]  # the server log has the cause under this id


def _constraint(param: dict[str, Any], doc: dict[str, Any]) -> str | None:
    """What the document says a query parameter may be: a pattern, an enum or a range."""
    schema = param["schema"]
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
    found = []
    for o in options:
        if "$ref" in o:
            o = doc["components"]["schemas"][o["$ref"].rsplit("/", 1)[1]]
        if "pattern" in o:
            found.append("pattern")
        elif "enum" in o or "const" in o:
            found.append("enum")
        elif o.get("type") in ("integer", "number") and "minimum" in o and "maximum" in o:
            found.append("range")
        elif o.get("type") == "boolean":
            found.append("boolean")
        else:
            return None
    return "/".join(found) or None


FINDING_6_OPERATIONS = ("/health", "/metrics", "/quotes", "/trades", "/gaps", "/chain", "/book", "/ohlcv",
                        "/instruments", "/coverage", "/chain/snapshots", "/surface", "/book/snapshots",
                        "/options_chain", "/condition")
"""The ten operations schemathesis was run on when #17 was written, and the product endpoints
of #16 (docs/hardening-evidence.md)."""


def test_the_document_states_what_every_query_parameter_accepts(api_pg: Api) -> None:
    doc = api_pg.get("/openapi.json")
    loose = []
    for path in FINDING_6_OPERATIONS:
        for p in doc["paths"][path]["get"].get("parameters", []):
            if p["in"] == "query" and _constraint(p, doc) is None:
                loose.append(f"{path}?{p['name']} {p['schema']}")
    assert loose == [], "\n".join(loose)
    quotes = {p["name"]: p for p in doc["paths"]["/quotes"]["get"]["parameters"]}
    limit = next(o for o in quotes["limit"]["schema"].get("anyOf", [quotes["limit"]["schema"]]) if "maximum" in o)
    assert (limit["minimum"], limit["maximum"]) == (1, api_pg.settings.api.max_rows)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/chain/snapshots", {"currency": "ETH", "interval": "1d"}),
        ("/surface", {"currency": "ETH", "interval": "1d"}),
        ("/book/snapshots", {"instrument": "ETH-27DEC24-4000-C", "interval": "1d"}),
        ("/condition", {}),
    ],
)
def test_products_have_their_own_span_bound(api_pg: Api, path: str, params: dict[str, str]) -> None:
    """Products read their range window by window: ``api.products_max_span_days`` (31) bounds
    them before any store is read, whatever the row queries' ``api.max_span_days`` allows."""
    r = api_pg.client.get(path, params={**params, "start": "2026-01-01", "end": "2026-02-02"})
    assert r.status_code == 422, r.text
    assert "api.products_max_span_days" in r.json()["detail"]
    assert "31 days" in r.json()["detail"]
