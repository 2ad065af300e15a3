//! Randomized model test: long random sequences of engine operations checked against a
//! `BTreeMap` model after every step. Id collections and keyed collections (documents under
//! caller-given byte keys) live side by side; keyed ones are read by point gets, key ranges
//! and prefixes forward and reverse, and each kind's operations on the other kind must be
//! refused without changing anything.
//!
//! Every failure message names the variant, the seed and the step, and lists the last
//! operations. Rerun one case with e.g.
//! `OBJ_MODEL_SEEDS=7 OBJ_MODEL_STEPS=50000 cargo test -p obj-core --test model durability_none`.
//! `OBJ_MODEL_SEEDS` takes a comma-separated list of seeds.

mod support;

use obj_core::{
    CollectionKind, Db, Durability, Error, Options, ReadTxn, Reader, WriteTxn, MAX_KEY_LEN,
};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use support::{seeds_from_env, Rng, SharedMem};

const DEFAULT_STEPS: usize = 12_000;
const NAMES: [&str; 6] = [
    "alpha",
    "beta",
    "γάμμα",
    // A long name (the limit is 255 bytes) so catalog cells are big too.
    "delta-with-a-much-longer-collection-name-that-makes-catalog-cells-larger-than-usual-0123456789-abcdefghijklmnopqrstuvwxyz",
    "kv",
    "keyed-κλειδιά",
];
/// The keyed collections among [`NAMES`]; the others are id collections.
const KEYED: [&str; 2] = ["kv", "keyed-κλειδιά"];

fn is_keyed(coll: &str) -> bool {
    KEYED.contains(&coll)
}

#[derive(Clone, Debug)]
struct Config {
    name: &'static str,
    durability: Durability,
    checkpoint_frames: u64,
    cache_size: usize,
    page_size: u32,
    /// Keep up to four read snapshots open across commits, checkpoints and reopens.
    hold_readers: bool,
    /// In-memory backends (reopened over the same bytes) instead of files.
    memory: bool,
}

impl Config {
    fn base(name: &'static str) -> Self {
        Config {
            name,
            durability: Durability::Immediate,
            checkpoint_frames: 1000,
            cache_size: 64 << 20,
            page_size: 4096,
            hold_readers: false,
            memory: false,
        }
    }

    fn options(&self, read_only: bool) -> Options {
        Options::default()
            .read_only(read_only)
            .page_size(self.page_size)
            .durability(self.durability)
            .cache_size(self.cache_size)
            .checkpoint_frames(self.checkpoint_frames)
    }
}

/// The model: documents and the next id per collection (by key for a keyed collection).
#[derive(Clone, Debug, Default)]
struct Coll {
    docs: BTreeMap<u64, Arc<Vec<u8>>>,
    next_id: u64,
    /// Shared key bytes keep the per-transaction copy of the model cheap.
    keys: BTreeMap<Key, Arc<Vec<u8>>>,
}

type Key = Arc<[u8]>;

impl Coll {
    fn len(&self) -> usize {
        self.docs.len() + self.keys.len()
    }
}

/// The kind the model says `coll` has (None while it does not exist).
fn model_kind(model: &Model, coll: &str) -> Option<CollectionKind> {
    model.get(coll).map(|_| {
        if is_keyed(coll) {
            CollectionKind::Keyed
        } else {
            CollectionKind::Ids
        }
    })
}

/// Collections by name; each is shared between the committed model and the transactions
/// that have not written to it yet (copied on its first write).
type Model = BTreeMap<String, Arc<Coll>>;

/// `coll` of `model` for writing, created (empty, next id 1) if missing.
fn coll_mut<'a>(model: &'a mut Model, coll: &str) -> &'a mut Coll {
    Arc::make_mut(model.entry(coll.to_string()).or_insert_with(|| {
        Arc::new(Coll {
            next_id: 1,
            ..Default::default()
        })
    }))
}

/// Failure context: everything needed to reproduce.
struct Ctx {
    cfg: Config,
    seed: u64,
    step: usize,
    log: VecDeque<String>,
    /// Keyed writes and refused operations done, for the coverage check.
    keyed_writes: usize,
    refusals: usize,
}

impl Ctx {
    fn note(&mut self, op: String) {
        if self.log.len() == 40 {
            self.log.pop_front();
        }
        self.log.push_back(format!("#{} {op}", self.step));
    }

    fn fail(&self, msg: impl std::fmt::Display) -> ! {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model test failed: variant={} seed={} step={}: {msg}",
            self.cfg.name, self.seed, self.step
        );
        let _ = writeln!(s, "config: {:?}", self.cfg);
        let _ = writeln!(s, "last operations (oldest first):");
        for l in &self.log {
            let _ = writeln!(s, "  {l}");
        }
        let _ = write!(
            s,
            "rerun: OBJ_MODEL_SEEDS={} cargo test -p obj-core --test model",
            self.seed
        );
        panic!("{s}");
    }

    fn ok<T>(&self, r: obj_core::Result<T>, what: &str) -> T {
        r.unwrap_or_else(|e| self.fail(format!("{what} returned an error: {e:?}")))
    }
}

macro_rules! ensure {
    ($ctx:expr, $cond:expr, $($fmt:tt)*) => {
        if !$cond {
            $ctx.fail(format!($($fmt)*));
        }
    };
}

enum Store {
    File(PathBuf, #[allow(dead_code)] tempfile::TempDir),
    Memory(SharedMem, SharedMem),
}

impl Store {
    fn open(&self, cfg: &Config, read_only: bool) -> obj_core::Result<Db> {
        match self {
            Store::File(path, _) => Db::open(path, cfg.options(read_only)),
            Store::Memory(main, wal) => Db::open_with_backends(
                Box::new(main.clone()),
                Box::new(wal.clone()),
                cfg.options(read_only),
            ),
        }
    }
}

fn value(rng: &mut Rng, page_size: usize) -> Vec<u8> {
    let r = rng.below(100);
    let len = if r < 8 {
        0
    } else if r < 55 {
        rng.range(1, 64)
    } else if r < 82 {
        rng.range(65, 1000)
    } else if r < 95 {
        // Around the inline/overflow threshold and up to one page.
        rng.range(900, page_size as u64 + 100)
    } else {
        // Several overflow pages.
        rng.range(page_size as u64, 5 * page_size as u64)
    };
    rng.bytes(len as usize)
}

fn pick_coll(rng: &mut Rng) -> &'static str {
    NAMES[rng.below(NAMES.len() as u64) as usize]
}

/// An id for put/get/delete: usually one that exists, sometimes a fresh or far one.
fn pick_id(rng: &mut Rng, model: &Model, coll: &str) -> u64 {
    let c = model.get(coll);
    let r = rng.below(100);
    match c {
        Some(c) if !c.docs.is_empty() && r < 60 => {
            let n = rng.below(c.docs.len() as u64) as usize;
            *c.docs.keys().nth(n).unwrap()
        }
        _ if r < 90 => {
            let next = c.map_or(1, |c| c.next_id);
            rng.range(1, next + 20)
        }
        _ => rng.range(1, 1 << 40),
    }
}

