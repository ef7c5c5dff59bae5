//! Native fast path of `ingest.normalize`: one Deribit `ticker.*` or `book.*.*`
//! notification (raw bytes) → the QuestDB ILP protocol-v2 lines that
//! `store.ilp.IlpEncoder(2)` writes for the events `parse_frame` makes of it.
//!
//! Exactness contract: whenever `encode_frame` returns a tuple, its payload is
//! byte-identical to the reference (Python) path; whenever it is not certain of that, it
//! returns `None` and the caller uses the reference path. It never raises on any bytes.
//!
//! What it mirrors (`ingest/normalize.py` `_fast`, `quote_from_wire`, `book_from_wire`,
//! `ingest/wire.py`, `store/ilp.py` `_quote`/`_book`):
//! * family chosen by the first raw `"channel":"` occurrence (`ticker.` / `book.`),
//!   whatever the decoded channel then is; `method` must equal `subscription`; a book
//!   channel must have exactly two dots;
//! * msgspec struct decoding: unknown keys ignored, objects only (never arrays) for
//!   structs, `null` = absent for optional fields, ints accepted for floats (`-0` → `0.0`),
//!   floats rejected for ints, out-of-range floats rejected;
//! * things it does not try to reproduce and leaves to Python: any backslash in the frame
//!   (JSON escapes), invalid UTF-8 anywhere, duplicate keys, a numeric `underlying_index`,
//!   timestamps out of the ILP range.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt;
use std::marker::PhantomData;

// ------------------------------------------------------------------ decoding helpers

/// A struct that may only come from a JSON object (serde's derive also accepts arrays,
/// msgspec does not).
struct MapOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(PhantomData)).map(MapOnly)
    }
}

type Raw<'a> = Option<&'a RawValue>;

/// A msgspec `float` from the raw JSON text of a number; `Err` for anything else
/// (string, bool, object, array, null) and for out-of-range values.
fn float_of(raw: &RawValue) -> Result<f64, ()> {
    let s = raw.get();
    let first = *s.as_bytes().first().ok_or(())?;
    if first != b'-' && !first.is_ascii_digit() {
        return Err(());
    }
    let v: f64 = s.parse().map_err(|_| ())?; // correctly rounded, as msgspec
    if !v.is_finite() {
        return Err(()); // msgspec: "Number out of range"
    }
    if v == 0.0 && !s.bytes().any(|c| c == b'.' || c == b'e' || c == b'E') {
        return Ok(0.0); // an integer: "-0" is int 0 → 0.0
    }
    Ok(v)
}

/// `float | None`.
fn opt_float(raw: Raw) -> Result<Option<f64>, ()> {
    match raw {
        None => Ok(None),
        Some(r) => float_of(r).map(Some),
    }
}

/// The content of a JSON string without escapes (the frame has no backslash).
fn str_of(raw: &RawValue) -> Option<&str> {
    let s = raw.get();
    if s.len() >= 2 && s.as_bytes()[0] == b'"' {
        Some(&s[1..s.len() - 1])
    } else {
        None
    }
}

// ------------------------------------------------------------------ wire structs

#[derive(Deserialize)]
struct Frame<'a, D> {
    method: &'a str,
    #[serde(borrow)]
    params: MapOnly<Params<'a, D>>,
}

#[derive(Deserialize)]
struct Params<'a, D> {
    channel: &'a str,
    data: MapOnly<D>,
}

#[derive(Deserialize)]
struct Greeks<'a> {
    #[serde(borrow)]
    delta: Raw<'a>,
    #[serde(borrow)]
    gamma: Raw<'a>,
    #[serde(borrow)]
    vega: Raw<'a>,
    #[serde(borrow)]
    theta: Raw<'a>,
    #[serde(borrow)]
    rho: Raw<'a>,
}

#[derive(Deserialize)]
struct Stats<'a> {
    #[serde(borrow)]
    volume: Raw<'a>,
}

