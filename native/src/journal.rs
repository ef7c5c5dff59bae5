//! Journal records in one buffer: `tickarchive.ingest.journal.format`'s layout (header, connection
//! id, payload) for a batch of frames of one connection, so `Journal.append_many` makes
//! one call and one `write` instead of a header, a CRC and three buffers per frame.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

const MAGIC: &[u8; 2] = b"TJ";
const VERSION: u8 = 1;
const HEADER_SIZE: usize = 28;

/// `encode_records(frames: list[tuple[bytes, int]], first_seq: int, connection: bytes) -> bytes`
///
/// The records of `frames` (`(payload, recv_ts_us)`), seqs `first_seq`, `first_seq + 1`, ...,
/// concatenated: byte for byte what `journal_format.encode_record` gives for each.
#[pyfunction]
fn encode_records<'py>(
    py: Python<'py>,
    frames: &Bound<'py, PyList>,
    first_seq: u64,
    connection: &Bound<'py, PyBytes>,
) -> PyResult<Bound<'py, PyBytes>> {
    let conn = connection.as_bytes();
    if conn.len() > 255 {
        return Err(PyValueError::new_err("connection id longer than 255 bytes"));
    }
    let mut items: Vec<(Bound<'py, PyBytes>, i64)> = Vec::with_capacity(frames.len());
    let mut total = 0usize;
    for item in frames.iter() {
        let t = item
            .cast_into::<PyTuple>()
            .map_err(|_| PyTypeError::new_err("frames must be (bytes, int) tuples"))?;
        if t.len() != 2 {
            return Err(PyTypeError::new_err("frames must be (bytes, int) tuples"));
        }
        let b = t
            .get_item(0)?
            .cast_into::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("a frame must be bytes"))?;
        let len = b.as_bytes().len();
        if len > u32::MAX as usize {
            return Err(PyValueError::new_err("frame longer than 4 GiB"));
        }
        let ts: i64 = t.get_item(1)?.extract()?;
        total += HEADER_SIZE + conn.len() + len;
        items.push((b, ts));
    }
    PyBytes::new_with(py, total, |buf: &mut [u8]| {
        let mut at = 0usize;
        let mut seq = first_seq;
        for (b, ts) in items.iter() {
            let payload = b.as_bytes();
            let h = &mut buf[at..at + HEADER_SIZE];
            h[0..2].copy_from_slice(MAGIC);
            h[2] = VERSION;
            h[3] = conn.len() as u8;
            h[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            h[8..16].copy_from_slice(&seq.to_le_bytes());
            h[16..24].copy_from_slice(&ts.to_le_bytes());
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&h[0..24]);
            hasher.update(conn);
            hasher.update(payload);
            h[24..28].copy_from_slice(&hasher.finalize().to_le_bytes());
            at += HEADER_SIZE;
            buf[at..at + conn.len()].copy_from_slice(conn);
            at += conn.len();
            buf[at..at + payload.len()].copy_from_slice(payload);
            at += payload.len();
            seq += 1;
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_records, m)?)?;
    Ok(())
}