fn short(v: &[u8]) -> String {
    format!("{} bytes", v.len())
}

/// Everything `r` holds in `coll` in `range`, as (id, bytes).
fn read_range<R: Reader>(
    ctx: &Ctx,
    r: &R,
    coll: &str,
    lo: Bound<u64>,
    hi: Bound<u64>,
) -> Vec<(u64, Vec<u8>)> {
    let it = ctx.ok(r.range(coll, (lo, hi)), "range");
    it.map(|x| {
        let (id, v) = ctx.ok(x, "range item");
        (id, v.into_vec())
    })
    .collect()
}

fn model_range(model: &Model, coll: &str, lo: Bound<u64>, hi: Bound<u64>) -> Vec<(u64, Vec<u8>)> {
    // BTreeMap::range panics on inverted or empty-excluded ranges; the engine returns
    // nothing for them.
    let empty = match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        _ => false,
    };
    if empty {
        return Vec::new();
    }
    model.get(coll).map_or(Vec::new(), |c| {
        c.docs
            .range((lo, hi))
            .map(|(id, v)| (*id, v.to_vec()))
            .collect()
    })
}

fn random_bounds(rng: &mut Rng, model: &Model, coll: &str) -> (Bound<u64>, Bound<u64>) {
    let mut b = || {
        let id = pick_id(rng, model, coll);
        match rng.below(6) {
            0 => Bound::Unbounded,
            1 | 2 => Bound::Excluded(id),
            _ => Bound::Included(id),
        }
    };
    let (mut lo, mut hi) = (b(), b());
    // Mostly well-ordered ranges, sometimes inverted ones.
    if rng.chance(85) {
        let key = |x: &Bound<u64>| match x {
            Bound::Included(v) | Bound::Excluded(v) => *v,
            Bound::Unbounded => 0,
        };
        if key(&lo) > key(&hi) && !matches!(hi, Bound::Unbounded) {
            std::mem::swap(&mut lo, &mut hi);
        }
    }
    if rng.chance(3) {
        lo = Bound::Included(u64::MAX);
        hi = Bound::Unbounded;
    }
    (lo, hi)
}

/// Compares one whole collection (iter, count, kind) of `r` to `model`.
fn check_collection<R: Reader>(ctx: &Ctx, r: &R, model: &Model, coll: &str, what: &str) {
    let kind = ctx.ok(r.kind(coll), "kind");
    ensure!(
        ctx,
        kind == model_kind(model, coll),
        "{what}: kind({coll:?}) = {kind:?}, model {:?}",
        model_kind(model, coll)
    );
    if is_keyed(coll) {
        return check_keyed_collection(ctx, r, model, coll, what);
    }
    let got = read_range(ctx, r, coll, Bound::Unbounded, Bound::Unbounded);
    let want = model_range(model, coll, Bound::Unbounded, Bound::Unbounded);
    if got != want {
        let got_ids: Vec<u64> = got.iter().map(|x| x.0).collect();
        let want_ids: Vec<u64> = want.iter().map(|x| x.0).collect();
        let first_diff = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        ctx.fail(format!(
            "{what}: iter({coll:?}) differs from the model at position {first_diff}: got {} docs, \
             want {} (ids got {:?}.., want {:?}..)",
            got.len(),
            want.len(),
            &got_ids[first_diff.saturating_sub(2)..(first_diff + 3).min(got_ids.len())],
            &want_ids[first_diff.saturating_sub(2)..(first_diff + 3).min(want_ids.len())],
        ));
    }
    let count = ctx.ok(r.count(coll), "count");
    ensure!(
        ctx,
        count == want.len() as u64,
        "{what}: count({coll:?}) = {count}, model has {}",
        want.len()
    );
}

/// Compares a random id range (key range, prefix or keys of a keyed collection) of one
/// collection of `r` to `model`.
fn check_range<R: Reader>(ctx: &Ctx, rng: &mut Rng, r: &R, model: &Model, coll: &str, what: &str) {
    if is_keyed(coll) {
        return check_key_read(ctx, rng, r, model, coll, what);
    }
    let (lo, hi) = random_bounds(rng, model, coll);
    let got = read_range(ctx, r, coll, lo, hi);
    let want = model_range(model, coll, lo, hi);
    ensure!(
        ctx,
        got == want,
        "{what}: range({coll:?}, {lo:?}..{hi:?}) gave ids {:?}, model {:?}",
        got.iter().map(|x| x.0).take(50).collect::<Vec<_>>(),
        want.iter().map(|x| x.0).take(50).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------
// Keyed collections

type KeyBound = Bound<Vec<u8>>;
/// What the engine answered: keys and documents.
type Got = Vec<(Vec<u8>, obj_core::Value)>;
/// What the model holds, in the same order.
type Want = Vec<(Key, Arc<Vec<u8>>)>;

fn slice_bound(b: &KeyBound) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A key for messages: its first bytes in hex and its length.
fn show_key(k: &[u8]) -> String {
    let head: String = k.iter().take(12).map(|b| format!("{b:02x}")).collect();
    if k.len() > 12 {
        format!("{head}..[{} bytes]", k.len())
    } else {
        format!("{head}[{}]", k.len())
    }
}

fn show_bound(b: &KeyBound) -> String {
    match b {
        Bound::Included(k) => format!("[{}", show_key(k)),
        Bound::Excluded(k) => format!("({}", show_key(k)),
        Bound::Unbounded => "*".into(),
    }
}

/// Reports the first difference between two key-ordered answers.
fn same_pairs(ctx: &Ctx, what: impl FnOnce() -> String, got: &Got, want: &Want) {
    let differ = |(gk, gv): &(Vec<u8>, obj_core::Value), (wk, wv): &(Key, Arc<Vec<u8>>)| {
        gk[..] != wk[..] || gv[..] != wv[..]
    };
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| differ(a, b))
        .unwrap_or(got.len().min(want.len()));
    if at == got.len() && at == want.len() {
        return;
    }
    let show = |p: Option<(&[u8], usize)>| p.map(|(k, n)| (show_key(k), n));
    let (n_got, n_want) = (got.len(), want.len());
    let (got, want) = (
        got.get(at).map(|(k, v)| (&k[..], v.len())),
        want.get(at).map(|(k, v)| (&k[..], v.len())),
    );
    ctx.fail(format!(
        "{}: got {} entries, the model {}; first difference at {at}: got {:?}, model {:?} \
         (key, value length)",
        what(),
        n_got,
        n_want,
        show(got),
        show(want)
    ));
}

/// A fresh key of skewed length: mostly short keys over a tiny alphabet (so prefixes
/// collide; 0x00 and 0xFF included), some with a common text prefix, some random, and long
/// ones up to exactly `MAX_KEY_LEN` that share long runs and differ only at the end.
fn new_key(rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: [u8; 5] = [0x00, 0x01, b'a', b'b', 0xFF];
    let tiny =
        |rng: &mut Rng, n: u64| -> Vec<u8> { (0..n).map(|_| *rng.pick(&ALPHABET)).collect() };
    let r = rng.below(100);
    if r < 40 {
        let n = rng.range(1, 4);
        tiny(rng, n)
    } else if r < 70 {
        format!("user:{}", rng.below(5000)).into_bytes()
    } else if r < 85 {
        let n = rng.range(10, 200) as usize;
        rng.bytes(n)
    } else {
        let len = if rng.chance(30) {
            MAX_KEY_LEN
        } else {
            rng.range(201, MAX_KEY_LEN as u64) as usize
        };
        let n = rng.range(1, 3);
        let tail = tiny(rng, n);
        let mut k = vec![*rng.pick(&[b'p', 0xFF]); len - tail.len()];
        k.extend(tail);
        k
    }
}

/// A key for put/get/delete: usually one that exists or a neighbour of one (a proper
/// prefix, one byte longer, the last byte moved), sometimes a fresh one.
fn pick_key(rng: &mut Rng, model: &Model, coll: &str) -> Vec<u8> {
    let r = rng.below(100);
    match model.get(coll) {
        Some(c) if !c.keys.is_empty() && r < 70 => {
            let n = rng.below(c.keys.len() as u64) as usize;
            let mut key = c.keys.keys().nth(n).unwrap().to_vec();
            if r >= 55 {
                match rng.below(3) {
                    0 if key.len() > 1 => {
                        let n = rng.range(1, key.len() as u64 - 1) as usize;
                        key.truncate(n);
                    }
                    1 if key.len() < MAX_KEY_LEN => key.push(*rng.pick(&[0x00, b'a', 0xFF])),
                    _ => {
                        let up = rng.chance(50);
                        let last = key.last_mut().unwrap();
                        *last = if up {
                            last.wrapping_add(1)
                        } else {
                            last.wrapping_sub(1)
                        };
                    }
                }
            }
            key
        }
        _ => new_key(rng),
    }
}

fn random_key_bound(rng: &mut Rng, model: &Model, coll: &str) -> KeyBound {
    match rng.below(6) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Excluded(pick_key(rng, model, coll)),
        _ => Bound::Included(pick_key(rng, model, coll)),
    }
}