#[derive(Deserialize)]
struct Ticker<'a> {
    instrument_name: &'a str,
    timestamp: i64,
    #[serde(borrow)]
    best_bid_price: Raw<'a>,
    #[serde(borrow)]
    best_bid_amount: Raw<'a>,
    #[serde(borrow)]
    best_ask_price: Raw<'a>,
    #[serde(borrow)]
    best_ask_amount: Raw<'a>,
    #[serde(borrow)]
    bid_iv: Raw<'a>,
    #[serde(borrow)]
    ask_iv: Raw<'a>,
    #[serde(borrow)]
    mark_iv: Raw<'a>,
    #[serde(borrow)]
    mark_price: Raw<'a>,
    #[serde(borrow)]
    underlying_price: Raw<'a>,
    #[serde(borrow)]
    underlying_index: Raw<'a>,
    #[serde(borrow)]
    index_price: Raw<'a>,
    #[serde(borrow)]
    greeks: Option<MapOnly<Greeks<'a>>>,
    #[serde(borrow)]
    open_interest: Raw<'a>,
    #[serde(borrow)]
    last_price: Raw<'a>,
    #[serde(borrow)]
    settlement_price: Raw<'a>,
    #[serde(borrow)]
    min_price: Raw<'a>,
    #[serde(borrow)]
    max_price: Raw<'a>,
    #[serde(borrow)]
    interest_rate: Raw<'a>,
    #[serde(borrow)]
    stats: Option<MapOnly<Stats<'a>>>,
    #[serde(borrow)]
    current_funding: Raw<'a>,
    #[serde(borrow)]
    funding_8h: Raw<'a>,
    #[serde(borrow)]
    estimated_delivery_price: Raw<'a>,
    state: Option<&'a str>,
}

type Level<'a> = (&'a str, &'a RawValue, &'a RawValue);

#[derive(Deserialize)]
struct Book<'a> {
    instrument_name: &'a str,
    timestamp: i64,
    change_id: i64,
    #[serde(borrow)]
    bids: Vec<Level<'a>>,
    #[serde(borrow)]
    asks: Vec<Level<'a>>,
    prev_change_id: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<&'a str>,
}

// ------------------------------------------------------------------ ILP v2 writing

