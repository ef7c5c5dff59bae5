//! QuestDB ILP lines back into rows: the exact twin of `tickarchive.api.stream.ilp`'s
//! pure-Python `decode_py` (the API's live feed decodes every acknowledged batch once).
//!
//! `IlpDecoder(index)` takes, per table name, `(columns, ts_index)` where `columns` maps a
//! column name to its position in the row; `decode(body)` returns `{table: [row tuple]}`
//! with `None` for absent columns. Anything malformed raises `ValueError` (the Python side
//! turns it into `IlpDecodeError`). Numbers in text form that are not plain decimal
//! integers are handed to Python's own `int`/`float`, so both paths agree on every input.

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString, PyTuple};

struct TableIndex {
    name: Py<PyString>,
    columns: HashMap<Vec<u8>, usize>,
    width: usize,
    ts: usize,
}

#[pyclass(frozen)]
struct IlpDecoder {
    tables: HashMap<Vec<u8>, TableIndex>,
}

fn err(msg: &str) -> PyErr {
    PyValueError::new_err(msg.to_string())
}

#[inline]
fn at(body: &[u8], i: usize) -> PyResult<u8> {
    body.get(i).copied().ok_or_else(|| err("the body ends inside a line"))
}

/// Index of the first unescaped byte of `stops` at or after `pos` (a backslash skips the next byte).
fn scan_symbol(body: &[u8], mut pos: usize, stops: &[u8]) -> PyResult<usize> {
    while pos < body.len() {
        let c = body[pos];
        if c == b'\\' {
            pos += 2;
            continue;
        }
        if stops.contains(&c) {
            return Ok(pos);
        }
        pos += 1;
    }
    Err(err("line ends inside the symbol set"))
}

fn find(body: &[u8], byte: u8, from: usize) -> Option<usize> {
    if from >= body.len() {
        return None;
    }
    body[from..].iter().position(|&b| b == byte).map(|i| i + from)
}

fn text(raw: &[u8]) -> PyResult<&str> {
    std::str::from_utf8(raw).map_err(|_| err("text is not UTF-8"))
}

