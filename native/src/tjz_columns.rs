//! Replay straight from a `.tjz` body into the columns of `quotes` and `book_changes`:
//! the Deribit ticker and book frames are filled into the column buffers from the values
//! the decoder holds (`tjz::Decoder::next_holes`), without writing their JSON text and
//! parsing it again; every other frame is rebuilt as text (exactly what `TjzFrames`
//! gives) and goes the way `columns::deribit_columns` takes: the native parser, and what
//! that refuses is left to the caller (its `leftover`). The columns are therefore the
//! ones `deribit_columns` makes of the rebuilt frames, whichever way each frame went.
//!
//! Exactness: the rows are the ones `deribit_columns` makes of the rebuilt text, because
//! the same code decides them. A skeleton (the frame without its values) gets a *plan*
//! once: its text with a distinct tag in every hole (numbers 1000000 + k, strings `Sk`)
//! goes through the native parser's own readers (`json::envelope` with
//! `deribit::ticker_data` / `book_data`), and where each tag lands says which hole feeds
//! which wire field (or that the field is null or absent: that is in the skeleton). Per
//! frame the wire struct is then filled from the holes and finished by the parser's own
//! `deribit::finish_ticker` / `finish_book` (the method, channel, empty-side, snapshot
//! and action rules), and pushed by `columns::Cols` as `deribit_columns` pushes it.
//!
//! What the parser does with a value that the tag run cannot see is checked per frame,
//! and the frame goes the text way when it does not hold: a string with a backslash, a
//! control character or invalid UTF-8 (the parser refuses those), an integer field whose
//! number has decimals, a receive time below 0. A skeleton gets no plan (all its frames
//! go the text way) unless its tagged text is valid UTF-8 and strict JSON that the
//! readers accept, every number hole is a whole JSON number (no digit, sign, point or
//! exponent next to it: `-0`, `1e5` and numbers of more than 18 digits keep parts of
//! their text in the skeleton), every value the readers return is a tag, and the first
//! `"channel":"` of the text (what `deribit::family` looks at) opens a string hole.
//!
//! Numbers: a hole holds (value, scale) with `scale - 1` decimals; the parser reads its
//! text as the nearest double (correctly rounded), which is `value / 10^decimals` in one
//! IEEE division when both are exact (|value| < 2^53, decimals <= 22) and Rust's
//! correctly rounded `str::parse::<f64>` of the same text otherwise.

use std::io::Write;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::columns::Cols;
use crate::deribit::{book_data, finish_book, finish_ticker, ticker_data, Book, Level, Ticker, NCOLS};
use crate::json::{envelope, P, POW10};
use crate::tjz::{decimals, fmt_number, Bad, Decoder, Holes, Shape, Val, NUM, STR};

const TAG0: i64 = 1_000_000;
const NONE: i32 = -1;
const CHANNEL_KEY: &[u8] = b"\"channel\":\"";

/// Which holes feed a ticker's wire fields (indices among the number or string holes;
/// `NONE`: null or absent in the skeleton).
struct TickerPlan {
    method: usize,
    channel: usize,
    inst: usize,
    ts: usize,
    f: [i32; NCOLS],
    underlying_index: i32,
    state: i32,
    combo_state: i32,
}

/// Which holes feed a book message's wire fields.
struct BookPlan {
    method: usize,
    channel: usize,
    inst: usize,
    ts: usize,
    change_id: usize,
    prev: i32,
    kind: i32,
    /// (action string, price number, amount number) per level.
    bids: Vec<(usize, usize, usize)>,
    asks: Vec<(usize, usize, usize)>,
}

struct Plan {
    /// Per number hole, the number holes of its exponent.
    exp_of: Vec<Option<Exp>>,
    /// Per number hole, whether a `-` in the skeleton precedes it.
    neg: Vec<bool>,
    /// The string hole after the first `"channel":"`: `ticker.` or `book.` choose the plan.
    family: usize,
    ticker: Option<TickerPlan>,
    book: Option<BookPlan>,
}