#[inline]
fn push_symbol(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        if matches!(b, b',' | b' ' | b'=' | b'\\' | b'\n' | b'\r') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[inline]
fn push_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// `,name==\x10<f64 LE>` (binary double, protocol v2), nothing for `None`.
#[inline]
fn push_f64(out: &mut Vec<u8>, name: &[u8], v: Option<f64>) {
    if let Some(v) = v {
        out.push(b',');
        out.extend_from_slice(name);
        out.extend_from_slice(b"==\x10");
        out.extend_from_slice(&v.to_le_bytes());
    }
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

fn ts_us_of(timestamp_ms: i64) -> Result<i64, ()> {
    match timestamp_ms.checked_mul(1000) {
        Some(v) if v >= 0 => Ok(v),
        _ => Err(()),
    }
}

fn encode_ticker(frame: &[u8], recv_ts_us: i64) -> Result<Encoded<'_>, ()> {
    let f: Frame<Ticker> = serde_json::from_slice(frame).map_err(|_| ())?;
    if f.method != "subscription" {
        return Err(());
    }
    let p = f.params.0;
    let t = p.data.0;
    let ts_us = ts_us_of(t.timestamp)?;

    let (mut bp, mut ba, mut bid_iv) = (opt_float(t.best_bid_price)?, opt_float(t.best_bid_amount)?, opt_float(t.bid_iv)?);
    if bp.is_none_or(|v| v == 0.0) || ba.is_none_or(|v| v == 0.0) {
        bp = None;
        ba = None;
        bid_iv = None;
    }
    let (mut ap, mut aa, mut ask_iv) = (opt_float(t.best_ask_price)?, opt_float(t.best_ask_amount)?, opt_float(t.ask_iv)?);
    if ap.is_none_or(|v| v == 0.0) || aa.is_none_or(|v| v == 0.0) {
        ap = None;
        aa = None;
        ask_iv = None;
    }
    let (delta, gamma, vega, theta, rho) = match &t.greeks {
        None => (None, None, None, None, None),
        Some(MapOnly(g)) => (
            opt_float(g.delta)?,
            opt_float(g.gamma)?,
            opt_float(g.vega)?,
            opt_float(g.theta)?,
            opt_float(g.rho)?,
        ),
    };
    let underlying_index = match t.underlying_index {
        None => None,
        Some(r) => Some(str_of(r).ok_or(())?), // a number would be repr()'d in Python: leave it
    };
    let edp = match t.estimated_delivery_price {
        None => None,
        Some(r) => {
            if r.get().as_bytes()[0] == b'"' {
                None // "expired" (any string) → NULL
            } else {
                Some(float_of(r)?)
            }
        }
    };
    let volume = match &t.stats {
        None => None,
        Some(MapOnly(s)) => opt_float(s.volume)?,
    };
    let cols: [(&[u8], Option<f64>); 25] = [
        (b"bid_price", bp),
        (b"bid_amount", ba),
        (b"ask_price", ap),
        (b"ask_amount", aa),
        (b"bid_iv", bid_iv),
        (b"ask_iv", ask_iv),
        (b"mark_iv", opt_float(t.mark_iv)?),
        (b"mark_price", opt_float(t.mark_price)?),
        (b"underlying_price", opt_float(t.underlying_price)?),
        (b"index_price", opt_float(t.index_price)?),
        (b"delta", delta),
        (b"gamma", gamma),
        (b"vega", vega),
        (b"theta", theta),
        (b"rho", rho),
        (b"open_interest", opt_float(t.open_interest)?),
        (b"last_price", opt_float(t.last_price)?),
        (b"settlement_price", opt_float(t.settlement_price)?),
        (b"min_price", opt_float(t.min_price)?),
        (b"max_price", opt_float(t.max_price)?),
        (b"interest_rate", opt_float(t.interest_rate)?),
        (b"volume_24h", volume),
        (b"current_funding", opt_float(t.current_funding)?),
        (b"funding_8h", opt_float(t.funding_8h)?),
        (b"estimated_delivery_price", edp),
    ];

    let mut out = Vec::with_capacity(640);
    out.extend_from_slice(b"quotes,instrument=");
    push_symbol(&mut out, t.instrument_name);
    if let Some(ui) = underlying_index {
        out.extend_from_slice(b",underlying_index=");
        push_symbol(&mut out, ui);
    }
    if let Some(st) = t.state {
        out.extend_from_slice(b",state=");
        push_symbol(&mut out, st);
    }
    out.extend_from_slice(b" recv_ts=");
    push_i64(&mut out, recv_ts_us);
    out.push(b't');
    for (name, v) in cols {
        push_f64(&mut out, name, v);
    }
    out.push(b' ');
    push_i64(&mut out, ts_us);
    out.extend_from_slice(b"t\n");
    Ok(Encoded {
        channel: p.channel,
        table: "quotes",
        payload: out,
        rows: 1,
        instrument: t.instrument_name,
        ts_us,
        book: None,
    })
}

// ------------------------------------------------------------------ book

fn encode_book(frame: &[u8], recv_ts_us: i64) -> Result<Encoded<'_>, ()> {
    let f: Frame<Book> = serde_json::from_slice(frame).map_err(|_| ())?;
    let p = f.params.0;
    if f.method != "subscription" || p.channel.bytes().filter(|&c| c == b'.').count() != 2 {
        return Err(());
    }
    let b = p.data.0;
    let snap = b.kind == Some("snapshot") || (b.kind.is_none() && b.prev_change_id.is_none());
    let prev = if snap { None } else { b.prev_change_id };
    let ts_us = ts_us_of(b.timestamp)?;

    let rows = b.bids.len() + b.asks.len();
    let mut out = Vec::new();
    if rows > 0 {
        let mut head = Vec::with_capacity(64);
        head.extend_from_slice(b"book_changes,instrument=");
        push_symbol(&mut head, b.instrument_name);
        let mut tail = Vec::with_capacity(96);
        tail.extend_from_slice(b" recv_ts=");
        push_i64(&mut tail, recv_ts_us);
        tail.extend_from_slice(b"t,change_id=");
        push_i64(&mut tail, b.change_id);
        tail.push(b'i');
        if let Some(pv) = prev {
            tail.extend_from_slice(b",prev_change_id=");
            push_i64(&mut tail, pv);
            tail.push(b'i');
        }
        tail.extend_from_slice(if snap { b",is_snapshot=t" } else { b",is_snapshot=f" });
        let mut end = Vec::with_capacity(24);
        end.push(b' ');
        push_i64(&mut end, ts_us);
        end.extend_from_slice(b"t\n");
        out.reserve(rows * (head.len() + tail.len() + end.len() + 60));
        for (levels, side) in [(&b.bids, "bid"), (&b.asks, "ask")] {
            for (action, price, amount) in levels.iter() {
                let action = if snap {
                    "snapshot"
                } else {
                    match *action {
                        "new" | "change" | "delete" => *action,
                        _ => return Err(()),
                    }
                };
                let price = float_of(price)?;
                let amount = float_of(amount)?;
                out.extend_from_slice(&head);
                out.extend_from_slice(b",side=");
                out.extend_from_slice(side.as_bytes());
                out.extend_from_slice(b",action=");
                out.extend_from_slice(action.as_bytes());
                out.extend_from_slice(&tail);
                push_f64(&mut out, b"price", Some(price));
                push_f64(&mut out, b"amount", Some(amount));
                out.extend_from_slice(&end);
            }
        }
    }
    Ok(Encoded {
        channel: p.channel,
        table: "book_changes",
        payload: out,
        rows,
        instrument: b.instrument_name,
        ts_us,
        book: Some((b.change_id, prev, snap)),
    })
}

