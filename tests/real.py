"""The real captured Deribit messages under tests/fixtures/deribit/real/ (provenance in
its SOURCES.md), for every test that checks a parser, the simulator or a store against
real data."""

from __future__ import annotations

import json
from pathlib import Path

REAL = Path(__file__).resolve().parent / "fixtures" / "deribit" / "real"
WS_CAPTURE = REAL / "cryptofeed_2021-07-22_DERIBIT.ws.1.0"
REST_CAPTURE = REAL / "cryptofeed_2021-07-22_DERIBIT.0"
NAUTILUS = REAL / "nautilus"


def nautilus_frame(name: str) -> bytes:
    """A nautilus fixture re-serialised compactly (they are pretty-printed)."""
    return json.dumps(json.loads((NAUTILUS / name).read_text()), separators=(",", ":")).encode()
