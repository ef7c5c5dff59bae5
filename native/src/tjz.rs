//! The journal archive's segment codec: the native twin of `tickarchive.archive.journal_codec`
//! (`encode_body_py` / `decode_body_py`), byte for byte the same bodies. The module
//! docstring there is the format's description; the comments here only say how.
//!
//! Bodies are zstd-compressed by the caller (Python's `zstandard`), so this crate needs
//! no compression library.

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

const REC_MAGIC: &[u8; 2] = b"TJ";
const REC_VERSION: u8 = 1;
const REC_SIZE: usize = 28;

pub(crate) const NUM: u8 = 0;
pub(crate) const STR: u8 = 1;
const ESC: u8 = 2;

const P_ZERO: u8 = 0;
const P_GLOBAL: u8 = 2;
const P_FRAME: u8 = 3;
const P_RECV_MS: u8 = 4;
const P_NEXT: u8 = 5;
const PREDICTORS: usize = 6;
const MAX_DIGITS: usize = 18;
const MAX_ARRAY_POS: usize = 7;

pub(crate) type Val = (i64, u8);
const ZERO: Val = (0, 0);

pub(crate) struct Bad(pub(crate) &'static str);
type R<T> = Result<T, Bad>;

// ------------------------------------------------------------------ varints

#[inline]
fn zz(x: i128) -> u128 {
    if x >= 0 {
        (x as u128) << 1
    } else {
        (((-x) as u128) << 1) - 1
    }
}

#[inline]
fn unzz(u: u128) -> i128 {
    if u & 1 == 0 {
        (u >> 1) as i128
    } else {
        -(((u + 1) >> 1) as i128)
    }
}

#[inline]
fn put(out: &mut Vec<u8>, mut x: u128) {
    while x >= 0x80 {
        out.push((x as u8 & 0x7f) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

#[inline]
fn varint_len(mut x: u128) -> u64 {
    let mut n = 1;
    while x >= 0x80 {
        x >>= 7;
        n += 1;
    }
    n
}

// ------------------------------------------------------------------ copies

/// `out.extend_from_slice(&src[a..b])`, without a `memcpy` call for the short pieces a
/// frame is rebuilt from: when `src` has 32 bytes from `a`, 32 are copied and only
/// `b - a` kept.
#[inline(always)]
fn copy_small(out: &mut Vec<u8>, src: &[u8], a: usize, b: usize) {
    let n = b - a;
    if n <= 32 && a + 32 <= src.len() {
        out.reserve(32);
        // SAFETY: `src[a..a + 32]` is in bounds (checked above) and `out` has room for 32
        // more bytes (reserved); only the `n <= 32` bytes copied from `src[a..b]` are
        // made part of the vector.
        unsafe {
            let dst = out.as_mut_ptr().add(out.len());
            std::ptr::copy_nonoverlapping(src.as_ptr().add(a), dst, 32);
            out.set_len(out.len() + n);
        }
    } else {
        out.extend_from_slice(&src[a..b]);
    }
}

// ------------------------------------------------------------------ numbers

const POW10: [i128; 20] = {
    let mut t = [1i128; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

#[inline]
pub(crate) fn decimals(s: u8) -> usize {
    if s == 0 {
        0
    } else {
        (s - 1) as usize
    }
}

#[inline]
fn delta_of(v: Val, r: Val) -> i128 {
    if v.1 == r.1 {
        return v.0 as i128 - r.0 as i128;
    }
    let (d, rd) = (decimals(v.1), decimals(r.1));
    let top = d.max(rd);
    v.0 as i128 * POW10[top - d] - r.0 as i128 * POW10[top - rd]
}

#[inline]
fn value_of(delta: i128, s: u8, r: Val) -> R<i64> {
    if s == r.1 {
        return i64::try_from(delta + r.0 as i128).map_err(|_| Bad("a number overflows"));
    }
    let (d, rd) = (decimals(s), decimals(r.1));
    if d > MAX_DIGITS + 1 {
        return Err(Bad("a scale is out of range"));
    }
    let top = d.max(rd);
    let whole = delta
        .checked_add(r.0 as i128 * POW10[top - rd])
        .ok_or(Bad("a number overflows"))?;
    let p = POW10[top - d];
    if whole % p != 0 {
        return Err(Bad("a number delta does not land on its scale"));
    }
    i64::try_from(whole / p).map_err(|_| Bad("a number overflows"))
}

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

pub(crate) fn fmt_number(out: &mut Vec<u8>, v: Val) {
    let (x, s) = v;
    if x < 0 {
        out.push(b'-');
    }
    // the digits of |x|, written backwards from the end, two at a time
    let mut buf = [b'0'; 72]; // digits end at 40; the rest is room for copy_small's over-read
    let mut i = 40;
    let mut u = x.unsigned_abs();
    while u >= 100 {
        let r = (u % 100) as usize * 2;
        u /= 100;
        i -= 2;
        buf[i] = DIGITS2[r];
        buf[i + 1] = DIGITS2[r + 1];
    }
    if u >= 10 {
        let r = u as usize * 2;
        i -= 2;
        buf[i] = DIGITS2[r];
        buf[i + 1] = DIGITS2[r + 1];
    } else {
        i -= 1;
        buf[i] = b'0' + u as u8;
    }
    if s == 0 {
        copy_small(out, &buf, i, 40);
        return;
    }
    let d = (s - 1) as usize;
    let start = i.min(40 - d - 1); // zero-padded to d + 1 digits (buf is all '0')
    let point = 40 - d;
    copy_small(out, &buf, start, point);
    out.push(b'.');
    copy_small(out, &buf, point, 40);
}

// ------------------------------------------------------------------ tokens

struct Tokens {
    skeleton: Vec<u8>,
    nums: Vec<Val>,
    strs: Vec<(usize, usize)>, // ranges into the frame
}

#[inline]
fn esc_push(out: &mut Vec<u8>, c: u8) {
    if c <= ESC {
        out.push(ESC);
    }
    out.push(c);
}

/// The canonical number at `i` (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`): (end, value, scale), or None.
fn number_at(f: &[u8], i: usize) -> Option<(usize, Val)> {
    let n = f.len();
    let mut j = i;
    let neg = f[j] == b'-';
    if neg {
        j += 1;
    }
    if j >= n || !f[j].is_ascii_digit() {
        return None;
    }
    let mut digits = 0usize;
    let mut v: i64 = 0;
    let mut over = false;
    let mut add = |c: u8, digits: &mut usize, v: &mut i64| {
        *digits += 1;
        if *digits > MAX_DIGITS {
            over = true;
        } else {
            *v = *v * 10 + (c - b'0') as i64;
        }
    };
    if f[j] == b'0' {
        add(b'0', &mut digits, &mut v);
        j += 1;
    } else {
        while j < n && f[j].is_ascii_digit() {
            add(f[j], &mut digits, &mut v);
            j += 1;
        }
    }
    let mut s = 0u8;
    if j + 1 < n && f[j] == b'.' && f[j + 1].is_ascii_digit() {
        j += 1;
        let mut d = 0usize;
        while j < n && f[j].is_ascii_digit() {
            add(f[j], &mut digits, &mut v);
            j += 1;
            d += 1;
        }
        if d + 1 > u8::MAX as usize {
            return None;
        }
        s = (d + 1) as u8;
    }
    if over || (neg && v == 0) {
        return None;
    }
    Some((j, (if neg { -v } else { v }, s)))
}

fn tokenize(f: &[u8], t: &mut Tokens) {
    t.skeleton.clear();
    t.nums.clear();
    t.strs.clear();
    let sk = &mut t.skeleton;
    let n = f.len();
    let mut i = 0;
    while i < n {
        let c = f[i];
        if c == b'"' {
            let mut j = i + 1;
            while j < n {
                let cj = f[j];
                if cj == b'\\' {
                    j += 2;
                    continue;
                }
                if cj == b'"' {
                    break;
                }
                j += 1;
            }
            if j >= n {
                for &b in &f[i..] {
                    esc_push(sk, b);
                }
                break;
            }
            if j + 1 < n && f[j + 1] == b':' {
                for &b in &f[i..=j] {
                    esc_push(sk, b);
                }
            } else {
                sk.extend_from_slice(b"\"\x01\"");
                t.strs.push((i + 1, j));
            }
            i = j + 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            if let Some((end, v)) = number_at(f, i) {
                sk.push(NUM);
                t.nums.push(v);
                i = end;
                continue;
            }
        }
        esc_push(sk, c);
        i += 1;
    }
}

/// The kinds in skeleton order come from the skeleton alone.
pub(crate) struct Shape {
    pub(crate) kinds: Vec<u8>,
    pub(crate) paths: Vec<u32>,
    pub(crate) next_num_path: Vec<i64>,
    /// The skeleton unescaped, without its hole markers, and where each hole goes in it:
    /// hole k is written after `lits[..cuts[k]]`; the rest follows the last hole.
    pub(crate) lits: Vec<u8>,
    /// Length of the literals (`lits` holds 32 more zero bytes after them).
    pub(crate) lits_len: usize,
    pub(crate) cuts: Vec<u32>,
    /// Index, among the string holes, of the channel hole (-1: none).
    pub(crate) channel_str: i64,
}

#[derive(Default)]
struct Paths {
    num: HashMap<Vec<u8>, u32>,
    str: HashMap<Vec<u8>, u32>,
}

enum Frame {
    Obj(Vec<u8>),
    Arr(usize),
}

fn unesc(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len());
    let mut i = 0;
    while i < chunk.len() {
        if chunk[i] == ESC && i + 1 < chunk.len() {
            i += 1;
        }
        out.push(chunk[i]);
        i += 1;
    }
    out
}

fn path_key(stack: &[Frame]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let last = stack.len().wrapping_sub(1);
    for (k, fr) in stack.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        match fr {
            Frame::Obj(key) => out.extend_from_slice(key),
            Frame::Arr(pos) => {
                if k == last {
                    out.push(b'[');
                    out.extend_from_slice((*pos).min(MAX_ARRAY_POS).to_string().as_bytes());
                    out.push(b']');
                } else {
                    out.extend_from_slice(b"[]");
                }
            }
        }
    }
    out
}

impl Paths {
    fn shape(&mut self, sk: &[u8]) -> Shape {
        let mut kinds = Vec::new();
        let mut paths = Vec::new();
        let mut channel: i64 = -1;
        let mut channel_str: i64 = -1;
        let mut n_str: i64 = 0;
        let mut stack: Vec<Frame> = Vec::new();
        let n = sk.len();
        let mut i = 0;
        while i < n {
            let c = sk[i];
            if c == ESC {
                i += 2;
                continue;
            }
            match c {
                b'{' => stack.push(Frame::Obj(Vec::new())),
                b'[' => stack.push(Frame::Arr(0)),
                b'}' | b']' => {
                    stack.pop();
                }
                b',' => match stack.last_mut() {
                    Some(Frame::Arr(p)) => *p += 1,
                    Some(Frame::Obj(k)) => k.clear(),
                    None => {}
                },
                b'"' => {
                    if i + 2 < n && sk[i + 1] == STR && sk[i + 2] == b'"' {
                        let key = path_key(&stack);
                        if channel < 0 {
                            if let Some(Frame::Obj(k)) = stack.last() {
                                if k.as_slice() == b"channel" {
                                    channel = kinds.len() as i64;
                                    channel_str = n_str;
                                }
                            }
                        }
                        kinds.push(STR);
                        let next = self.str.len() as u32;
                        paths.push(*self.str.entry(key).or_insert(next));
                        n_str += 1;
                        i += 3;
                        continue;
                    }
                    let mut j = i + 1;
                    while j < n && sk[j] != b'"' {
                        j += if sk[j] == b'\\' || sk[j] == ESC { 2 } else { 1 };
                    }
                    if let Some(Frame::Obj(k)) = stack.last_mut() {
                        *k = unesc(&sk[i + 1..j.min(n)]);
                    }
                    i = j + 1;
                    continue;
                }
                NUM => {
                    kinds.push(NUM);
                    let key = path_key(&stack);
                    let next = self.num.len() as u32;
                    paths.push(*self.num.entry(key).or_insert(next));
                }
                _ => {}
            }
            i += 1;
        }
        let mut next_num_path = vec![-1i64; kinds.len()];
        let mut following: i64 = -1;
        for k in (0..kinds.len()).rev() {
            if kinds[k] == NUM {
                next_num_path[k] = following;
                following = paths[k] as i64;
            }
        }
        let mut lits = Vec::with_capacity(sk.len());
        let mut cuts = Vec::with_capacity(kinds.len());
        let mut j = 0;
        while j < sk.len() {
            let c = sk[j];
            if c == ESC {
                if let Some(&b) = sk.get(j + 1) {
                    lits.push(b);
                }
                j += 2;
                continue;
            }
            if c == NUM || c == STR {
                cuts.push(lits.len() as u32);
            } else {
                lits.push(c);
            }
            j += 1;
        }
        let lits_len = lits.len();
        lits.extend_from_slice(&[0u8; 32]); // room for copy_small's over-read
        Shape {
            kinds,
            paths,
            next_num_path,
            lits,
            lits_len,
            cuts,
            channel_str,
        }
    }
}

// ------------------------------------------------------------------ state

const NONE: Val = (0, u8::MAX);

/// Last value per (context, path) and per path; `NONE` where there is none yet (a scale
/// is at most 20, so `u8::MAX` marks the empty slots).
struct NumState {
    n: usize,
    ctx: Vec<Val>, // [ctx * n + path]
    glob: Vec<Val>,
}

impl NumState {
    fn new(n_paths: usize) -> Self {
        NumState {
            n: n_paths,
            ctx: Vec::new(),
            glob: vec![NONE; n_paths],
        }
    }

    /// Room for contexts `0..contexts`.
    fn grow(&mut self, contexts: usize) {
        let need = contexts * self.n;
        if self.ctx.len() < need {
            self.ctx.resize(need, NONE);
        }
    }

    #[inline]
    fn ctx_get(&self, ctx: usize, path: usize) -> Option<Val> {
        let v = self.ctx[ctx * self.n + path];
        if v.1 == u8::MAX {
            None
        } else {
            Some(v)
        }
    }

    #[inline]
    fn glob_get(&self, path: usize) -> Val {
        let v = self.glob[path];
        if v.1 == u8::MAX {
            ZERO
        } else {
            v
        }
    }

    #[inline]
    fn reference(&self, pred: u8, ctx: usize, path: usize, nxt: i64, frame_prev: Option<Val>, recv_ms: i64) -> Val {
        match pred {
            P_ZERO => return ZERO,
            P_GLOBAL => return self.glob_get(path),
            P_RECV_MS => return (recv_ms, 0),
            P_FRAME => {
                if let Some(v) = frame_prev {
                    return v;
                }
            }
            P_NEXT => {
                if nxt >= 0 {
                    if let Some(v) = self.ctx_get(ctx, nxt as usize) {
                        return v;
                    }
                }
            }
            _ => {}
        }
        self.ctx_get(ctx, path).unwrap_or_else(|| self.glob_get(path))
    }

    #[inline]
    fn update(&mut self, ctx: usize, path: usize, v: Val) {
        self.ctx[ctx * self.n + path] = v;
        self.glob[path] = v;
    }
}

#[inline]
fn slot<T: Clone>(v: &mut Vec<Vec<Option<T>>>, a: usize, b: usize) -> &mut Option<T> {
    if v.len() <= a {
        v.resize_with(a + 1, Vec::new);
    }
    let row = &mut v[a];
    if row.len() <= b {
        row.resize(b + 1, None);
    }
    &mut row[b]
}

// ------------------------------------------------------------------ records

struct Rec<'a> {
    seq: u64,
    recv: i64,
    conn: &'a [u8],
    frame: &'a [u8],
    crc: u32,
    crc_ok: bool,
}

fn crc_of(prefix: &[u8], conn: &[u8], frame: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(prefix);
    h.update(conn);
    h.update(frame);
    h.finalize()
}

fn split_records(seg: &[u8]) -> (Vec<Rec<'_>>, &[u8]) {
    let mut recs = Vec::new();
    let mut off = 0usize;
    let end = seg.len();
    while end - off >= REC_SIZE {
        let h = &seg[off..off + REC_SIZE];
        let conn_len = h[3] as usize;
        let length = u32::from_le_bytes(h[4..8].try_into().unwrap()) as usize;
        let body = off + REC_SIZE;
        let stop = body + conn_len + length;
        if &h[0..2] != REC_MAGIC || h[2] != REC_VERSION || stop > end {
            break;
        }
        let conn = &seg[body..body + conn_len];
        let frame = &seg[body + conn_len..stop];
        let crc = u32::from_le_bytes(h[24..28].try_into().unwrap());
        recs.push(Rec {
            seq: u64::from_le_bytes(h[8..16].try_into().unwrap()),
            recv: i64::from_le_bytes(h[16..24].try_into().unwrap()),
            conn,
            frame,
            crc,
            crc_ok: crc_of(&h[0..24], conn, frame) == crc,
        });
        off = stop;
    }
    (recs, &seg[off..])
}

// ------------------------------------------------------------------ encode

struct Tok {
    ctx: usize,
    sid: usize,
    nums: (usize, usize), // range into all_nums
    strs: (usize, usize), // range into all_strs
}

pub(crate) fn encode_body(seg: &[u8]) -> Vec<u8> {
    let (recs, tail) = split_records(seg);
    let mut paths = Paths::default();
    let mut skel_ids: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut skels: Vec<Vec<u8>> = Vec::new();
    let mut shapes: Vec<Shape> = Vec::new();
    let mut ctx_ids: HashMap<&[u8], usize> = HashMap::new();
    let mut all_nums: Vec<Val> = Vec::new();
    let mut all_strs: Vec<(usize, usize)> = Vec::new(); // absolute ranges into seg
    let mut toks: Vec<Tok> = Vec::with_capacity(recs.len());
    let mut t = Tokens {
        skeleton: Vec::with_capacity(1024),
        nums: Vec::with_capacity(64),
        strs: Vec::with_capacity(32),
    };
    let base = seg.as_ptr() as usize;
    for r in &recs {
        tokenize(r.frame, &mut t);
        let sid = match skel_ids.get(&t.skeleton) {
            Some(&s) => s,
            None => {
                let s = skels.len();
                skel_ids.insert(t.skeleton.clone(), s);
                skels.push(t.skeleton.clone());
                shapes.push(paths.shape(&t.skeleton));
                s
            }
        };
        let off = r.frame.as_ptr() as usize - base;
        let shape = &shapes[sid];
        let ctx = if shape.channel_str >= 0 {
            let (a, b) = t.strs[shape.channel_str as usize];
            let ch = &seg[off + a..off + b];
            let next = ctx_ids.len() + 1;
            *ctx_ids.entry(ch).or_insert(next)
        } else {
            0
        };
        let n0 = all_nums.len();
        all_nums.extend_from_slice(&t.nums);
        let s0 = all_strs.len();
        all_strs.extend(t.strs.iter().map(|&(a, b)| (off + a, off + b)));
        toks.push(Tok {
            ctx,
            sid,
            nums: (n0, all_nums.len()),
            strs: (s0, all_strs.len()),
        });
    }

    // pass 1: the cost of each predictor per number path
    let n_paths = paths.num.len();
    let contexts = ctx_ids.len() + 1;
    let mut cost = vec![[0u64; PREDICTORS]; n_paths];
    let mut st = NumState::new(n_paths);
    st.grow(contexts);
    for (r, tk) in recs.iter().zip(toks.iter()) {
        let shape = &shapes[tk.sid];
        let recv_ms = r.recv.div_euclid(1000);
        let mut frame_prev: Option<Val> = None;
        let mut ni = tk.nums.0;
        for (k, &kind) in shape.kinds.iter().enumerate() {
            if kind != NUM {
                continue;
            }
            let path = shape.paths[k] as usize;
            let nxt = shape.next_num_path[k];
            let v = all_nums[ni];
            ni += 1;
            let row = &mut cost[path];
            for (p, c) in row.iter_mut().enumerate() {
                let rf = st.reference(p as u8, tk.ctx, path, nxt, frame_prev, recv_ms);
                *c += varint_len(zz(delta_of(v, rf))) + u64::from(v.1 != rf.1);
            }
            st.update(tk.ctx, path, v);
            frame_prev = Some(v);
        }
    }
    let preds: Vec<u8> = cost
        .iter()
        .map(|row| {
            let mut best = 0usize;
            for p in 1..PREDICTORS {
                if row[p] < row[best] {
                    best = p;
                }
            }
            best as u8
        })
        .collect();

    // pass 2: the streams
    let mut conns: HashMap<&[u8], usize> = HashMap::new();
    let (mut s_conns, mut s_conn, mut s_seq, mut s_ts, mut s_crc) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut s_ctx, mut s_ctx_lit, mut s_skel, mut s_skel_lit) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut s_str, mut s_str_lit, mut s_scale) = (Vec::new(), Vec::new(), Vec::new());
    let mut s_nums: Vec<Vec<u8>> = vec![Vec::new(); n_paths];
    let mut bad: Vec<(usize, u32)> = Vec::new();
    let mut prev_seq: i128 = -1;
    let mut prev_ts: i128 = 0;
    let mut st = NumState::new(n_paths);
    st.grow(contexts);
    let mut ctx_skel: Vec<Option<usize>> = Vec::new();
    let mut ctx_str: Vec<Vec<Option<&[u8]>>> = Vec::new();
    let mut known_ctx = 0usize;
    let mut known_skel = 0usize;
    let mut strings: HashMap<&[u8], usize> = HashMap::new();
    let mut channels: Vec<&[u8]> = vec![b""];
    for (idx, (r, tk)) in recs.iter().zip(toks.iter()).enumerate() {
        let next_conn = conns.len();
        let ci = *conns.entry(r.conn).or_insert_with(|| {
            put(&mut s_conns, r.conn.len() as u128);
            s_conns.extend_from_slice(r.conn);
            next_conn
        });
        put(&mut s_conn, ci as u128);
        put(&mut s_seq, zz(r.seq as i128 - prev_seq - 1));
        put(&mut s_ts, zz(r.recv as i128 - prev_ts));
        prev_seq = r.seq as i128;
        prev_ts = r.recv as i128;
        if !r.crc_ok {
            bad.push((idx, r.crc));
        }
        let shape = &shapes[tk.sid];
        let strs = &all_strs[tk.strs.0..tk.strs.1];
        // context
        if tk.ctx == 0 {
            put(&mut s_ctx, 0);
        } else if tk.ctx <= known_ctx {
            put(&mut s_ctx, tk.ctx as u128);
        } else {
            let (a, b) = strs[shape.channel_str as usize];
            let ch = &seg[a..b];
            known_ctx += 1;
            put(&mut s_ctx, known_ctx as u128);
            put(&mut s_ctx_lit, ch.len() as u128);
            s_ctx_lit.extend_from_slice(ch);
            channels.push(ch);
        }
        // skeleton
        if ctx_skel.len() <= tk.ctx {
            ctx_skel.resize(tk.ctx + 1, None);
        }
        if ctx_skel[tk.ctx] == Some(tk.sid) {
            put(&mut s_skel, 0);
        } else if tk.sid < known_skel {
            put(&mut s_skel, tk.sid as u128 + 1);
        } else {
            known_skel += 1;
            put(&mut s_skel, known_skel as u128);
            let sk = &skels[tk.sid];
            put(&mut s_skel_lit, sk.len() as u128);
            s_skel_lit.extend_from_slice(sk);
        }
        ctx_skel[tk.ctx] = Some(tk.sid);
        // holes
        let recv_ms = r.recv.div_euclid(1000);
        let mut frame_prev: Option<Val> = None;
        let (mut ni, mut si) = (tk.nums.0, 0usize);
        for (k, &kind) in shape.kinds.iter().enumerate() {
            let path = shape.paths[k] as usize;
            if kind == STR {
                let (a, b) = strs[si];
                si += 1;
                let text = &seg[a..b];
                let prev = slot(&mut ctx_str, tk.ctx, path);
                if *prev == Some(text) {
                    put(&mut s_str, 0);
                } else if tk.ctx != 0 && text == channels[tk.ctx] {
                    put(&mut s_str, 1);
                } else {
                    match strings.get(text) {
                        Some(&known) => put(&mut s_str, 2 + known as u128),
                        None => {
                            put(&mut s_str, 2 + strings.len() as u128);
                            let next = strings.len();
                            strings.insert(text, next);
                            put(&mut s_str_lit, text.len() as u128);
                            s_str_lit.extend_from_slice(text);
                        }
                    }
                }
                *slot(&mut ctx_str, tk.ctx, path) = Some(text);
                continue;
            }
            let v = all_nums[ni];
            ni += 1;
            let rf = st.reference(preds[path], tk.ctx, path, shape.next_num_path[k], frame_prev, recv_ms);
            put(&mut s_scale, if v.1 == rf.1 { 0 } else { v.1 as u128 + 1 });
            put(&mut s_nums[path], zz(delta_of(v, rf)));
            st.update(tk.ctx, path, v);
            frame_prev = Some(v);
        }
    }
    put(&mut s_crc, bad.len() as u128);
    let mut last = 0usize;
    for (idx, crc) in &bad {
        put(&mut s_crc, (idx - last) as u128);
        last = *idx;
        s_crc.extend_from_slice(&crc.to_le_bytes());
    }
    let mut s_all = Vec::new();
    for s in &s_nums {
        put(&mut s_all, s.len() as u128);
        s_all.extend_from_slice(s);
    }
    let mut body = Vec::with_capacity(seg.len() / 8);
    put(&mut body, recs.len() as u128);
    for s in [
        &s_conns, &s_conn, &s_seq, &s_ts, &s_crc, &s_ctx, &s_ctx_lit, &s_skel, &s_skel_lit, &s_str, &s_str_lit,
        &s_scale, &preds, &s_all,
    ] {
        put(&mut body, s.len() as u128);
        body.extend_from_slice(s);
    }
    put(&mut body, tail.len() as u128);
    body.extend_from_slice(tail);
    body
}

// ------------------------------------------------------------------ decode

/// Where decoded records go: the decoder writes each frame at the end of `begin`'s
/// buffer, then calls `end` with where the frame started.
pub(crate) trait Sink {
    fn begin(&mut self, conn: &[u8]) -> &mut Vec<u8>;
    fn end(&mut self, seq: u64, recv: i64, conn: &[u8], frame_start: usize, crc: Option<u32>);
    fn tail(&mut self, tail: &[u8]);
}

/// The rebuilt segment bytes.
pub(crate) struct SegmentSink(pub(crate) Vec<u8>);

impl Sink for SegmentSink {
    fn begin(&mut self, conn: &[u8]) -> &mut Vec<u8> {
        self.0.extend_from_slice(&[0u8; REC_SIZE]);
        self.0.extend_from_slice(conn);
        &mut self.0
    }

    fn end(&mut self, seq: u64, recv: i64, conn: &[u8], frame_start: usize, crc: Option<u32>) {
        let out = &mut self.0;
        let at = frame_start - conn.len() - REC_SIZE;
        let len = (out.len() - frame_start) as u32;
        let h = &mut out[at..at + REC_SIZE];
        h[0..2].copy_from_slice(REC_MAGIC);
        h[2] = REC_VERSION;
        h[3] = conn.len() as u8;
        h[4..8].copy_from_slice(&len.to_le_bytes());
        h[8..16].copy_from_slice(&seq.to_le_bytes());
        h[16..24].copy_from_slice(&recv.to_le_bytes());
        let crc = crc.unwrap_or_else(|| crc_of(&out[at..at + 24], conn, &out[frame_start..]));
        out[at + 24..at + 28].copy_from_slice(&crc.to_le_bytes());
    }

    fn tail(&mut self, tail: &[u8]) {
        self.0.extend_from_slice(tail);
    }
}

/// A cursor over one stream of the body (positions, so the decoder owns the body).
#[derive(Clone, Copy, Default)]
struct Cur {
    pos: usize,
    end: usize,
}

pub(crate) type Span = (usize, usize);

impl Cur {
    #[inline]
    fn varint(&mut self, b: &[u8]) -> R<u128> {
        if self.pos < self.end {
            let c = b[self.pos];
            if c < 0x80 {
                self.pos += 1;
                return Ok(c as u128);
            }
        }
        let mut x: u128 = 0;
        let mut shift = 0u32;
        loop {
            if self.pos >= self.end {
                return Err(Bad("a stream ends inside a number"));
            }
            let c = b[self.pos];
            self.pos += 1;
            if shift > 126 {
                return Err(Bad("a number is too long"));
            }
            x |= ((c & 0x7f) as u128) << shift;
            if c < 0x80 {
                return Ok(x);
            }
            shift += 7;
        }
    }

    #[inline]
    fn usize(&mut self, b: &[u8]) -> R<usize> {
        usize::try_from(self.varint(b)?).map_err(|_| Bad("a length is too large"))
    }

    fn take(&mut self, n: usize) -> R<Span> {
        if n > self.end - self.pos {
            return Err(Bad("a stream ends early"));
        }
        let span = (self.pos, self.pos + n);
        self.pos += n;
        Ok(span)
    }

    /// A length-prefixed span (a literal).
    fn lit(&mut self, b: &[u8]) -> R<Span> {
        let n = self.usize(b)?;
        self.take(n)
    }

    fn stream(&mut self, b: &[u8]) -> R<Cur> {
        let (pos, end) = self.lit(b)?;
        Ok(Cur { pos, end })
    }

    fn done(&self) -> bool {
        self.pos >= self.end
    }
}

/// A structured body decoded one record at a time (it owns the body).
pub(crate) struct Decoder {
    body: Vec<u8>,
    n: usize,
    i: usize,
    s_conns: Cur,
    s_conn: Cur,
    s_seq: Cur,
    s_ts: Cur,
    s_ctx: Cur,
    s_ctx_lit: Cur,
    s_skel: Cur,
    s_skel_lit: Cur,
    s_str: Cur,
    s_str_lit: Cur,
    s_scale: Cur,
    preds: Vec<u8>,
    s_nums: Vec<Cur>,
    tail: Span,
    tail_done: bool,
    bad: HashMap<usize, u32>,
    conns: Vec<Span>,
    paths: Paths,
    skeletons: Vec<Shape>,
    channels: Vec<Span>,
    strings: Vec<Span>,
    st: NumState,
    ctx_skel: Vec<Option<usize>>,
    ctx_str: Vec<Vec<Option<Span>>>,
    prev_seq: i128,
    prev_ts: i128,
}

impl Decoder {
    pub(crate) fn new(body: Vec<u8>) -> R<Decoder> {
        let b = &body[..];
        let mut top = Cur { pos: 0, end: b.len() };
        let n = top.usize(b)?;
        let s_conns = top.stream(b)?;
        let s_conn = top.stream(b)?;
        let s_seq = top.stream(b)?;
        let s_ts = top.stream(b)?;
        let mut s_crc = top.stream(b)?;
        let s_ctx = top.stream(b)?;
        let s_ctx_lit = top.stream(b)?;
        let s_skel = top.stream(b)?;
        let s_skel_lit = top.stream(b)?;
        let s_str = top.stream(b)?;
        let s_str_lit = top.stream(b)?;
        let s_scale = top.stream(b)?;
        let preds_span = top.lit(b)?;
        let preds = b[preds_span.0..preds_span.1].to_vec();
        let mut s_all = top.stream(b)?;
        let tail = top.lit(b)?;
        let mut s_nums = Vec::new();
        while !s_all.done() {
            s_nums.push(s_all.stream(b)?);
        }
        if s_nums.len() != preds.len() || preds.iter().any(|&p| p as usize >= PREDICTORS) {
            return Err(Bad("the number streams do not match the predictor table"));
        }
        let mut bad = HashMap::new();
        let mut idx = 0usize;
        for _ in 0..s_crc.usize(b)? {
            idx = idx.checked_add(s_crc.usize(b)?).ok_or(Bad("a record index overflows"))?;
            let (a, z) = s_crc.take(4)?;
            bad.insert(idx, u32::from_le_bytes(b[a..z].try_into().unwrap()));
        }
        let mut st = NumState::new(preds.len());
        st.grow(1);
        Ok(Decoder {
            n,
            i: 0,
            s_conns,
            s_conn,
            s_seq,
            s_ts,
            s_ctx,
            s_ctx_lit,
            s_skel,
            s_skel_lit,
            s_str,
            s_str_lit,
            s_scale,
            preds,
            s_nums,
            tail,
            tail_done: false,
            bad,
            conns: Vec::new(),
            paths: Paths::default(),
            skeletons: Vec::new(),
            channels: vec![(0, 0)],
            strings: Vec::new(),
            st,
            ctx_skel: vec![None],
            ctx_str: Vec::new(),
            prev_seq: -1,
            prev_ts: 0,
            body,
        })
    }

    /// Decode the next record into `sink` (the tail after the last one); false when done.
    pub(crate) fn next<S: Sink>(&mut self, sink: &mut S) -> R<bool> {
        let b = &self.body[..];
        if self.i >= self.n {
            if !self.tail_done {
                self.tail_done = true;
                sink.tail(&b[self.tail.0..self.tail.1]);
            }
            return Ok(false);
        }
        let i = self.i;
        self.i += 1;
        let ci = self.s_conn.usize(b)?;
        if ci == self.conns.len() {
            let c = self.s_conns.lit(b)?;
            if c.1 - c.0 > 255 {
                return Err(Bad("a connection id is too long"));
            }
            self.conns.push(c);
        } else if ci > self.conns.len() {
            return Err(Bad("unknown connection"));
        }
        let seq = self.prev_seq + 1 + unzz(self.s_seq.varint(b)?);
        let recv = self.prev_ts + unzz(self.s_ts.varint(b)?);
        let seq_u = u64::try_from(seq).map_err(|_| Bad("a seq is out of range"))?;
        let recv_i = i64::try_from(recv).map_err(|_| Bad("a receive time is out of range"))?;
        self.prev_seq = seq;
        self.prev_ts = recv;
        let ctx = self.s_ctx.usize(b)?;
        if ctx == self.channels.len() {
            let ch = self.s_ctx_lit.lit(b)?;
            self.channels.push(ch);
            self.st.grow(self.channels.len());
            self.ctx_skel.push(None);
        } else if ctx > self.channels.len() {
            return Err(Bad("unknown channel"));
        }
        let code = self.s_skel.usize(b)?;
        let sid = if code == 0 {
            self.ctx_skel[ctx].ok_or(Bad("no previous skeleton in this channel"))?
        } else if code == self.skeletons.len() + 1 {
            let (a, z) = self.s_skel_lit.lit(b)?;
            let shape = self.paths.shape(&b[a..z]);
            if self.paths.num.len() > self.preds.len() {
                return Err(Bad("a skeleton has more number paths than the table"));
            }
            self.skeletons.push(shape);
            code - 1
        } else if code <= self.skeletons.len() {
            code - 1
        } else {
            return Err(Bad("unknown skeleton"));
        };
        self.ctx_skel[ctx] = Some(sid);
        let shape = &self.skeletons[sid];
        if shape.cuts.len() != shape.kinds.len() {
            return Err(Bad("a skeleton's holes do not match its shape"));
        }
        if self.ctx_str.len() <= ctx {
            self.ctx_str.resize_with(ctx + 1, Vec::new);
        }
        let n_str = self.paths.str.len();
        let strs = &mut self.ctx_str[ctx];
        if strs.len() < n_str {
            strs.resize(n_str, None);
        }
        let recv_ms = recv_i.div_euclid(1000);
        let mut frame_prev: Option<Val> = None;
        let conn = self.conns[ci];
        let conn = &b[conn.0..conn.1];
        let frame = sink.begin(conn);
        let frame_start = frame.len();
        let mut lit_at = 0usize;
        for k in 0..shape.kinds.len() {
            let cut = shape.cuts[k] as usize;
            copy_small(frame, &shape.lits, lit_at, cut);
            lit_at = cut;
            let path = shape.paths[k] as usize;
            if shape.kinds[k] == STR {
                let code = self.s_str.usize(b)?;
                let span = if code == 0 {
                    strs[path].ok_or(Bad("no previous string at this path"))?
                } else if code == 1 {
                    self.channels[ctx]
                } else if code - 2 < self.strings.len() {
                    self.strings[code - 2]
                } else if code - 2 == self.strings.len() {
                    let sp = self.s_str_lit.lit(b)?;
                    self.strings.push(sp);
                    sp
                } else {
                    return Err(Bad("unknown string"));
                };
                strs[path] = Some(span);
                copy_small(frame, b, span.0, span.1);
            } else {
                let rf = self
                    .st
                    .reference(self.preds[path], ctx, path, shape.next_num_path[k], frame_prev, recv_ms);
                let sc = self.s_scale.varint(b)?;
                let s = if sc == 0 {
                    rf.1
                } else {
                    match u8::try_from(sc - 1) {
                        Ok(s) if decimals(s) <= MAX_DIGITS + 1 => s,
                        _ => return Err(Bad("a scale is out of range")),
                    }
                };
                let delta = unzz(self.s_nums[path].varint(b)?);
                let v = (value_of(delta, s, rf)?, s);
                self.st.update(ctx, path, v);
                frame_prev = Some(v);
                fmt_number(frame, v);
            }
        }
        frame.extend_from_slice(&shape.lits[lit_at..shape.lits_len]);
        let crc = if self.bad.is_empty() { None } else { self.bad.get(&i).copied() };
        sink.end(seq_u, recv_i, conn, frame_start, crc);
        Ok(true)
    }
}

/// One record's holes in skeleton order, decoded without writing its text
/// (`Decoder::next_holes`): the numbers and the strings (spans into `Decoder::body`).
#[derive(Default)]
pub(crate) struct Holes {
    pub(crate) nums: Vec<Val>,
    pub(crate) strs: Vec<Span>,
}

/// What `Decoder::next_holes` says of a record besides its holes.
pub(crate) struct RecInfo {
    /// Its skeleton (`Decoder::shape`).
    pub(crate) sid: usize,
    pub(crate) recv: i64,
    /// Archived with a CRC that is not the computed one (a damaged record).
    pub(crate) crc_bad: bool,
}

impl Decoder {
    /// The body the decoder reads (string holes are spans into it).
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn shape(&self, sid: usize) -> &Shape {
        &self.skeletons[sid]
    }

    /// Length of the bytes after the last whole record (known once `next_holes` said done).
    pub(crate) fn tail_len(&self) -> usize {
        self.tail.1 - self.tail.0
    }

    /// `next` without writing the frame: the next record's holes into `h` (the same
    /// decoding and state updates as `next`), `None` when every record was read. The text
    /// `next` would have written is `write_frame(sid, h, ..)`.
    pub(crate) fn next_holes(&mut self, h: &mut Holes) -> R<Option<RecInfo>> {
        h.nums.clear();
        h.strs.clear();
        let b = &self.body[..];
        if self.i >= self.n {
            self.tail_done = true;
            return Ok(None);
        }
        let i = self.i;
        self.i += 1;
        let ci = self.s_conn.usize(b)?;
        if ci == self.conns.len() {
            let c = self.s_conns.lit(b)?;
            if c.1 - c.0 > 255 {
                return Err(Bad("a connection id is too long"));
            }
            self.conns.push(c);
        } else if ci > self.conns.len() {
            return Err(Bad("unknown connection"));
        }
        let seq = self.prev_seq + 1 + unzz(self.s_seq.varint(b)?);
        let recv = self.prev_ts + unzz(self.s_ts.varint(b)?);
        u64::try_from(seq).map_err(|_| Bad("a seq is out of range"))?;
        let recv_i = i64::try_from(recv).map_err(|_| Bad("a receive time is out of range"))?;
        self.prev_seq = seq;
        self.prev_ts = recv;
        let ctx = self.s_ctx.usize(b)?;
        if ctx == self.channels.len() {
            let ch = self.s_ctx_lit.lit(b)?;
            self.channels.push(ch);
            self.st.grow(self.channels.len());
            self.ctx_skel.push(None);
        } else if ctx > self.channels.len() {
            return Err(Bad("unknown channel"));
        }
        let code = self.s_skel.usize(b)?;
        let sid = if code == 0 {
            self.ctx_skel[ctx].ok_or(Bad("no previous skeleton in this channel"))?
        } else if code == self.skeletons.len() + 1 {
            let (a, z) = self.s_skel_lit.lit(b)?;
            let shape = self.paths.shape(&b[a..z]);
            if self.paths.num.len() > self.preds.len() {
                return Err(Bad("a skeleton has more number paths than the table"));
            }
            self.skeletons.push(shape);
            code - 1
        } else if code <= self.skeletons.len() {
            code - 1
        } else {
            return Err(Bad("unknown skeleton"));
        };
        self.ctx_skel[ctx] = Some(sid);
        let shape = &self.skeletons[sid];
        if shape.cuts.len() != shape.kinds.len() {
            return Err(Bad("a skeleton's holes do not match its shape"));
        }
        if self.ctx_str.len() <= ctx {
            self.ctx_str.resize_with(ctx + 1, Vec::new);
        }
        let n_str = self.paths.str.len();
        let strs = &mut self.ctx_str[ctx];
        if strs.len() < n_str {
            strs.resize(n_str, None);
        }
        let recv_ms = recv_i.div_euclid(1000);
        let mut frame_prev: Option<Val> = None;
        for k in 0..shape.kinds.len() {
            let path = shape.paths[k] as usize;
            if shape.kinds[k] == STR {
                let code = self.s_str.usize(b)?;
                let span = if code == 0 {
                    strs[path].ok_or(Bad("no previous string at this path"))?
                } else if code == 1 {
                    self.channels[ctx]
                } else if code - 2 < self.strings.len() {
                    self.strings[code - 2]
                } else if code - 2 == self.strings.len() {
                    let sp = self.s_str_lit.lit(b)?;
                    self.strings.push(sp);
                    sp
                } else {
                    return Err(Bad("unknown string"));
                };
                strs[path] = Some(span);
                h.strs.push(span);
            } else {
                let rf = self
                    .st
                    .reference(self.preds[path], ctx, path, shape.next_num_path[k], frame_prev, recv_ms);
                let sc = self.s_scale.varint(b)?;
                let s = if sc == 0 {
                    rf.1
                } else {
                    match u8::try_from(sc - 1) {
                        Ok(s) if decimals(s) <= MAX_DIGITS + 1 => s,
                        _ => return Err(Bad("a scale is out of range")),
                    }
                };
                let delta = unzz(self.s_nums[path].varint(b)?);
                let v = (value_of(delta, s, rf)?, s);
                self.st.update(ctx, path, v);
                frame_prev = Some(v);
                h.nums.push(v);
            }
        }
        let crc_bad = !self.bad.is_empty() && self.bad.contains_key(&i);
        Ok(Some(RecInfo { sid, recv: recv_i, crc_bad }))
    }

    /// The frame text of a record `next_holes` decoded (the bytes `next` writes).
    pub(crate) fn write_frame(&self, sid: usize, h: &Holes, out: &mut Vec<u8>) {
        let shape = &self.skeletons[sid];
        let b = &self.body[..];
        let (mut ni, mut si) = (0usize, 0usize);
        let mut lit_at = 0usize;
        for k in 0..shape.kinds.len() {
            let cut = shape.cuts[k] as usize;
            copy_small(out, &shape.lits, lit_at, cut);
            lit_at = cut;
            if shape.kinds[k] == STR {
                let span = h.strs[si];
                si += 1;
                copy_small(out, b, span.0, span.1);
            } else {
                fmt_number(out, h.nums[ni]);
                ni += 1;
            }
        }
        out.extend_from_slice(&shape.lits[lit_at..shape.lits_len]);
    }
}

pub(crate) fn decode_body<S: Sink>(body: &[u8], sink: &mut S) -> R<()> {
    let mut d = Decoder::new(body.to_vec())?;
    while d.next(sink)? {}
    Ok(())
}

/// The frames only, for replay: offsets into one buffer and receive times, records whose
/// stored CRC was wrong skipped and counted (as a journal segment reader skips them).
#[derive(Default)]
pub(crate) struct FramesSink {
    pub(crate) buf: Vec<u8>,
    pub(crate) starts: Vec<u8>,
    pub(crate) ends: Vec<u8>,
    pub(crate) recv: Vec<u8>,
    pub(crate) damaged: u64,
    pub(crate) tail: usize,
}

impl Sink for FramesSink {
    fn begin(&mut self, _conn: &[u8]) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn end(&mut self, _seq: u64, recv: i64, _conn: &[u8], frame_start: usize, crc: Option<u32>) {
        if crc.is_some() {
            self.damaged += 1; // archived with a CRC that did not match: damaged at the source
            self.buf.truncate(frame_start);
            return;
        }
        self.starts.extend_from_slice(&(frame_start as u64).to_le_bytes());
        self.ends.extend_from_slice(&(self.buf.len() as u64).to_le_bytes());
        self.recv.extend_from_slice(&recv.to_le_bytes());
    }

    fn tail(&mut self, tail: &[u8]) {
        self.tail = tail.len();
    }
}

// ------------------------------------------------------------------ Python

/// `tjz_encode_body(segment: bytes) -> bytes`: the structured body of a journal segment.
#[pyfunction]
fn tjz_encode_body<'py>(py: Python<'py>, segment: &[u8]) -> Bound<'py, PyBytes> {
    let body = py.detach(|| encode_body(segment));
    PyBytes::new(py, &body)
}

