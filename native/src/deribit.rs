//! Deribit: the native fast path of `tickarchive.venues.deribit.normalize`: one Deribit `ticker.*` or `book.*.*`
//! notification (raw bytes) → the QuestDB ILP protocol-v2 lines that
//! `tickarchive.store.ilp.IlpEncoder(2)` writes for the events `parse_frame` makes of it.
//!
//! Exactness contract: whenever `encode_frame` returns a tuple, its payload is
//! byte-identical to the reference (Python) path; whenever it is not certain of that, it
//! returns `None` and the caller uses the reference path. It never raises on any bytes.
//!
//! What it mirrors (`venues/deribit/normalize.py` `_fast`, `quote_from_wire`, `book_from_wire`,
//! `venues/deribit/wire.py`, `store/ilp.py` `_quote`/`_book`):
//! * family chosen by the first raw `"channel":"` occurrence (`ticker.` / `book.`),
//!   whatever the decoded channel then is; `method` must equal `subscription`; a book
//!   channel must have exactly two dots;
//! * msgspec struct decoding (`wire.TickerFrame`, `wire.BookFrame`): unknown keys ignored
//!   (but their JSON must be valid), objects only for structs, `null` = absent for
//!   optional fields, ints accepted for floats (`-0` → `0.0`), floats rejected for ints,
//!   out-of-range floats rejected, exactly-3-element book levels;
//! * things it does not try to reproduce and leaves to Python: any JSON escape
//!   (backslash) inside a string, invalid UTF-8 anywhere, a repeated known key (msgspec
//!   keeps the last), a numeric `underlying_index`, timestamps or ids outside the ILP
//!   range, nesting deeper than `MAX_DEPTH`.
//!
//! The JSON reader is a small strict recursive-descent parser (RFC 8259 grammar, no
//! escapes) specialised for these two shapes: ~2× faster than serde_json + derive here,
//! which matters on the collector's hot path (one call per frame).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString};

use crate::ilp::*;
use crate::json::*;

// ------------------------------------------------------------------ wire structs

pub(crate) struct Ticker<'a> {
    pub(crate) instrument_name: Option<&'a str>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) f: [Option<f64>; NCOLS], // in ILP column order, see COLS
    pub(crate) underlying_index: Option<&'a str>,
    pub(crate) state: Option<&'a str>,
    pub(crate) combo_state: Option<&'a str>,
}

pub(crate) const NCOLS: usize = 34;

impl Default for Ticker<'_> {
    fn default() -> Self {
        Ticker {
            instrument_name: None,
            timestamp: None,
            f: [None; NCOLS],
            underlying_index: None,
            state: None,
            combo_state: None,
        }
    }
}

/// Ticker columns in `store/ilp.py` `_quote` order (after `recv_ts`).
pub(crate) const COLS: [&[u8]; NCOLS] = [
    b"bid_price",
    b"bid_amount",
    b"ask_price",
    b"ask_amount",
    b"bid_iv",
    b"ask_iv",
    b"mark_iv",
    b"mark_price",
    b"underlying_price",
    b"index_price",
    b"delta",
    b"gamma",
    b"vega",
    b"theta",
    b"rho",
    b"open_interest",
    b"last_price",
    b"settlement_price",
    b"min_price",
    b"max_price",
    b"interest_rate",
    b"volume_24h",
    b"current_funding",
    b"funding_8h",
    b"estimated_delivery_price",
    b"high_24h",
    b"low_24h",
    b"price_change_24h",
    b"volume_usd_24h",
    b"volume_notional_24h",
    b"interest_value",
    b"delivery_price",
    b"implied_bid",
    b"implied_ask",
];
pub(crate) const C_BP: usize = 0;
pub(crate) const C_BA: usize = 1;
pub(crate) const C_AP: usize = 2;
pub(crate) const C_AA: usize = 3;
pub(crate) const C_BIV: usize = 4;
pub(crate) const C_AIV: usize = 5;
pub(crate) const C_DELTA: usize = 10;
pub(crate) const C_LAST: usize = 16;
pub(crate) const C_VOLUME: usize = 21;
pub(crate) const C_EDP: usize = 24;
/// `stats.{high, low, price_change, volume_usd, volume_notional}` → these columns.
pub(crate) const C_HIGH: usize = 25;

