//! Deribit ticker and book frames straight into the columns of `quotes` and `book_changes`
//! (replay): the rows `deribit::normalize_ticker` / `normalize_book` make of each frame, the
//! same normalization the ILP fast path writes, laid out as Arrow buffers (little-endian
//! values, LSB-first validity bitmaps) that Python wraps without copying
//! (`tickarchive.venues.deribit.native.columns`). A frame the fast path refuses is listed
//! in `leftover` for the reference path, exactly as `fast_notification` returns `None`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::deribit::{family, interval_of, normalize_book, normalize_ticker, NormBook, NormTicker, COLS};

/// An Arrow validity bitmap under construction.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    len: usize,
    nulls: usize,
}

impl Bits {
    #[inline]
    fn push(&mut self, valid: bool) {
        if self.len % 8 == 0 {
            self.bytes.push(0);
        }
        if valid {
            *self.bytes.last_mut().unwrap() |= 1 << (self.len % 8);
        } else {
            self.nulls += 1;
        }
        self.len += 1;
    }
}

/// A nullable f64 column.
#[derive(Default)]
struct F64Col {
    values: Vec<u8>,
    valid: Bits,
}

impl F64Col {
    #[inline]
    fn push(&mut self, v: Option<f64>) {
        self.values.extend_from_slice(&v.unwrap_or(0.0).to_le_bytes());
        self.valid.push(v.is_some());
    }
}

/// A nullable i32 (dictionary index) or i64 column.
#[derive(Default)]
struct IntCol {
    values: Vec<u8>,
    valid: Bits,
}

impl IntCol {
    #[inline]
    fn push32(&mut self, v: Option<i32>) {
        self.values.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
        self.valid.push(v.is_some());
    }

    #[inline]
    fn push64(&mut self, v: Option<i64>) {
        self.values.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
        self.valid.push(v.is_some());
    }
}

/// FxHash (rustc's): a few instructions per word, for the short names looked up per row.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The batch's strings (instruments, underlying indices, states, intervals), each once.
#[derive(Default)]
struct Strings {
    ids: HashMap<Box<str>, i32, BuildHasherDefault<Fx>>,
    list: Vec<Box<str>>,
    /// The id of each channel interval (`raw`, `100ms`, `agg2`) once it is known.
    intervals: [Option<i32>; 3],
}

impl Strings {
    #[inline]
    fn id(&mut self, s: &str) -> i32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.list.len() as i32;
        self.ids.insert(s.into(), i);
        self.list.push(s.into());
        i
    }

    /// The id of a channel's interval (`interval_of`), if it has one.
    #[inline]
    fn interval(&mut self, channel: &str) -> Option<i32> {
        let iv = interval_of(channel)?;
        let k = match iv {
            b"raw" => 0,
            b"100ms" => 1,
            _ => 2,
        };
        if let Some(id) = self.intervals[k] {
            return Some(id);
        }
        let id = self.id(std::str::from_utf8(iv).unwrap_or(""));
        self.intervals[k] = Some(id);
        Some(id)
    }
}

#[derive(Default)]
struct Quotes {
    n: usize,
    ord: Vec<u8>,
    ts: Vec<u8>,
    recv: Vec<u8>,
    inst: Vec<u8>,
    underlying_index: IntCol,
    state: IntCol,
    f: Vec<F64Col>,
    combo_state: IntCol,
    interval: IntCol,
}

#[derive(Default)]
struct Books {
    n: usize,
    ord: Vec<u8>,
    ts: Vec<u8>,
    recv: Vec<u8>,
    inst: Vec<u8>,
    change_id: Vec<u8>,
    prev: IntCol,
    snap: Bits,
    ask: Vec<u8>,
    action: Vec<u8>,
    price: Vec<u8>,
    amount: Vec<u8>,
    interval: IntCol,
}

/// One book message's sequence ids (also for a message without levels).
#[derive(Default)]
struct BookFrames {
    n: usize,
    frame: Vec<u8>,
    inst: Vec<u8>,
    ts: Vec<u8>,
    change_id: Vec<u8>,
    prev: IntCol,
    snap: Vec<u8>,
}

fn u64s(b: &[u8], what: &str) -> PyResult<Vec<u64>> {
    if b.len() % 8 != 0 {
        return Err(PyValueError::new_err(format!("{what}: not a whole number of 8-byte values")));
    }
    Ok(b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

fn bytes<'py>(py: Python<'py>, v: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, v)
}

