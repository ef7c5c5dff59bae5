//! QuestDB ILP protocol-v2 writing: symbols, integers and binary doubles, exactly as the
//! Python client's `Buffer` writes them (`tickarchive.store.ilp`).

// ------------------------------------------------------------------ ILP v2 writing

#[inline]
pub(crate) fn push_symbol(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        if matches!(b, b',' | b' ' | b'=' | b'\\' | b'\n' | b'\r') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[inline]
pub(crate) fn push_i64(out: &mut Vec<u8>, v: i64) {
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
pub(crate) fn push_f64(out: &mut Vec<u8>, name: &[u8], v: Option<f64>) {
    if let Some(v) = v {
        out.push(b',');
        out.extend_from_slice(name);
        out.extend_from_slice(b"==\x10");
        out.extend_from_slice(&v.to_le_bytes());
    }
}