/// The float fields of `wire.TickerWire` → (seen bit, column).
pub(crate) fn ticker_float_field(key: &str) -> Option<(u32, usize)> {
    Some(match key {
        "best_bid_price" => (2, C_BP),
        "best_bid_amount" => (3, C_BA),
        "best_ask_price" => (4, C_AP),
        "best_ask_amount" => (5, C_AA),
        "bid_iv" => (6, C_BIV),
        "ask_iv" => (7, C_AIV),
        "mark_iv" => (8, 6),
        "mark_price" => (9, 7),
        "underlying_price" => (10, 8),
        "index_price" => (11, 9),
        "open_interest" => (12, 15),
        "settlement_price" => (14, 17),
        "min_price" => (15, 18),
        "max_price" => (16, 19),
        "interest_rate" => (17, 20),
        "current_funding" => (18, 22),
        "funding_8h" => (19, 23),
        "interest_value" => (25, 30),
        "delivery_price" => (26, 31),
        "implied_bid" => (27, 32),
        "implied_ask" => (28, 33),
        _ => return None,
    })
}

pub(crate) fn ticker_data<'a>(p: &mut P<'a>, depth: u32, t: &mut Ticker<'a>) -> R<()> {
    let mut seen = 0u64;
    p.object(depth, |p, key| {
        if let Some((bit, col)) = ticker_float_field(key) {
            once(&mut seen, bit)?;
            t.f[col] = p.opt_float()?;
            return Ok(());
        }
        match key {
            "instrument_name" => {
                once(&mut seen, 0)?;
                t.instrument_name = Some(p.string()?);
            }
            "timestamp" => {
                once(&mut seen, 1)?;
                t.timestamp = Some(p.int()?);
            }
            "underlying_index" => {
                once(&mut seen, 20)?;
                // `str | float | None`: a number would be repr()'d by Python: leave it
                t.underlying_index = p.opt_str()?;
            }
            "estimated_delivery_price" => {
                once(&mut seen, 21)?;
                // `float | str | None`: any string ("expired") → NULL
                t.f[C_EDP] = float_or_string(p)?;
            }
            "last_price" => {
                once(&mut seen, 13)?;
                // `float | str | None`: any string ("undefined") → NULL
                t.f[C_LAST] = float_or_string(p)?;
            }
            "state" => {
                once(&mut seen, 22)?;
                t.state = p.opt_str()?;
            }
            "combo_state" => {
                once(&mut seen, 29)?;
                t.combo_state = p.opt_str()?;
            }
            "greeks" => {
                once(&mut seen, 23)?;
                for c in &mut t.f[C_DELTA..C_DELTA + 5] {
                    *c = None;
                }
                if !p.null()? {
                    let mut seen2 = 0u64;
                    p.object(depth + 1, |p, key| {
                        let k = match key {
                            "delta" => 0,
                            "gamma" => 1,
                            "vega" => 2,
                            "theta" => 3,
                            "rho" => 4,
                            _ => return p.skip(depth + 2),
                        };
                        once(&mut seen2, k as u32)?;
                        t.f[C_DELTA + k] = p.opt_float()?;
                        Ok(())
                    })?;
                }
            }
            "stats" => {
                once(&mut seen, 24)?;
                t.f[C_VOLUME] = None;
                for c in &mut t.f[C_HIGH..C_HIGH + 5] {
                    *c = None;
                }
                if !p.null()? {
                    let mut seen2 = 0u64;
                    p.object(depth + 1, |p, key| {
                        let col = match key {
                            "volume" => C_VOLUME,
                            "high" => C_HIGH,
                            "low" => C_HIGH + 1,
                            "price_change" => C_HIGH + 2,
                            "volume_usd" => C_HIGH + 3,
                            "volume_notional" => C_HIGH + 4,
                            _ => return p.skip(depth + 2),
                        };
                        once(&mut seen2, col as u32)?;
                        t.f[col] = p.opt_float()?;
                        Ok(())
                    })?;
                }
            }
            _ => p.skip(depth)?,
        }
        Ok(())
    })
}

