//! Where replay finds raw frames, in bulk: the lines of a replay-format file
//! (`tickarchive.ingest.journal.capture.iter_lines`, line for line the same records and
//! counters) and the records of a journal segment (`tickarchive.ingest.journal.format`).
//! Both return the frames as (start, end) offsets into the buffer given, so nothing is
//! copied.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

const MAX_KEPT_BAD_LINES: usize = 20;

fn is_space(c: u8) -> bool {
    // Python bytes.strip(): ASCII whitespace
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn strip(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = s.len();
    while a < b && is_space(s[a]) {
        a += 1;
    }
    while b > a && is_space(s[b - 1]) {
        b -= 1;
    }
    &s[a..b]
}

/// `capture.parse_seconds_us`; None where it raises.
fn parse_seconds_us(text: &[u8]) -> Option<i64> {
    let mut s = strip(text);
    let neg = s.first() == Some(&b'-');
    if neg {
        s = &s[1..];
    }
    let (whole, frac) = match s.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &s[s.len()..]),
    };
    if whole.is_empty() || !whole.iter().all(u8::is_ascii_digit) || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut w: i64 = 0;
    for &c in whole {
        w = w.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    let mut f: i64 = 0;
    for k in 0..6 {
        f = f * 10 + frac.get(k).map_or(0, |&c| (c - b'0') as i64);
    }
    let us = w.checked_mul(1_000_000)?.checked_add(f)?;
    Some(if neg { -us } else { us })
}

enum Line {
    Frame(i64, usize), // ts, offset of the frame within the line
    Skip(Option<i64>), // a new last_ts, if the line sets one
    Bad,
}

/// `capture._classify` of one line (without its line break).
fn classify(line: &[u8]) -> Line {
    match line.first() {
        Some(b'{') | Some(b'[') => return Line::Frame(i64::MIN, 0),
        _ => {}
    }
    if line.starts_with(b"configuration:") {
        return Line::Skip(None);
    }
    let sep = line.windows(2).position(|w| w == b": ");
    let head = match sep {
        Some(i) => &line[..i],
        None => line,
    };
    if sep.is_some() && head.first().is_some_and(u8::is_ascii_digit) {
        return match parse_seconds_us(head) {
            Some(ts) => Line::Frame(ts, sep.unwrap() + 2),
            None => Line::Bad,
        };
    }
    // cryptofeed: "<url> <-> ts", "<url> <- ts: frame", "<url> -> ts: body"
    let parts: Vec<&[u8]> = head.split(|&c| c == b' ').collect();
    if parts.len() >= 3 {
        let arrow = parts[parts.len() - 2];
        if arrow == b"<->" || arrow == b"<-" || arrow == b"->" {
            return match parse_seconds_us(parts[parts.len() - 1]) {
                None => Line::Bad,
                Some(ts) => {
                    if arrow == b"->" && sep.is_some() {
                        Line::Frame(ts, sep.unwrap() + 2)
                    } else {
                        Line::Skip(Some(ts))
                    }
                }
            };
        }
    }
    Line::Bad
}

/// `replay_lines(buf, last_ts, first_line_no, final) -> (starts, ends, recv_ts, consumed, last_ts,
/// lines, skipped, unreadable, bad_line_numbers)`
///
/// The whole lines of `buf` (all of it when `final`, else up to its last `\n`) as
/// `capture.iter_lines` reads them: frames as (start, end) offsets (little-endian u64)
/// and receive times (i64); `consumed` is where the next call must start.
#[pyfunction]
fn replay_lines<'py>(
    py: Python<'py>,
    buf: &[u8],
    last_ts: i64,
    first_line_no: u64,
    r#final: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut starts: Vec<u8> = Vec::new();
    let mut ends: Vec<u8> = Vec::new();
    let mut recv: Vec<u8> = Vec::new();
    let mut last = last_ts;
    let (mut lines, mut skipped, mut unreadable) = (0u64, 0u64, 0u64);
    let mut bad_lines: Vec<u64> = Vec::new();
    let mut at = 0usize;
    let n = buf.len();
    while at < n {
        let end = match buf[at..].iter().position(|&c| c == b'\n') {
            Some(i) => at + i + 1,
            None if r#final => n,
            None => break,
        };
        let raw = &buf[at..end];
        lines += 1;
        let mut stop = raw.len();
        while stop > 0 && (raw[stop - 1] == b'\n' || raw[stop - 1] == b'\r') {
            stop -= 1;
        }
        let line = &raw[..stop];
        if strip(line).is_empty() {
            skipped += 1;
        } else {
            match classify(line) {
                Line::Bad => {
                    unreadable += 1;
                    if bad_lines.len() < MAX_KEPT_BAD_LINES {
                        bad_lines.push(first_line_no + lines - 1);
                    }
                }
                Line::Skip(ts) => {
                    if let Some(ts) = ts {
                        last = ts;
                    }
                    skipped += 1;
                }
                Line::Frame(ts, off) => {
                    if ts != i64::MIN {
                        last = ts;
                    }
                    starts.extend_from_slice(&((at + off) as u64).to_le_bytes());
                    ends.extend_from_slice(&((at + stop) as u64).to_le_bytes());
                    recv.extend_from_slice(&last.to_le_bytes());
                }
            }
        }
        at = end;
    }
    (
        PyBytes::new(py, &starts),
        PyBytes::new(py, &ends),
        PyBytes::new(py, &recv),
        at,
        last,
        lines,
        skipped,
        unreadable,
        bad_lines,
    )
        .into_pyobject(py)
}

/// `journal_frames(buf) -> (starts, ends, recv_ts, records, damaged, stop)`
///
/// The frames of the journal records in `buf` (a segment): offsets (u64) and receive
/// times (i64) of every record whose CRC checks; `damaged` counts the records whose CRC
/// does not (skipped); `stop` is where the records end (the length of `buf` unless a torn
/// or unreadable record stops the scan there).
#[pyfunction]
fn journal_frames<'py>(py: Python<'py>, buf: &[u8]) -> PyResult<Bound<'py, PyTuple>> {
    let mut starts: Vec<u8> = Vec::new();
    let mut ends: Vec<u8> = Vec::new();
    let mut recv: Vec<u8> = Vec::new();
    let (mut records, mut damaged) = (0u64, 0u64);
    let mut off = 0usize;
    let n = buf.len();
    while n - off >= 28 {
        let h = &buf[off..off + 28];
        let conn_len = h[3] as usize;
        let length = u32::from_le_bytes(h[4..8].try_into().unwrap()) as usize;
        let body = off + 28;
        let stop = body + conn_len + length;
        if &h[0..2] != b"TJ" || h[2] != 1 || stop > n {
            break;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h[0..24]);
        hasher.update(&buf[body..stop]);
        if hasher.finalize() == u32::from_le_bytes(h[24..28].try_into().unwrap()) {
            records += 1;
            starts.extend_from_slice(&((body + conn_len) as u64).to_le_bytes());
            ends.extend_from_slice(&(stop as u64).to_le_bytes());
            recv.extend_from_slice(&h[16..24]);
        } else {
            damaged += 1;
        }
        off = stop;
    }
    (
        PyBytes::new(py, &starts),
        PyBytes::new(py, &ends),
        PyBytes::new(py, &recv),
        records,
        damaged,
        off,
    )
        .into_pyobject(py)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(replay_lines, m)?)?;
    m.add_function(wrap_pyfunction!(journal_frames, m)?)?;
    Ok(())
}
