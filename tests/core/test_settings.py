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
    assert "deribit.heartbeat_interval_s" in msg
    assert "TICKARCHIVE_DERIBIT__HEARTBEAT_INTERVAL_S" in msg
    assert "greater than or equal to 10" in msg


def test_unknown_setting_in_toml_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[questdb]\nhttp_prot = 9000\n")
    with pytest.raises(SettingsError, match=r"questdb\.http_prot"):
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
