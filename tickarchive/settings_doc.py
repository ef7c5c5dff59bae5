"""Renders the settings reference (``docs/configuration.md``) from the settings model,
so that the documentation cannot drift from the code (a test compares them)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from tickarchive.settings import Settings

HEADER = """# Configuration

Every setting of tickarchive, generated from `tickarchive/settings.py`
(`tickarchive config reference > docs/configuration.md`; a test keeps this file in step).

Settings come from, highest priority first:

1. environment variables `TICKARCHIVE_<SECTION>__<FIELD>` — e.g.
   `TICKARCHIVE_QUESTDB__HTTP_PORT=9000`; a list comma-separated, `TICKARCHIVE_DERIBIT__CURRENCIES=ETH,BTC`,
   or as JSON, `TICKARCHIVE_DERIBIT__CURRENCIES='["ETH","BTC"]'`;
2. a TOML file named by `TICKARCHIVE_CONFIG` or `tickarchive --config FILE`, one table per section:

   ```toml
   [deribit]
   currencies = ["ETH", "BTC"]
   kinds = ["option", "future"]
   connections = 6

   [questdb]
   http_port = 9000
   ```
3. the defaults below.

Settings are validated at start-up; a bad value stops the command with one line per bad
setting naming where it came from and what is wrong, e.g.
`environment variable TICKARCHIVE_API__PORT: api.port = '99999' must be at most 65535` or
`/etc/tickarchive/tickarchive.toml line 4: questdb.http_port = 'abc' must be a whole number`; a
file that is not valid TOML is named with the line and column of the mistake, and an unknown
setting or section is named with the closest known one. `tickarchive config check` validates without doing
anything else; `tickarchive config show` prints the effective settings (passwords hidden).
Units are part of field names: `_s` seconds, `_ms` milliseconds, `_min` minutes, `_bytes`, `_mb`
mebibytes, `_days`, `_months`, `_per_s` per second.
"""


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _default(value: Any) -> str:
    value = _plain(value)
    try:
        text = json.dumps(value, default=str)
    except TypeError:
        text = str(value)
    return f"`{text}`"


def reference_markdown() -> str:
    out = [HEADER]
    for section, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        out.append(f"\n## `[{section}]`\n")
        doc = (model.__doc__ or "").strip()
        if doc:
            out.append(doc + "\n")
        out.append("| setting | environment variable | default | meaning |")
        out.append("|---|---|---|---|")
        for name, field in model.model_fields.items():
            env = f"TICKARCHIVE_{section.upper()}__{name.upper()}"
            default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
            if name == "cache_dir" and section == "paths":
                default = "~/.cache/tickarchive"
            out.append(f"| `{name}` | `{env}` | {_default(default)} | {field.description or ''} |")
    return "\n".join(out) + "\n"