/// A `float | str | None` field: a string is NULL (Deribit's "expired", "undefined").
fn float_or_string(p: &mut P<'_>) -> R<Option<f64>> {
    match p.peek()? {
        b'"' => {
            p.string()?;
            Ok(None)
        }
        _ => p.opt_float(),
    }
}

pub(crate) struct Level<'a> {
    pub(crate) action: &'a str,
    pub(crate) price: f64,
    pub(crate) amount: f64,
}

#[derive(Default)]
pub(crate) struct Book<'a> {
    pub(crate) instrument_name: Option<&'a str>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) change_id: Option<i64>,
    pub(crate) prev_change_id: Option<i64>,
    pub(crate) kind: Option<&'a str>,
    pub(crate) bids: Option<Vec<Level<'a>>>,
    pub(crate) asks: Option<Vec<Level<'a>>>,
}

/// `list[tuple[str, float, float]]`.
pub(crate) fn levels<'a>(p: &mut P<'a>, depth: u32) -> R<Vec<Level<'a>>> {
    let mut out = Vec::new();
    p.array(depth, |p| {
        if depth + 1 >= MAX_DEPTH {
            return Err(());
        }
        p.eat(b'[')?;
        let action = p.string()?;
        p.eat(b',')?;
        let price = p.float()?;
        p.eat(b',')?;
        let amount = p.float()?;
        p.eat(b']')?;
        out.push(Level {
            action,
            price,
            amount,
        });
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn book_data<'a>(p: &mut P<'a>, depth: u32, b: &mut Book<'a>) -> R<()> {
    let mut seen = 0u64;
    p.object(depth, |p, key| {
        match key {
            "instrument_name" => {
                once(&mut seen, 0)?;
                b.instrument_name = Some(p.string()?);
            }
            "timestamp" => {
                once(&mut seen, 1)?;
                b.timestamp = Some(p.int()?);
            }
            "change_id" => {
                once(&mut seen, 2)?;
                b.change_id = Some(p.int()?);
            }
            "prev_change_id" => {
                once(&mut seen, 3)?;
                b.prev_change_id = p.opt_int()?;
            }
            "type" => {
                once(&mut seen, 4)?;
                b.kind = p.opt_str()?;
            }
            "bids" => {
                once(&mut seen, 5)?;
                b.bids = Some(levels(p, depth + 1)?);
            }
            "asks" => {
                once(&mut seen, 6)?;
                b.asks = Some(levels(p, depth + 1)?);
            }
            _ => p.skip(depth)?,
        }
        Ok(())
    })
}

// ------------------------------------------------------------------ ticker

struct Encoded<'a> {
    channel: &'a str,
    table: &'static str,
    payload: Vec<u8>,
    rows: usize,
    instrument: &'a str,
    ts_us: i64,
    book: Option<(i64, Option<i64>, bool)>,
}

/// `ticker.interval_of`: `raw` / `100ms` / `agg2` at the end of a channel name.
pub(crate) fn interval_of(channel: &str) -> Option<&'static [u8]> {
    let tail = match channel.rfind('.') {
        Some(i) => &channel[i + 1..],
        None => channel,
    };
    match tail {
        "raw" => Some(b"raw"),
        "100ms" => Some(b"100ms"),
        "agg2" => Some(b"agg2"),
        _ => None,
    }
}

fn ts_us_of(timestamp_ms: i64) -> R<i64> {
    match timestamp_ms.checked_mul(1000) {
        Some(v) if v >= 0 => Ok(v),
        _ => Err(()), // TimestampMicros takes 0..=i64::MAX
    }
}

