"""Listings and the life cycle on the simulated clock (pure, over a ``MarketModel``).

* **Listing**: per currency the option chain (``chain.expiry_schedule`` and Deribit's
  strike grid), the perpetual and the dated futures (one per weekly, monthly and
  quarterly expiry), ``config.combos`` option combos over listed strikes near the money.
  An instrument listed before the last 08:00 UTC carries that settlement's price; one
  listed since has no ``settlement_price`` yet (absent on the wire, as on Deribit).
  At listing each option also draws its trading history: about a fifth never traded
  (``last_price`` null), most did not trade in the last 24 h (``stats`` null), some have
  no open interest (the wings and new listings more often).
* **New strikes**: every index tick, an expiry whose listed strikes end 2 % short of
  spot gets the grid's strikes from its range to 2 % beyond spot ("open").
* **Settlement** every day at 08:00: every instrument's ``settlement_price`` becomes its
  mark. **Expiry**: its instruments go to ``settlement`` (an option's book is cleared by
  one change deleting every level; its ticker turns ``closed`` with
  ``estimated_delivery_price: "expired"`` and a ``delivery_price``), then to
  ``delivered`` ``settle_delay_s`` later, when they leave; the next scheduled expiry is
  listed (``open``).
"""

from __future__ import annotations

import math

from tickarchive.loadtest.sim import chain, quoting
from tickarchive.loadtest.sim import native as _native
from tickarchive.loadtest.sim.chain import COMBO, DAY_MS, FUTURE, OPTION, YEAR_MS, Expiry, Instrument
from tickarchive.loadtest.sim.derivs import COMBO_STYLES, ComboState, FutureState, combo_legs, combo_name
from tickarchive.loadtest.sim.events import BookEvent, Event, StateEvent
from tickarchive.loadtest.sim.quoting import OptionState, QuoteParams
from tickarchive.loadtest.sim.state import MarketState, State, last_settlement
from tickarchive.loadtest.sim.ticks import fround

PERPETUAL_LISTED_MS = 1_534_167_660_000
"""The perpetuals' ``creation_timestamp`` (2018-08-13, from a real instrument list)."""
OI_MEDIAN = {"ETH": 150.0, "BTC": 15.0}
"""Median open interest of an option (contracts), when it has any."""
TRADE_SIZES = (1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 10.0, 10.0, 20.0, 25.0, 50.0, 100.0, 250.0)


# ---------------------------------------------------------------------------- listing


def _new_inst(model: MarketState, name: str, strike: float, is_call: bool, expiry: Expiry, creation: int,
              kind: str, legs: tuple[tuple[str, float], ...] = ()) -> Instrument:
    inst = Instrument(name, model.next_instrument_id, strike, is_call, expiry, creation, kind=kind, legs=legs)
    model.next_instrument_id += 1
    return inst


def _creation(model: MarketState, expiry: Expiry, initial: bool) -> int:
    """When an instrument of ``expiry`` was listed: now, or (the initial chain) at 08:00
    the day its period is listed ahead (today's 08:00 if that is still to come)."""
    if not initial:
        return model.sim_ms
    days = chain.LISTING_DAYS.get(expiry.period, 372.0)
    if expiry.period == "month" and expiry.expiry_ms - model.sim_ms > days * DAY_MS:
        days = 372.0  # a quarterly: listed a year ahead
    at = expiry.expiry_ms - int(days * DAY_MS)
    return at if at <= model.sim_ms else model.last_settlement_ms