/// Mostly well-ordered key ranges, sometimes inverted or empty ones.
fn random_key_bounds(rng: &mut Rng, model: &Model, coll: &str) -> (KeyBound, KeyBound) {
    let mut lo = random_key_bound(rng, model, coll);
    let mut hi = random_key_bound(rng, model, coll);
    if rng.chance(85) {
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
            (&lo, &hi)
        {
            if a > b {
                std::mem::swap(&mut lo, &mut hi);
            }
        }
    }
    (lo, hi)
}

/// A prefix to scan: an existing key cut short (now and then the empty prefix, everything).
fn random_prefix(rng: &mut Rng, model: &Model, coll: &str) -> Vec<u8> {
    if rng.chance(8) {
        return Vec::new();
    }
    let mut k = pick_key(rng, model, coll);
    let n = rng.range(1, k.len() as u64) as usize;
    k.truncate(n);
    k
}

fn read_keys<R: Reader>(
    ctx: &Ctx,
    r: &R,
    coll: &str,
    lo: &KeyBound,
    hi: &KeyBound,
    reverse: bool,
) -> Got {
    let it = ctx.ok(
        r.key_range(coll, slice_bound(lo), slice_bound(hi), reverse),
        "key_range",
    );
    it.map(|x| ctx.ok(x, "key_range item")).collect()
}

fn model_keys(model: &Model, coll: &str, lo: &KeyBound, hi: &KeyBound, reverse: bool) -> Want {
    // BTreeMap::range panics on inverted or empty-excluded ranges; the engine returns
    // nothing for them.
    let empty = match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    };
    let Some(c) = model.get(coll).filter(|_| !empty) else {
        return Vec::new();
    };
    let mut out: Want = c
        .keys
        .range::<[u8], _>((slice_bound(lo), slice_bound(hi)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        out.reverse();
    }
    out
}

fn read_prefix<R: Reader>(ctx: &Ctx, r: &R, coll: &str, prefix: &[u8], reverse: bool) -> Got {
    let it = ctx.ok(r.key_prefix(coll, prefix, reverse), "key_prefix");
    it.map(|x| ctx.ok(x, "key_prefix item")).collect()
}

