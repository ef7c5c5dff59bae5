"""SQL literals for QuestDB's HTTP ``/exp``, which takes no bind parameters (pure).

Everywhere else the API sends values as bind parameters. ``/exp`` (the fast hot-tier
export) cannot, so the few values it needs are rendered here, and only from inputs that
were already validated into a closed form:

* ``text``: instrument names (``api.params.NAME_RE``), the anchored regexes built from
  instrument patterns (``GLOB_RE``: letters, digits, ``_ - . * ^ $``) and chain regexes
  (``api.chain.chain_regex``: adds ``[ ] +``), the atomic groups of QuestDB's linear
  form of a pattern (``( ) >``) and the alternations of a stream's instrument list
  (``| :``). The value must consist only of ``SAFE_TEXT_CHARS`` — no quote, backslash,
  whitespace, semicolon or comment marker — so wrapping it in single quotes cannot end
  the literal: the rendered literal denotes exactly the value, as a bound parameter would.
* ``integer``: a Python ``int`` (not ``bool``) rendered by ``int.__str__`` (digits and an
  optional minus sign).
* ``timestamp_us``: integer µs since the epoch rendered as an ISO-8601 UTC literal
  (digits, ``- : . T Z``) that QuestDB reads as a timestamp (and uses for interval scans).

Anything else raises ``InlineRefused`` and the caller uses the PG-wire path with bind
parameters. Table and column names never come from here: they come from
``tickarchive.tables``.
"""

from __future__ import annotations

import datetime as dt
import re

from tickarchive.api.errors import ApiError

SAFE_TEXT_CHARS = "A-Za-z0-9_.*?^$+()>|:\\[\\]-"
_SAFE_TEXT = re.compile(f"[{SAFE_TEXT_CHARS}]{{1,200}}")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MIN_US = 0
MAX_US = 4_102_444_800_000_000
"""2100-01-01: the API accepts no later time."""


class InlineRefused(ApiError):
    """A value that may not be inlined into SQL (the caller must bind it instead)."""


def text(value: str) -> str:
    if type(value) is not str or not _SAFE_TEXT.fullmatch(value):
        raise InlineRefused(f"not an inlinable text value: {value!r:.80}")
    return f"'{value}'"


def integer(value: int) -> str:
    if type(value) is not int:
        raise InlineRefused(f"not an integer: {value!r:.80}")
    return str(value)


def timestamp_us(value: int) -> str:
    if type(value) is not int or not MIN_US <= value <= MAX_US:
        raise InlineRefused(f"not a timestamp in µs within 1970..2100: {value!r:.80}")
    stamp = _EPOCH + dt.timedelta(microseconds=value)
    return f"'{stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z'"