/// The exponent of a number: the sign the skeleton holds (0: none) and the number holes
/// `first..=last` whose texts, one after the other, are its digits.
#[derive(Clone, Copy)]
struct Exp {
    sign: i8,
    first: usize,
    last: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The tagged text of a skeleton and where its holes are in it.
struct Tagged {
    text: String,
    /// Start of each string hole's content.
    str_at: Vec<usize>,
    n_nums: usize,
    /// Per number hole, the number holes holding its exponent.
    exp_of: Vec<Option<Exp>>,
    /// Per number hole, whether a `-` in the skeleton precedes it.
    neg: Vec<bool>,
}

impl Tagged {
    fn of(shape: &Shape) -> Option<Tagged> {
        let kinds = &shape.kinds;
        let between = |k: usize| &shape.lits[shape.cuts[k] as usize..shape.cuts[k + 1] as usize];
        // a number with an exponent is several holes: the mantissa, then `e` (`E`) with
        // an optional sign in the skeleton, then the exponent's digits: one hole, or more
        // with nothing between them (`e-05` is `e-`, 0, 5)
        let mut exp: Vec<Option<(i8, usize, usize)>> = vec![None; kinds.len()]; // (sign, first, last hole)
        let mut is_exp = vec![false; kinds.len()];
        for k in 0..kinds.len().saturating_sub(1) {
            if kinds[k] != NUM || kinds[k + 1] != NUM || is_exp[k] {
                continue;
            }
            let sign = match between(k) {
                b"e" | b"E" => 0,
                b"e-" | b"E-" => -1,
                b"e+" | b"E+" => 1,
                _ => continue,
            };
            let mut last = k + 1;
            while last + 1 < kinds.len() && kinds[last + 1] == NUM && between(last).is_empty() {
                last += 1;
            }
            exp[k] = Some((sign, k + 1, last));
            for x in &mut is_exp[k + 1..=last] {
                *x = true;
            }
        }
        let mut text: Vec<u8> = Vec::with_capacity(shape.lits_len + 8 * kinds.len());
        let mut str_at = Vec::new();
        let mut num_spans = Vec::new();
        let mut num_of_hole = vec![0usize; kinds.len()];
        let mut n_nums = 0usize;
        let mut neg = Vec::new();
        let mut lit_at = 0usize;
        for (k, &kind) in kinds.iter().enumerate() {
            let cut = shape.cuts[k] as usize;
            text.extend_from_slice(&shape.lits[lit_at..cut]);
            lit_at = cut;
            if kind == STR {
                str_at.push(text.len());
                write!(text, "S{}", str_at.len() - 1).ok()?;
                continue;
            }
            debug_assert_eq!(kind, NUM);
            num_of_hole[k] = n_nums;
            n_nums += 1;
            if is_exp[k] {
                text.push(b'0'); // the mantissa's tag stays the value: `1000007e0`, `1000007e-00`
                let last: &mut (usize, usize) = num_spans.last_mut()?;
                last.1 = text.len();
                neg.push(false);
            } else {
                // `-0`, `-0.0`: the sign of a negative zero stays in the skeleton
                let minus = text.last() == Some(&b'-') && cut > 0 && (k == 0 || shape.cuts[k - 1] as usize != cut);
                neg.push(minus);
                let a = text.len() - minus as usize;
                write!(text, "{}", TAG0 + num_of_hole[k] as i64).ok()?;
                num_spans.push((a, text.len()));
            }
        }
        text.extend_from_slice(&shape.lits[lit_at..shape.lits_len]);
        let numeric = |c: u8| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-');
        for &(a, z) in &num_spans {
            if (a > 0 && numeric(text[a - 1])) || (z < text.len() && numeric(text[z])) {
                return None;
            }
        }
        // per number hole: the number holes of its exponent
        let mut exp_of = Vec::with_capacity(n_nums);
        for (k, &kind) in kinds.iter().enumerate() {
            if kind == NUM {
                exp_of.push(exp[k].map(|(sign, a, z)| Exp {
                    sign,
                    first: num_of_hole[a],
                    last: num_of_hole[z],
                }));
            }
        }
        Some(Tagged {
            text: String::from_utf8(text).ok()?,
            str_at,
            n_nums,
            exp_of,
            neg,
        })
    }

