"""The instruments the collector follows: listings and expiries from the venue's
instrument lists (a periodic reconcile) and its instrument-state notifications in between.
Venue-neutral: the venue says which states stay subscribed (``Venue.live_states``) and the
channel plan which currencies and kinds are wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tickarchive.domain import InstrumentEvent
from tickarchive.venue import ChannelPlan


@dataclass(slots=True)
class InstrumentSet:
    """The instruments followed, by name (latest description or state seen)."""

    plan: ChannelPlan
    live_states: frozenset[str]
    known: dict[str, InstrumentEvent] = field(default_factory=dict)

    def live_names(self) -> set[str]:
        return {n for n, e in self.known.items() if e.state in self.live_states}

    def counts_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.known.values():
            if e.state in self.live_states:
                k = e.kind or "unknown"
                out[k] = out.get(k, 0) + 1
        return out

    def wanted(self, e: InstrumentEvent) -> bool:
        kind_ok = e.kind is None or e.kind in self.plan.kinds
        cur = e.base_currency
        cur_ok = cur is None or cur in self.plan.currencies or not self.plan.currencies
        return kind_ok and cur_ok

    def reconcile(self, listed: Sequence[InstrumentEvent]) -> tuple[list[str], list[str]]:
        """A fresh ``get_instruments`` answer (non-expired) → (added, removed) names."""
        before = self.live_names()
        fresh = {e.instrument: e for e in listed if self.wanted(e) and e.state in self.live_states}
        added = sorted(set(fresh) - before)
        removed = sorted(before - set(fresh))
        for name, e in fresh.items():
            self.known[name] = e
        for name in removed:
            old = self.known[name]
            self.known[name] = InstrumentEvent(old.instrument, old.ts_us, old.recv_ts_us, "inactive", kind=old.kind)
        return added, removed

    def on_state(self, e: InstrumentEvent) -> tuple[list[str], list[str]]:
        """An ``instrument.state`` notification → (added, removed) names."""
        old = self.known.get(e.instrument)
        was_live = old is not None and old.state in self.live_states
        now_live = e.state in self.live_states
        if old is None:
            self.known[e.instrument] = e
        else:
            self.known[e.instrument] = InstrumentEvent(
                old.instrument,
                e.ts_us,
                e.recv_ts_us,
                e.state,
                kind=old.kind or e.kind,
                base_currency=old.base_currency,
            )
        if now_live and not was_live:
            return [e.instrument], []
        if was_live and not now_live:
            return [], [e.instrument]
        return [], []
