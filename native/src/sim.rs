//! The simulator's hot path (`loadtest.sim.native`): per generator step, every option's
//! ticker/book emission draw, sub-step timestamp, repricing (Black-76 and the smile of
//! `loadtest.sim.quoting.reprice`, from the per-expiry terms Python hands over), book
//! changes (`quoting.targets` / `quoting.book_actions`), the JSON of the ticker and book
//! notifications (as `loadtest.sim.encode`), the WebSocket frame and the send-log
//! record, for the whole step in one call.
//!
//! The option states live here once registered (`SimEngine.add_option`), and so do the
//! currencies' change-id counters (`next_change_id` for the books Python owns). Python
//! keeps the control plane (listings and the life cycle, the index walks and the
//! volatility surface, futures, combos, trades, subscriptions, faults) and reads an
//! option's book back with `SimEngine.state` when it needs it (snapshots, trades,
//! combos). The emission and book draws come from this engine's own generator
//! (xoshiro256**, seeded from the simulator seed), so a seed still fixes the frames, but
//! they differ from the pure-Python model's.

use std::io::Write;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

unsafe extern "C" {
    fn erf(x: f64) -> f64;
}

const UNIT: f64 = 0.0001;
const STEP_ABOVE_UNITS: i64 = 50;
const COARSE: i64 = 5;
const MAX_GAPS: usize = 24;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed ^ 0x5349_4d32_7469_636b;
        let mut s = [0u64; 4];
        for v in s.iter_mut() {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *v = z ^ (z >> 31);
        }
        Rng(s)
    }

    #[inline]
    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 bits.
    #[inline]
    fn random(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// `ticks.fround`: `round(x, ndigits)` with `scale = 10**ndigits` (to the last bit but
/// for halves, which `round` resolves on the decimal value).
#[inline]
fn fround(x: f64, scale: f64) -> f64 {
    let y = x * scale;
    if y.is_finite() {
        let r = (y + 0.5).floor();
        if r != 0.0 {
            return r / scale;
        }
        return 0.0 * x;
    }
    x
}

/// A float as JSON: the digits of Python's `repr` / orjson (shortest round trip, a `.0`
/// on integral values), Rust's exponent spelling (`1e-5` where Python writes `1e-05`):
/// the same JSON number.
#[inline]
fn push_f(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        let _ = write!(out, "{x:?}");
    } else {
        out.extend_from_slice(b"null");
    }
}

