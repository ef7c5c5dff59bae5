"""Settings: sources, validation messages, and the generated reference doc."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickarchive.settings import CONFIG_ENV, Settings, SettingsError, load_settings
from tickarchive.settings_doc import reference_markdown

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TICKARCHIVE_"):
            monkeypatch.delenv(key)


def test_defaults_are_valid_and_frozen() -> None:
    s = load_settings()
    assert s.deribit.currencies == ("ETH",)
    assert s.deribit.kinds == ("option",)
    assert s.deribit.channels_per_request == 250
    with pytest.raises(Exception, match="frozen"):
        s.questdb.http_port = 1  # type: ignore[misc]


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKARCHIVE_QUESTDB__HTTP_PORT", "9123")
    monkeypatch.setenv("TICKARCHIVE_DERIBIT__CURRENCIES", '["ETH","BTC"]')
    s = load_settings()
    assert s.questdb.http_port == 9123
    assert s.deribit.currencies == ("ETH", "BTC")


def test_toml_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "tickarchive.toml"
    cfg.write_text('[deribit]\nkinds = ["option", "future"]\nconnections = 6\n[api]\nport = 8100\n')
    monkeypatch.setenv("TICKARCHIVE_API__PORT", "8200")
    s = load_settings(cfg)
    assert s.deribit.kinds == ("option", "future")
    assert s.deribit.connections == 6
    assert s.api.port == 8200


def test_bad_value_names_the_setting_and_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKARCHIVE_DERIBIT__HEARTBEAT_INTERVAL_S", "5")
    with pytest.raises(SettingsError) as err:
        load_settings()
    msg = str(err.value)
    assert msg == (
        "environment variable TICKARCHIVE_DERIBIT__HEARTBEAT_INTERVAL_S: deribit.heartbeat_interval_s = '5' "
        "must be at least 10"
    )


def test_unknown_setting_in_toml_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[questdb]\nhttp_prot = 9000\n")
    with pytest.raises(SettingsError, match=r"line 2: questdb has no setting 'http_prot' \(did you mean http_port\?\)"):
        load_settings(cfg)


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(SettingsError, match="no such file"):
        load_settings()


def test_configuration_doc_is_generated_from_the_model() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == reference_markdown(), "regenerate: tickarchive config reference > docs/configuration.md"
    for section, info in Settings.model_fields.items():
        assert info.annotation is not None
        for name in info.annotation.model_fields:  # type: ignore[union-attr]
            assert f"TICKARCHIVE_{section.upper()}__{name.upper()}" in doc


def test_a_list_from_the_environment_may_be_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKARCHIVE_DERIBIT__CURRENCIES", "ETH,BTC")
    monkeypatch.setenv("TICKARCHIVE_DERIBIT__KINDS", " option , future ")
    s = load_settings()
    assert s.deribit.currencies == ("ETH", "BTC")
    assert s.deribit.kinds == ("option", "future")


def test_a_malformed_list_is_explained_in_plain_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKARCHIVE_DERIBIT__CURRENCIES", '["ETH",')
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == (
        "environment variable TICKARCHIVE_DERIBIT__CURRENCIES: deribit.currencies = '[\"ETH\",' is neither a "
        "comma-separated list nor a JSON list: write ETH,BTC or [\"ETH\",\"BTC\"]"
    )


def test_a_bad_value_in_the_file_names_the_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "tickarchive.toml"
    cfg.write_text('# local settings\n[api]\nhost = "127.0.0.1"\n\n[questdb]\nhttp_port = "abc"\n')
    with pytest.raises(SettingsError) as err:
        load_settings(cfg)
    assert str(err.value) == f"{cfg} line 6: questdb.http_port = 'abc' must be a whole number"
    assert "TICKARCHIVE_" not in str(err.value)


def test_a_dotted_key_and_the_environment_are_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "tickarchive.toml"
    cfg.write_text("api.port = 70000\nquestdb.http_port = 0\n")
    monkeypatch.setenv(CONFIG_ENV, str(cfg))
    monkeypatch.setenv("TICKARCHIVE_QUESTDB__HTTP_PORT", "99999")  # wins over the file: the culprit
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).splitlines() == [
        "invalid settings:",
        "  environment variable TICKARCHIVE_QUESTDB__HTTP_PORT: questdb.http_port = '99999' must be at most 65535",
        f"  {cfg} line 1: api.port = 70000 must be at most 65535",
    ]


def test_a_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[questdb]\nhttp_port = \n")
    with pytest.raises(SettingsError) as err:
        load_settings(cfg)
    assert str(err.value) == f"config file {cfg} is not valid TOML: Invalid value (at line 2, column 13)"


def test_unknown_names_are_pointed_at_the_closest_known_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "typo.toml"
    cfg.write_text("[questdb]\nhtp_port = 9000\n\n[quesdb]\nuser = 'x'\n")
    with pytest.raises(SettingsError) as err:
        load_settings(cfg)
    assert str(err.value).splitlines() == [
        "invalid settings:",
        f"  {cfg} line 2: questdb has no setting 'htp_port' (did you mean http_port?)",
        f"  {cfg} line 4: there is no settings section 'quesdb' (did you mean questdb?)",
    ]
    monkeypatch.setenv("TICKARCHIVE_QESTDB__HTTP_PORT", "9000")
    with pytest.raises(SettingsError, match=r"^environment variable TICKARCHIVE_QESTDB__HTTP_PORT: there is no "
                       r"settings section 'qestdb' \(did you mean questdb\?\); sections: paths, questdb"):
        load_settings()


def test_a_section_as_malformed_json_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKARCHIVE_DERIBIT", "{")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == (
        "environment variable TICKARCHIVE_DERIBIT: not a JSON object; set one setting at a time instead, "
        "e.g. TICKARCHIVE_DERIBIT__<SETTING>=value"
    )


def test_the_cli_prints_the_source_on_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text("[questdb]\nhttp_port = 'abc'\n")
    ta = str(Path(sys.executable).parent / "tickarchive")
    proc = subprocess.run([ta, "--config", str(cfg), "config", "check"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "TICKARCHIVE_DERIBIT__CURRENCIES": "ETH,BTC"})
    assert proc.returncode == 1
    assert proc.stderr == f"error: {cfg} line 2: questdb.http_port = 'abc' must be a whole number\n"
