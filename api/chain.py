"""Which instruments make up an option chain at an instant (pure).

Deribit option names are ``{CURRENCY}-{DMMMYY}-{STRIKE}-{C|P}`` (strike may use ``d`` as
decimal point, e.g. ``XRP_USDC-30JUN25-2d4-C``); options expire at 08:00 UTC on their
expiry date. An option is *live* at ``at`` when it has not yet expired.
"""

from __future__ import annotations

import datetime as dt
import re

from tickarchive.api.timefmt import dt_to_us

_OPTION_RE = re.compile(r"^([A-Z0-9_]+)-(\d{1,2})([A-Z]{3})(\d{2})-([0-9d]+)-([CP])$")
_MONTHS = {
    m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
}
EXPIRY_HOUR_UTC = 8


def option_expiry_us(name: str) -> int | None:
    """Expiry of an option as µs since the epoch; None if ``name`` is not an option name."""
    m = _OPTION_RE.match(name)
    if not m or m.group(3) not in _MONTHS:
        return None
    try:
        day = dt.datetime(2000 + int(m.group(4)), _MONTHS[m.group(3)], int(m.group(2)), EXPIRY_HOUR_UTC, tzinfo=dt.UTC)
    except ValueError:
        return None
    return dt_to_us(day)


def chain_regex(currency: str) -> str:
    """Anchored regex of the option names of ``currency`` (no future/perpetual)."""
    return f"^{currency}-[0-9]+[A-Z]+[0-9]+-[0-9d]+-[CP]$"


def live(name: str, at_us: int) -> bool:
    exp = option_expiry_us(name)
    return exp is not None and exp > at_us
