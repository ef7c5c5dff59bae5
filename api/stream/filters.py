"""Which rows a stream subscription wants (pure).

A subscription names channels (tables) and instruments: names, ``*``/``?`` patterns
(``api.params``: the same rules and limits as REST), or a currency (``ETH`` = ``ETH-*``);
none = every instrument. ``Filter.key`` identifies equal subscriptions, so the hub encodes
a batch once per distinct key and sends the same bytes to every client holding it.

Gap rows that are not about one instrument (``*``: a whole connection or the collector;
a channel name such as ``trades.option.ETH.100ms``) go to every ``gaps`` subscriber.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tickarchive.api import params as p
from tickarchive.api.errors import InvalidRequest

MEMO_MAX = 50_000


@dataclass(frozen=True, slots=True)
class Filter:
    channels: frozenset[str]
    names: frozenset[str]
    """Exact instrument names."""
    patterns: tuple[str, ...]
    """Portable anchored regexes of the glob patterns."""
    everything: bool
    fmt: str
    atomic: tuple[str, ...] = ()
    """The same patterns in the form QuestDB and Python match in linear time."""
    _memo: dict[str, bool] = field(default_factory=dict, compare=False, hash=False)
    _compiled: tuple[re.Pattern[str], ...] = field(default=(), compare=False, hash=False)

    @property
    def key(self) -> tuple[object, ...]:
        return (self.channels, self.names, self.patterns, self.everything, self.fmt)

    def wants(self, channel: str, instrument: str | None) -> bool:
        if channel not in self.channels:
            return False
        if self.everything or instrument is None:
            return True
        if channel == "gaps" and (instrument == "*" or "." in instrument):
            return True
        hit = self._memo.get(instrument)
        if hit is None:
            hit = instrument in self.names or any(rx.match(instrument) for rx in self._compiled)
            if len(self._memo) >= MEMO_MAX:
                self._memo.clear()
            self._memo[instrument] = hit
        return hit

    def match(self) -> p.InstrumentMatch | None:
        """One store-side match for the whole instrument list (replay): None = all."""
        if self.everything:
            return None
        parts = [f"^{n}$" for n in sorted(self.names)] + list(self.patterns)
        if len(parts) == 1 and self.names:
            return p.InstrumentMatch("instrument", exact=next(iter(self.names)))
        regex = "|".join(f"(?:{x})" for x in parts)
        return p.InstrumentMatch("instrument", regex=regex, atomic_regex=self._atomic())

    def _atomic(self) -> str:
        parts = [f"^{n}$" for n in sorted(self.names)] + list(self.atomic)
        return "|".join(f"(?:{x})" for x in parts)


def build(
    channels: Sequence[str], instruments: Sequence[str], currency: str | None, fmt: str, max_patterns: int,
    max_wildcards: int,
) -> Filter:
    wanted = list(instruments)
    if currency:
        wanted.append(f"{p.currency(currency)}-*")
    if len(wanted) > max_patterns:
        raise InvalidRequest(f"{len(wanted)} instruments/patterns; at most {max_patterns} (stream.max_patterns)")
    names: set[str] = set()
    patterns: dict[str, str] = {}
    everything = not wanted
    for text in wanted:
        if text.strip() == "*":
            everything = True
            continue
        m = p.instrument_match(text, name="instruments", max_wildcards=max_wildcards)
        if m.exact is not None:
            names.add(m.exact)
        elif m.regex is not None:
            patterns[m.regex] = m.atomic_regex or m.regex
    if everything:
        return Filter(frozenset(channels), frozenset(), (), True, fmt)
    portable = tuple(sorted(patterns))
    atomic = tuple(patterns[rx] for rx in portable)
    return Filter(
        frozenset(channels), frozenset(names), portable, False, fmt, atomic, {},
        tuple(re.compile(rx) for rx in atomic),
    )
