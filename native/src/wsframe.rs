//! WebSocket frame scanner for the collector's fast receive path (`ingest/wsfast.py`).
//!
//! `ws_scan(buf, pos, out)` appends to `out` the payload (as `bytes`) of every complete
//! *simple* data frame of `buf` from offset `pos` on — FIN = 1, RSV1-3 = 0, opcode TEXT
//! or BINARY, unmasked — and returns the offset where it stopped: the end of `buf`, an
//! incomplete frame, or any other frame (which the caller hands to websockets). It is
//! byte-for-byte the same as `ingest.wsfast.scan_simple` (tested equal); it never raises
//! on any bytes.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// (payload start, payload end) of the simple frame at `pos`, or `None` (stop there).
#[inline]
fn simple_frame(b: &[u8], pos: usize) -> Option<(usize, usize)> {
    let n = b.len();
    if n - pos < 2 {
        return None;
    }
    let b0 = b[pos];
    if b0 != 0x81 && b0 != 0x82 {
        return None;
    }
    let l = b[pos + 1];
    let (start, len) = if l < 126 {
        (pos + 2, l as u64)
    } else if l == 126 {
        if n - pos < 4 {
            return None;
        }
        (pos + 4, u16::from_be_bytes([b[pos + 2], b[pos + 3]]) as u64)
    } else if l == 127 {
        if n - pos < 10 {
            return None;
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[pos + 2..pos + 10]);
        (pos + 10, u64::from_be_bytes(a))
    } else {
        return None; // masked
    };
    let avail = (n - start) as u64;
    if len > avail {
        return None;
    }
    Some((start, start + len as usize))
}

#[pyfunction]
fn ws_scan(buf: &Bound<'_, PyBytes>, pos: usize, out: &Bound<'_, PyList>) -> PyResult<usize> {
    let b = buf.as_bytes();
    let py = buf.py();
    let mut pos = pos;
    if pos >= b.len() {
        return Ok(pos);
    }
    while let Some((start, end)) = simple_frame(b, pos) {
        out.append(PyBytes::new(py, &b[start..end]))?;
        pos = end;
    }
    Ok(pos)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ws_scan, m)?)?;
    Ok(())
}