#[inline]
fn empty(v: Option<f64>) -> bool {
    v.is_none_or(|v| v == 0.0) // Python `not v`: None, 0.0, -0.0
}

/// A ticker notification as the reference parser normalizes it (before any output form).
pub(crate) struct NormTicker<'a> {
    pub(crate) channel: &'a str,
    pub(crate) inst: &'a str,
    pub(crate) ts_us: i64,
    /// In `COLS` order.
    pub(crate) f: [Option<f64>; NCOLS],
    pub(crate) underlying_index: Option<&'a str>,
    pub(crate) state: Option<&'a str>,
    pub(crate) combo_state: Option<&'a str>,
}

pub(crate) fn normalize_ticker(s: &str) -> R<NormTicker<'_>> {
    let mut p = P::new(s);
    let mut t = Ticker::default();
    let (method, channel) = envelope(&mut p, |p, depth| ticker_data(p, depth, &mut t))?;
    finish_ticker(method, channel, t)
}

/// `normalize_ticker` after the JSON is read: the envelope's method and channel and the
/// wire fields (also what `tjz_columns` fills from a `.tjz` frame's values).
pub(crate) fn finish_ticker<'a>(method: &'a str, channel: &'a str, mut t: Ticker<'a>) -> R<NormTicker<'a>> {
    if method != "subscription" {
        return Err(());
    }
    let inst = t.instrument_name.ok_or(())?;
    let ts_us = ts_us_of(t.timestamp.ok_or(())?)?;
    let f = &mut t.f;
    // `ticker.quote_from_wire`: a side is empty when its amount is 0 / null or its price
    // null; a 0.0 IV is Deribit's "no IV"
    if empty(f[C_BA]) || f[C_BP].is_none() {
        f[C_BP] = None;
        f[C_BA] = None;
        f[C_BIV] = None;
    } else if empty(f[C_BIV]) {
        f[C_BIV] = None;
    }
    if empty(f[C_AA]) || f[C_AP].is_none() {
        f[C_AP] = None;
        f[C_AA] = None;
        f[C_AIV] = None;
    } else if empty(f[C_AIV]) {
        f[C_AIV] = None;
    }
    Ok(NormTicker {
        channel,
        inst,
        ts_us,
        f: t.f,
        underlying_index: t.underlying_index,
        state: t.state,
        combo_state: t.combo_state,
    })
}

fn encode_ticker(s: &str, recv_ts_us: i64) -> R<Encoded<'_>> {
    let t = normalize_ticker(s)?;
    let (channel, inst, ts_us) = (t.channel, t.inst, t.ts_us);
    let mut out = Vec::with_capacity(768);
    out.extend_from_slice(b"quotes,instrument=");
    push_symbol(&mut out, inst);
    if let Some(ui) = t.underlying_index {
        out.extend_from_slice(b",underlying_index=");
        push_symbol(&mut out, ui);
    }
    if let Some(st) = t.state {
        out.extend_from_slice(b",state=");
        push_symbol(&mut out, st);
    }
    if let Some(cs) = t.combo_state {
        out.extend_from_slice(b",combo_state=");
        push_symbol(&mut out, cs);
    }
    if let Some(iv) = interval_of(channel) {
        out.extend_from_slice(b",channel_interval=");
        out.extend_from_slice(iv);
    }
    out.extend_from_slice(b" recv_ts=");
    push_i64(&mut out, recv_ts_us);
    out.push(b't');
    for (name, v) in COLS.iter().zip(t.f.iter()) {
        push_f64(&mut out, name, *v);
    }
    out.push(b' ');
    push_i64(&mut out, ts_us);
    out.extend_from_slice(b"t\n");
    Ok(Encoded {
        channel,
        table: "quotes",
        payload: out,
        rows: 1,
        instrument: inst,
        ts_us,
        book: None,
    })
}

// ------------------------------------------------------------------ book