/// `tjz_decode_body(body: bytes) -> bytes`: the segment a structured body rebuilds
/// (`ValueError` when the body is damaged).
#[pyfunction]
fn tjz_decode_body<'py>(py: Python<'py>, body: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let mut sink = SegmentSink(Vec::with_capacity(body.len() * 8));
    py.detach(|| decode_body(body, &mut sink))
        .map_err(|Bad(why)| PyValueError::new_err(format!("journal archive body: {why}")))?;
    Ok(PyBytes::new(py, &sink.0))
}

/// `TjzFrames(body)`: the frames of a structured body without rebuilding the segment
/// (replay), a batch at a time: `read(max_frames)` returns `(buf, starts, ends, recv_ts)`
/// (frame `i` is `buf[starts[i]:ends[i]]`, u64 arrays; receive times i64) or `None` at
/// the end; records archived with a wrong CRC are skipped and counted in `damaged`;
/// `tail_bytes` is the length of the segment's torn or unreadable end (known at the end).
/// `ValueError` when the body is damaged.
#[pyclass(module = "tickarchive_native")]
struct TjzFrames {
    dec: Decoder,
    sink: FramesSink,
    done: bool,
}

#[pymethods]
impl TjzFrames {
    #[new]
    fn new(body: &[u8]) -> PyResult<Self> {
        let dec = Decoder::new(body.to_vec()).map_err(|Bad(why)| PyValueError::new_err(format!("journal archive body: {why}")))?;
        Ok(TjzFrames {
            dec,
            sink: FramesSink::default(),
            done: false,
        })
    }