    /// The string hole a value the readers returned is (it must be a whole tag).
    fn str_hole(&self, v: &str) -> Option<usize> {
        let off = (v.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        let j = self.str_at.binary_search(&off).ok()?;
        (v == format!("S{j}")).then_some(j)
    }

    fn opt_str_hole(&self, v: Option<&str>) -> Option<i32> {
        match v {
            None => Some(NONE),
            Some(v) => self.str_hole(v).map(|j| j as i32),
        }
    }

    fn int_hole(&self, v: i64) -> Option<usize> {
        let k = v.checked_abs()?.checked_sub(TAG0)?;
        let k = (0..self.n_nums as i64).contains(&k).then_some(k as usize)?;
        (self.neg[k] == (v < 0)).then_some(k)
    }

    fn float_hole(&self, v: f64) -> Option<usize> {
        let k = v.abs() - TAG0 as f64;
        if k.fract() != 0.0 || !(0.0..self.n_nums as f64).contains(&k) {
            return None;
        }
        let k = k as usize;
        (self.neg[k] == v.is_sign_negative()).then_some(k)
    }

    fn ticker(&self) -> Option<TickerPlan> {
        let mut p = P::new(&self.text);
        let mut t = Ticker::default();
        let (method, channel) = envelope(&mut p, |p, depth| ticker_data(p, depth, &mut t)).ok()?;
        let mut f = [NONE; NCOLS];
        for (slot, v) in f.iter_mut().zip(t.f.iter()) {
            if let Some(v) = v {
                *slot = self.float_hole(*v)? as i32;
            }
        }
        Some(TickerPlan {
            method: self.str_hole(method)?,
            channel: self.str_hole(channel)?,
            inst: self.str_hole(t.instrument_name?)?,
            ts: self.int_hole(t.timestamp?)?,
            f,
            underlying_index: self.opt_str_hole(t.underlying_index)?,
            state: self.opt_str_hole(t.state)?,
            combo_state: self.opt_str_hole(t.combo_state)?,
        })
    }

    fn levels(&self, side: &[Level<'_>]) -> Option<Vec<(usize, usize, usize)>> {
        side.iter()
            .map(|l| Some((self.str_hole(l.action)?, self.float_hole(l.price)?, self.float_hole(l.amount)?)))
            .collect()
    }

    fn book(&self) -> Option<BookPlan> {
        let mut p = P::new(&self.text);
        let mut b = Book::default();
        let (method, channel) = envelope(&mut p, |p, depth| book_data(p, depth, &mut b)).ok()?;
        Some(BookPlan {
            method: self.str_hole(method)?,
            channel: self.str_hole(channel)?,
            inst: self.str_hole(b.instrument_name?)?,
            ts: self.int_hole(b.timestamp?)?,
            change_id: self.int_hole(b.change_id?)?,
            prev: match b.prev_change_id {
                None => NONE,
                Some(v) => self.int_hole(v)? as i32,
            },
            kind: self.opt_str_hole(b.kind)?,
            bids: self.levels(b.bids.as_deref()?)?,
            asks: self.levels(b.asks.as_deref()?)?,
        })
    }
}

fn plan_of(shape: &Shape) -> Option<Plan> {
    let t = Tagged::of(shape)?;
    let at = find(t.text.as_bytes(), CHANNEL_KEY)? + CHANNEL_KEY.len();
    let family = t.str_at.binary_search(&at).ok()?;
    let (ticker, book) = (t.ticker(), t.book());
    if ticker.is_none() && book.is_none() {
        return None;
    }
    Some(Plan { exp_of: t.exp_of, neg: t.neg, family, ticker, book })
}

/// The double the JSON parser reads from the text of (value, scale) with the exponent
/// `exp` (`None`: out of range, which the parser refuses).
#[inline]
pub(crate) fn f64_of(v: Val, exp: Option<i64>) -> Option<f64> {
    let d = decimals(v.1) as i64;
    let e10 = exp.unwrap_or(0) - d;
    if v.0.unsigned_abs() < (1u64 << 53) && e10.unsigned_abs() < POW10.len() as u64 {
        // both exact: one IEEE operation rounds correctly (as the parser's fast path)
        let m = v.0 as f64;
        return Some(if e10 >= 0 { m * POW10[e10 as usize] } else { m / POW10[(-e10) as usize] });
    }
    let mut text = Vec::with_capacity(48 + d as usize);
    fmt_number(&mut text, v);
    if let Some(e) = exp {
        write!(text, "e{e}").ok()?;
    }
    // the number's own text, correctly rounded as the parser's slow path
    let x: f64 = std::str::from_utf8(&text).ok()?.parse().ok()?;
    x.is_finite().then_some(x)
}

/// The value of an exponent's text (`None`: not JSON, or too long to be worth it).
#[inline]
fn exponent(e: Exp, nums: &[Val]) -> Option<i64> {
    let first = nums[e.first];
    if e.first == e.last && e.sign == 0 {
        return (first.1 == 0).then_some(first.0); // `e5`, `e-5`: the usual one
    }
    let mut x: i64 = 0;
    for (j, v) in nums[e.first..=e.last].iter().enumerate() {
        if v.1 != 0 || v.0 < 0 && (j > 0 || e.sign != 0) {
            return None; // decimals, or a sign inside the digits: not JSON
        }
        let digits = if v.0 == 0 { 1 } else { v.0.unsigned_abs().ilog10() + 1 };
        x = x.checked_mul(10i64.checked_pow(digits)?)?;
        x = if x < 0 || v.0 < 0 { x.checked_sub(v.0.unsigned_abs() as i64)? } else { x.checked_add(v.0)? };
        if x.unsigned_abs() > 1 << 40 {
            return None;
        }
    }
    Some(if e.sign < 0 { -x } else { x })
}

/// A string value the JSON parser reads as it is: no escape, no control character, UTF-8.
#[inline]
fn clean(s: &[u8]) -> bool {
    let mut ascii = true;
    for &c in s {
        if c < 0x20 || c == b'\\' {
            return false;
        }
        ascii &= c < 0x80;
    }
    ascii || std::str::from_utf8(s).is_ok()
}

/// One batch's frames: the planned ones into `cols`, the rest as text into `buf`.
struct Batch {
    buf: Vec<u8>,
    starts: Vec<u8>,
    ends: Vec<u8>,
    recv: Vec<u8>,
    cols: Cols,
    n: usize,
}

struct Reader {
    dec: Decoder,
    holes: Holes,
    /// Per skeleton: not looked at yet, or its plan (`None`: every frame the text way).
    plans: Vec<Option<Option<Plan>>>,
    columns: bool,
    damaged: u64,
    /// Frames taken into the columns from their values (without their text).
    direct: u64,
    done: bool,
}

impl Reader {
    fn read(&mut self, max_frames: usize) -> Result<Batch, Bad> {
        let mut out = Batch {
            buf: Vec::with_capacity(if self.columns { 1 << 16 } else { 1 << 22 }),
            starts: Vec::with_capacity(8 * max_frames),
            ends: Vec::with_capacity(8 * max_frames),
            recv: Vec::with_capacity(8 * max_frames),
            cols: Cols::new(max_frames.min(1 << 20)),
            n: 0,
        };
        while out.n < max_frames {
            let info = match self.dec.next_holes(&mut self.holes)? {
                None => {
                    self.done = true;
                    break;
                }
                Some(info) => info,
            };
            if info.crc_bad {
                self.damaged += 1; // archived with a CRC that did not match: skipped as a segment reader does
                continue;
            }
            let i = out.n;
            out.n += 1;
            out.starts.extend_from_slice(&(out.buf.len() as u64).to_le_bytes());
            out.recv.extend_from_slice(&info.recv.to_le_bytes());
            let taken = self.columns && info.recv >= 0 && self.take(i, info.sid, info.recv, &mut out.cols);
            self.direct += taken as u64;
            if !taken {
                // the text way: the rebuilt frame through the native parser, else the caller's
                let at = out.buf.len();
                self.dec.write_frame(info.sid, &self.holes, &mut out.buf);
                if self.columns && out.cols.frame(i, info.recv, &out.buf[at..]) {
                    out.buf.truncate(at);
                } else {
                    out.cols.left(i);
                }
            }
            out.ends.extend_from_slice(&(out.buf.len() as u64).to_le_bytes());
        }
        Ok(out)
    }

    /// Frame `i` (its holes in `self.holes`) into the columns, if its skeleton has a plan
    /// and the parser would read its values as the plan says.
    fn take(&mut self, i: usize, sid: usize, recv: i64, cols: &mut Cols) -> bool {
        if self.plans.len() <= sid {
            self.plans.resize_with(sid + 1, || None);
        }
        if self.plans[sid].is_none() {
            self.plans[sid] = Some(plan_of(self.dec.shape(sid)));
        }
        let plan = match &self.plans[sid] {
            Some(Some(p)) => p,
            _ => return false,
        };
        let b = self.dec.body();
        let h = &self.holes;
        if !h.strs.iter().all(|&(a, z)| clean(&b[a..z])) {
            return false;
        }
        // SAFETY: every string hole was checked to be UTF-8 just above
        let s = |j: usize| unsafe { std::str::from_utf8_unchecked(&b[h.strs[j].0..h.strs[j].1]) };
        let opt_s = |j: i32| if j < 0 { None } else { Some(s(j as usize)) };
        let num = |k: usize| -> Option<f64> {
            let v = h.nums[k];
            let exp = match plan.exp_of[k] {
                None => None,
                Some(e) => Some(exponent(e, &h.nums)?),
            };
            let x = f64_of(v, exp)?;
            if !plan.neg[k] {
                return Some(x);
            }
            if v.0 < 0 {
                return None; // `--1`: not JSON
            }
            // the parser: an integer `-0` is int 0, read as 0.0; else the negated value
            Some(if v.1 == 0 && exp.is_none() && v.0 == 0 { 0.0 } else { -x })
        };
        let int = |k: usize| {
            let v = h.nums[k];
            if v.1 != 0 || (plan.neg[k] && v.0 < 0) {
                return None; // decimals where the wire type is an int (the parser refuses the frame), `--1`
            }
            Some(if plan.neg[k] { -v.0 } else { v.0 })
        };
        let fam = s(plan.family).as_bytes();
        if fam.starts_with(b"ticker.") {
            let tp = match &plan.ticker {
                Some(tp) => tp,
                None => return false,
            };
            let ts = match int(tp.ts) {
                Some(ts) => ts,
                None => return false,
            };
            let mut f = [None; NCOLS];
            for (slot, &k) in f.iter_mut().zip(tp.f.iter()) {
                if k >= 0 {
                    match num(k as usize) {
                        Some(x) => *slot = Some(x),
                        None => return false,
                    }
                }
            }
            let t = Ticker {
                instrument_name: Some(s(tp.inst)),
                timestamp: Some(ts),
                f,
                underlying_index: opt_s(tp.underlying_index),
                state: opt_s(tp.state),
                combo_state: opt_s(tp.combo_state),
            };
            match finish_ticker(s(tp.method), s(tp.channel), t) {
                Ok(t) => cols.ticker(i, recv, &t),
                Err(()) => false,
            }
        } else if fam.starts_with(b"book.") {
            let bp = match &plan.book {
                Some(bp) => bp,
                None => return false,
            };
            let (ts, change_id) = match (int(bp.ts), int(bp.change_id)) {
                (Some(ts), Some(c)) => (ts, c),
                _ => return false,
            };
            let prev = if bp.prev < 0 {
                None
            } else {
                match int(bp.prev as usize) {
                    Some(v) => Some(v),
                    None => return false,
                }
            };
            let levels = |side: &[(usize, usize, usize)]| -> Option<Vec<Level<'_>>> {
                side.iter()
                    .map(|&(a, p, q)| {
                        Some(Level {
                            action: s(a),
                            price: num(p)?,
                            amount: num(q)?,
                        })
                    })
                    .collect()
            };
            let (bids, asks) = match (levels(&bp.bids), levels(&bp.asks)) {
                (Some(b), Some(a)) => (b, a),
                _ => return false,
            };
            let book = Book {
                instrument_name: Some(s(bp.inst)),
                timestamp: Some(ts),
                change_id: Some(change_id),
                prev_change_id: prev,
                kind: opt_s(bp.kind),
                bids: Some(bids),
                asks: Some(asks),
            };
            match finish_book(s(bp.method), s(bp.channel), book) {
                Ok(k) => cols.book(i, recv, &k),
                Err(()) => false,
            }
        } else {
            false
        }
    }
}

fn bad(Bad(why): Bad) -> PyErr {
    PyValueError::new_err(format!("journal archive body: {why}"))
}

/// `TjzColumns(body, columns=True)`: the frames of a structured `.tjz` body a batch at a
/// time (as `TjzFrames`), with the Deribit ticker and book frames decoded straight into
/// columns: `read(max_frames)` returns `(buf, starts, ends, recv_ts, columns)` or `None`
/// at the end, where `columns` is what `deribit_columns` returns for the batch and the
/// frames it took have no text (`starts[i] == ends[i]`); the others (its `leftover`)
/// are `buf[starts[i]:ends[i]]`, the bytes `TjzFrames` gives. `columns=False` leaves
/// every frame to the text way (tests). Records archived with a wrong CRC are skipped and
/// counted in `damaged`; `tail_bytes` is known at the end. `ValueError` when the body is
/// damaged.
#[pyclass(module = "tickarchive_native")]
struct TjzColumns {
    r: Reader,
}

#[pymethods]
impl TjzColumns {
    #[new]
    #[pyo3(signature = (body, columns = true))]
    fn new(body: &[u8], columns: bool) -> PyResult<Self> {
        let dec = Decoder::new(body.to_vec()).map_err(bad)?;
        Ok(TjzColumns {
            r: Reader {
                dec,
                holes: Holes::default(),
                plans: Vec::new(),
                columns,
                damaged: 0,
                direct: 0,
                done: false,
            },
        })
    }