def list_option(model: MarketState, cur: int, expiry: Expiry, strike: float, is_call: bool, creation: int) -> str:
    m = model.currencies[cur]
    rng = model.rng
    name = chain.option_name(m.currency, expiry, strike, is_call)
    inst = _new_inst(model, name, strike, is_call, expiry, creation, OPTION)
    days = max((expiry.expiry_ms - model.sim_ms) / DAY_MS, 0.0)
    signed = math.log(strike / m.spot) * (1.0 if is_call else -1.0)
    st = OptionState(inst, cur, QuoteParams.draw(rng, m.currency, signed, days, model.config.book_levels))
    quoting.reprice(st, model.terms_of(st), model.spot_version)
    mark = st.val.price_coin
    wing = min(abs(signed) / math.sqrt(0.05 + days / 365.0), 4.0)
    fresh = creation >= model.last_settlement_ms
    # trading history
    if rng.random() < 0.2 + 0.05 * wing + (0.25 if fresh else 0.0):
        st.last_price = None
    else:
        st.last_price = max(0.0001, fround(mark * math.exp(rng.gauss(0.0, 0.15)), 1e4, 4))
        if rng.random() < 0.7 / (1.0 + 0.3 * wing):
            st.volume = float(max(1, int(rng.expovariate(1.0 / 40.0)))) * (0.1 if m.currency == "BTC" else 1.0)
            st.volume = fround(st.volume, 10.0, 1)
            lo = st.last_price * math.exp(-abs(rng.gauss(0.0, 0.1)))
            hi = st.last_price * math.exp(abs(rng.gauss(0.0, 0.1)))
            st.low = max(0.0001, fround(lo, 1e4, 4))
            st.high = max(st.low, fround(hi, 1e4, 4))
            model.window.seed(st, initial=model.step_no == 0)
    p_zero_oi = 0.14 + 0.07 * wing + (0.3 if fresh else 0.0)
    if rng.random() >= p_zero_oi:
        st.open_interest = fround(OI_MEDIAN[m.currency] * math.exp(rng.gauss(0.0, 1.3)), 10.0, 1) or 0.1
    st.open_price = mark
    st.settlement_price = None if fresh else fround(mark, 1e8, 8)
    quoting.seed_book(st, rng, model.spot_version)
    if st.bids or st.asks:
        st.change_id = model.old_change_id(cur)
        st.book_ts_ms = model.now_ms
    model.states[name] = st
    model.listed_strikes.setdefault((cur, expiry.expiry_ms), set()).add(strike)
    return name