fn validity<'py>(py: Python<'py>, b: &Bits) -> Bound<'py, PyAny> {
    if b.nulls == 0 {
        py.None().into_bound(py)
    } else {
        PyBytes::new(py, &b.bytes).into_any()
    }
}

/// `deribit_columns(buf, starts, ends, recv_ts) -> (strings, quotes, books, book_frames, leftover)`
///
/// Frame `i` is `buf[starts[i]:ends[i]]` received at `recv_ts[i]` (three arrays of
/// little-endian u64/u64/i64). Row order is frame order; each row's `ord` is
/// `(i << 20) | level` (u64). `strings` holds every instrument, underlying index and state
/// (columns hold i32 indices into it). Column buffers are described in
/// `tickarchive.venues.deribit.native.columns`.
#[pyfunction]
fn deribit_columns<'py>(
    py: Python<'py>,
    buf: &[u8],
    starts: &[u8],
    ends: &[u8],
    recv_ts: &[u8],
) -> PyResult<Bound<'py, PyTuple>> {
    let starts = u64s(starts, "starts")?;
    let ends = u64s(ends, "ends")?;
    let recv = u64s(recv_ts, "recv_ts")?;
    if starts.len() != ends.len() || starts.len() != recv.len() {
        return Err(PyValueError::new_err("starts, ends and recv_ts differ in length"));
    }
    for (&a, &b) in starts.iter().zip(ends.iter()) {
        if a > b || b as usize > buf.len() {
            return Err(PyValueError::new_err("a frame lies outside the buffer"));
        }
    }
    let mut c = Cols::new(starts.len());
    for i in 0..starts.len() {
        let frame = &buf[starts[i] as usize..ends[i] as usize];
        let recv_us = recv[i] as i64;
        if !c.frame(i, recv_us, frame) {
            c.left(i);
        }
    }
    c.into_py(py)
}

/// The columns of one batch under construction.
pub(crate) struct Cols {
    strings: Strings,
    q: Quotes,
    b: Books,
    bf: BookFrames,
    leftover: Vec<u8>,
}

impl Cols {
    /// Room for about `frames` frames of rows (the buffers grow past it as needed).
    pub(crate) fn new(frames: usize) -> Self {
        let f64s = || F64Col {
            values: Vec::with_capacity(8 * frames),
            valid: Bits {
                bytes: Vec::with_capacity(frames / 8 + 1),
                ..Default::default()
            },
        };
        Cols {
            strings: Strings::default(),
            q: Quotes {
                f: (0..COLS.len()).map(|_| f64s()).collect(),
                ..Default::default()
            },
            b: Books::default(),
            bf: BookFrames::default(),
            leftover: Vec::new(),
        }
    }

    /// Frame `i`'s rows if it is a ticker or book frame the fast path takes (false: nothing
    /// taken).
    #[inline]
    pub(crate) fn frame(&mut self, i: usize, recv_us: i64, frame: &[u8]) -> bool {
        match if recv_us < 0 { None } else { family(frame) } {
            Some((true, s)) => normalize_ticker(s).is_ok_and(|t| self.ticker(i, recv_us, &t)),
            Some((false, s)) => normalize_book(s).is_ok_and(|k| self.book(i, recv_us, &k)),
            None => false,
        }
    }

    /// Frame `i` is left to the reference parser.
    #[inline]
    pub(crate) fn left(&mut self, i: usize) {
        self.leftover.extend_from_slice(&(i as u32).to_le_bytes());
    }

    /// Frame `i`'s quote row (always taken: true).
    pub(crate) fn ticker(&mut self, i: usize, recv_us: i64, t: &NormTicker<'_>) -> bool {
        let (q, strings) = (&mut self.q, &mut self.strings);
        let ord = (i as u64) << 20;
        q.n += 1;
        q.ord.extend_from_slice(&ord.to_le_bytes());
        q.ts.extend_from_slice(&t.ts_us.to_le_bytes());
        q.recv.extend_from_slice(&recv_us.to_le_bytes());
        q.inst.extend_from_slice(&strings.id(t.inst).to_le_bytes());
        q.underlying_index.push32(t.underlying_index.map(|u| strings.id(u)));
        q.state.push32(t.state.map(|u| strings.id(u)));
        q.combo_state.push32(t.combo_state.map(|u| strings.id(u)));
        q.interval.push32(strings.interval(t.channel));
        for (col, v) in q.f.iter_mut().zip(t.f.iter()) {
            col.push(*v);
        }
        true
    }

