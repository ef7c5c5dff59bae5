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

const NUM: u8 = 0;
const STR: u8 = 1;
const ESC: u8 = 2;

const P_ZERO: u8 = 0;
const P_GLOBAL: u8 = 2;
const P_FRAME: u8 = 3;
const P_RECV_MS: u8 = 4;
const P_NEXT: u8 = 5;
const PREDICTORS: usize = 6;
const MAX_DIGITS: usize = 18;
const MAX_ARRAY_POS: usize = 7;

type Val = (i64, u8);
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

struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Rd { buf, pos: 0 }
    }

    #[inline]
    fn varint(&mut self) -> R<u128> {
        // fast path: one byte
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(b as u128);
            }
        }
        let mut x: u128 = 0;
        let mut shift = 0u32;
        loop {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(Bad("a stream ends inside a number"))?;
            self.pos += 1;
            if shift > 126 {
                return Err(Bad("a number is too long"));
            }
            x |= ((b & 0x7f) as u128) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
        }
    }

    #[inline]
    fn usize(&mut self) -> R<usize> {
        let v = self.varint()?;
        usize::try_from(v).map_err(|_| Bad("a length is too large"))
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.buf.len() - self.pos {
            return Err(Bad("a stream ends early"));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn stream(&mut self) -> R<Rd<'a>> {
        let n = self.usize()?;
        Ok(Rd::new(self.take(n)?))
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
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
fn decimals(s: u8) -> usize {
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

fn fmt_number(out: &mut Vec<u8>, v: Val) {
    let (x, s) = v;
    if x < 0 {
        out.push(b'-');
    }
    // digits of |x|, most significant last, padded to d + 1 digits
    let mut buf = [b'0'; 24];
    let mut n = 0;
    let mut u = x.unsigned_abs();
    while u >= 100 {
        let r = (u % 100) as usize * 2;
        u /= 100;
        buf[n] = DIGITS2[r + 1];
        buf[n + 1] = DIGITS2[r];
        n += 2;
    }
    if u >= 10 {
        let r = u as usize * 2;
        buf[n] = DIGITS2[r + 1];
        buf[n + 1] = DIGITS2[r];
        n += 2;
    } else {
        buf[n] = b'0' + u as u8;
        n += 1;
    }
    if s == 0 {
        out.extend(buf[..n].iter().rev());
        return;
    }
    let d = (s - 1) as usize;
    if n < d + 1 {
        n = d + 1; // buf is pre-filled with '0'
    }
    out.extend(buf[d..n].iter().rev());
    out.push(b'.');
    out.extend(buf[..d].iter().rev());
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
struct Shape {
    kinds: Vec<u8>,
    paths: Vec<u32>,
    next_num_path: Vec<i64>,
    /// The skeleton unescaped, without its hole markers, and where each hole goes in it:
    /// hole k is written after `lits[..cuts[k]]`; the rest follows the last hole.
    lits: Vec<u8>,
    cuts: Vec<u32>,
    /// Index, among the string holes, of the channel hole (-1: none).
    channel_str: i64,
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
        Shape {
            kinds,
            paths,
            next_num_path,
            lits,
            cuts,
            channel_str,
        }
    }
}

// ------------------------------------------------------------------ state

#[derive(Default)]
struct NumState {
    ctx: Vec<Vec<Option<Val>>>, // [ctx][path]
    glob: Vec<Option<Val>>,
}

impl NumState {
    #[inline]
    fn ctx_get(&self, ctx: usize, path: usize) -> Option<Val> {
        self.ctx.get(ctx).and_then(|v| v.get(path)).copied().flatten()
    }

    #[inline]
    fn glob_get(&self, path: usize) -> Val {
        self.glob.get(path).copied().flatten().unwrap_or(ZERO)
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
        if self.ctx.len() <= ctx {
            self.ctx.resize_with(ctx + 1, Vec::new);
        }
        let row = &mut self.ctx[ctx];
        if row.len() <= path {
            row.resize(path + 1, None);
        }
        row[path] = Some(v);
        if self.glob.len() <= path {
            self.glob.resize(path + 1, None);
        }
        self.glob[path] = Some(v);
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
    let mut cost = vec![[0u64; PREDICTORS]; n_paths];
    let mut st = NumState::default();
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
    let mut st = NumState::default();
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

#[derive(Clone, Copy, PartialEq)]
enum StrRef {
    Channel(u32),
    Dict(u32),
}

/// What a decoded record hands to its consumer.
pub(crate) trait Sink {
    fn record(&mut self, seq: u64, recv: i64, conn: &[u8], frame: &[u8], crc: Option<u32>);
    fn tail(&mut self, tail: &[u8]);
}

/// The rebuilt segment bytes.
pub(crate) struct SegmentSink(pub(crate) Vec<u8>);

impl Sink for SegmentSink {
    fn record(&mut self, seq: u64, recv: i64, conn: &[u8], frame: &[u8], crc: Option<u32>) {
        let out = &mut self.0;
        let at = out.len();
        out.extend_from_slice(REC_MAGIC);
        out.push(REC_VERSION);
        out.push(conn.len() as u8);
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&recv.to_le_bytes());
        let crc = crc.unwrap_or_else(|| crc_of(&out[at..at + 24], conn, frame));
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(conn);
        out.extend_from_slice(frame);
    }

    fn tail(&mut self, tail: &[u8]) {
        self.0.extend_from_slice(tail);
    }
}

pub(crate) fn decode_body<S: Sink>(body: &[u8], sink: &mut S) -> R<()> {
    let mut rd = Rd::new(body);
    let n = rd.usize()?;
    let mut s_conns = rd.stream()?;
    let mut s_conn = rd.stream()?;
    let mut s_seq = rd.stream()?;
    let mut s_ts = rd.stream()?;
    let mut s_crc = rd.stream()?;
    let mut s_ctx = rd.stream()?;
    let mut s_ctx_lit = rd.stream()?;
    let mut s_skel = rd.stream()?;
    let mut s_skel_lit = rd.stream()?;
    let mut s_str = rd.stream()?;
    let mut s_str_lit = rd.stream()?;
    let mut s_scale = rd.stream()?;
    let preds = rd.stream()?.buf;
    let mut s_all = rd.stream()?;
    let tail = rd.stream()?.buf;
    let mut s_nums: Vec<Rd> = Vec::new();
    while !s_all.done() {
        s_nums.push(s_all.stream()?);
    }
    if s_nums.len() != preds.len() || preds.iter().any(|&p| p as usize >= PREDICTORS) {
        return Err(Bad("the number streams do not match the predictor table"));
    }
    let mut bad: HashMap<usize, u32> = HashMap::new();
    let mut idx = 0usize;
    for _ in 0..s_crc.usize()? {
        idx += s_crc.usize()?;
        bad.insert(idx, u32::from_le_bytes(s_crc.take(4)?.try_into().unwrap()));
    }
    let mut conns: Vec<&[u8]> = Vec::new();
    let mut paths = Paths::default();
    let mut skeletons: Vec<(&[u8], Shape)> = Vec::new();
    let mut channels: Vec<&[u8]> = vec![b""];
    let mut strings: Vec<&[u8]> = Vec::new();
    let mut st = NumState::default();
    let mut ctx_skel: Vec<Option<usize>> = Vec::new();
    let mut ctx_str: Vec<Vec<Option<StrRef>>> = Vec::new();
    let mut prev_seq: i128 = -1;
    let mut prev_ts: i128 = 0;
    let mut frame: Vec<u8> = Vec::with_capacity(4096);
    for i in 0..n {
        let ci = s_conn.usize()?;
        if ci == conns.len() {
            let len = s_conns.usize()?;
            let c = s_conns.take(len)?;
            if c.len() > 255 {
                return Err(Bad("a connection id is too long"));
            }
            conns.push(c);
        } else if ci > conns.len() {
            return Err(Bad("unknown connection"));
        }
        let seq = prev_seq + 1 + unzz(s_seq.varint()?);
        let recv = prev_ts + unzz(s_ts.varint()?);
        let seq_u = u64::try_from(seq).map_err(|_| Bad("a seq is out of range"))?;
        let recv_i = i64::try_from(recv).map_err(|_| Bad("a receive time is out of range"))?;
        prev_seq = seq;
        prev_ts = recv;
        let ctx = s_ctx.usize()?;
        if ctx == channels.len() {
            let len = s_ctx_lit.usize()?;
            channels.push(s_ctx_lit.take(len)?);
        } else if ctx > channels.len() {
            return Err(Bad("unknown channel"));
        }
        let code = s_skel.usize()?;
        if ctx_skel.len() <= ctx {
            ctx_skel.resize(ctx + 1, None);
        }
        let sid = if code == 0 {
            ctx_skel[ctx].ok_or(Bad("no previous skeleton in this channel"))?
        } else if code == skeletons.len() + 1 {
            let len = s_skel_lit.usize()?;
            let sk = s_skel_lit.take(len)?;
            let shape = paths.shape(sk);
            skeletons.push((sk, shape));
            code - 1
        } else if code <= skeletons.len() {
            code - 1
        } else {
            return Err(Bad("unknown skeleton"));
        };
        ctx_skel[ctx] = Some(sid);
        if paths.num.len() > preds.len() {
            return Err(Bad("a skeleton has more number paths than the table"));
        }
        let (sk, shape) = &skeletons[sid];
        let recv_ms = recv_i.div_euclid(1000);
        let mut frame_prev: Option<Val> = None;
        frame.clear();
        if shape.cuts.len() != shape.kinds.len() {
            return Err(Bad("a skeleton's holes do not match its shape"));
        }
        let mut lit_at = 0usize;
        for k in 0..shape.kinds.len() {
            let cut = shape.cuts[k] as usize;
            frame.extend_from_slice(&shape.lits[lit_at..cut]);
            lit_at = cut;
            let path = shape.paths[k] as usize;
            if shape.kinds[k] == STR {
                let code = s_str.usize()?;
                let r = if code == 0 {
                    slot(&mut ctx_str, ctx, path).ok_or(Bad("no previous string at this path"))?
                } else if code == 1 {
                    StrRef::Channel(ctx as u32)
                } else if code - 2 < strings.len() {
                    StrRef::Dict((code - 2) as u32)
                } else if code - 2 == strings.len() {
                    let len = s_str_lit.usize()?;
                    strings.push(s_str_lit.take(len)?);
                    StrRef::Dict((code - 2) as u32)
                } else {
                    return Err(Bad("unknown string"));
                };
                *slot(&mut ctx_str, ctx, path) = Some(r);
                frame.extend_from_slice(match r {
                    StrRef::Channel(c) => channels[c as usize],
                    StrRef::Dict(d) => strings[d as usize],
                });
            } else {
                let rf = st.reference(preds[path], ctx, path, shape.next_num_path[k], frame_prev, recv_ms);
                let sc = s_scale.varint()?;
                let s = if sc == 0 {
                    rf.1
                } else {
                    match u8::try_from(sc - 1) {
                        Ok(s) if decimals(s) <= MAX_DIGITS + 1 => s,
                        _ => return Err(Bad("a scale is out of range")),
                    }
                };
                let delta = unzz(s_nums[path].varint()?);
                let v = (value_of(delta, s, rf)?, s);
                st.update(ctx, path, v);
                frame_prev = Some(v);
                fmt_number(&mut frame, v);
            }
        }
        frame.extend_from_slice(&shape.lits[lit_at..]);
        let _ = sk;
        let crc = if bad.is_empty() { None } else { bad.get(&i).copied() };
        sink.record(seq_u, recv_i, conns[ci], &frame, crc);
    }
    sink.tail(tail);
    Ok(())
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

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tjz_encode_body, m)?)?;
    m.add_function(wrap_pyfunction!(tjz_decode_body, m)?)?;
    Ok(())
}
