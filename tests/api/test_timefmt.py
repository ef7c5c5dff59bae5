"""Time parameters: every accepted form, and a clear InvalidRequest (never a ValueError,
which would be a 500) for anything else — found by schemathesis: '²' passes str.isdigit()."""

from __future__ import annotations

import pytest

from tickarchive.api.errors import InvalidRequest
from tickarchive.api.params import interval_minutes
from tickarchive.api.timefmt import parse_time

T = 1_764_000_000  # 2025-11-24T16:00:00Z


@pytest.mark.parametrize(
    ("text", "us"),
    [
        (str(T), T * 1_000_000),
        (str(T * 1000), T * 1_000_000),
        (str(T * 1_000_000), T * 1_000_000),
        ("2025-11-24T16:00:00Z", T * 1_000_000),
        ("2025-11-24T16:00:00.000001+00:00", T * 1_000_000 + 1),
    ],
)
def test_accepted_forms(text: str, us: int) -> None:
    assert parse_time("start", text) == us


@pytest.mark.parametrize("text", ["²", "-²", "1²", "١٢٣", "", "  ", "12345678901234567890123", "yesterday"])
def test_anything_else_is_an_invalid_request_naming_the_parameter(text: str) -> None:
    with pytest.raises(InvalidRequest, match="parameter 'start'"):
        parse_time("start", text)


@pytest.mark.parametrize("text", ["²m", "١h", "0m", "7m", "32d"])
def test_bad_intervals_are_invalid_requests(text: str) -> None:
    with pytest.raises(InvalidRequest, match="parameter 'interval'"):
        interval_minutes(text)