    /// Frame `i`'s book message and its rows; false (nothing taken) when it has too many
    /// levels for the row bits of `ord`.
    pub(crate) fn book(&mut self, i: usize, recv_us: i64, k: &NormBook<'_>) -> bool {
        if k.levels.len() >= (1 << 20) {
            return false;
        }
        let (b, bf, strings) = (&mut self.b, &mut self.bf, &mut self.strings);
        let ord = (i as u64) << 20;
        let inst = strings.id(k.inst).to_le_bytes();
        let interval = strings.interval(k.channel);
        bf.n += 1;
        bf.frame.extend_from_slice(&(i as u32).to_le_bytes());
        bf.inst.extend_from_slice(&inst);
        bf.ts.extend_from_slice(&k.ts_us.to_le_bytes());
        bf.change_id.extend_from_slice(&k.change_id.to_le_bytes());
        bf.prev.push64(k.prev);
        bf.snap.push(k.snap as u8);
        for (j, &(ask, action, price, amount)) in k.levels.iter().enumerate() {
            b.n += 1;
            b.ord.extend_from_slice(&(ord | j as u64).to_le_bytes());
            b.ts.extend_from_slice(&k.ts_us.to_le_bytes());
            b.recv.extend_from_slice(&recv_us.to_le_bytes());
            b.inst.extend_from_slice(&inst);
            b.change_id.extend_from_slice(&k.change_id.to_le_bytes());
            b.prev.push64(k.prev);
            b.snap.push(k.snap);
            b.ask.extend_from_slice(&(ask as i32).to_le_bytes());
            b.action.extend_from_slice(&(action as i32).to_le_bytes());
            b.price.extend_from_slice(&price.to_le_bytes());
            b.amount.extend_from_slice(&amount.to_le_bytes());
            b.interval.push32(interval);
        }
        true
    }

    /// `(strings, quotes, books, book_frames, leftover)` as `deribit_columns` returns them.
    pub(crate) fn into_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let Cols { strings, q, b, bf, leftover } = self;
        let strs = PyList::new(py, strings.list.iter().map(|s| &**s))?;
        let floats = PyList::empty(py);
        for (name, col) in COLS.iter().zip(q.f.iter()) {
            let name = std::str::from_utf8(name).unwrap_or("");
            floats.append((name, bytes(py, &col.values), validity(py, &col.valid)))?;
        }
        let quotes = (
            q.n,
            bytes(py, &q.ord),
            bytes(py, &q.ts),
            bytes(py, &q.recv),
            bytes(py, &q.inst),
            (bytes(py, &q.underlying_index.values), validity(py, &q.underlying_index.valid)),
            (bytes(py, &q.state.values), validity(py, &q.state.valid)),
            floats,
            (bytes(py, &q.combo_state.values), validity(py, &q.combo_state.valid)),
            (bytes(py, &q.interval.values), validity(py, &q.interval.valid)),
        )
            .into_pyobject(py)?;
        let books = (
            b.n,
            bytes(py, &b.ord),
            bytes(py, &b.ts),
            bytes(py, &b.recv),
            bytes(py, &b.inst),
            bytes(py, &b.change_id),
            (bytes(py, &b.prev.values), validity(py, &b.prev.valid)),
            bytes(py, &b.snap.bytes),
            bytes(py, &b.ask),
            bytes(py, &b.action),
            bytes(py, &b.price),
            // the amounts, then the channel interval (values, validity): pyo3 converts tuples of 12 at most
            (bytes(py, &b.amount), bytes(py, &b.interval.values), validity(py, &b.interval.valid)),
        )
            .into_pyobject(py)?;
        let frames = (
            bf.n,
            bytes(py, &bf.frame),
            bytes(py, &bf.inst),
            bytes(py, &bf.ts),
            bytes(py, &bf.change_id),
            (bytes(py, &bf.prev.values), validity(py, &bf.prev.valid)),
            bytes(py, &bf.snap),
        )
            .into_pyobject(py)?;
        (strs, quotes, books, frames, bytes(py, &leftover)).into_pyobject(py)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(deribit_columns, m)?)?;
    Ok(())
}