/// Book actions as the reference stores them (`BookAction`).
pub(crate) const ACTIONS: [&str; 5] = ["new", "change", "delete", "snapshot", "empty"];
pub(crate) const A_SNAPSHOT: u8 = 3;
/// `book.book_from_wire`: a snapshot side without levels is one `empty` marker row (price and amount 0.0).
pub(crate) const A_EMPTY: u8 = 4;

/// A `book.{instrument}.{interval}` notification as the reference parser normalizes it.
pub(crate) struct NormBook<'a> {
    pub(crate) channel: &'a str,
    pub(crate) inst: &'a str,
    pub(crate) ts_us: i64,
    pub(crate) change_id: i64,
    pub(crate) prev: Option<i64>,
    pub(crate) snap: bool,
    /// (is_ask, action index into `ACTIONS`, price, amount), bids first.
    pub(crate) levels: Vec<(bool, u8, f64, f64)>,
}

pub(crate) fn normalize_book(s: &str) -> R<NormBook<'_>> {
    let mut p = P::new(s);
    let mut b = Book::default();
    let (method, channel) = envelope(&mut p, |p, depth| book_data(p, depth, &mut b))?;
    finish_book(method, channel, b)
}

/// `normalize_book` after the JSON is read (see `finish_ticker`).
pub(crate) fn finish_book<'a>(method: &'a str, channel: &'a str, b: Book<'a>) -> R<NormBook<'a>> {
    if method != "subscription" || channel.bytes().filter(|&c| c == b'.').count() != 2 {
        return Err(());
    }
    let inst = b.instrument_name.ok_or(())?;
    let ts_us = ts_us_of(b.timestamp.ok_or(())?)?;
    let change_id = b.change_id.ok_or(())?;
    let bids = b.bids.ok_or(())?;
    let asks = b.asks.ok_or(())?;
    let snap = b.kind == Some("snapshot") || (b.kind.is_none() && b.prev_change_id.is_none());
    let prev = if snap { None } else { b.prev_change_id };
    let mut levels = Vec::with_capacity(bids.len() + asks.len());
    for (side, ask) in [(&bids, false), (&asks, true)] {
        for l in side.iter() {
            let action = if snap {
                A_SNAPSHOT
            } else {
                match l.action {
                    "new" => 0,
                    "change" => 1,
                    "delete" => 2,
                    _ => return Err(()), // Python: Malformed invalid_data
                }
            };
            levels.push((ask, action, l.price, l.amount));
        }
        if snap && side.is_empty() {
            levels.push((ask, A_EMPTY, 0.0, 0.0));
        }
    }
    Ok(NormBook {
        channel,
        inst,
        ts_us,
        change_id,
        prev,
        snap,
        levels,
    })
}

fn encode_book(s: &str, recv_ts_us: i64) -> R<Encoded<'_>> {
    let b = normalize_book(s)?;
    let (channel, inst, ts_us, change_id, prev, snap) = (b.channel, b.inst, b.ts_us, b.change_id, b.prev, b.snap);
    let rows = b.levels.len();
    let mut out = Vec::new();
    if rows > 0 {
        let mut head = Vec::with_capacity(64);
        head.extend_from_slice(b"book_changes,instrument=");
        push_symbol(&mut head, inst);
        let iv = interval_of(channel);
        let mut tail = Vec::with_capacity(96);
        if let Some(iv) = iv {
            tail.extend_from_slice(b",channel_interval=");
            tail.extend_from_slice(iv);
        }
        tail.extend_from_slice(b" recv_ts=");
        push_i64(&mut tail, recv_ts_us);
        tail.extend_from_slice(b"t,change_id=");
        push_i64(&mut tail, change_id);
        tail.push(b'i');
        if let Some(pv) = prev {
            tail.extend_from_slice(b",prev_change_id=");
            push_i64(&mut tail, pv);
            tail.push(b'i');
        }
        tail.extend_from_slice(if snap {
            b",is_snapshot=t"
        } else {
            b",is_snapshot=f"
        });
        let mut end = Vec::with_capacity(24);
        end.push(b' ');
        push_i64(&mut end, ts_us);
        end.extend_from_slice(b"t\n");
        out.reserve(rows * (head.len() + tail.len() + end.len() + 64));
        for &(ask, action, price, amount) in b.levels.iter() {
            out.extend_from_slice(&head);
            out.extend_from_slice(if ask { b",side=ask" } else { b",side=bid" });
            out.extend_from_slice(b",action=");
            out.extend_from_slice(ACTIONS[action as usize].as_bytes());
            out.extend_from_slice(&tail);
            push_f64(&mut out, b"price", Some(price));
            push_f64(&mut out, b"amount", Some(amount));
            out.extend_from_slice(&end);
        }
    }
    Ok(Encoded {
        channel,
        table: "book_changes",
        payload: out,
        rows,
        instrument: inst,
        ts_us,
        book: Some((change_id, prev, snap)),
    })
}