#[inline]
fn push_opt(out: &mut Vec<u8>, x: Option<f64>) {
    match x {
        Some(v) => push_f(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

#[inline]
fn push_i(out: &mut Vec<u8>, x: i64) {
    let _ = write!(out, "{x}");
}

// ---- the option price grid (`loadtest.sim.ticks`) ------------------------------------

#[inline]
fn valid_down(n: i64) -> i64 {
    if n <= STEP_ABOVE_UNITS { n } else { n - n.rem_euclid(COARSE) }
}

#[inline]
fn valid_up(n: i64) -> i64 {
    if n <= STEP_ABOVE_UNITS { n } else { n + (-n).rem_euclid(COARSE) }
}

#[inline]
fn next_down(n: i64) -> i64 {
    if n <= STEP_ABOVE_UNITS { n - 1 } else { n - COARSE }
}

#[inline]
fn next_up(n: i64) -> i64 {
    if n < STEP_ABOVE_UNITS { n + 1 } else { n + COARSE }
}

#[derive(Clone, Copy, Default)]
struct Val {
    price_coin: f64,
    delta: f64,
    gamma: f64,
    vega: f64,
    theta: f64,
    rho: f64,
}

#[derive(Clone, Copy, Default)]
struct Terms {
    t: f64,
    forward: f64,
    atm: f64,
    skew: f64,
    curv: f64,
    sqrt_t: f64,
    forward_2: f64,
}

struct Cur {
    change_id: i64,
    index_price: f64,
    /// 10^decimals of an option's mark price (ETH 6, BTC 8).
    mark_scale: f64,
}

type BodyKey = (i64, i64, [u64; 4], u64, bool, Option<u64>);

struct Opt {
    name: Py<PyString>,
    ticker_ch: Py<PyString>,
    book_ch: Py<PyString>,
    cur: usize,
    expiry: usize,
    strike: f64,
    is_call: bool,
    /// `{"underlying_price":` is followed by the number, then this: `,"underlying_index":...,"stats":`
    ui: Vec<u8>,
    /// `,"instrument_name":...,"index_price":`
    name_json: Vec<u8>,
    ticker_head: Vec<u8>,
    book_head: Vec<u8>,
    half_iv: f64,
    depth_bid: usize,
    depth_ask: usize,
    gaps: Vec<u32>,
    size_scale: f64,
    bids: Vec<(f64, f64)>,
    asks: Vec<(f64, f64)>,
    tbids: Vec<f64>,
    tasks: Vec<f64>,
    targets_version: i64,
    top: [f64; 4],
    change_id: i64,
    book_ts_ms: i64,
    last_ticker_step: i64,
    last_book_step: i64,
    val: Val,
    mark_iv: f64,
    forward: f64,
    val_version: i64,
    trade_seq: i64,
    last_price: Option<f64>,
    volume: f64,
    open_interest: f64,
    low: f64,
    high: f64,
    open_price: f64,
    settlement: Option<f64>,
    expired: bool,
    delivery_price: f64,
    tbody: Vec<u8>,
    tbody_key: Option<BodyKey>,
}

impl Opt {
    fn update_top(&mut self) {
        let mut bid: Option<(f64, f64)> = None;
        for &l in &self.bids {
            if bid.is_none_or(|b| l.0 > b.0) {
                bid = Some(l);
            }
        }
        let mut ask: Option<(f64, f64)> = None;
        for &l in &self.asks {
            if ask.is_none_or(|a| l.0 < a.0) {
                ask = Some(l);
            }
        }
        let (b, ba) = bid.unwrap_or((0.0, 0.0));
        let (a, aa) = ask.unwrap_or((0.0, 0.0));
        self.top = [b, ba, a, aa];
    }

    fn intrinsic(&self) -> f64 {
        let f = self.forward;
        if f <= 0.0 {
            return 0.0;
        }
        if self.is_call {
            (f - self.strike).max(0.0) / f
        } else {
            (self.strike - f).max(0.0) / f
        }
    }

    /// `quoting.iv_of`.
    fn iv_of(&self, price: f64, is_bid: bool) -> f64 {
        if is_bid && price <= self.intrinsic() {
            return 0.0;
        }
        let vega_coin = if self.forward != 0.0 {
            self.val.vega / self.forward
        } else {
            0.0
        };
        if vega_coin <= 1e-12 {
            return if is_bid { 0.0 } else { 500.0 };
        }
        let iv = self.mark_iv + (price - self.val.price_coin) / vega_coin;
        fround(iv.clamp(0.0, 500.0), 100.0)
    }
}

#[inline]
fn find(book: &[(f64, f64)], p: f64) -> Option<usize> {
    book.iter().position(|l| l.0 == p)
}

/// `quoting.realign`: delete the levels that cross the new best target, add the best missing one.
fn realign(
    book: &mut Vec<(f64, f64)>,
    targets: &[f64],
    is_bid: bool,
    size: f64,
    out: &mut Vec<(u8, f64, f64)>,
) {
    let start = out.len();
    let limit = targets.first().copied();
    book.retain(|&(p, _)| {
        let gone = match limit {
            None => true,
            Some(l) => {
                if is_bid {
                    p > l
                } else {
                    p < l
                }
            }
        };
        if gone {
            out.push((b'd', p, 0.0));
        }
        !gone
    });
    if out.len() > start {
        for &p in targets {
            if find(book, p).is_none() {
                book.push((p, size));
                out.push((b'n', p, size));
                break;
            }
        }
    }
}

fn notification_head(ch: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(80 + ch.len());
    v.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{\"channel\":\"");
    v.extend_from_slice(ch.as_bytes());
    v.extend_from_slice(b"\",\"data\":");
    v
}

fn ws_header(n: usize, out: &mut Vec<u8>) {
    if n < 126 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else if n < 65536 {
        out.extend_from_slice(&[0x81, 0x7e]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[0x81, 0x7f]);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

fn push_levels(out: &mut Vec<u8>, levels: &[(u8, f64, f64)]) {
    out.push(b'[');
    for (i, &(kind, p, a)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(match kind {
            b'n' => b"[\"new\",",
            b'd' => b"[\"delete\",",
            _ => b"[\"change\",",
        });
        push_f(out, p);
        out.push(b',');
        push_f(out, a);
        out.push(b']');
    }
    out.push(b']');
}

#[pyclass(module = "tickarchive_native")]
pub struct SimEngine {
    opts: Vec<Opt>,
    rows: Vec<(usize, f64, f64)>,
    burst_rows: Vec<(usize, f64, f64)>,
    unit_prices: Vec<f64>,
    sizes: Vec<f64>,
    rng: Rng,
    curs: Vec<Cur>,
    terms: Vec<Terms>,
    spot_version: i64,
    scratch: Vec<u8>,
    bids_out: Vec<(u8, f64, f64)>,
    asks_out: Vec<(u8, f64, f64)>,
    last_prev: i64,
}

impl SimEngine {
    fn unit_price(&self, n: i64) -> f64 {
        if n >= 0 && (n as usize) < self.unit_prices.len() {
            self.unit_prices[n as usize]
        } else {
            fround(n as f64 * UNIT, 1e4)
        }
    }

    /// `quoting.level_size`.
    fn size(&mut self, scale: f64) -> f64 {
        let u = self.rng.random();
        let s = self.sizes[(u * self.sizes.len() as f64) as usize];
        fround(s * scale, 10.0).max(0.1)
    }

    /// `quoting.reprice`.
    fn reprice(&mut self, i: usize) {
        let o = &mut self.opts[i];
        let tm = self.terms.get(o.expiry).copied().unwrap_or_default();
        let strike = o.strike;
        let forward = tm.forward;
        let sqrt_t = tm.sqrt_t;
        let t = tm.t;
        let x = ((strike / forward).ln() / sqrt_t).clamp(-4.0, 4.0);
        let vol = (tm.atm + tm.skew * x + tm.curv * x * x).clamp(0.15, 3.0);
        let sig_sqrt_t = vol * sqrt_t;
        let d1 = ((forward / strike).ln() + 0.5 * sig_sqrt_t * sig_sqrt_t) / sig_sqrt_t;
        let d2 = d1 - sig_sqrt_t;
        let pdf = INV_SQRT_2PI * (-0.5 * d1 * d1).exp();
        let s2 = std::f64::consts::SQRT_2;
        let (usd, delta, rho) = if o.is_call {
            let nd1 = 0.5 * (1.0 + unsafe { erf(d1 / s2) });
            let nd2 = 0.5 * (1.0 + unsafe { erf(d2 / s2) });
            (forward * nd1 - strike * nd2, nd1, strike * t * nd2 / 100.0)
        } else {
            let nd1 = 0.5 * (1.0 + unsafe { erf(-d1 / s2) });
            let nd2 = 0.5 * (1.0 + unsafe { erf(-d2 / s2) });
            (strike * nd2 - forward * nd1, -nd1, -strike * t * nd2 / 100.0)
        };
        o.val = Val {
            price_coin: usd.max(0.0) / forward,
            delta,
            gamma: pdf / (forward * sig_sqrt_t),
            vega: forward * pdf * sqrt_t / 100.0,
            theta: -forward * pdf * vol / (2.0 * sqrt_t) / 365.0,
            rho,
        };
        o.mark_iv = fround(vol * 100.0, 100.0);
        o.forward = tm.forward_2;
        o.val_version = self.spot_version;
    }

    /// `quoting.targets`.
    fn targets(&self, o: &Opt) -> (Vec<f64>, Vec<f64>) {
        let mark = o.val.price_coin;
        let vega_coin = if o.forward != 0.0 { o.val.vega / o.forward } else { 0.0 };
        let half = (o.half_iv * vega_coin).max(0.02 * o.intrinsic() + 0.002 * mark);
        let nb = valid_down(((mark - half) / UNIT + 1e-9).floor() as i64);
        let mut na = valid_up(((mark + half) / UNIT - 1e-9).ceil() as i64);
        if na <= nb {
            na = next_up(nb);
        }
        if na < 1 {
            na = 1;
        }
        let mut bids = Vec::with_capacity(o.depth_bid);
        let mut n = nb;
        for i in 0..o.depth_bid {
            if n < 1 {
                break;
            }
            bids.push(self.unit_price(n));
            for _ in 0..o.gaps[i % MAX_GAPS] {
                n = next_down(n);
            }
        }
        let mut asks = Vec::with_capacity(o.depth_ask);
        let mut n = na;
        for i in 0..o.depth_ask {
            asks.push(self.unit_price(n));
            for _ in 0..o.gaps[i % MAX_GAPS] {
                n = next_up(n);
            }
        }
        (bids, asks)
    }

    /// `MarketModel.book_event` / `quoting.book_actions`: the change (into `bids_out` /
    /// `asks_out`), or false for none.
    fn book_event(&mut self, i: usize) -> bool {
        self.bids_out.clear();
        self.asks_out.clear();
        let version = self.spot_version;
        let mut fresh: Option<(Vec<f64>, Vec<f64>)> = None;
        if self.opts[i].targets_version != version {
            self.opts[i].targets_version = version;
            fresh = Some(self.targets(&self.opts[i]));
        }
        {
            let o = &self.opts[i];
            if o.tbids.is_empty() && o.tasks.is_empty() && fresh.is_none() {
                return false;
            }
        }
        let scale = self.opts[i].size_scale;
        if let Some((fb, fa)) = fresh {
            let o = &self.opts[i];
            if fb != o.tbids || fa != o.tasks {
                let sb = self.size(scale);
                let sa = self.size(scale);
                let o = &mut self.opts[i];
                realign(&mut o.bids, &fb, true, sb, &mut self.bids_out);
                realign(&mut o.asks, &fa, false, sa, &mut self.asks_out);
                o.tbids = fb;
                o.tasks = fa;
            }
        }
        if !self.bids_out.is_empty() || !self.asks_out.is_empty() {
            self.opts[i].update_top();
        } else {
            let mut is_bid = self.rng.random() < 0.5;
            {
                let o = &self.opts[i];
                if (is_bid && o.tbids.is_empty()) || (!is_bid && o.tasks.is_empty()) {
                    is_bid = !is_bid;
                }
            }
            let r = self.rng.random();
            let mut amount = self.size(scale);
            let o = &mut self.opts[i];
            let mut top = o.top;
            let (book, targets, actions) = if is_bid {
                (&mut o.bids, &o.tbids, &mut self.bids_out)
            } else {
                (&mut o.asks, &o.tasks, &mut self.asks_out)
            };
            let best = if is_bid { top[0] } else { top[2] };
            if (book.is_empty() || r < 0.15) && book.len() < targets.len() {
                for &p in targets.iter() {
                    if find(book, p).is_none() {
                        if book.is_empty() || (if is_bid { p > best } else { p < best }) {
                            if is_bid {
                                top[0] = p;
                                top[1] = amount;
                            } else {
                                top[2] = p;
                                top[3] = amount;
                            }
                        }
                        book.push((p, amount));
                        actions.push((b'n', p, amount));
                        break;
                    }
                }
            } else if r < 0.3 && book.len() > 1 {
                let mut w = 0usize;
                for (j, l) in book.iter().enumerate() {
                    let worse = if is_bid { l.0 < book[w].0 } else { l.0 > book[w].0 };
                    if worse {
                        w = j;
                    }
                }
                let p = book.remove(w).0;
                actions.push((b'd', p, 0.0));
            } else if !book.is_empty() {
                let mut p = if targets.is_empty() {
                    0.0
                } else {
                    targets[((r * 3.0) as usize) % targets.len()]
                };
                let j = match find(book, p) {
                    Some(j) => j,
                    None => {
                        p = book[0].0;
                        0
                    }
                };
                if amount == book[j].1 {
                    amount = fround(amount + scale, 10.0);
                }
                book[j].1 = amount;
                if p == best {
                    if is_bid {
                        top[1] = amount;
                    } else {
                        top[3] = amount;
                    }
                }
                actions.push((b'c', p, amount));
            }
            if self.bids_out.is_empty() && self.asks_out.is_empty() {
                return false;
            }
            self.opts[i].top = top;
        }
        // `MarketModel.next_change_id`: the currency's counter, at least the last id + 1
        let o = &mut self.opts[i];
        let counter = self.curs[o.cur].change_id;
        self.last_prev = o.change_id;
        o.change_id = counter.max(o.change_id + 1);
        true
    }

    /// `encode.option_ticker_dict` without the timestamp: the ticker's data up to and
    /// including `"timestamp":`.
    fn ticker_body(&mut self, i: usize) {
        let version = self.spot_version;
        let o = &mut self.opts[i];
        let index = self.curs[o.cur].index_price;
        let mark_scale = self.curs[o.cur].mark_scale;
        let key: BodyKey = (
            version,
            o.trade_seq,
            o.top.map(f64::to_bits),
            index.to_bits(),
            o.expired,
            o.settlement.map(f64::to_bits),
        );
        if o.tbody_key == Some(key) {
            return;
        }
        let v = o.val;
        let mark = fround(v.price_coin, mark_scale);
        let [bid, bid_amount, ask, ask_amount] = o.top;
        let bid_iv = if o.bids.is_empty() { 0.0 } else { o.iv_of(bid, true) };
        let ask_iv = if o.asks.is_empty() { 0.0 } else { o.iv_of(ask, false) };
        let out = &mut o.tbody;
        out.clear();
        out.extend_from_slice(b"{\"underlying_price\":");
        push_f(out, o.forward);
        out.extend_from_slice(&o.ui);
        if o.volume == 0.0 {
            out.extend_from_slice(
                b"{\"volume_usd\":null,\"volume\":null,\"price_change\":null,\"low\":null,\"high\":null}",
            );
        } else {
            let last = o.last_price.unwrap_or(0.0);
            out.extend_from_slice(b"{\"volume_usd\":");
            push_f(out, fround(o.volume * last * index, 100.0));
            out.extend_from_slice(b",\"volume\":");
            push_f(out, o.volume);
            out.extend_from_slice(b",\"price_change\":");
            let change = if o.open_price != 0.0 {
                fround((last - o.open_price) / o.open_price * 100.0, 1e4)
            } else {
                0.0
            };
            push_f(out, change);
            out.extend_from_slice(b",\"low\":");
            push_f(out, o.low);
            out.extend_from_slice(b",\"high\":");
            push_f(out, o.high);
            out.push(b'}');
        }
        out.extend_from_slice(if o.expired {
            b",\"state\":\"closed\""
        } else {
            b",\"state\":\"open\""
        });
        if let Some(s) = o.settlement {
            out.extend_from_slice(b",\"settlement_price\":");
            push_f(out, s);
        }
        out.extend_from_slice(b",\"open_interest\":");
        push_f(out, o.open_interest);
        out.extend_from_slice(b",\"min_price\":");
        push_f(out, fround(mark - 0.05 - mark * 0.5, 1e4).max(0.0001));
        out.extend_from_slice(b",\"max_price\":");
        push_f(out, fround(mark + 0.05 + mark * 0.5, 1e4));
        out.extend_from_slice(b",\"mark_price\":");
        push_f(out, mark);
        out.extend_from_slice(b",\"mark_iv\":");
        push_f(out, o.mark_iv);
        out.extend_from_slice(b",\"last_price\":");
        push_opt(out, o.last_price);
        out.extend_from_slice(b",\"interest_rate\":0.0");
        out.extend_from_slice(&o.name_json);
        push_f(out, index);
        if o.expired {
            out.extend_from_slice(
                b",\"greeks\":{\"vega\":0.0,\"theta\":0.0,\"rho\":0.0,\"gamma\":0.0,\"delta\":0.0}",
            );
            out.extend_from_slice(b",\"estimated_delivery_price\":\"expired\",\"delivery_price\":");
            push_f(out, o.delivery_price);
        } else {
            for (k, x) in [
                (&b",\"greeks\":{\"vega\":"[..], v.vega),
                (&b",\"theta\":"[..], v.theta),
                (&b",\"rho\":"[..], v.rho),
                (&b",\"gamma\":"[..], v.gamma),
                (&b",\"delta\":"[..], v.delta),
            ] {
                out.extend_from_slice(k);
                push_f(out, fround(x, 1e5));
            }
            out.extend_from_slice(b"},\"estimated_delivery_price\":");
            push_f(out, index);
        }
        for (k, x) in [
            (&b",\"bid_iv\":"[..], bid_iv),
            (&b",\"best_bid_price\":"[..], bid),
            (&b",\"best_bid_amount\":"[..], bid_amount),
            (&b",\"best_ask_price\":"[..], ask),
            (&b",\"best_ask_amount\":"[..], ask_amount),
            (&b",\"ask_iv\":"[..], ask_iv),
        ] {
            out.extend_from_slice(k);
            push_f(out, x);
        }
        out.extend_from_slice(b",\"timestamp\":");
        o.tbody_key = Some(key);
    }

    /// The scratch buffer (a payload) as a WebSocket frame.
    fn wire<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let n = self.scratch.len();
        let mut head = Vec::with_capacity(10);
        ws_header(n, &mut head);
        let s = &self.scratch;
        PyBytes::new_with(py, head.len() + n, |buf: &mut [u8]| {
            buf[..head.len()].copy_from_slice(&head);
            buf[head.len()..].copy_from_slice(s);
            Ok(())
        })
    }

    #[inline]
    fn stamp(&mut self, prev_ms: i64, now_ms: i64) -> i64 {
        let span = now_ms - prev_ms;
        if span > 1 {
            prev_ms + 1 + (self.rng.random() * span as f64) as i64
        } else {
            now_ms
        }
    }
}

type OptionStats = (i64, Option<f64>, f64, f64, f64, f64, f64);
type QuoteParams = (f64, usize, usize, Vec<u32>, f64);

#[pymethods]
impl SimEngine {
    #[new]
    fn py_new(unit_prices: Vec<f64>, sizes: Vec<f64>, seed: u64) -> Self {
        SimEngine {
            opts: Vec::new(),
            rows: Vec::new(),
            burst_rows: Vec::new(),
            unit_prices,
            sizes,
            rng: Rng::new(seed),
            curs: Vec::new(),
            terms: Vec::new(),
            spot_version: -1,
            scratch: Vec::with_capacity(4096),
            bids_out: Vec::new(),
            asks_out: Vec::new(),
            last_prev: 0,
        }
    }

    /// A currency with its change-id counter, index price and mark-price scale; returns
    /// its index.
    fn add_currency(&mut self, change_id: i64, index_price: f64, mark_scale: f64) -> usize {
        self.curs.push(Cur {
            change_id,
            index_price,
            mark_scale,
        });
        self.curs.len() - 1
    }

    fn set_index(&mut self, cur: usize, price: f64) {
        self.curs[cur].index_price = price;
    }

    /// The id of a book change after `prev` (that book's last id): currency `cur`'s
    /// counter, at least `prev + 1`.
    fn next_change_id(&self, cur: usize, prev: i64) -> i64 {
        self.curs[cur].change_id.max(prev + 1)
    }

    /// Currency `cur`'s counter now.
    fn change_id(&self, cur: usize) -> i64 {
        self.curs[cur].change_id
    }

    /// One step's ids for books nobody here sees, per currency.
    fn hidden_ids(&mut self, per_currency: Vec<i64>) {
        for (c, n) in self.curs.iter_mut().zip(per_currency) {
            c.change_id += n;
        }
    }

    /// `(expiry_id, t, forward, atm, skew, curv, sqrt_t, forward_2)` per expiry.
    #[allow(clippy::type_complexity)]
    fn set_terms(&mut self, rows: Vec<(usize, f64, f64, f64, f64, f64, f64, f64)>) {
        for (i, t, forward, atm, skew, curv, sqrt_t, forward_2) in rows {
            if self.terms.len() <= i {
                self.terms.resize(i + 1, Terms::default());
            }
            self.terms[i] = Terms { t, forward, atm, skew, curv, sqrt_t, forward_2 };
        }
    }

    /// Register an option with its current state; returns its engine id.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, ticker_ch, book_ch, cur, expiry, strike, is_call, underlying_index, params, bids, asks, targets, targets_version, change_id, book_ts_ms, stats, settlement, last_steps))]
    fn add_option(
        &mut self,
        name: Bound<'_, PyString>,
        ticker_ch: Bound<'_, PyString>,
        book_ch: Bound<'_, PyString>,
        cur: usize,
        expiry: usize,
        strike: f64,
        is_call: bool,
        underlying_index: Vec<u8>,
        params: QuoteParams,
        bids: Vec<(f64, f64)>,
        asks: Vec<(f64, f64)>,
        targets: (Vec<f64>, Vec<f64>),
        targets_version: i64,
        change_id: i64,
        book_ts_ms: i64,
        stats: OptionStats,
        settlement: Option<f64>,
        last_steps: (i64, i64),
    ) -> PyResult<usize> {
        let n = name.to_str()?;
        let mut book_head = notification_head(book_ch.to_str()?);
        book_head.extend_from_slice(b"{\"type\":\"change\",\"instrument_name\":\"");
        book_head.extend_from_slice(n.as_bytes());
        book_head.extend_from_slice(b"\",");
        let ticker_head = notification_head(ticker_ch.to_str()?);
        let mut ui = b",\"underlying_index\":".to_vec();
        ui.extend_from_slice(&underlying_index);
        ui.extend_from_slice(b",\"stats\":");
        let mut name_json = b",\"instrument_name\":\"".to_vec();
        name_json.extend_from_slice(n.as_bytes());
        name_json.extend_from_slice(b"\",\"index_price\":");
        let (half_iv, depth_bid, depth_ask, mut gaps, size_scale) = params;
        if gaps.is_empty() {
            gaps.push(1);
        }
        while gaps.len() < MAX_GAPS {
            gaps.push(gaps[gaps.len() % gaps.len().max(1)]);
        }
        let (trade_seq, last_price, volume, open_interest, low, high, open_price) = stats;
        let mut o = Opt {
            name: name.clone().unbind(),
            ticker_ch: ticker_ch.unbind(),
            book_ch: book_ch.unbind(),
            cur,
            expiry,
            strike,
            is_call,
            ui,
            name_json,
            ticker_head,
            book_head,
            half_iv,
            depth_bid,
            depth_ask,
            gaps,
            size_scale,
            bids,
            asks,
            tbids: targets.0,
            tasks: targets.1,
            targets_version,
            top: [0.0; 4],
            change_id,
            book_ts_ms,
            last_ticker_step: last_steps.0,
            last_book_step: last_steps.1,
            val: Val::default(),
            mark_iv: 0.0,
            forward: 0.0,
            val_version: -1,
            trade_seq,
            last_price,
            volume,
            open_interest,
            low,
            high,
            open_price,
            settlement,
            expired: false,
            delivery_price: 0.0,
            tbody: Vec::with_capacity(1024),
            tbody_key: None,
        };
        o.update_top();
        self.opts.push(o);
        Ok(self.opts.len() - 1)
    }

    /// The emission rows (engine id, p_ticker, p_book), normal and during bursts.
    fn set_rows(&mut self, rows: Vec<(usize, f64, f64)>, burst_rows: Vec<(usize, f64, f64)>) {
        self.rows = rows;
        self.burst_rows = burst_rows;
    }

    /// After a trade: `(trade_seq, last_price, volume, open_interest, low, high)`.
    #[allow(clippy::too_many_arguments)]
    fn set_trade(
        &mut self,
        id: usize,
        trade_seq: i64,
        last_price: Option<f64>,
        volume: f64,
        open_interest: f64,
        low: f64,
        high: f64,
    ) {
        let o = &mut self.opts[id];
        o.trade_seq = trade_seq;
        o.last_price = last_price;
        o.volume = volume;
        o.open_interest = open_interest;
        o.low = low;
        o.high = high;
        o.tbody_key = None;
    }

    /// The daily settlement: the new settlement price and 24 h reference price.
    fn set_settlement(&mut self, id: usize, settlement: Option<f64>, open_price: f64) {
        let o = &mut self.opts[id];
        o.settlement = settlement;
        o.open_price = open_price;
        o.tbody_key = None;
    }

    /// The option expired: its book was cleared (by a change with `change_id` at
    /// `book_ts_ms`), its tickers turn `closed` with a delivery price.
    fn expire(&mut self, id: usize, delivery_price: f64, change_id: i64, book_ts_ms: i64) {
        let o = &mut self.opts[id];
        o.expired = true;
        o.delivery_price = delivery_price;
        o.bids.clear();
        o.asks.clear();
        o.tbids.clear();
        o.tasks.clear();
        o.change_id = change_id;
        o.book_ts_ms = book_ts_ms;
        o.update_top();
        o.tbody_key = None;
    }

    /// The option was delivered: nothing of it is needed any more.
    fn retire(&mut self, id: usize) {
        let o = &mut self.opts[id];
        o.bids = Vec::new();
        o.asks = Vec::new();
        o.tbids = Vec::new();
        o.tasks = Vec::new();
        o.tbody = Vec::new();
        o.tbody_key = None;
    }

    fn set_book_ts(&mut self, id: usize, ts_ms: i64) {
        self.opts[id].book_ts_ms = ts_ms;
    }

    /// `(bids, asks, change_id, book_ts_ms, targets, targets_version,
    /// (last_ticker_step, last_book_step))`, books as `[(price, amount)]` in insertion order.
    #[allow(clippy::type_complexity)]
    fn state(
        &self,
        id: usize,
    ) -> (
        Vec<(f64, f64)>,
        Vec<(f64, f64)>,
        i64,
        i64,
        (Vec<f64>, Vec<f64>),
        i64,
        (i64, i64),
    ) {
        let o = &self.opts[id];
        (
            o.bids.clone(),
            o.asks.clone(),
            o.change_id,
            o.book_ts_ms,
            (o.tbids.clone(), o.tasks.clone()),
            o.targets_version,
            (o.last_ticker_step, o.last_book_step),
        )
    }

    /// One step's option ticker and book notifications: `[(channel, wire, record)]`,
    /// `wire` the whole WebSocket frame of the `.100ms` channel's notification, `record`
    /// its send-log record (`encode.ticker_record` / `book_change_record`). Each gets its
    /// own millisecond in `(prev_ms, now_ms]`.
    #[allow(clippy::too_many_arguments)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        step: i64,
        prev_ms: i64,
        now_ms: i64,
        spot_version: i64,
        burst: bool,
        min_steps: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        self.spot_version = spot_version;
        let out = PyList::empty(py);
        let quotes = intern!(py, "quotes");
        let book = intern!(py, "book_changes");
        let due = step - min_steps;
        let rows = std::mem::take(if burst { &mut self.burst_rows } else { &mut self.rows });
        let mut result = Ok(());
        for &(i, p_ticker, p_book) in rows.iter() {
            if p_ticker > 0.0 && self.opts[i].last_ticker_step <= due && self.rng.random() < p_ticker {
                self.opts[i].last_ticker_step = step;
                let ts = self.stamp(prev_ms, now_ms);
                if self.opts[i].val_version != spot_version {
                    self.reprice(i);
                }
                self.ticker_body(i);
                let o = &self.opts[i];
                self.scratch.clear();
                self.scratch.extend_from_slice(&o.ticker_head);
                self.scratch.extend_from_slice(&o.tbody);
                push_i(&mut self.scratch, ts);
                self.scratch.extend_from_slice(b"}}}");
                let wire = self.wire(py)?;
                let o = &self.opts[i];
                let ch = o.ticker_ch.bind(py);
                let rec = (quotes, ch, o.name.bind(py), ts * 1000).into_pyobject(py)?;
                result = out.append((ch, wire, rec));
                if result.is_err() {
                    break;
                }
            }
            if p_book > 0.0 && self.opts[i].last_book_step <= due && self.rng.random() < p_book {
                self.opts[i].last_book_step = step;
                let ts = self.stamp(prev_ms, now_ms);
                if self.opts[i].expired {
                    continue;
                }
                if self.opts[i].val_version != spot_version {
                    self.reprice(i);
                }
                if self.book_event(i) {
                    let o = &mut self.opts[i];
                    o.book_ts_ms = ts;
                    let s = &mut self.scratch;
                    s.clear();
                    s.extend_from_slice(&o.book_head);
                    s.extend_from_slice(b"\"timestamp\":");
                    push_i(s, ts);
                    s.extend_from_slice(b",\"prev_change_id\":");
                    let n_rows = self.bids_out.len() + self.asks_out.len();
                    let prev_id = self.last_prev;
                    push_i(s, prev_id);
                    s.extend_from_slice(b",\"change_id\":");
                    push_i(s, o.change_id);
                    s.extend_from_slice(b",\"bids\":");
                    push_levels(s, &self.bids_out);
                    s.extend_from_slice(b",\"asks\":");
                    push_levels(s, &self.asks_out);
                    s.extend_from_slice(b"}}}");
                    let wire = self.wire(py)?;
                    let o = &self.opts[i];
                    let ch = o.book_ch.bind(py);
                    let rec = (book, ch, o.name.bind(py), o.change_id, prev_id, n_rows, false, ts * 1000)
                        .into_pyobject(py)?;
                    result = out.append((ch, wire, rec));
                    if result.is_err() {
                        break;
                    }
                }
            }
        }
        if burst {
            self.burst_rows = rows;
        } else {
            self.rows = rows;
        }
        result?;
        Ok(out)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SimEngine>()?;
    Ok(())
}
