"""The live market as the public methods see it (``rpc.Catalog`` over ``MarketModel``)."""

from __future__ import annotations

from typing import Any

from tickarchive.loadtest.sim.config import CURRENCY
from tickarchive.loadtest.sim.market import MarketModel


class MarketCatalog:
    def __init__(self, model: MarketModel) -> None:
        self.model = model

    def instruments(self, currency: str, kind: str | None, expired: bool) -> list[dict[str, Any]]:
        if currency not in (CURRENCY, "any") or kind not in (None, "option", "any"):
            return []
        if expired:
            return [st.inst.description() for st in self.model.states.values() if st.inst.state != "open"]
        return [inst.description() for inst in self.model.listed()]

    def instrument_exists(self, name: str) -> bool:
        st = self.model.states.get(name)
        return st is not None and st.inst.state == "open"

    def index_price(self) -> float:
        return self.model.index_price

    def extra_channels(self) -> frozenset[str]:
        return frozenset()

    def locked(self) -> bool:
        return self.model.locked