// ------------------------------------------------------------------ entry point

const CHANNEL_KEY: &[u8] = b"\"channel\":\"";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if hay[i] == first && &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Which fast-path family a frame is (`_fast`: what follows the first `"channel":"` in
/// the raw bytes), with the frame as text; `None` for anything else or invalid UTF-8.
pub(crate) fn family(frame: &[u8]) -> Option<(bool, &str)> {
    let i = find(frame, CHANNEL_KEY)?;
    let rest = &frame[i + CHANNEL_KEY.len()..];
    let ticker = rest.starts_with(b"ticker.");
    if !ticker && !rest.starts_with(b"book.") {
        return None;
    }
    let s = std::str::from_utf8(frame).ok()?; // invalid UTF-8 anywhere: Python path
    Some((ticker, s))
}

/// The pure part of `encode_frame`.
fn encode(frame: &[u8], recv_ts_us: i64) -> Option<Encoded<'_>> {
    if recv_ts_us < 0 {
        return None;
    }
    let (ticker, s) = family(frame)?;
    let r = if ticker {
        encode_ticker(s, recv_ts_us)
    } else {
        encode_book(s, recv_ts_us)
    };
    r.ok()
}

/// The arguments as `(bytes, i64)`, or `None` (never an exception): anything but `bytes`
/// (a `str` text frame, `bytearray`, ...) and times outside `0..=i64::MAX` are left to Python.
fn args<'a, 'py>(
    frame: &'a Bound<'py, PyAny>,
    recv_ts_us: &Bound<'py, PyAny>,
) -> Option<(&'a [u8], i64)> {
    let f = frame.cast::<PyBytes>().ok()?;
    let ts = recv_ts_us.extract::<i64>().ok()?;
    Some((f.as_bytes(), ts))
}

/// `encode_frame(frame: bytes, recv_ts_us: int) -> tuple | None`
///
/// `(channel, table, payload, rows, instrument, ts_us, change_id, prev_change_id,
/// is_snapshot)` for a `ticker.*` (the last three `None`) or `book.{inst}.{interval}`
/// notification, `None` for anything else or anything not certainly identical to the
/// Python path.
#[pyfunction]
fn encode_frame<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
    recv_ts_us: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let e = match args(frame, recv_ts_us).and_then(|(f, ts)| encode(f, ts)) {
        None => return Ok(None),
        Some(e) => e,
    };
    let payload = PyBytes::new(py, &e.payload);
    let (cid, prev, snap) = match e.book {
        None => (None, None, None),
        Some((c, p, s)) => (Some(c), p, Some(s)),
    };
    let t = (
        e.channel,
        e.table,
        payload,
        e.rows,
        e.instrument,
        e.ts_us,
        cid,
        prev,
        snap,
    )
        .into_pyobject(py)?;
    Ok(Some(t.into_any()))
}

/// The Python types `fast_notification` builds: `tickarchive.venues.deribit.normalize.Notification`,
/// `tickarchive.domain.EncodedRows`, `tickarchive.venues.deribit.sequence.BookIds` (given by `set_types`).
struct Types {
    notification: Py<PyAny>,
    encoded_rows: Py<PyAny>,
    book_ids: Py<PyAny>,
}

