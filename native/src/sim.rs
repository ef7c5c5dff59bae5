//! The simulator's hot path (`loadtest.sim.native`): per generator step, every option's
//! ticker/book emission draw, repricing (Black-76 + smile, as `MarketModel._reprice`),
//! book changes (as `MarketModel._book_event`), the JSON of the ticker and book
//! notifications (as `loadtest.sim.encode`), the WebSocket frame and the send-log
//! record, for the whole step in one call.
//!
//! The option states live here once registered (`SimEngine.add_option`); Python keeps
//! the control plane (listings, the index walk, trades, subscriptions, faults) and
//! reads an option's book and valuation back with `SimEngine.state` when it needs them
//! (snapshots, trades). The emission and book draws come from this engine's own
//! generator (xoshiro256**, seeded from the simulator seed), so a seed still fixes the
//! frames, but they differ from the pure-Python model's.

use std::collections::HashMap;
use std::io::Write;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

unsafe extern "C" {
    fn erf(x: f64) -> f64;
}

const SIZES: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 25.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0,
];
const TICK: f64 = 0.0005;
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

    #[inline]
    fn size(&mut self) -> f64 {
        SIZES[(self.random() * SIZES.len() as f64) as usize]
    }
}

/// `market.fround`: `round(x, ndigits)` with `scale = 10**ndigits` (to the last bit but
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
/// on integral values, exponent form below 1e-4 and from 1e16), but Rust's exponent
/// spelling (`1e-5`, `1e16` where Python writes `1e-05`, `1e+16`): the same JSON number.
#[inline]
fn push_f(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        let _ = write!(out, "{x:?}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// `key` then the number, for each pair: a run of JSON number fields.
fn push_fields(out: &mut Vec<u8>, fields: &[(&[u8], f64)]) {
    for &(key, x) in fields {
        out.extend_from_slice(key);
        push_f(out, x);
    }
}

#[inline]
fn push_i(out: &mut Vec<u8>, x: i64) {
    let _ = write!(out, "{x}");
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

struct Opt {
    name: Py<PyString>,
    ticker_ch: Py<PyString>,
    book_ch: Py<PyString>,
    strike: f64,
    is_call: bool,
    expiry_ms: i64,
    /// `,"underlying_index":...,"state":...,"settlement_price":...,"min_price":`
    mid1: Vec<u8>,
    /// `,"interest_rate":0.0,"instrument_name":...,"index_price":`
    mid2: Vec<u8>,
    /// The notification heads of the two channels (+ the change head for books).
    ticker_head: Vec<u8>,
    book_head: Vec<u8>,
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
    last_price: f64,
    volume: f64,
    open_interest: f64,
    low: f64,
    high: f64,
    open_price: f64,
    tbody: Vec<u8>,
    tbody_key: Option<(i64, i64, [u64; 4])>,
}

impl Opt {
    fn update_top(&mut self) {
        let bid = self
            .bids
            .iter()
            .copied()
            .fold(None, |b: Option<(f64, f64)>, l| match b {
                Some(x) if x.0 >= l.0 => Some(x),
                _ => Some(l),
            });
        let ask = self
            .asks
            .iter()
            .copied()
            .fold(None, |b: Option<(f64, f64)>, l| match b {
                Some(x) if x.0 <= l.0 => Some(x),
                _ => Some(l),
            });
        let (b, ba) = bid.unwrap_or((0.0, 0.0));
        let (a, aa) = ask.unwrap_or((0.0, 0.0));
        self.top = [b, ba, a, aa];
    }

    fn iv_of(&self, price: f64) -> f64 {
        let vega_coin = if self.forward != 0.0 {
            self.val.vega / self.forward
        } else {
            0.0
        };
        if vega_coin <= 1e-12 {
            return self.mark_iv;
        }
        fround(
            (self.mark_iv + (price - self.val.price_coin) / vega_coin).max(0.0),
            100.0,
        )
    }
}

#[inline]
fn find(book: &[(f64, f64)], p: f64) -> Option<usize> {
    book.iter().position(|l| l.0 == p)
}

/// `_realign`: delete the levels that cross the new best target, add the best missing one.
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

type Terms = (i64, i64, f64, f64, f64, f64, f64);

#[pyclass(module = "tickarchive_native")]
pub struct SimEngine {
    opts: Vec<Opt>,
    rows: Vec<(usize, f64, f64)>,
    burst_rows: Vec<(usize, f64, f64)>,
    tick_prices: Vec<f64>,
    levels: usize,
    year_ms: f64,
    min_t: f64,
    rng: Rng,
    terms: HashMap<i64, Terms>,
    // the step's market inputs
    sim_ms: i64,
    spot: f64,
    base_vol: f64,
    spot_version: i64,
    index_price: f64,
    now_ms: i64,
    scratch: Vec<u8>,
    bids_out: Vec<(u8, f64, f64)>,
    asks_out: Vec<(u8, f64, f64)>,
    last_prev: i64,
}

fn notification_head(ch: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(80 + ch.len());
    v.extend_from_slice(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{\"channel\":\"",
    );
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

impl SimEngine {
    fn tick_price(&self, n: i64) -> f64 {
        if n >= 0 && (n as usize) < self.tick_prices.len() {
            self.tick_prices[n as usize]
        } else {
            fround(n as f64 * TICK, 1e4)
        }
    }

    fn reprice(&mut self, i: usize) {
        let expiry_ms = self.opts[i].expiry_ms;
        let t = match self.terms.get(&expiry_ms) {
            Some(t) if t.0 == self.sim_ms && t.1 == self.spot_version => *t,
            _ => {
                let t_years = ((expiry_ms - self.sim_ms) as f64 / self.year_ms).max(self.min_t);
                let forward = self.spot * (0.02 * t_years).exp();
                let atm = self.base_vol * (1.0 + 0.25 * (-t_years * 24.0).exp());
                let sqrt_t = t_years.max(self.min_t).sqrt();
                let t = (
                    self.sim_ms,
                    self.spot_version,
                    t_years,
                    forward,
                    atm,
                    sqrt_t,
                    fround(forward, 100.0),
                );
                self.terms.insert(expiry_ms, t);
                t
            }
        };
        let (_, _, t, forward, atm, sqrt_t, forward_2) = t;
        let o = &mut self.opts[i];
        let strike = o.strike;
        let k = ((strike / forward).ln() / sqrt_t).clamp(-4.0, 4.0);
        let vol = (atm + -0.04 * k + 0.025 * k * k).clamp(0.15, 3.0);
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
            (
                strike * nd2 - forward * nd1,
                -nd1,
                -strike * t * nd2 / 100.0,
            )
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
        o.forward = forward_2;
        o.val_version = self.spot_version;
    }

    fn targets(&self, o: &Opt) -> (Vec<f64>, Vec<f64>) {
        let mark = o.val.price_coin;
        let half = (mark * 0.04).max(TICK);
        let n_bid = ((mark - half) / TICK + 1e-9).floor() as i64;
        let mut n_ask = (((mark + half) / TICK - 1e-9).ceil() as i64).max(1);
        if n_ask <= n_bid {
            n_ask = n_bid + 1;
        }
        let l = self.levels as i64;
        let mut bids = Vec::with_capacity(self.levels);
        let mut asks = Vec::with_capacity(self.levels);
        if ((n_ask + 2 * l) as usize) < self.tick_prices.len() {
            if n_bid > 0 {
                let stop = (n_bid - 2 * l).max(0);
                let mut n = n_bid;
                while n > stop {
                    bids.push(self.tick_prices[n as usize]);
                    n -= 2;
                }
            }
            let mut n = n_ask;
            while n < n_ask + 2 * l {
                asks.push(self.tick_prices[n as usize]);
                n += 2;
            }
        } else {
            for i in 0..l {
                if n_bid - 2 * i > 0 {
                    bids.push(self.tick_price(n_bid - 2 * i));
                }
            }
            for i in 0..l {
                asks.push(self.tick_price(n_ask + 2 * i));
            }
        }
        (bids, asks)
    }

    /// `_book_event`: the change (into `bids_out` / `asks_out`), or false for none.
    fn book_event(&mut self, i: usize) -> bool {
        self.bids_out.clear();
        self.asks_out.clear();
        let version = self.spot_version;
        if self.opts[i].targets_version != version {
            let (fb, fa) = self.targets(&self.opts[i]);
            let rng = &mut self.rng;
            let o = &mut self.opts[i];
            o.targets_version = version;
            if fb != o.tbids || fa != o.tasks {
                let sb = rng.size();
                realign(&mut o.bids, &fb, true, sb, &mut self.bids_out);
                let sa = rng.size();
                realign(&mut o.asks, &fa, false, sa, &mut self.asks_out);
                o.tbids = fb;
                o.tasks = fa;
            }
        }
        let rng = &mut self.rng;
        let o = &mut self.opts[i];
        if !self.bids_out.is_empty() || !self.asks_out.is_empty() {
            o.update_top();
        } else {
            let is_bid = rng.random() < 0.5;
            let r = rng.random();
            let mut amount = rng.size();
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
            } else if r < 0.25 && book.len() > 2 {
                let mut w = 0usize;
                for (j, l) in book.iter().enumerate() {
                    let better = if is_bid {
                        l.0 < book[w].0
                    } else {
                        l.0 > book[w].0
                    };
                    if better {
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
                    amount += 1.0;
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
            if actions.is_empty() {
                return false;
            }
            o.top = top;
        }
        let prev = o.change_id;
        self.last_prev = prev;
        let a = rng.random();
        let b = rng.random();
        o.change_id = prev + 1 + (a * b * 400.0) as i64;
        o.book_ts_ms = self.now_ms;
        true
    }

    /// `encode.ticker_body`: the ticker's data up to and including `"timestamp":`.
    fn ticker_body(&mut self, i: usize) {
        let version = self.spot_version;
        let index = self.index_price;
        let o = &mut self.opts[i];
        let key = (version, o.trade_seq, o.top.map(f64::to_bits));
        if o.tbody_key == Some(key) {
            return;
        }
        let v = o.val;
        let out = &mut o.tbody;
        out.clear();
        out.extend_from_slice(b"{\"underlying_price\":");
        push_f(out, o.forward);
        out.extend_from_slice(&o.mid1);
        let mark = fround(v.price_coin, 1e8);
        push_f(out, fround(mark - 0.05 - mark * 0.5, 1e4).max(0.0001));
        out.extend_from_slice(b",\"max_price\":");
        push_f(out, fround(mark + 0.05 + mark * 0.5, 1e4));
        out.extend_from_slice(b",\"mark_price\":");
        push_f(out, mark);
        out.extend_from_slice(b",\"mark_iv\":");
        push_f(out, o.mark_iv);
        out.extend_from_slice(&o.mid2);
        push_f(out, index);
        push_fields(
            out,
            &[
                (b",\"greeks\":{\"vega\":", fround(v.vega, 1e5)),
                (b",\"theta\":", fround(v.theta, 1e5)),
                (b",\"rho\":", fround(v.rho, 1e5)),
                (b",\"gamma\":", fround(v.gamma, 1e5)),
                (b",\"delta\":", fround(v.delta, 1e5)),
                (b"},\"estimated_delivery_price\":", index),
            ],
        );
        let last = o.last_price;
        out.extend_from_slice(b",\"stats\":{\"volume_usd\":");
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
        let [bid, bid_amount, ask, ask_amount] = o.top;
        let bid_iv = if o.bids.is_empty() { 0.0 } else { o.iv_of(bid) };
        let ask_iv = if o.asks.is_empty() { 0.0 } else { o.iv_of(ask) };
        let out = &mut o.tbody;
        push_fields(
            out,
            &[
                (b"},\"open_interest\":", o.open_interest),
                (b",\"last_price\":", last),
                (b",\"bid_iv\":", bid_iv),
                (b",\"best_bid_price\":", bid),
                (b",\"best_bid_amount\":", bid_amount),
                (b",\"best_ask_price\":", ask),
                (b",\"best_ask_amount\":", ask_amount),
                (b",\"ask_iv\":", ask_iv),
            ],
        );
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
}

#[pymethods]
impl SimEngine {
    #[new]
    fn py_new(
        tick_prices: Vec<f64>,
        book_levels: usize,
        seed: u64,
        year_ms: f64,
        min_t: f64,
    ) -> Self {
        SimEngine {
            opts: Vec::new(),
            rows: Vec::new(),
            burst_rows: Vec::new(),
            tick_prices,
            levels: book_levels,
            year_ms,
            min_t,
            rng: Rng::new(seed),
            terms: HashMap::new(),
            sim_ms: 0,
            spot: 0.0,
            base_vol: 0.0,
            spot_version: -1,
            index_price: 0.0,
            now_ms: 0,
            scratch: Vec::with_capacity(4096),
            bids_out: Vec::new(),
            asks_out: Vec::new(),
            last_prev: 0,
        }
    }

    /// Register an option with its current state; returns its engine id.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, ticker_ch, book_ch, strike, is_call, expiry_ms, mid1, mid2, bids, asks, targets, targets_version, change_id, book_ts_ms, stats, last_steps))]
    fn add_option(
        &mut self,
        name: Bound<'_, PyString>,
        ticker_ch: Bound<'_, PyString>,
        book_ch: Bound<'_, PyString>,
        strike: f64,
        is_call: bool,
        expiry_ms: i64,
        mid1: Vec<u8>,
        mid2: Vec<u8>,
        bids: Vec<(f64, f64)>,
        asks: Vec<(f64, f64)>,
        targets: (Vec<f64>, Vec<f64>),
        targets_version: i64,
        change_id: i64,
        book_ts_ms: i64,
        stats: (i64, f64, f64, f64, f64, f64, f64),
        last_steps: (i64, i64),
    ) -> PyResult<usize> {
        let n = name.to_str()?;
        let mut book_head = notification_head(book_ch.to_str()?);
        book_head.extend_from_slice(b"{\"type\":\"change\",\"instrument_name\":\"");
        book_head.extend_from_slice(n.as_bytes());
        book_head.extend_from_slice(b"\",");
        let ticker_head = notification_head(ticker_ch.to_str()?);
        let (trade_seq, last_price, volume, open_interest, low, high, open_price) = stats;
        let mut o = Opt {
            name: name.clone().unbind(),
            ticker_ch: ticker_ch.unbind(),
            book_ch: book_ch.unbind(),
            strike,
            is_call,
            expiry_ms,
            mid1,
            mid2,
            ticker_head,
            book_head,
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
    fn set_trade(
        &mut self,
        id: usize,
        trade_seq: i64,
        last_price: f64,
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

    /// One step's ticker and book notifications: `[(channel, wire, record)]`, `wire` the
    /// whole WebSocket frame of the `.100ms` channel's notification, `record` its
    /// send-log record (`encode.ticker_record` / `book_change_record`).
    #[allow(clippy::too_many_arguments)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        step: i64,
        now_ms: i64,
        sim_ms: i64,
        spot: f64,
        base_vol: f64,
        spot_version: i64,
        index_price: f64,
        burst: bool,
        min_steps: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        self.now_ms = now_ms;
        self.sim_ms = sim_ms;
        self.spot = spot;
        self.base_vol = base_vol;
        self.spot_version = spot_version;
        self.index_price = index_price;
        let out = PyList::empty(py);
        let quotes = intern!(py, "quotes");
        let book = intern!(py, "book_changes");
        let ts_us = now_ms * 1000;
        let due = step - min_steps;
        let rows = std::mem::take(if burst {
            &mut self.burst_rows
        } else {
            &mut self.rows
        });
        let mut result = Ok(());
        for &(i, p_ticker, p_book) in rows.iter() {
            if p_ticker > 0.0
                && self.opts[i].last_ticker_step <= due
                && self.rng.random() < p_ticker
            {
                self.opts[i].last_ticker_step = step;
                if self.opts[i].val_version != spot_version {
                    self.reprice(i);
                }
                self.ticker_body(i);
                let o = &self.opts[i];
                self.scratch.clear();
                self.scratch.extend_from_slice(&o.ticker_head);
                self.scratch.extend_from_slice(&o.tbody);
                push_i(&mut self.scratch, now_ms);
                self.scratch.extend_from_slice(b"}}}");
                let wire = self.wire(py)?;
                let o = &self.opts[i];
                let ch = o.ticker_ch.bind(py);
                let rec = (quotes, ch, o.name.bind(py), ts_us).into_pyobject(py)?;
                result = out.append((ch, wire, rec));
                if result.is_err() {
                    break;
                }
            }
            if p_book > 0.0 && self.opts[i].last_book_step <= due && self.rng.random() < p_book {
                self.opts[i].last_book_step = step;
                if self.opts[i].val_version != spot_version {
                    self.reprice(i);
                }
                if self.book_event(i) {
                    let o = &self.opts[i];
                    let s = &mut self.scratch;
                    s.clear();
                    s.extend_from_slice(&o.book_head);
                    s.extend_from_slice(b"\"timestamp\":");
                    push_i(s, now_ms);
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
                    let rec = (
                        book,
                        ch,
                        o.name.bind(py),
                        o.change_id,
                        prev_id,
                        n_rows,
                        false,
                        ts_us,
                    )
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