    fn read<'py>(&mut self, py: Python<'py>, max_frames: usize) -> PyResult<Option<Bound<'py, PyTuple>>> {
        if self.r.done || max_frames == 0 {
            return Ok(None);
        }
        let r = &mut self.r;
        let out = py.detach(|| r.read(max_frames)).map_err(bad)?;
        if out.n == 0 {
            return Ok(None);
        }
        let cols = out.cols.into_py(py)?;
        Ok(Some(
            (
                PyBytes::new(py, &out.buf),
                PyBytes::new(py, &out.starts),
                PyBytes::new(py, &out.ends),
                PyBytes::new(py, &out.recv),
                cols,
            )
                .into_pyobject(py)?,
        ))
    }

    #[getter]
    fn damaged(&self) -> u64 {
        self.r.damaged
    }

    /// Frames taken into the columns straight from their values (the rest of the taken
    /// ones had their text rebuilt and parsed).
    #[getter]
    fn direct(&self) -> u64 {
        self.r.direct
    }

    #[getter]
    fn tail_bytes(&self) -> usize {
        if self.r.done {
            self.r.dec.tail_len()
        } else {
            0
        }
    }
}

/// `tjz_number_f64(value, scale, exp=None) -> float | None`: the double a number hole
/// (with the exponent hole `exp`) stands for, `None` out of range (tests).
#[pyfunction]
#[pyo3(signature = (value, scale, exp = None))]
fn tjz_number_f64(value: i64, scale: u8, exp: Option<i64>) -> Option<f64> {
    f64_of((value, scale), exp)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TjzColumns>()?;
    m.add_function(wrap_pyfunction!(tjz_number_f64, m)?)?;
    Ok(())
}