fn model_prefix(model: &Model, coll: &str, prefix: &[u8], reverse: bool) -> Want {
    let mut out: Want = model.get(coll).map_or(Vec::new(), |c| {
        c.keys
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    if reverse {
        out.reverse();
    }
    out
}

fn model_get_key(model: &Model, coll: &str, key: &[u8]) -> Option<Vec<u8>> {
    model
        .get(coll)
        .and_then(|c| c.keys.get(key))
        .map(|v| v.to_vec())
}

/// A whole keyed collection, both directions, and its count.
fn check_keyed_collection<R: Reader>(ctx: &Ctx, r: &R, model: &Model, coll: &str, what: &str) {
    let all = Bound::Unbounded;
    for reverse in [false, true] {
        let got = read_keys(ctx, r, coll, &all, &all, reverse);
        let want = model_keys(model, coll, &all, &all, reverse);
        same_pairs(
            ctx,
            || format!("{what}: key_range({coll:?}, everything, reverse={reverse})"),
            &got,
            &want,
        );
    }
    let count = ctx.ok(r.count(coll), "count");
    let want = model.get(coll).map_or(0, |c| c.len()) as u64;
    ensure!(
        ctx,
        count == want,
        "{what}: count({coll:?}) = {count}, model has {want}"
    );
}

/// One random read of a keyed collection: a key range or a prefix (forward or reverse), a
/// resumable scan with a limit, or a few point gets.
fn check_key_read<R: Reader>(
    ctx: &Ctx,
    rng: &mut Rng,
    r: &R,
    model: &Model,
    coll: &str,
    what: &str,
) {
    let reverse = rng.chance(50);
    match rng.below(10) {
        0..=3 => {
            let (lo, hi) = random_key_bounds(rng, model, coll);
            let got = read_keys(ctx, r, coll, &lo, &hi, reverse);
            let want = model_keys(model, coll, &lo, &hi, reverse);
            same_pairs(
                ctx,
                || {
                    format!(
                        "{what}: key_range({coll:?}, {}..{}, reverse={reverse})",
                        show_bound(&lo),
                        show_bound(&hi)
                    )
                },
                &got,
                &want,
            );
        }
        4..=6 => {
            let p = random_prefix(rng, model, coll);
            let got = read_prefix(ctx, r, coll, &p, reverse);
            let want = model_prefix(model, coll, &p, reverse);
            same_pairs(
                ctx,
                || {
                    format!(
                        "{what}: key_prefix({coll:?}, {}, reverse={reverse})",
                        show_key(&p)
                    )
                },
                &got,
                &want,
            );
        }
        7 => {
            let (lo, hi) = random_key_bounds(rng, model, coll);
            let limit = rng.below(20) as usize;
            let got: Got = ctx.ok(
                r.scan_keys(coll, slice_bound(&lo), slice_bound(&hi), reverse, limit),
                "scan_keys",
            );
            let mut want = model_keys(model, coll, &lo, &hi, reverse);
            want.truncate(limit);
            same_pairs(
                ctx,
                || {
                    format!(
                        "{what}: scan_keys({coll:?}, {}..{}, reverse={reverse}, limit {limit})",
                        show_bound(&lo),
                        show_bound(&hi)
                    )
                },
                &got,
                &want,
            );
        }
        _ => {
            for _ in 0..4 {
                let key = pick_key(rng, model, coll);
                let got = ctx
                    .ok(r.get_key(coll, &key), "get_key")
                    .map(|v| v.into_vec());
                let want = model_get_key(model, coll, &key);
                ensure!(
                    ctx,
                    got == want,
                    "{what}: get_key({coll:?}, {}) = {:?}, model {:?}",
                    show_key(&key),
                    got.as_deref().map(short),
                    want.as_deref().map(short)
                );
            }
        }
    }
}

fn check_all<R: Reader>(ctx: &Ctx, r: &R, model: &Model, what: &str) {
    let names = ctx.ok(r.collections(), "collections");
    let want: Vec<String> = model.keys().cloned().collect();
    ensure!(
        ctx,
        names == want,
        "{what}: collections() = {names:?}, model has {want:?}"
    );
    for coll in NAMES {
        check_collection(ctx, r, model, coll, what);
    }
}

struct Held {
    rx: ReadTxn,
    model: Arc<Model>,
    seq: u64,
}

fn run(cfg: &Config, seed: u64, steps: usize) {
    let mut ctx = Ctx {
        cfg: cfg.clone(),
        seed,
        step: 0,
        log: VecDeque::new(),
        keyed_writes: 0,
        refusals: 0,
    };
    // Each variant gets its own operation sequence for the same seed number.
    let mut rng = Rng::new(seed ^ support::crc32(0, cfg.name.as_bytes()) as u64);
    let store = if cfg.memory {
        Store::Memory(SharedMem::new(), SharedMem::new())
    } else {
        let dir = tempfile::tempdir().unwrap();
        Store::File(dir.path().join("model.obj"), dir)
    };
    let mut db = Some(ctx.ok(store.open(cfg, false), "open"));
    let mut committed: Arc<Model> = Arc::new(Model::new());
    let mut held: Vec<Held> = Vec::new();
    let page_size = cfg.page_size as usize;
    let (mut commits, mut rollbacks, mut reopens, mut checkpoints) = (0, 0, 0, 0);

    while ctx.step < steps {
        ctx.step += 1;
        // Alternate growing and shrinking phases so trees both split and merge.
        let shrinking = (ctx.step / 1500) % 3 == 2;
        let d = db.as_ref().unwrap();
        let r = rng.below(1000);
        if r < 760 {
            // One write transaction of random length.
            ctx.note("begin_write".into());
            let mut tx = ctx.ok(d.begin_write(), "begin_write");
            let mut pending: Model = (*committed).clone();
            let end = loop {
                ctx.step += 1;
                if let Some(end) = write_op(
                    &mut ctx,
                    &mut rng,
                    d,
                    &mut tx,
                    &mut pending,
                    &committed,
                    shrinking,
                    page_size,
                ) {
                    break end;
                }
            };
            match end {
                End::Commit => {
                    ctx.note("commit".into());
                    ctx.ok(tx.commit(), "commit");
                    committed = Arc::new(pending);
                    commits += 1;
                }
                End::Rollback => {
                    ctx.note("rollback".into());
                    tx.rollback();
                    rollbacks += 1;
                }
                End::Drop => {
                    ctx.note("drop (rollback)".into());
                    drop(tx);
                    rollbacks += 1;
                }
            }
            // Nothing of a rolled-back transaction may be visible.
            if rng.chance(10) {
                let rx = ctx.ok(d.begin_read(), "begin_read");
                let coll = pick_coll(&mut rng);
                check_range(
                    &ctx,
                    &mut rng,
                    &rx,
                    &committed,
                    coll,
                    "fresh reader after txn end",
                );
            }
        } else if r < 800 {
            let rx = ctx.ok(d.begin_read(), "begin_read");
            let coll = pick_coll(&mut rng);
            ctx.note(format!("read check {coll:?}"));
            if rng.chance(25) {
                check_collection(&ctx, &rx, &committed, coll, "fresh reader");
            } else {
                check_range(&ctx, &mut rng, &rx, &committed, coll, "fresh reader");
            }
            let names = ctx.ok(rx.collections(), "collections");
            let want: Vec<String> = committed.keys().cloned().collect();
            ensure!(
                ctx,
                names == want,
                "collections() = {names:?}, model {want:?}"
            );
        } else if r < 850 {
            ctx.note("checkpoint".into());
            let latest = ctx.ok(d.begin_read(), "begin_read").commit_seq();
            let older_reader = held.iter().any(|h| h.seq < latest);
            let info = ctx.ok(d.checkpoint(), "checkpoint");
            checkpoints += 1;
            if older_reader {
                ensure!(
                    ctx,
                    !info.wal_reset,
                    "checkpoint reset the WAL while a reader of an older commit lives: {info:?}"
                );
            } else {
                ensure!(
                    ctx,
                    info.wal_reset || info == Default::default(),
                    "checkpoint without older readers did not finish: {info:?}"
                );
                ensure!(
                    ctx,
                    d.wal_frames() == 0,
                    "WAL still holds {} frames after a complete checkpoint",
                    d.wal_frames()
                );
            }
        } else if r < 855 {
            ctx.note("integrity_check".into());
            let report = ctx.ok(d.integrity_check(), "integrity_check");
            let docs: u64 = report.collections.iter().map(|c| c.documents).sum();
            let want: usize = committed.values().map(|c| c.len()).sum();
            ensure!(
                ctx,
                docs == want as u64,
                "integrity report counts {docs} documents, model has {want}"
            );
        } else if r < 865 {
            reopens += 1;
            let how = rng.below(4);
            ctx.note(format!(
                "reopen ({})",
                [
                    "close",
                    "close_without_checkpoint",
                    "drop",
                    "read-only look first"
                ][how as usize]
            ));
            let old = db.take().unwrap();
            match how {
                0 => ctx.ok(old.close(), "close"),
                1 => ctx.ok(old.close_without_checkpoint(), "close_without_checkpoint"),
                _ => {}
            }
            drop(old);
            // Readers of a closed handle fail cleanly with Closed.
            for h in &held {
                match h.rx.get(NAMES[0], 1) {
                    Err(Error::Closed(_)) => {}
                    other => ctx.fail(format!(
                        "a reader of a closed database answered {:?} instead of Err(Closed)",
                        other.map(|v| v.map(|v| v.len()))
                    )),
                }
            }
            held.clear();
            if how == 3 {
                let ro = ctx.ok(store.open(cfg, true), "open read-only");
                let rx = ctx.ok(ro.begin_read(), "begin_read");
                check_all(&ctx, &rx, &committed, "read-only reopen");
                drop(rx);
                ctx.ok(ro.integrity_check(), "integrity_check (read-only)");
                drop(ro);
            }
            let d = ctx.ok(store.open(cfg, false), "reopen");
            ctx.ok(d.integrity_check(), "integrity_check after reopen");
            let rx = ctx.ok(d.begin_read(), "begin_read");
            check_all(&ctx, &rx, &committed, "after reopen");
            drop(rx);
            db = Some(d);
        } else if cfg.hold_readers {
            if held.len() < 4 && rng.chance(50) {
                let rx = ctx.ok(d.begin_read(), "begin_read");
                ctx.note(format!("hold reader at seq {}", rx.commit_seq()));
                let seq = rx.commit_seq();
                held.push(Held {
                    rx,
                    model: committed.clone(),
                    seq,
                });
            } else if !held.is_empty() {
                let i = rng.below(held.len() as u64) as usize;
                let coll = pick_coll(&mut rng);
                ctx.note(format!(
                    "verify held reader {i} (seq {}) on {coll:?}",
                    held[i].seq
                ));
                let h = &held[i];
                ensure!(
                    ctx,
                    h.rx.commit_seq() == h.seq,
                    "held reader's commit_seq moved"
                );
                if rng.chance(20) {
                    check_collection(&ctx, &h.rx, &h.model, coll, "held reader");
                } else {
                    check_range(&ctx, &mut rng, &h.rx, &h.model, coll, "held reader");
                    let n = ctx.ok(h.rx.count(coll), "count");
                    let want = h.model.get(coll).map_or(0, |c| c.len() as u64);
                    ensure!(
                        ctx,
                        n == want,
                        "held reader count({coll:?}) = {n}, model {want}"
                    );
                }
                // A clone sees the same snapshot.
                let c = h.rx.clone();
                if is_keyed(coll) {
                    check_key_read(&ctx, &mut rng, &c, &h.model, coll, "held reader clone");
                } else {
                    for _ in 0..4 {
                        let id = pick_id(&mut rng, &h.model, coll);
                        let got = ctx.ok(c.get(coll, id), "get").map(|v| v.into_vec());
                        let want = h
                            .model
                            .get(coll)
                            .and_then(|m| m.docs.get(&id))
                            .map(|v| v.to_vec());
                        ensure!(
                            ctx,
                            got == want,
                            "held reader clone get({coll:?}, {id}) differs"
                        );
                    }
                }
                if rng.chance(40) {
                    ctx.note(format!("drop held reader {i}"));
                    held.swap_remove(i);
                }
            }
        }
    }
    // Final: everything, then once more after a reopen.
    held.clear();
    let d = db.take().unwrap();
    let rx = ctx.ok(d.begin_read(), "begin_read");
    check_all(&ctx, &rx, &committed, "final");
    drop(rx);
    ctx.ok(d.integrity_check(), "final integrity_check");
    ctx.ok(d.close(), "close");
    drop(d);
    let d = ctx.ok(store.open(cfg, false), "final reopen");
    let rx = ctx.ok(d.begin_read(), "begin_read");
    check_all(&ctx, &rx, &committed, "final reopen");
    ctx.ok(d.integrity_check(), "final integrity_check after reopen");
    // The test must have exercised what it claims to.
    ensure!(
        ctx,
        commits > 20
            && rollbacks > 2
            && (steps < 2000
                || (reopens > 0 && checkpoints > 0 && ctx.keyed_writes > 0 && ctx.refusals > 0)),
        "too little coverage: {commits} commits, {rollbacks} rollbacks, {reopens} reopens, \
         {checkpoints} checkpoints, {} keyed writes, {} refusals",
        ctx.keyed_writes,
        ctx.refusals
    );
    eprintln!(
        "model {} seed {seed}: {steps} steps, {commits} commits, {rollbacks} rollbacks, \
         {reopens} reopens, {checkpoints} checkpoints, {} keyed writes, {} refusals, \
         {} documents at the end ({} under keys)",
        cfg.name,
        ctx.keyed_writes,
        ctx.refusals,
        committed.values().map(|c| c.len()).sum::<usize>(),
        committed.values().map(|c| c.keys.len()).sum::<usize>()
    );
}

enum End {
    Commit,
    Rollback,
    Drop,
}

/// One operation inside a write transaction; `Some` ends the transaction.
#[allow(clippy::too_many_arguments)]
fn write_op(
    ctx: &mut Ctx,
    rng: &mut Rng,
    db: &Db,
    tx: &mut WriteTxn,
    pending: &mut Model,
    committed: &Model,
    shrinking: bool,
    page_size: usize,
) -> Option<End> {
    if rng.chance(1) {
        refusal_op(ctx, rng, tx, pending);
        return None;
    }
    let coll = pick_coll(rng);
    if is_keyed(coll) {
        return keyed_write_op(
            ctx, rng, db, tx, pending, committed, shrinking, page_size, coll,
        );
    }
    let (w_insert, w_put, w_delete) = if shrinking { (8, 10, 40) } else { (26, 20, 12) };
    if rng.chance(1) {
        // Bulk work so trees get deep (growing) and merge down again (shrinking).
        let size = pending.get(coll).map_or(0, |c| c.docs.len());
        if !shrinking && size < 1500 {
            let n = rng.range(100, 600);
            ctx.note(format!("bulk insert {n} small docs into {coll:?}"));
            let c = coll_mut(pending, coll);
            for _ in 0..n {
                let len = rng.below(24) as usize;
                let v = rng.bytes(len);
                let id = ctx.ok(tx.insert(coll, &v), "bulk insert");
                ensure!(
                    ctx,
                    id == c.next_id,
                    "bulk insert gave id {id}, model {}",
                    c.next_id
                );
                c.next_id = id + 1;
                c.docs.insert(id, Arc::new(v));
            }
        } else if let Some(c) = pending.get_mut(coll).map(Arc::make_mut) {
            let ids: Vec<u64> = c.docs.keys().copied().collect();
            if !ids.is_empty() {
                let a = rng.below(ids.len() as u64) as usize;
                let b = (a + rng.range(1, 2000) as usize).min(ids.len());
                ctx.note(format!(
                    "bulk delete {} docs of {coll:?} from id {}",
                    b - a,
                    ids[a]
                ));
                for id in &ids[a..b] {
                    let removed = ctx.ok(tx.delete(coll, *id), "bulk delete");
                    ensure!(ctx, removed, "bulk delete({coll:?}, {id}) found nothing");
                    c.docs.remove(id);
                }
            }
        }
        return None;
    }
    let mut r = rng.below(100);
    if r < w_insert {
        let v = value(rng, page_size);
        ctx.note(format!("insert {coll:?} {}", short(&v)));
        let id = ctx.ok(tx.insert(coll, &v), "insert");
        let c = coll_mut(pending, coll);
        ensure!(
            ctx,
            id == c.next_id,
            "insert({coll:?}) gave id {id}, model expects {}",
            c.next_id
        );
        c.next_id = id + 1;
        c.docs.insert(id, Arc::new(v));
        return None;
    }
    r -= w_insert;
    if r < w_put {
        let id = pick_id(rng, pending, coll);
        let v = value(rng, page_size);
        ctx.note(format!("put {coll:?} {id} {}", short(&v)));
        let replaced = ctx.ok(tx.put(coll, id, &v), "put");
        let c = coll_mut(pending, coll);
        let had = c.docs.insert(id, Arc::new(v)).is_some();
        ensure!(
            ctx,
            replaced == had,
            "put({coll:?}, {id}) said replaced={replaced}, model {had}"
        );
        c.next_id = c.next_id.max(id + 1);
        return None;
    }
    r -= w_put;
    if r < w_delete {
        let id = pick_id(rng, pending, coll);
        ctx.note(format!("delete {coll:?} {id}"));
        let removed = ctx.ok(tx.delete(coll, id), "delete");
        let had = pending
            .get_mut(coll)
            .map(Arc::make_mut)
            .is_some_and(|c| c.docs.remove(&id).is_some());
        ensure!(
            ctx,
            removed == had,
            "delete({coll:?}, {id}) said {removed}, model {had}"
        );
        return None;
    }
    r -= w_delete;
    // Reads and the end of the transaction share the rest (100 - writes).
    let rest = 100 - w_insert - w_put - w_delete;
    let r = r * 100 / rest;
    if r < 35 {
        let id = pick_id(rng, pending, coll);
        ctx.note(format!("get {coll:?} {id}"));
        let got = ctx.ok(tx.get(coll, id), "get").map(|v| v.into_vec());
        let want = pending
            .get(coll)
            .and_then(|c| c.docs.get(&id))
            .map(|v| v.to_vec());
        ensure!(
            ctx,
            got == want,
            "write txn get({coll:?}, {id}) = {:?}, model {:?}",
            got.as_deref().map(short),
            want.as_deref().map(short)
        );
        if rng.chance(15) {
            // A reader beside the writer sees only committed data.
            let rx = ctx.ok(db.begin_read(), "begin_read");
            let got = ctx.ok(rx.get(coll, id), "get").map(|v| v.into_vec());
            let want = committed
                .get(coll)
                .and_then(|c| c.docs.get(&id))
                .map(|v| v.to_vec());
            ensure!(
                ctx,
                got == want,
                "reader beside an open write txn: get({coll:?}, {id}) = {:?}, committed model {:?}",
                got.as_deref().map(short),
                want.as_deref().map(short)
            );
        }
    } else if r < 45 {
        ctx.note(format!("count {coll:?}"));
        let n = ctx.ok(tx.count(coll), "count");
        let want = pending.get(coll).map_or(0, |c| c.len() as u64);
        ensure!(
            ctx,
            n == want,
            "write txn count({coll:?}) = {n}, model {want}"
        );
    } else if r < 60 {
        let (lo, hi) = random_bounds(rng, pending, coll);
        ctx.note(format!("range {coll:?} {lo:?}..{hi:?}"));
        let got = read_range(ctx, tx, coll, lo, hi);
        let want = model_range(pending, coll, lo, hi);
        ensure!(
            ctx,
            got == want,
            "write txn range({coll:?}, {lo:?}..{hi:?}): got ids {:?}, model {:?}",
            got.iter().map(|x| x.0).collect::<Vec<_>>(),
            want.iter().map(|x| x.0).collect::<Vec<_>>()
        );
    } else if r < 67 {
        let from = pick_id(rng, pending, coll);
        let limit = rng.below(20) as usize;
        ctx.note(format!("scan {coll:?} from {from} limit {limit}"));
        let got: Vec<(u64, Vec<u8>)> = ctx
            .ok(tx.scan(coll, from, limit), "scan")
            .into_iter()
            .map(|(id, v)| (id, v.into_vec()))
            .collect();
        let mut want = model_range(pending, coll, Bound::Included(from), Bound::Unbounded);
        want.truncate(limit);
        ensure!(
            ctx,
            got == want,
            "scan({coll:?}, {from}, {limit}) differs from the model"
        );
    } else if r < 70 {
        ctx.note("collections".into());
        let names = ctx.ok(tx.collections(), "collections");
        let want: Vec<String> = pending.keys().cloned().collect();
        ensure!(
            ctx,
            names == want,
            "write txn collections() = {names:?}, model {want:?}"
        );
    } else {
        return Some(end_of(r));
    }
    None
}

/// How a transaction ends, for `r` in 70..100 of the non-write share of the operations.
fn end_of(r: u64) -> End {
    if r < 92 {
        End::Commit
    } else if r < 96 {
        End::Rollback
    } else {
        End::Drop
    }
}

/// A key for the bulk puts: counters under a shared text prefix, or long keys that share
/// all but their last four bytes, so the tree grows deep on long separators too.
fn bulk_key(rng: &mut Rng, long: bool) -> Vec<u8> {
    let n = rng.below(1 << 20) as u32;
    if long {
        let mut k = vec![b'L'; MAX_KEY_LEN - 4];
        k.extend_from_slice(&n.to_be_bytes());
        k
    } else {
        format!("bulk:{n:07}").into_bytes()
    }
}

/// One operation on a keyed collection inside a write transaction; `Some` ends the
/// transaction.
#[allow(clippy::too_many_arguments)]
fn keyed_write_op(
    ctx: &mut Ctx,
    rng: &mut Rng,
    db: &Db,
    tx: &mut WriteTxn,
    pending: &mut Model,
    committed: &Model,
    shrinking: bool,
    page_size: usize,
    coll: &'static str,
) -> Option<End> {
    let (w_put, w_delete) = if shrinking { (18, 40) } else { (46, 12) };
    if rng.chance(1) {
        let size = pending.get(coll).map_or(0, |c| c.len());
        if !shrinking && size < 1500 {
            let n = rng.range(100, 600);
            let long = rng.chance(30);
            ctx.note(format!(
                "bulk put_key {n} small docs into {coll:?} ({} keys)",
                if long { "long" } else { "short" }
            ));
            let c = coll_mut(pending, coll);
            for _ in 0..n {
                let key = bulk_key(rng, long);
                let len = rng.below(24) as usize;
                let v = rng.bytes(len);
                let replaced = ctx.ok(tx.put_key(coll, &key, &v), "bulk put_key");
                let had = c.keys.insert(key.into(), Arc::new(v)).is_some();
                ensure!(
                    ctx,
                    replaced == had,
                    "bulk put_key({coll:?}) said replaced={replaced}, model {had}"
                );
            }
        } else if let Some(c) = pending.get_mut(coll).map(Arc::make_mut) {
            let keys: Vec<Key> = c.keys.keys().cloned().collect();
            if !keys.is_empty() {
                let a = rng.below(keys.len() as u64) as usize;
                let b = (a + rng.range(1, 2000) as usize).min(keys.len());
                ctx.note(format!(
                    "bulk delete_key {} docs of {coll:?} from key {}",
                    b - a,
                    show_key(&keys[a])
                ));
                for key in &keys[a..b] {
                    let removed = ctx.ok(tx.delete_key(coll, key), "bulk delete_key");
                    ensure!(
                        ctx,
                        removed,
                        "bulk delete_key({coll:?}, {}) found nothing",
                        show_key(key)
                    );
                    c.keys.remove(key);
                }
            }
        }
        return None;
    }
    let mut r = rng.below(100);
    if r < w_put {
        let key = pick_key(rng, pending, coll);
        let v = value(rng, page_size);
        ctx.note(format!("put_key {coll:?} {} {}", show_key(&key), short(&v)));
        ctx.keyed_writes += 1;
        let replaced = ctx.ok(tx.put_key(coll, &key, &v), "put_key");
        let c = coll_mut(pending, coll);
        let had = c.keys.insert(key.into(), Arc::new(v)).is_some();
        ensure!(
            ctx,
            replaced == had,
            "put_key({coll:?}) said replaced={replaced}, model {had}"
        );
        return None;
    }
    r -= w_put;
    if r < w_delete {
        let key = pick_key(rng, pending, coll);
        ctx.note(format!("delete_key {coll:?} {}", show_key(&key)));
        ctx.keyed_writes += 1;
        let removed = ctx.ok(tx.delete_key(coll, &key), "delete_key");
        let had = pending
            .get_mut(coll)
            .map(Arc::make_mut)
            .is_some_and(|c| c.keys.remove(&key[..]).is_some());
        ensure!(
            ctx,
            removed == had,
            "delete_key({coll:?}, {}) said {removed}, model {had}",
            show_key(&key)
        );
        return None;
    }
    r -= w_delete;
    let rest = 100 - w_put - w_delete;
    let r = r * 100 / rest;
    if r < 30 {
        let key = pick_key(rng, pending, coll);
        ctx.note(format!("get_key {coll:?} {}", show_key(&key)));
        let got = ctx
            .ok(tx.get_key(coll, &key), "get_key")
            .map(|v| v.into_vec());
        let want = model_get_key(pending, coll, &key);
        ensure!(
            ctx,
            got == want,
            "write txn get_key({coll:?}, {}) = {:?}, model {:?}",
            show_key(&key),
            got.as_deref().map(short),
            want.as_deref().map(short)
        );
        if rng.chance(15) {
            // A reader beside the writer sees only committed data.
            let rx = ctx.ok(db.begin_read(), "begin_read");
            let got = ctx
                .ok(rx.get_key(coll, &key), "get_key")
                .map(|v| v.into_vec());
            let want = model_get_key(committed, coll, &key);
            ensure!(
                ctx,
                got == want,
                "reader beside an open write txn: get_key({coll:?}, {}) = {:?}, committed \
                 model {:?}",
                show_key(&key),
                got.as_deref().map(short),
                want.as_deref().map(short)
            );
        }
    } else if r < 38 {
        ctx.note(format!("count {coll:?}"));
        let n = ctx.ok(tx.count(coll), "count");
        let want = pending.get(coll).map_or(0, |c| c.len() as u64);
        ensure!(
            ctx,
            n == want,
            "write txn count({coll:?}) = {n}, model {want}"
        );
    } else if r < 64 {
        ctx.note(format!("key read {coll:?}"));
        check_key_read(ctx, rng, tx, pending, coll, "write txn");
    } else if r < 67 {
        ctx.note(format!("create_collection {coll:?} keyed"));
        let created = ctx.ok(
            tx.create_collection(coll, CollectionKind::Keyed),
            "create_collection",
        );
        let had = pending.contains_key(coll);
        coll_mut(pending, coll);
        ensure!(
            ctx,
            created != had,
            "create_collection({coll:?}) said created={created}, model had it: {had}"
        );
    } else if r < 70 {
        ctx.note("collections".into());
        let names = ctx.ok(tx.collections(), "collections");
        let want: Vec<String> = pending.keys().cloned().collect();
        ensure!(
            ctx,
            names == want,
            "write txn collections() = {names:?}, model {want:?}"
        );
    } else {
        return Some(end_of(r));
    }
    None
}

/// An operation the engine must refuse with `InvalidArgument` and no change: an id
/// operation on an existing keyed collection, a keyed one on an existing id collection, or
/// a key of 0 or `MAX_KEY_LEN + 1` bytes.
fn refusal_op(ctx: &mut Ctx, rng: &mut Rng, tx: &mut WriteTxn, pending: &Model) {
    let coll = pick_coll(rng);
    let exists = pending.contains_key(coll);
    let bad_key = if rng.chance(50) {
        Vec::new()
    } else {
        vec![b'x'; MAX_KEY_LEN + 1]
    };
    let key = pick_key(rng, pending, coll);
    let id = pick_id(rng, pending, coll).max(1);
    let v = value(rng, 4096);
    let all = Bound::<&[u8]>::Unbounded;
    let (what, needle, result): (String, &str, obj_core::Result<()>) =
        if is_keyed(coll) && (!exists || rng.chance(40)) {
            let len = bad_key.len();
            match rng.below(3) {
                0 => (
                    format!("put_key {coll:?} with a {len}-byte key"),
                    "key",
                    tx.put_key(coll, &bad_key, &v).map(drop),
                ),
                1 => (
                    format!("get_key {coll:?} with a {len}-byte key"),
                    "key",
                    tx.get_key(coll, &bad_key).map(drop),
                ),
                _ => (
                    format!("delete_key {coll:?} with a {len}-byte key"),
                    "key",
                    tx.delete_key(coll, &bad_key).map(drop),
                ),
            }
        } else if is_keyed(coll) {
            let needle = "keyed collection";
            match rng.below(5) {
                0 => (
                    format!("insert into keyed {coll:?}"),
                    needle,
                    tx.insert(coll, &v).map(drop),
                ),
                1 => (
                    format!("put {id} into keyed {coll:?}"),
                    needle,
                    tx.put(coll, id, &v).map(drop),
                ),
                2 => (
                    format!("delete {id} from keyed {coll:?}"),
                    needle,
                    tx.delete(coll, id).map(drop),
                ),
                3 => (
                    format!("get {id} from keyed {coll:?}"),
                    needle,
                    tx.get(coll, id).map(drop),
                ),
                _ => (
                    format!("range of keyed {coll:?}"),
                    needle,
                    tx.range(coll, ..).map(drop),
                ),
            }
        } else if exists {
            let needle = "id collection";
            match rng.below(6) {
                0 => (
                    format!("put_key into id collection {coll:?}"),
                    needle,
                    tx.put_key(coll, &key, &v).map(drop),
                ),
                1 => (
                    format!("delete_key from id collection {coll:?}"),
                    needle,
                    tx.delete_key(coll, &key).map(drop),
                ),
                2 => (
                    format!("get_key from id collection {coll:?}"),
                    needle,
                    tx.get_key(coll, &key).map(drop),
                ),
                3 => (
                    format!("key_range of id collection {coll:?}"),
                    needle,
                    tx.key_range(coll, all, all, rng.chance(50)).map(drop),
                ),
                4 => (
                    format!("key_prefix of id collection {coll:?}"),
                    needle,
                    tx.key_prefix(coll, &key, rng.chance(50)).map(drop),
                ),
                _ => (
                    format!("create_collection {coll:?} keyed over an id collection"),
                    needle,
                    tx.create_collection(coll, CollectionKind::Keyed).map(drop),
                ),
            }
        } else {
            // A missing id collection: by-key reads find nothing and create nothing.
            ctx.note(format!("get_key / delete_key on missing {coll:?}"));
            let got = ctx.ok(tx.get_key(coll, &key), "get_key");
            ensure!(
                ctx,
                got.is_none(),
                "get_key on missing {coll:?} found a document"
            );
            let removed = ctx.ok(tx.delete_key(coll, &key), "delete_key");
            ensure!(
                ctx,
                !removed,
                "delete_key on missing {coll:?} removed a document"
            );
            let kind = ctx.ok(tx.kind(coll), "kind");
            ensure!(
                ctx,
                kind.is_none(),
                "{coll:?} exists after by-key reads: {kind:?}"
            );
            return;
        };
    ctx.note(format!("refused: {what}"));
    ctx.refusals += 1;
    match result {
        Err(Error::InvalidArgument(m)) if m.contains(needle) => {}
        other => ctx.fail(format!(
            "{what}: expected InvalidArgument naming {needle:?}, got {other:?}"
        )),
    }
    // Nothing changed: the kind, the count and (cheaply) a point read.
    let kind = ctx.ok(tx.kind(coll), "kind");
    ensure!(
        ctx,
        kind == model_kind(pending, coll),
        "after the refused {what}: kind({coll:?}) = {kind:?}, model {:?}",
        model_kind(pending, coll)
    );
    let n = ctx.ok(tx.count(coll), "count");
    let want = pending.get(coll).map_or(0, |c| c.len() as u64);
    ensure!(
        ctx,
        n == want,
        "after the refused {what}: count({coll:?}) = {n}, model {want}"
    );
    if is_keyed(coll) {
        let got = ctx
            .ok(tx.get_key(coll, &key), "get_key")
            .map(|v| v.into_vec());
        ensure!(
            ctx,
            got == model_get_key(pending, coll, &key),
            "after the refused {what}: get_key({coll:?}, {}) differs from the model",
            show_key(&key)
        );
    }
}

fn run_config(cfg: Config) {
    let steps = support::env_usize("OBJ_MODEL_STEPS", DEFAULT_STEPS);
    let seeds = seeds_from_env("OBJ_MODEL_SEEDS", &[1, 2, 3]);
    let start = std::time::Instant::now();
    for seed in seeds {
        run(&cfg, seed, steps);
    }
    eprintln!("variant {} took {:.1?}", cfg.name, start.elapsed());
}

#[test]
fn default_options() {
    run_config(Config::base("default_options"));
}

#[test]
fn durability_none() {
    run_config(Config {
        durability: Durability::None,
        ..Config::base("durability_none")
    });
}

#[test]
fn frequent_auto_checkpoints_small_cache() {
    run_config(Config {
        durability: Durability::Eventual,
        checkpoint_frames: 20,
        // Smaller than the database: pages are evicted and re-read all the time.
        cache_size: 0,
        ..Config::base("frequent_auto_checkpoints_small_cache")
    });
}

#[test]
fn readers_held_across_commits_and_checkpoints() {
    run_config(Config {
        durability: Durability::None,
        checkpoint_frames: 20,
        hold_readers: true,
        ..Config::base("readers_held_across_commits_and_checkpoints")
    });
}

#[test]
fn in_memory_backends_large_pages() {
    run_config(Config {
        durability: Durability::None,
        page_size: 16384,
        checkpoint_frames: 50,
        hold_readers: true,
        memory: true,
        ..Config::base("in_memory_backends_large_pages")
    });
}

/// `insert` right below the top of the id space hands out `u64::MAX`; the insert after it
/// has no id left and must fail cleanly (no panic, nothing overwritten).
#[test]
fn id_space_top_insert_after_max_minus_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("ids.obj"), Options::default()).unwrap();
    let mut tx = db.begin_write().unwrap();
    assert!(!tx.put("c", u64::MAX - 1, b"second to last").unwrap());
    assert_eq!(tx.insert("c", b"last").unwrap(), u64::MAX);
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    let r = tx.insert("c", b"one too many");
    assert!(r.is_err(), "insert past u64::MAX returned {r:?}");
    assert_eq!(&*tx.get("c", u64::MAX).unwrap().unwrap(), b"last");
    assert_eq!(tx.count("c").unwrap(), 2);
    tx.commit().unwrap();
    let rx = db.begin_read().unwrap();
    assert_eq!(&*rx.get("c", u64::MAX).unwrap().unwrap(), b"last");
    assert_eq!(rx.count("c").unwrap(), 2);
    drop(rx);
    db.integrity_check().unwrap();
}

/// After `put(u64::MAX)` there is no id left for `insert`: it must fail without replacing
/// the document stored at `u64::MAX`.
#[test]
fn id_space_top_put_max_then_insert() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("ids.obj"), Options::default()).unwrap();
    let mut tx = db.begin_write().unwrap();
    assert!(!tx.put("c", u64::MAX, b"top").unwrap());
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    let r = tx.insert("c", b"no id left");
    assert!(r.is_err(), "insert with no id left returned {r:?}");
    assert!(
        !matches!(r, Err(Error::Corruption(_))),
        "a full id space is not corruption: {r:?}"
    );
    // The failed insert left the transaction's view untouched.
    assert_eq!(&*tx.get("c", u64::MAX).unwrap().unwrap(), b"top");
    assert_eq!(tx.count("c").unwrap(), 1);
    tx.commit().unwrap();
    assert_eq!(
        &*db.begin_read()
            .unwrap()
            .get("c", u64::MAX)
            .unwrap()
            .unwrap(),
        b"top"
    );
    db.integrity_check().unwrap();
}