fn unescape_symbol(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'\\' && i + 1 < raw.len() {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Python's `bytes.replace(pat, rep)`: left to right, non-overlapping.
fn replace_all(data: &[u8], pat: &[u8], rep: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(pat) {
            out.extend_from_slice(rep);
            i += pat.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fn plain_i64(digits: &[u8]) -> Option<i64> {
    let (neg, rest) = match digits.first() {
        Some(b'-') => (true, &digits[1..]),
        _ => (false, digits),
    };
    if rest.is_empty() || rest.len() > 18 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in rest {
        v = v * 10 + i64::from(d - b'0');
    }
    Some(if neg { -v } else { v })
}

fn py_int<'py>(py: Python<'py>, digits: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if let Some(v) = plain_i64(digits) {
        return Ok(v.into_pyobject(py)?.into_any());
    }
    let s = text(digits)?;
    py.get_type::<pyo3::types::PyInt>()
        .call1((s,))
        .map_err(|_| err("not an integer"))
}

/// `_number` of the Python path: `123i`/`123t` integers, `123n` nanoseconds to µs, else a float.
fn number<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match raw.last() {
        Some(b'i') | Some(b't') => py_int(py, &raw[..raw.len() - 1]),
        Some(b'n') => {
            let digits = &raw[..raw.len() - 1];
            if let Some(v) = plain_i64(digits) {
                return Ok(v.div_euclid(1000).into_pyobject(py)?.into_any());
            }
            let v = py_int(py, digits)?;
            v.call_method1("__floordiv__", (1000,))
        }
        _ => {
            let s = text(raw)?;
            py.get_type::<PyFloat>()
                .call1((s,))
                .map_err(|_| err("not a number"))
        }
    }
}

/// The line's timestamp in µs: `123t` µs, `123n` ns, or (no suffix) ns.
fn designated<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match raw.last() {
        Some(b't') | Some(b'n') => number(py, raw),
        _ => {
            if let Some(v) = plain_i64(raw) {
                return Ok(v.div_euclid(1000).into_pyobject(py)?.into_any());
            }
            py_int(py, raw)?.call_method1("__floordiv__", (1000,))
        }
    }
}

#[pymethods]
impl IlpDecoder {
    #[new]
    fn new(index: &Bound<'_, PyDict>) -> PyResult<Self> {
        let mut tables = HashMap::new();
        for (name, spec) in index.iter() {
            let name = name.cast_into::<PyString>()?;
            let (columns, ts): (Bound<'_, PyDict>, usize) = spec.extract()?;
            let mut map = HashMap::new();
            for (col, i) in columns.iter() {
                let col: String = col.extract()?;
                map.insert(col.into_bytes(), i.extract::<usize>()?);
            }
            let width = map.len();
            tables.insert(
                name.to_str()?.as_bytes().to_vec(),
                TableIndex { name: name.unbind(), columns: map, width, ts },
            );
        }
        Ok(IlpDecoder { tables })
    }

    fn decode<'py>(&self, py: Python<'py>, body: &[u8]) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let mut lists: HashMap<&[u8], Bound<'py, PyList>> = HashMap::new();
        let n = body.len();
        let mut pos = 0usize;
        while pos < n {
            let end = scan_symbol(body, pos, b", ")?;
            let tname = &body[pos..end];
            text(tname)?;
            let t = self
                .tables
                .get(tname)
                .ok_or_else(|| err("unknown table"))?;
            let mut row: Vec<Option<Bound<'py, PyAny>>> = vec![None; t.width];
            pos = end;
            if body[pos] == b',' {
                loop {
                    let eq = scan_symbol(body, pos + 1, b"=")?;
                    let stop = scan_symbol(body, eq + 1, b", ")?;
                    let cname = unescape_symbol(&body[pos + 1..eq]);
                    text(&cname)?;
                    let value = unescape_symbol(&body[eq + 1..stop]);
                    let value = text(&value)?;
                    if let Some(&col) = t.columns.get(&cname) {
                        row[col] = Some(PyString::new(py, value).into_any());
                    }
                    pos = stop;
                    if body[pos] == b' ' {
                        break;
                    }
                }
            }
            pos += 1; // the space before the fields
            loop {
                let eq = find(body, b'=', pos).ok_or_else(|| err("field without '='"))?;
                let cname = body.get(pos..eq).ok_or_else(|| err("field without '='"))?;
                text(cname)?;
                let col = t.columns.get(cname).copied();
                let v = eq + 1;
                let c = at(body, v)?;
                let value: Bound<'py, PyAny>;
                let stop: usize;
                if c == b'=' {
                    if at(body, v + 1)? != 16 {
                        return Err(err("a binary field that is not a double"));
                    }
                    let bytes: [u8; 8] = body
                        .get(v + 2..v + 10)
                        .ok_or_else(|| err("the body ends inside a double"))?
                        .try_into()
                        .map_err(|_| err("the body ends inside a double"))?;
                    value = PyFloat::new(py, f64::from_le_bytes(bytes)).into_any();
                    stop = v + 10;
                } else if c == b'"' {
                    let mut j = v + 1;
                    let q = loop {
                        let q = find(body, b'"', j).ok_or_else(|| err("unterminated string"))?;
                        let mut k = q - 1;
                        let mut slashes = 0usize;
                        while body[k] == b'\\' {
                            slashes += 1;
                            k -= 1;
                        }
                        if slashes % 2 == 0 {
                            break q;
                        }
                        j = q + 1;
                    };
                    let raw = &body[v + 1..q];
                    let s = if raw.contains(&b'\\') {
                        let once = replace_all(raw, b"\\\"", b"\"");
                        replace_all(&once, b"\\\\", b"\\")
                    } else {
                        raw.to_vec()
                    };
                    value = PyString::new(py, text(&s)?).into_any();
                    stop = q + 1;
                } else {
                    let comma = find(body, b',', v);
                    let space = find(body, b' ', v);
                    stop = match (comma, space) {
                        (None, Some(s)) => s,
                        (Some(cm), Some(s)) if s < cm => s,
                        (Some(cm), _) => cm,
                        (None, None) => return Err(err("field runs past the end of the body")),
                    };
                    let raw = &body[v..stop];
                    value = match raw {
                        b"t" | b"T" | b"true" | b"True" => pyo3::types::PyBool::new(py, true).to_owned().into_any(),
                        b"f" | b"F" | b"false" | b"False" => pyo3::types::PyBool::new(py, false).to_owned().into_any(),
                        _ => number(py, raw)?,
                    };
                }
                if let Some(col) = col {
                    row[col] = Some(value);
                }
                pos = stop;
                if at(body, pos)? == b' ' {
                    break;
                }
                pos += 1;
            }
            let nl = find(body, b'\n', pos + 1).ok_or_else(|| err("line without a newline"))?;
            row[t.ts] = Some(designated(py, &body[pos + 1..nl])?);
            let tuple = PyTuple::new(py, row.into_iter().map(|v| v.unwrap_or_else(|| py.None().into_bound(py))))?;
            match lists.get(tname) {
                Some(list) => list.append(tuple)?,
                None => {
                    let list = PyList::new(py, [tuple])?;
                    out.set_item(t.name.bind(py), &list)?;
                    lists.insert(tname, list);
                }
            }
            pos = nl + 1;
        }
        Ok(out)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<IlpDecoder>()?;
    Ok(())
}
