from __future__ import annotations

import json
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "deribit" / "real"
WS_CAPTURE = REAL / "cryptofeed_2021-07-22_DERIBIT.ws.1.0"
REST_CAPTURE = REAL / "cryptofeed_2021-07-22_DERIBIT.0"
NAUTILUS = REAL / "nautilus"


def nautilus_frame(name: str) -> bytes:
    """A nautilus fixture re-serialised compactly (they are pretty-printed)."""
    return json.dumps(json.loads((NAUTILUS / name).read_text()), separators=(",", ":")).encode()


@pytest.fixture(scope="session")
def ws_records():
    from tickarchive.ingest.journal.capture import read_capture

    _, records = read_capture(WS_CAPTURE)
    return list(records)
