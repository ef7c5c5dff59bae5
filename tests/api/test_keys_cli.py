"""``tickarchive keys add | list | revoke | usage`` against a real warm store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tickarchive.api.keys import digest
from tickarchive.cli import app
from tickarchive.store.stack.handles import WarmHandle


@pytest.fixture
def runner(postgres_clean: WarmHandle, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TICKARCHIVE_POSTGRES__DSN", postgres_clean.owner_dsn)
    return CliRunner()


def test_keys_commands(runner: CliRunner, postgres_clean: WarmHandle) -> None:
    r = runner.invoke(app, ["keys", "add", "--plan", "researcher", "--label", "lab", "--json"])
    assert r.exit_code == 0, r.output
    issued = json.loads(r.output)
    assert issued["plan"] == "researcher"
    assert postgres_clean.query("SELECT key_sha256 FROM api_keys") == [(digest(issued["key"]),)]
    r = runner.invoke(app, ["keys", "add", "--plan", "gold"])
    assert r.exit_code != 0
    assert "is not one of free, professional, researcher" in str(r.exception)  # main() prints it as one line
    r = runner.invoke(app, ["keys", "list"])
    assert issued["key_id"] in r.output
    assert issued["key"] not in r.output
    postgres_clean.query(
        "INSERT INTO api_usage (key_id, day, requests, rows) VALUES (%s, current_date, 3, 42)", (issued["key_id"],)
    )
    r = runner.invoke(app, ["keys", "usage", "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.output.splitlines()[0])
    assert (row["key_id"], row["requests"], row["rows"]) == (issued["key_id"], 3, 42)
    r = runner.invoke(app, ["keys", "revoke", issued["key_id"]])
    assert r.exit_code == 0, r.output
    assert "revoked" in r.output
    assert issued["key_id"] not in runner.invoke(app, ["keys", "list"]).output
    assert issued["key_id"] in runner.invoke(app, ["keys", "list", "--all"]).output
    assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code == 1