    fn read<'py>(&mut self, py: Python<'py>, max_frames: usize) -> PyResult<Option<Bound<'py, pyo3::types::PyTuple>>> {
        if self.done {
            return Ok(None);
        }
        let s = &mut self.sink;
        s.buf.clear();
        s.starts.clear();
        s.ends.clear();
        s.recv.clear();
        let (dec, sink) = (&mut self.dec, &mut self.sink);
        let more = py
            .detach(|| -> R<bool> {
                while sink.starts.len() < 8 * max_frames {
                    if !dec.next(sink)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            })
            .map_err(|Bad(why)| PyValueError::new_err(format!("journal archive body: {why}")))?;
        if !more {
            self.done = true;
        }
        if self.sink.starts.is_empty() {
            return Ok(None);
        }
        let s = &self.sink;
        Ok(Some(
            (
                PyBytes::new(py, &s.buf),
                PyBytes::new(py, &s.starts),
                PyBytes::new(py, &s.ends),
                PyBytes::new(py, &s.recv),
            )
                .into_pyobject(py)?,
        ))
    }

    #[getter]
    fn damaged(&self) -> u64 {
        self.sink.damaged
    }

    #[getter]
    fn tail_bytes(&self) -> usize {
        self.sink.tail
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TjzFrames>()?;
    m.add_function(wrap_pyfunction!(tjz_encode_body, m)?)?;
    m.add_function(wrap_pyfunction!(tjz_decode_body, m)?)?;
    Ok(())
}
