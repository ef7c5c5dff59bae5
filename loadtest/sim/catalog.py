"""The live market as the public methods see it (``rpc.Catalog`` over ``MarketModel``)."""

from __future__ import annotations

from typing import Any

from tickarchive.loadtest.sim import encode
from tickarchive.loadtest.sim.chain import COMBO, FUTURE, OPTION
from tickarchive.loadtest.sim.market import MarketModel

KIND_PARAMS = {"option": (OPTION,), "future": (FUTURE,), "option_combo": (COMBO,), "combo": (COMBO,)}
"""``kind`` parameter -> the instrument kinds it selects (``any`` / none: every kind)."""


class MarketCatalog:
    def __init__(self, model: MarketModel) -> None:
        self.model = model

    def currencies(self) -> tuple[str, ...]:
        return tuple(m.currency for m in self.model.currencies)

    def index_names(self) -> tuple[str, ...]:
        return tuple(m.index_name for m in self.model.currencies)

    def _selected(self, currency: str, kind: str | None) -> tuple[set[str], tuple[str, ...] | None]:
        curs = set(self.currencies()) if currency == "any" else {currency}
        kinds = None if kind in (None, "any") else KIND_PARAMS.get(kind, ())
        return curs, kinds

    def instruments(self, currency: str, kind: str | None, expired: bool) -> list[dict[str, Any]]:
        curs, kinds = self._selected(currency, kind)
        states = self.model.states.values()
        insts = [st.inst for st in states if st.inst.state != "open"] if expired else self.model.listed()
        return [i.description() for i in insts if i.currency in curs and (kinds is None or i.kind in kinds)]

    def combos(self, currency: str) -> list[dict[str, Any]]:
        """``public/get_combos``: every listed combo of ``currency`` with its legs."""
        curs, _ = self._selected(currency, None)
        out = []
        for inst in self.model.listed():
            if inst.kind == COMBO and inst.currency in curs:
                out.append(
                    {
                        "id": inst.name,
                        "state": "active",
                        "legs": [{"amount": int(r), "instrument_name": n} for n, r in inst.legs],
                        "creation_timestamp": inst.creation_ms,
                        "instrument_id": inst.instrument_id,
                        "state_timestamp": inst.creation_ms,
                    }
                )
        return out

    def ticker(self, name: str) -> dict[str, Any] | None:
        """``public/ticker``: the instrument's ticker now (every option priced at this
        instant, so a snapshot of the chain is consistent, as Deribit's)."""
        st = self.model.states.get(name)
        if st is None or st.inst.state not in ("open", "settlement"):
            return None
        self.model.sync(st)
        if st.inst.kind == COMBO:
            from tickarchive.loadtest.sim.lifecycle import price_combo

            price_combo(self.model, st)  # type: ignore[arg-type]
        d = encode.ticker_dict(self.model, st) if st.inst.kind != OPTION else self._option(st)
        d["timestamp"] = self.model.now_ms or 0
        return d

    def _option(self, st: Any) -> dict[str, Any]:
        self.model.ensure_priced(st)
        return encode.ticker_dict(self.model, st)

    def instrument_exists(self, name: str) -> bool:
        st = self.model.states.get(name)
        return st is not None and st.inst.state == "open"

    def index_price(self, index_name: str) -> float | None:
        for m in self.model.currencies:
            if m.index_name == index_name:
                return m.index_price
        return None

    def extra_channels(self) -> frozenset[str]:
        return frozenset()

    def locked(self) -> bool:
        return self.model.locked