def list_all(model: MarketState, initial: bool) -> list[Event]:
    """List everything scheduled and not listed yet; the ``open`` events of the new ones."""
    cfg = model.config
    rng = model.rng
    events: list[Event] = []
    for cur, m in enumerate(model.currencies):
        if OPTION in cfg.kinds:
            schedule = chain.expiry_schedule(model.sim_ms, m.currency)
            fresh = [e for e in schedule if (cur, e.expiry_ms) not in model.expiries]
            budget = cfg.instruments if initial else max(2, cfg.instruments // max(1, len(schedule)))
            grids = chain.strike_budget(fresh, model.sim_ms, m.spot, budget) if initial else [
                chain.trim_strikes(chain.expiry_strikes(m.spot, e, model.sim_ms), m.spot, max(1, budget // 2))
                for e in fresh
            ]
            for expiry, strikes in zip(fresh, grids, strict=True):
                key = (cur, expiry.expiry_ms)
                model.expiries[key] = expiry
                model.expiry_id(key)
                model.terms.pop(key, None)
                creation = _creation(model, expiry, initial)
                for strike in strikes:
                    for is_call in (True, False):
                        name = list_option(model, cur, expiry, strike, is_call, creation)
                        events.append(StateEvent(name, "open", OPTION, m.currency))
        if FUTURE in cfg.kinds:
            dated = chain.future_expiries(chain.expiry_schedule(model.sim_ms, m.currency))
            for expiry in [chain.perpetual_expiry(m.currency), *dated]:
                name = expiry.underlying_index
                if name in model.states or name in model.delivered_names:
                    continue
                creation = _creation(model, expiry, initial) if expiry.period != "perpetual" else PERPETUAL_LISTED_MS
                inst = _new_inst(model, name, 0.0, False, expiry, creation, FUTURE)
                f = FutureState(inst, cur, rng)
                t = max((expiry.expiry_ms - model.sim_ms) / YEAR_MS, 0.0)
                f.reprice(m, t, rng, 0.0)
                _seed_future(model, f)
                model.states[name] = f
                events.append(StateEvent(name, "open", FUTURE, m.currency))
        if COMBO in cfg.kinds:
            events.extend(_list_combos(model, cur, initial))
    model.update_terms(force=True)
    model.rebuild_weights()
    return events


def _seed_future(model: MarketState, f: FutureState) -> None:
    rng = model.rng
    bids, asks = f.target_levels()
    for p in bids:
        f.bids[p] = quoting.level_size(rng.random(), f.size_scale)
    for p in asks:
        f.asks[p] = quoting.level_size(rng.random(), f.size_scale)
    f.targets = (bids, asks)
    f.targets_version = model.spot_version
    f.update_top()
    f.change_id = model.old_change_id(f.cur)
    f.book_ts_ms = model.now_ms
    cs = f.contract_size
    f.last_price = bids[0] if rng.random() < 0.5 else asks[0]
    f.volume = fround(rng.uniform(500, 20000) * (1.0 if f.inst.currency == "BTC" else 10.0), 1e8, 8)
    f.high = round(f.mark * (1.0 + abs(rng.gauss(0, 0.02))), 1)
    f.low = round(f.mark * (1.0 - abs(rng.gauss(0, 0.02))), 1)
    model.window.seed(f, initial=model.step_no == 0)
    f.open_price = f.mark * (1.0 + rng.gauss(0.0, 0.02))
    f.open_interest = float(int(rng.uniform(5e6, 5e8) / cs) * cs) if f.inst.perpetual else float(
        int(rng.uniform(1e5, 5e7) / cs) * cs
    )
    f.settlement_price = fround(f.mark, 100.0, 2)


def _list_combos(model: MarketState, cur: int, initial: bool) -> list[Event]:
    """Top the currency's option combos up to ``config.combos``, over listed options near
    the money of the weekly and longer expiries."""
    m = model.currencies[cur]
    rng = model.rng
    have = [st for st in model.states.values() if isinstance(st, ComboState) and st.cur == cur]
    out: list[Event] = []
    expiries = sorted(
        (e for (c, _ms), e in model.expiries.items() if c == cur and e.period != "day"), key=lambda e: e.expiry_ms
    )
    if not expiries:
        return out
    tries = 0
    while len(have) < model.config.combos and tries < 50:
        tries += 1
        expiry = expiries[rng.randrange(len(expiries))]
        opts = [
            st
            for st in model.states.values()
            if isinstance(st, OptionState) and st.cur == cur and st.inst.expiry_ms == expiry.expiry_ms
            and not st.expired
        ]
        calls = {st.inst.strike: st for st in opts if st.inst.is_call}
        puts = {st.inst.strike: st for st in opts if not st.inst.is_call}
        strikes = sorted(set(calls) & set(puts), key=lambda k: abs(math.log(k / m.spot)))[:6]
        if len(strikes) < 2:
            continue
        style = COMBO_STYLES[rng.randrange(len(COMBO_STYLES))]
        k1, k2 = sorted(rng.sample(strikes, 2))
        used = [k1] if style == "STRD" else [k1, k2]
        name = combo_name(m.currency, style, expiry.code, used)
        if name in model.states or name in model.delivered_names:
            continue
        legs = combo_legs(style, calls, puts, k1, k2)
        inst = _new_inst(
            model, name, 0.0, False, expiry, _creation(model, expiry, initial), COMBO,
            tuple((leg.inst.name, r) for leg, r in legs),
        )
        c = ComboState(inst, cur, legs, rng)
        price_combo(model, c)
        c.targets = c.target_levels()
        c.targets_version = model.spot_version
        for p in c.targets[0]:
            c.bids[p] = quoting.level_size(rng.random(), c.size_scale)
        for p in c.targets[1]:
            c.asks[p] = quoting.level_size(rng.random(), c.size_scale)
        c.update_top()
        if c.bids or c.asks:
            c.change_id = model.old_change_id(cur)
            c.book_ts_ms = model.now_ms
        c.open_price = c.mark
        c.settlement_price = None if c.inst.creation_ms >= model.last_settlement_ms else fround(c.mark, 1e8, 8)
        model.states[name] = c
        have.append(c)
        out.append(StateEvent(name, "open", COMBO, m.currency))
    return out


def price_combo(model: MarketState, c: ComboState) -> None:
    """Value a combo from its legs (their books read back from the native engine)."""
    for leg, _r in c.legs:
        model.sync(leg)
        model.ensure_priced(leg)
    c.reprice()


def reprice_derivatives(model: MarketState, dt_years: float) -> None:
    """Futures and the perpetual follow the index (every reprice)."""
    for st in model.active:
        if type(st) is FutureState:
            t = max((st.inst.expiry_ms - model.sim_ms) / YEAR_MS, 0.0)
            st.reprice(model.currencies[st.cur], t, model.rng, dt_years)


def new_strikes(model: MarketState, events: list[Event]) -> None:
    """When spot has moved 2 % past an expiry's listed strikes, list the grid's strikes
    between them and 2 % beyond spot."""
    if OPTION not in model.config.kinds:
        return
    added = False
    for (cur, expiry_ms), expiry in list(model.expiries.items()):
        listed = model.listed_strikes.get((cur, expiry_ms))
        if not listed:
            continue
        m = model.currencies[cur]
        lo, hi = min(listed), max(listed)
        if lo * 0.98 <= m.spot <= hi * 1.02:
            continue
        days = max((expiry_ms - model.sim_ms) / DAY_MS, 0.0)
        for k in chain.near_strikes(m.spot, m.currency, days, width=0.02):
            if k in listed or lo <= k <= hi or (k > hi and k > m.spot * 1.02) or (k < lo and k < m.spot * 0.98):
                continue
            for is_call in (True, False):
                name = list_option(model, cur, expiry, k, is_call, model.sim_ms)
                events.append(StateEvent(name, "open", OPTION, m.currency))
            added = True
    if added:
        model.rebuild_weights()


# ---------------------------------------------------------------------------- the clock


def run(model: MarketState, events: list[Event]) -> None:
    """Settle at 08:00, expire what expired, deliver what is due, list what is next."""
    changed = False
    settle_at = model.last_settlement_ms + DAY_MS
    if model.sim_ms >= settle_at:
        model.last_settlement_ms = last_settlement(model.sim_ms)
        _settle(model)
    expired = sorted({ms for (_c, ms) in model.expiries if ms <= model.sim_ms})
    for expiry_ms in expired:
        _expire(model, expiry_ms, events)
        changed = True
    due = [s for s in model.active if s.inst.kind == FUTURE and s.inst.state == "open"]
    for st in [s for s in due if s.inst.expiry_ms <= model.sim_ms]:
        _expire_one(model, st, events)
        changed = True
    while model.deliveries and model.deliveries[0][0] <= model.sim_ms:
        _due, names = model.deliveries.pop(0)
        for name in names:
            if name not in model.states:
                continue
            st = model.states.pop(name)
            model.delivered_names.add(name)
            events.append(StateEvent(name, "delivered", st.inst.kind, st.inst.currency))
            if isinstance(st, OptionState) and st.nid >= 0:
                model.native.retire(st.nid)
        changed = True
    if changed:
        events.extend(list_all(model, initial=False))


def _settle(model: MarketState) -> None:
    for st in model.states.values():
        if isinstance(st, OptionState):
            if st.expired:
                continue
            model.ensure_priced(st)
            st.settlement_price = fround(st.val.price_coin, 1e8, 8)
            st.open_price = st.val.price_coin
            if st.nid >= 0:
                _native.set_settlement(model.native, st)
        elif isinstance(st, FutureState):
            st.settlement_price = fround(st.mark, 100.0, 2)
            st.open_price = st.mark
        else:
            st.settlement_price = fround(st.mark, 1e8, 8)
            st.open_price = st.mark


def _expire(model: MarketState, expiry_ms: int, events: list[Event]) -> None:
    keys = [k for k in model.expiries if k[1] == expiry_ms]
    for key in keys:
        del model.expiries[key]
        model.listed_strikes.pop(key, None)
    curs = {k[0] for k in keys}
    for st in [s for s in model.states.values() if s.inst.expiry_ms == expiry_ms and s.cur in curs]:
        if st.inst.state == "open":
            _expire_one(model, st, events)
    for st in [s for s in model.states.values() if isinstance(s, ComboState) and s.inst.state == "open"]:
        if any(leg.expired for leg, _r in st.legs):
            _expire_one(model, st, events)


def _expire_one(model: MarketState, st: State, events: list[Event]) -> None:
    """``st`` goes to ``settlement`` (delivered later); an option's book is cleared."""
    inst = st.inst
    inst.state = "settlement"
    events.append(StateEvent(inst.name, "settlement", inst.kind, inst.currency))
    if model.deliveries and model.deliveries[-1][0] == model.sim_ms + int(model.config.settle_delay_s * 1000):
        model.deliveries[-1][1].append(inst.name)
    else:
        model.deliveries.append((model.sim_ms + int(model.config.settle_delay_s * 1000), [inst.name]))
    if not isinstance(st, OptionState):
        return
    model.sync(st)
    model.ensure_priced(st)
    st.expired = True
    st.delivery_price = model.currencies[st.cur].index_price
    bids = [["delete", p, 0.0] for p in sorted(st.bids, reverse=True)]
    asks = [["delete", p, 0.0] for p in sorted(st.asks)]
    st.bids.clear()
    st.asks.clear()
    st.update_top()
    st.targets = ([], [])
    ts = model.stamp()
    if bids or asks:
        prev = st.change_id
        st.change_id = model.next_change_id(st.cur, prev)
        st.book_ts_ms = ts
        events.append(BookEvent(st, st.change_id, prev, bids, asks, ts))
    if st.nid >= 0:
        model.native.expire(st.nid, st.delivery_price, st.change_id, st.book_ts_ms)
