"""The operations documents stay in step with the code: the data dictionary is generated
from the table registry, every alert and timer is documented, and every test the runbook
cites as proof exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tickarchive.ops.data_dictionary import data_dictionary_markdown, unit
from tickarchive.tables import ALL_TABLES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_data_dictionary_is_generated_from_the_registry() -> None:
    doc = (DOCS / "data-dictionary.md").read_text()
    assert doc == data_dictionary_markdown(), (
        "regenerate: tickarchive report data-dictionary > docs/data-dictionary.md"
    )


def test_every_column_has_a_unit() -> None:
    for t in ALL_TABLES:
        for c in t.columns:
            assert unit(t, c.name), f"{t.name}.{c.name}"
    doc = data_dictionary_markdown()
    assert "| `bid_iv` | double | percent | yes |" in doc
    assert "| `ts` (key) | timestamp | UTC, µs since epoch | no |" in doc
    assert "| `price` | double | USD | no | index price (USD) |" in doc  # index_ticks.price


def test_operations_documents_every_alert_and_timer() -> None:
    ops = (DOCS / "operations.md").read_text()
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert f"`{rule['alert']}`" in ops, f"docs/operations.md does not explain {rule['alert']}"
    for timer in sorted((ROOT / "deploy" / "systemd").glob("*.timer")):
        assert f"`{timer.name}`" in ops, f"docs/operations.md does not list {timer.name}"


def test_runbook_cites_only_tests_that_exist() -> None:
    runbook = (DOCS / "runbook.md").read_text()
    for title in ("## 1. Collector crash", "## 2. Database corruption", "## 3. Server loss"):
        assert title in runbook
    cited = re.findall(r"\[tested: ([^\]]+)\]", runbook)
    assert len(cited) >= 15
    for ref in (c for c in cited if "<file>" not in c):
        path, _, names = ref.partition("::")
        path = re.sub(r"\s+", "", path)
        source = (ROOT / path).read_text()
        for name in filter(None, (n.strip() for n in names.split(","))):
            assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), f"runbook cites {path}::{name}"


def test_warm_store_tables_are_documented_from_their_sql() -> None:
    from tickarchive.ops.data_dictionary import WARM_TABLES, warm_sql_columns

    columns = warm_sql_columns()
    assert set(columns) == set(WARM_TABLES)
    assert [c[0] for c in columns["rollover_ledger"]] == [
        "day", "table_name", "rows_hot", "rows_warm", "checksum_hot", "checksum_warm", "status", "loaded_at"
    ]
    assert ("trade_count", "bigint", False) in columns["trades_1m"]
    doc = data_dictionary_markdown()
    assert "| `mean_spread` | double precision | base coin (options); USD (futures) | yes |" in doc