static TYPES: PyOnceLock<Types> = PyOnceLock::new();

/// The field order `fast_notification` builds each type with (positional arguments): the
/// contract `set_types` checks against the classes' `__struct_fields__`.
const NOTIFICATION_FIELDS: [&str; 3] = ["channel", "events", "book"];
const ENCODED_ROWS_FIELDS: [&str; 5] = ["table", "payload", "rows", "instrument", "ts_us"];
const BOOK_IDS_FIELDS: [&str; 5] = [
    "instrument",
    "ts_us",
    "change_id",
    "prev_change_id",
    "is_snapshot",
];

fn check_fields(py: Python<'_>, cls: &Py<PyAny>, expected: &[&str]) -> PyResult<()> {
    let bound = cls.bind(py);
    let got: Vec<String> = bound.getattr(intern!(py, "__struct_fields__"))?.extract()?;
    if got.iter().map(String::as_str).ne(expected.iter().copied()) {
        let name: String = bound.getattr(intern!(py, "__name__"))?.extract()?;
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{name} has fields {got:?}; the native parser builds it with {expected:?} (change both together)"
        )));
    }
    Ok(())
}

/// `set_types(Notification, EncodedRows, BookIds)`: the classes `fast_notification`
/// instantiates, positionally in the field orders above; a class whose
/// `__struct_fields__` differ is refused with a `TypeError` (the contract is checked, not
/// assumed). Only the first successful call counts.
#[pyfunction]
fn set_types(
    py: Python<'_>,
    notification: Py<PyAny>,
    encoded_rows: Py<PyAny>,
    book_ids: Py<PyAny>,
) -> PyResult<()> {
    check_fields(py, &notification, &NOTIFICATION_FIELDS)?;
    check_fields(py, &encoded_rows, &ENCODED_ROWS_FIELDS)?;
    check_fields(py, &book_ids, &BOOK_IDS_FIELDS)?;
    let _ = TYPES.set(
        py,
        Types {
            notification,
            encoded_rows,
            book_ids,
        },
    );
    Ok(())
}

/// `fast_notification(frame: bytes, recv_ts_us: int) -> Notification | None`
///
/// `encode_frame` wrapped as `tickarchive.venues.deribit.native` documents it, without a Python frame:
/// `Notification(channel, [EncodedRows(table, payload, rows, instrument, ts_us)], book)`
/// (events `[]` for an empty book; `book` is `BookIds(...)` for books, `None` for tickers).
/// `None` also before `set_types` was called.
#[pyfunction]
fn fast_notification<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
    recv_ts_us: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let types = match TYPES.get(py) {
        None => return Ok(None),
        Some(t) => t,
    };
    let e = match args(frame, recv_ts_us).and_then(|(f, ts)| encode(f, ts)) {
        None => return Ok(None),
        Some(e) => e,
    };
    let channel = PyString::new(py, e.channel);
    let instrument = PyString::new(py, e.instrument);
    let events = PyList::empty(py);
    if e.rows > 0 {
        let table = if e.book.is_some() {
            intern!(py, "book_changes")
        } else {
            intern!(py, "quotes")
        };
        let payload = PyBytes::new(py, &e.payload);
        let rows =
            types
                .encoded_rows
                .bind(py)
                .call1((table, payload, e.rows, &instrument, e.ts_us))?;
        events.append(rows)?;
    }
    let book = match e.book {
        None => py.None().into_bound(py),
        Some((cid, prev, snap)) => {
            types
                .book_ids
                .bind(py)
                .call1((&instrument, e.ts_us, cid, prev, snap))?
        }
    };
    Ok(Some(
        types.notification.bind(py).call1((channel, events, book))?,
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(set_types, m)?)?;
    m.add_function(wrap_pyfunction!(fast_notification, m)?)?;
    Ok(())
}