// ------------------------------------------------------------------ entry point

const CHANNEL_KEY: &[u8] = b"\"channel\":\"";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The pure part of `encode_frame` (also what the Rust tests call).
fn encode(frame: &[u8], recv_ts_us: i64) -> Option<Encoded<'_>> {
    if recv_ts_us < 0 {
        return None;
    }
    let i = find(frame, CHANNEL_KEY)?;
    let rest = &frame[i + CHANNEL_KEY.len()..];
    let ticker = rest.starts_with(b"ticker.");
    if !ticker && !rest.starts_with(b"book.") {
        return None;
    }
    // escapes (and lone surrogates in them) and invalid UTF-8: left to the Python path
    if frame.contains(&b'\\') || std::str::from_utf8(frame).is_err() {
        return None;
    }
    let r = if ticker { encode_ticker(frame, recv_ts_us) } else { encode_book(frame, recv_ts_us) };
    r.ok()
}

/// `encode_frame(frame: bytes, recv_ts_us: int) -> tuple | None`
///
/// `(channel, table, payload, rows, instrument, ts_us, change_id, prev_change_id,
/// is_snapshot)` for a `ticker.*` (the last three `None`) or `book.{inst}.{interval}`
/// notification, `None` for anything else or anything not certainly identical to the
/// Python path.
#[pyfunction]
fn encode_frame<'py>(py: Python<'py>, frame: &[u8], recv_ts_us: i64) -> PyResult<Option<Bound<'py, PyAny>>> {
    let e = match encode(frame, recv_ts_us) {
        None => return Ok(None),
        Some(e) => e,
    };
    let payload = PyBytes::new(py, &e.payload);
    let (cid, prev, snap) = match e.book {
        None => (None, None, None),
        Some((c, p, s)) => (Some(c), p, Some(s)),
    };
    let t = (e.channel, e.table, payload, e.rows, e.instrument, e.ts_us, cid, prev, snap).into_pyobject(py)?;
    Ok(Some(t.into_any()))
}

#[pymodule]
fn tickarchive_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_frame, m)?)?;
    Ok(())
}

