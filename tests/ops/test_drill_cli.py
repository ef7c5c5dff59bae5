"""The runbook's commands, as an operator types them, on the real Deribit capture.

The real capture (``tests/fixtures/deribit/real/cryptofeed_2021-07-22_DERIBIT.ws.1.0``) is
journaled as the collector does (small segments, acknowledged), then every command of
``docs/runbook.md`` sections 2a step 3 and 3 runs through the CLI against the session
QuestDB and PostgreSQL: ``journal verify/export``, ``replay --questdb``, ``rollover``,
``archive export/verify/journal/verify-journal/ls``, ``archive restore-journal`` of an
archived journal day, and finally ``tickarchive drill``, which must find the rebuild
identical.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from tests.real import WS_CAPTURE
from tickarchive.cli import app
from tickarchive.ingest.journal import Journal
from tickarchive.ingest.journal.capture import read_capture
from tickarchive.store.stack.handles import QuestDBHandle, WarmHandle

CAPTURE = WS_CAPTURE


def _journal_capture(directory: Path) -> int:
    """Journal the capture's frames with their receive times; returns the record count."""
    _, records = read_capture(CAPTURE)
    with Journal.open(directory, segment_bytes=64 * 1024) as j:
        last = 0
        for r in records:
            last = j.append(r.frame, r.recv_ts_us, "c0")
        j.sync()
        j.commit(last)
    return last


def test_runbook_commands_then_drill(tmp_path: Path, questdb_clean: QuestDBHandle, postgres_clean: WarmHandle) -> None:
    qdb, warm = questdb_clean, postgres_clean
    journal, lake = tmp_path / "journal", tmp_path / "lake"
    env = {
        "TICKARCHIVE_PATHS__LOCAL_DIR": str(tmp_path / "local"),
        "TICKARCHIVE_QUESTDB__HTTP_PORT": str(qdb.http_port),
        "TICKARCHIVE_QUESTDB__PG_PORT": str(qdb.pg_port),
        "TICKARCHIVE_QUESTDB__HEALTH_PORT": str(qdb.health_port),
        "TICKARCHIVE_POSTGRES__DSN": warm.owner_dsn,
        "TICKARCHIVE_ARCHIVE__TARGET": str(lake),
        "TICKARCHIVE_ARCHIVE__STAGING_DIR": str(tmp_path / "staging"),
    }
    runner = CliRunner()

    def ta(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    records = _journal_capture(journal)
    assert records == 136

    # 2a step 3: export the journal and replay it into QuestDB
    ta("journal", "verify", "--dir", str(journal))
    frames = tmp_path / "rebuild.frames"
    assert "exported 136 frames" in ta("journal", "export", "--dir", str(journal), "--out", str(frames)).output
    out = ta("replay", str(frames), "--questdb").output
    assert "quotes: 89 rows" in out
    assert "book_changes: 152 rows" in out
    qdb.wait_for_rows("quotes", 89)
    qdb.wait_for_rows("book_changes", 152)

    # 3 step 5: roll the replayed day over (the collector's heartbeat after midnight seals it)
    qdb.query("INSERT INTO collector_heartbeats (ts, connection, connected, subscribed_channels, frames_total, "
              "journal_backlog_bytes) VALUES ('2021-07-23T00:05:00.000000Z', 'c0', true, 3, 1, 0)")
    qdb.wait_for_wal()
    out = ta("rollover", "--now", "2021-07-23T01:00:00Z").output
    assert "2021-07-22: sealed" in out
    assert warm.query("SELECT count(*) FROM quotes")[0][0] == 89

    # the archive timers' commands (the empty tables of this capture are left out)
    ta("archive", "export", "--month", "2021-07", "--table", "quotes", "--table", "book_changes")
    assert "quotes 2021-07: OK (1 files, 89 rows)" in ta("archive", "verify").output
    out = ta("archive", "journal", "--day", "2021-07-22", "--journal-dir", str(journal)).output
    assert "journal 2021-07-22: archived, 1 segments" in out  # the open segment stays local
    assert "journal 2021-07-22: OK" in ta("archive", "verify-journal").output
    assert "2021-07-22" in ta("archive", "ls").output

    # 3 step 4: an archived journal day back (decoded, checked byte for byte), verified and exported
    restore = tmp_path / "restore"
    out = ta("archive", "restore-journal", "--day", "2021-07-22", "--dir", str(restore / "journal")).output
    assert "journal 2021-07-22: 1 segments restored" in out
    ta("journal", "verify", "--dir", str(restore / "journal"))
    again = restore / "frames"
    out = ta("journal", "export", "--dir", str(restore / "journal"), "--out", str(again)).output
    archived_lines = again.read_bytes().splitlines()
    assert f"exported {len(archived_lines)} frames" in out
    assert 0 < len(archived_lines) < records
    assert frames.read_bytes().splitlines()[: len(archived_lines)] == archived_lines

    # 3: the whole rebuild, compared with the original
    # (no --workdir: the drill's own temporary dir, which PostgreSQL running as its own user can reach)
    out = ta("drill", "--journal-dir", str(journal), "--until", "2021-07-23").output
    assert "drill OK: 2 table-days identical" in out
    assert "1 archived segments (1 days), 1 local segments" in out
    for line in ("quotes", "book_changes"):
        assert "original hot, original warm, rebuilt hot (journal), rebuilt warm (archive)" in next(
            x for x in out.splitlines() if x.strip(" │┃").startswith(line)
        )
