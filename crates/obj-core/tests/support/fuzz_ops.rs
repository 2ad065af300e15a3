//! The `ops_model` fuzz target's logic, shared by `fuzz/fuzz_targets/ops_model.rs` and
//! `tests/fuzz_replay.rs` (which replays its corpus and regressions under `cargo test`).
//!
//! The input drives a sequence of operations on a database over simulated disks
//! (`fault::SimDisk`, wrapped in `fault::Faulty` with a `FaultPlan` chosen by the input) and
//! checks every answer against a model (`BTreeMap`s of documents and next ids per
//! collection, and of documents by key for keyed collections).
//!
//! Input layout (reads past the end give zeros):
//!
//! | byte | meaning |
//! | --- | --- |
//! | 0 | bits 0-1 durability (0 Immediate, 1 Eventual, 2 None, 3 Immediate); bit 2 lz4 compression; bit 3 small page cache; bit 4 8 KiB pages; bit 5 the run ends in a power loss (else the process exits); bit 6 an exit calls `close()` first (else it leaves without a checkpoint); bit 7 keyed collections too (see below) |
//! | 1 | automatic checkpoint after `2 + b % 40` WAL frames (0: the default 1000) |
//! | 2 | fault kind `b % 8`: 0-2 none, 3 read, 4 write, 5 sync, 6 set_len, 7 any; bit 7 sticky (every later operation fails too) |
//! | 3-4 | the fault hits the `1 + u16 % 400`th matching operation (main file and WAL together) |
//! | 5 | seed of the power-loss simulation |
//! | 6.. | operations: an opcode byte (see [`op_of`]), a collection byte, then arguments |
//!
//! Without bit 7 the collection byte picks one of the id collections `a`, `b`, `c` (`% 3`).
//! With bit 7 (inputs written before keyed collections existed never set it, so they decode
//! as they always did) it picks one of `a`, `b`, `c` and the keyed collections `k`, `l`
//! (`% 5`), and the operations on `k` and `l` are their keyed counterparts: insert and put
//! become `put_key` (put sometimes `create_collection`), delete `delete_key`, get one of
//! `get_key`, `key_range`, `key_prefix` (forward or reverse) and `count`. A collection byte
//! of 250 or more uses the other kind's operation instead (an id operation on `k`, a keyed
//! one on `a`), which the engine must refuse with `InvalidArgument` once the collection
//! exists, or which creates the collection of that kind when it does not.
//!
//! Promises checked:
//! - nothing panics, with or without faults;
//! - before the first injected fault every operation succeeds and answers like the model;
//!   afterwards operations may fail (`Io`, `Closed`, `Busy` only), and whatever they do
//!   answer is still right;
//! - a write inside a transaction that failed either happened entirely or not at all (the
//!   model keeps both possibilities and narrows them down with later answers);
//! - every reopen — after `close()`, after a simulated process exit (`SimDisk::contents`),
//!   or after a power loss (`SimDisk::crash`) — recovers a committed state that includes
//!   every acknowledged commit (every durable one after a power loss), and
//!   `integrity_check` passes on it;
//! - a held read snapshot never changes.
//!
//! With `OBJ_FUZZ_SKIP_KNOWN_BUGS` set, the engine bugs already reported are tolerated (see
//! [`skip_known_bugs`]) so that a fuzzing run finds new ones.

#![allow(dead_code)] // Each user needs only part of this module.

use obj_core::backend::MemoryBackend;
use obj_core::fault::{CrashRng, FaultPlan, Faulty, OpKind, SimDisk};
use obj_core::{
    CollectionKind, Db, Durability, Error, Options, ReadTxn, Reader, WriteTxn, MAX_KEY_LEN,
};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

/// One collection of the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coll {
    pub docs: BTreeMap<u64, Vec<u8>>,
    /// What `insert` hands out next (0 once every id was used).
    pub next_id: u64,
    /// A keyed collection: its documents are in `keys` (and `docs` is empty).
    pub keyed: bool,
    pub keys: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Coll {
    fn new(keyed: bool) -> Coll {
        Coll {
            next_id: 1,
            keyed,
            ..Coll::default()
        }
    }
}

/// Every collection of a database, existing ones only.
pub type State = BTreeMap<String, Coll>;

/// What happened to one input.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ops: usize,
    pub commits_acked: usize,
    pub reopens: usize,
    pub power_losses: usize,
    pub faults: u64,
    /// Broken promises; the target fails on any.
    pub problems: Vec<String>,
    /// The last operations, for failure messages.
    pub log: Vec<String>,
}

const COLLECTIONS: [&str; 3] = ["a", "b", "c"];
/// The collections of an input with keyed collections (configuration bit 7).
const WITH_KEYED: [&str; 5] = ["a", "b", "c", "k", "l"];
/// A collection byte from which on the other kind's operation is used.
const WRONG_KIND: u8 = 250;
/// Most alternatives the model tracks for one transaction after failed writes.
const MAX_ALTERNATIVES: usize = 8;
/// Most operations per input (keeps every input fast).
const MAX_OPS: usize = 400;

/// Set (to anything) while fuzzing for new bugs: steers around engine bugs reported earlier
/// (each kept in `fuzz/regressions/ops_model`) instead of finding them again and again. All
/// of them are fixed (the replays in `fuzz_replay.rs` run without it, 9,000 mutations per
/// corpus file found none on 2026-12-01); kept for bisecting old builds:
/// - `integrity_check` reports an injected read failure as damage (`Integrity` naming the
///   I/O error, plus pages that "belong to nothing") instead of returning the I/O error;
/// - an open that follows a failed sync (of a new file, or of a WAL reset) trusts bytes that
///   never reached the disk (the main header, the WAL header) and commits on top of them; a
///   power loss that tears them then makes every open fail with `Corruption`;
/// - recovery leaves the torn tail of the WAL in place, and the next commit's frames go to the
///   same offsets with the same salts and chain seed: a second power loss can complete the
///   commit the first one tore, which then comes back (and the later commit is gone).
pub fn skip_known_bugs() -> bool {
    std::env::var_os("OBJ_FUZZ_SKIP_KNOWN_BUGS").is_some()
}

/// Reads the input front to back; past the end it yields zeros.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// The answer of one operation, as the engine gave it or as the model predicts it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Id(u64),
    Bool(bool),
    Value(Option<Vec<u8>>),
    Count(u64),
    /// The documents of a key range, in the order read.
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    /// `InvalidArgument`: a refused argument (id 0, no ids left, a key of 0 or more than
    /// `MAX_KEY_LEN` bytes, a collection of the other kind).
    Invalid,
}

impl Answer {
    fn describe(&self) -> String {
        match self {
            Answer::Value(v) => format!("Value({:?} bytes)", v.as_ref().map(Vec::len)),
            Answer::Pairs(p) => format!(
                "Pairs[{}]",
                p.iter()
                    .map(|(k, v)| format!("{}={}", show_key(k), v.len()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            other => format!("{other:?}"),
        }
    }
}

/// A key for messages: its first bytes in hex and its length.
fn show_key(k: &[u8]) -> String {
    let head: String = k.iter().take(6).map(|b| format!("{b:02x}")).collect();
    if k.len() > 6 {
        format!("{head}..[{}]", k.len())
    } else {
        format!("{head}[{}]", k.len())
    }
}

fn valid_key(k: &[u8]) -> bool {
    (1..=MAX_KEY_LEN).contains(&k.len())
}

/// A write: what the model does with it.
#[derive(Clone, Debug)]
enum Write {
    Insert(String, Vec<u8>),
    Put(String, u64, Vec<u8>),
    Delete(String, u64),
    PutKey(String, Vec<u8>, Vec<u8>),
    DeleteKey(String, Vec<u8>),
    CreateKeyed(String),
}

fn bump(next: u64, id: u64) -> u64 {
    match (next, id.checked_add(1)) {
        (0, _) | (_, None) => 0,
        (n, Some(after)) => n.max(after),
    }
}

impl Write {
    /// The answer the model expects, and the state after it.
    fn apply(&self, s: &State) -> (Answer, State) {
        let mut s = s.clone();
        // Each kind's operations on a collection of the other kind are refused.
        let keyed_op = matches!(
            self,
            Write::PutKey(..) | Write::DeleteKey(..) | Write::CreateKeyed(_)
        );
        let name = match self {
            Write::Insert(c, _)
            | Write::Put(c, ..)
            | Write::Delete(c, _)
            | Write::PutKey(c, ..)
            | Write::DeleteKey(c, _)
            | Write::CreateKeyed(c) => c,
        };
        let other_kind = s.get(name).is_some_and(|c| c.keyed != keyed_op);
        let answer = match self {
            Write::PutKey(_, k, _) | Write::DeleteKey(_, k) if !valid_key(k) => {
                return (Answer::Invalid, s)
            }
            Write::Put(_, 0, _) | Write::Delete(_, 0) => return (Answer::Invalid, s),
            _ if other_kind => return (Answer::Invalid, s),
            Write::PutKey(c, k, v) => {
                let coll = s.entry(c.clone()).or_insert(Coll::new(true));
                Answer::Bool(coll.keys.insert(k.clone(), v.clone()).is_some())
            }
            Write::DeleteKey(c, k) => match s.get_mut(c) {
                Some(coll) => Answer::Bool(coll.keys.remove(k).is_some()),
                None => Answer::Bool(false),
            },
            Write::CreateKeyed(c) => {
                let created = !s.contains_key(c);
                s.entry(c.clone()).or_insert(Coll::new(true));
                Answer::Bool(created)
            }
            Write::Insert(c, v) => {
                let coll = s.entry(c.clone()).or_insert(Coll::new(false));
                if coll.next_id == 0 {
                    // A brand-new collection always has ids; an exhausted one refuses.
                    return (Answer::Invalid, s);
                }
                let id = coll.next_id;
                coll.docs.insert(id, v.clone());
                coll.next_id = bump(coll.next_id, id);
                Answer::Id(id)
            }
            Write::Put(c, id, v) => {
                let coll = s.entry(c.clone()).or_insert(Coll::new(false));
                let replaced = coll.docs.insert(*id, v.clone()).is_some();
                coll.next_id = bump(coll.next_id, *id);
                Answer::Bool(replaced)
            }
            Write::Delete(c, id) => match s.get_mut(c) {
                Some(coll) => Answer::Bool(coll.docs.remove(id).is_some()),
                None => Answer::Bool(false),
            },
        };
        (answer, s)
    }

    fn run(&self, tx: &mut WriteTxn) -> Result<Answer, Error> {
        let r = match self {
            Write::Insert(c, v) => tx.insert(c, v).map(Answer::Id),
            Write::Put(c, id, v) => tx.put(c, *id, v).map(Answer::Bool),
            Write::Delete(c, id) => tx.delete(c, *id).map(Answer::Bool),
            Write::PutKey(c, k, v) => tx.put_key(c, k, v).map(Answer::Bool),
            Write::DeleteKey(c, k) => tx.delete_key(c, k).map(Answer::Bool),
            Write::CreateKeyed(c) => tx
                .create_collection(c, CollectionKind::Keyed)
                .map(Answer::Bool),
        };
        match r {
            Err(Error::InvalidArgument(_)) => Ok(Answer::Invalid),
            other => other,
        }
    }

    fn describe(&self) -> String {
        match self {
            Write::Insert(c, v) => format!("insert({c}, {} bytes)", v.len()),
            Write::Put(c, id, v) => format!("put({c}, {id}, {} bytes)", v.len()),
            Write::Delete(c, id) => format!("delete({c}, {id})"),
            Write::PutKey(c, k, v) => format!("put_key({c}, {}, {} bytes)", show_key(k), v.len()),
            Write::DeleteKey(c, k) => format!("delete_key({c}, {})", show_key(k)),
            Write::CreateKeyed(c) => format!("create_collection({c}, keyed)"),
        }
    }
}

/// A read: what the model answers.
#[derive(Clone, Debug)]
enum Read {
    Get(String, u64),
    GetKey(String, Vec<u8>),
    KeyRange(String, Bound<Vec<u8>>, Bound<Vec<u8>>, bool),
    KeyPrefix(String, Vec<u8>, bool),
    Count(String),
}

fn slice_bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Read {
    fn expect(&self, s: &State) -> Answer {
        let keyed_op = !matches!(self, Read::Get(..) | Read::Count(_));
        let (Read::Get(c, _)
        | Read::GetKey(c, _)
        | Read::KeyRange(c, ..)
        | Read::KeyPrefix(c, ..)
        | Read::Count(c)) = self;
        let coll = s.get(c);
        if let Read::GetKey(_, k) = self {
            if !valid_key(k) {
                return Answer::Invalid;
            }
        }
        if !matches!(self, Read::Count(_)) && coll.is_some_and(|c| c.keyed != keyed_op) {
            return Answer::Invalid;
        }
        let keys = coll.map(|c| &c.keys);
        let pairs = |it: &mut dyn Iterator<Item = (&Vec<u8>, &Vec<u8>)>| {
            Answer::Pairs(it.map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        match self {
            Read::Get(_, id) => Answer::Value(coll.and_then(|c| c.docs.get(id)).cloned()),
            Read::GetKey(_, k) => Answer::Value(keys.and_then(|m| m.get(k)).cloned()),
            Read::Count(_) => {
                Answer::Count(coll.map_or(0, |c| (c.docs.len() + c.keys.len()) as u64))
            }
            Read::KeyRange(_, lo, hi, reverse) => {
                let empty = match (lo, hi) {
                    (Bound::Included(a), Bound::Included(b)) => a > b,
                    (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
                    | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
                    _ => false,
                };
                match keys {
                    Some(m) if !empty => {
                        let mut it = m.range::<[u8], _>((slice_bound(lo), slice_bound(hi)));
                        if *reverse {
                            pairs(&mut it.rev())
                        } else {
                            pairs(&mut it)
                        }
                    }
                    _ => Answer::Pairs(Vec::new()),
                }
            }
            Read::KeyPrefix(_, p, reverse) => {
                let mut all: Vec<(Vec<u8>, Vec<u8>)> = keys.map_or(Vec::new(), |m| {
                    m.iter()
                        .filter(|(k, _)| k.starts_with(p))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                });
                if *reverse {
                    all.reverse();
                }
                Answer::Pairs(all)
            }
        }
    }

    fn run<R: Reader>(&self, r: &R) -> Result<Answer, Error> {
        let collect = |it: obj_core::KeyIter<'_, R>| -> Result<Answer, Error> {
            let mut out = Vec::new();
            for item in it {
                let (k, v) = item?;
                out.push((k, v.into_vec()));
            }
            Ok(Answer::Pairs(out))
        };
        let got = match self {
            Read::Get(c, id) => r
                .get(c, *id)
                .map(|v| Answer::Value(v.map(|v| v.into_vec()))),
            Read::GetKey(c, k) => r
                .get_key(c, k)
                .map(|v| Answer::Value(v.map(|v| v.into_vec()))),
            Read::Count(c) => r.count(c).map(Answer::Count),
            Read::KeyRange(c, lo, hi, reverse) => r
                .key_range(c, slice_bound(lo), slice_bound(hi), *reverse)
                .and_then(collect),
            Read::KeyPrefix(c, p, reverse) => r.key_prefix(c, p, *reverse).and_then(collect),
        };
        match got {
            Err(Error::InvalidArgument(_)) => Ok(Answer::Invalid),
            other => other,
        }
    }

    fn describe(&self) -> String {
        let b = |b: &Bound<Vec<u8>>| match b {
            Bound::Included(k) => format!("[{}", show_key(k)),
            Bound::Excluded(k) => format!("({}", show_key(k)),
            Bound::Unbounded => "*".into(),
        };
        match self {
            Read::Get(c, id) => format!("get({c}, {id})"),
            Read::GetKey(c, k) => format!("get_key({c}, {})", show_key(k)),
            Read::Count(c) => format!("count({c})"),
            Read::KeyRange(c, lo, hi, rev) => {
                format!("key_range({c}, {}..{}, reverse={rev})", b(lo), b(hi))
            }
            Read::KeyPrefix(c, p, rev) => {
                format!("key_prefix({c}, {}, reverse={rev})", show_key(p))
            }
        }
    }
}

/// Reads a whole snapshot: every collection with its next id and documents. Contradicting
/// answers (ids out of order, count != documents) are reported as `Err(Ok(message))`.
fn dump<R: Reader>(r: &R) -> Result<State, Result<String, Error>> {
    let mut state = State::new();
    for name in r.collections().map_err(Err)? {
        let rec = r
            .record(&name)
            .map_err(Err)?
            .ok_or_else(|| Ok(format!("collections() lists {name:?} but it has no record")))?;
        let keyed = match r.kind(&name).map_err(Err)? {
            Some(CollectionKind::Keyed) => true,
            Some(_) => false,
            None => {
                return Err(Ok(format!(
                    "collections() lists {name:?} but it has no kind"
                )))
            }
        };
        let mut docs = BTreeMap::new();
        let mut keys = BTreeMap::new();
        if keyed {
            // Forward in strictly increasing key order; backward the exact reverse.
            let all = Bound::Unbounded;
            let mut forward: Vec<Vec<u8>> = Vec::new();
            for item in r.key_range(&name, all, all, false).map_err(Err)? {
                let (k, v) = item.map_err(Err)?;
                if let Some(last) = forward.last() {
                    if k <= *last {
                        return Err(Ok(format!(
                            "key_range({name:?}) gave key {} after {}",
                            show_key(&k),
                            show_key(last)
                        )));
                    }
                }
                forward.push(k.clone());
                keys.insert(k, v.into_vec());
            }
            let mut backward = Vec::new();
            for item in r.key_range(&name, all, all, true).map_err(Err)? {
                backward.push(item.map_err(Err)?.0);
            }
            backward.reverse();
            if backward != forward {
                return Err(Ok(format!(
                    "key_range({name:?}) backward gave {} keys, forward {}, in another order",
                    backward.len(),
                    forward.len()
                )));
            }
        } else {
            let mut last = 0;
            for item in r.iter(&name).map_err(Err)? {
                let (id, v) = item.map_err(Err)?;
                if id <= last {
                    return Err(Ok(format!("iter({name:?}) gave id {id} after {last}")));
                }
                last = id;
                docs.insert(id, v.into_vec());
            }
        }
        let n = docs.len() + keys.len();
        if rec.count != n as u64 {
            return Err(Ok(format!(
                "count of {name:?} is {} but {} documents were read",
                rec.count, n
            )));
        }
        state.insert(
            name,
            Coll {
                docs,
                next_id: rec.next_id,
                keyed,
                keys,
            },
        );
    }
    Ok(state)
}

/// A short description of a state for messages.
pub fn describe(s: &State) -> String {
    let parts: Vec<String> = s
        .iter()
        .map(|(n, c)| {
            // Length and the value's sequence number (its first bytes), which names the write.
            let seq = |v: &[u8]| {
                let mut seq = [0u8; 8];
                let n = v.len().min(8);
                seq[..n].copy_from_slice(&v[..n]);
                format!("{}#{}", v.len(), u64::from_le_bytes(seq))
            };
            if c.keyed {
                let keys: Vec<String> = c
                    .keys
                    .iter()
                    .map(|(k, v)| format!("{}:{}", show_key(k), seq(v)))
                    .collect();
                return format!("{n}[keyed]{{{}}}", keys.join(" "));
            }
            let ids: Vec<String> = c
                .docs
                .iter()
                .map(|(id, v)| format!("{id}:{}", seq(v)))
                .collect();
            format!("{n}[next {}]{{{}}}", c.next_id, ids.join(" "))
        })
        .collect();
    parts.join(" ")
}

/// Where the given state differs from the nearest of `candidates`.
fn explain(got: &State, candidates: &[State]) -> String {
    let mut out = format!("got {}", describe(got));
    for (i, c) in candidates.iter().enumerate().rev().take(3) {
        out.push_str(&format!("; candidate {i}: {}", describe(c)));
    }
    out
}

struct Txn {
    tx: WriteTxn,
    /// The states the transaction may have reached (more than one after a failed write).
    alts: Vec<State>,
    failed_writes: usize,
}

struct Run {
    main: SimDisk,
    wal: SimDisk,
    plan: Option<Arc<FaultPlan>>,
    opts: Options,
    rng: CrashRng,
    db: Option<Db>,
    txn: Option<Txn>,
    /// Held snapshots and the states they may show.
    readers: Vec<(ReadTxn, Vec<State>)>,
    /// The states the open handle's latest commit may be.
    committed: Vec<State>,
    /// Every state the files may hold, oldest first; a reopen must find one of
    /// `history[acked_from..]` (after a process exit) or `history[durable_from..]` (after a
    /// power loss).
    history: Vec<State>,
    acked_from: usize,
    durable_from: usize,
    /// Set while no handle is open: where the next successful open must land.
    open_from: Option<usize>,
    ever_opened: bool,
    /// The next open follows a power loss.
    after_power_loss: bool,
    /// A known engine bug left a database that cannot be opened: the run stops.
    unopenable: bool,
    fault_kind: Option<OpKind>,
    /// States a power loss dropped for good (the resurrection bug may bring them back).
    lost: Vec<State>,
    value_seq: u64,
    out: Outcome,
}

impl Run {
    /// The torn-WAL-header bug (see [`skip_known_bugs`]): a power loss after a failed sync
    /// leaves a database that no longer opens.
    fn known_torn_wal_header(&mut self, e: &Error) -> bool {
        // (A file whose creation never completed may be unreadable: that is no bug.)
        let hit = matches!(e, Error::Corruption(_))
            && self.ever_opened
            && self.out.power_losses > 0
            && self.faulted()
            && matches!(self.fault_kind, Some(OpKind::Sync | OpKind::Any));
        if hit && !skip_known_bugs() {
            self.problem(format!(
                "after a failed sync and a power loss the database no longer opens: {e:?}"
            ));
        }
        hit && skip_known_bugs()
    }

    fn faulted(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| p.failures() > 0)
    }

    fn log(&mut self, s: String) {
        // Repeats (a handle refusing writes) collapse into one line.
        if let Some(last) = self.out.log.last_mut() {
            let body = last.split_once(": ").map_or("", |x| x.1);
            let body = body.rsplit_once(" [x").map_or(body, |x| x.0);
            if body == s {
                let n = last
                    .rsplit_once(" [x")
                    .and_then(|x| x.1.trim_end_matches(']').parse::<u64>().ok())
                    .unwrap_or(1);
                let head = last.split_once(": ").map_or("", |x| x.0).to_string();
                *last = format!("{head}: {s} [x{}]", n + 1);
                return;
            }
        }
        if self.out.log.len() >= 80 {
            self.out.log.remove(0);
        }
        let io = self
            .plan
            .as_ref()
            .map(|p| format!(" io {}", p.seen()))
            .unwrap_or_default();
        self.out.log.push(format!("op {}{io}: {s}", self.out.ops));
    }

    fn problem(&mut self, s: String) {
        let s = format!(
            "op {} ({}fault{}): {s}",
            self.out.ops,
            if self.faulted() { "after a " } else { "no " },
            self.plan
                .as_ref()
                .map(|p| format!(" plan seen {} failed {}", p.seen(), p.failures()))
                .unwrap_or_default()
        );
        if self.out.problems.len() < 20 {
            self.out.problems.push(s);
        }
    }

    /// An engine error: acceptable only after a fault, and only of the kinds a failed I/O
    /// operation may give.
    fn check_error(&mut self, what: &str, e: &Error) {
        let io_kind = matches!(e, Error::Io(_) | Error::Closed(_) | Error::Busy(_));
        if !self.faulted() {
            self.problem(format!("{what} failed without any fault: {e:?}"));
        } else if !io_kind {
            self.problem(format!(
                "{what} failed with {e:?}, an error kind an I/O failure must not give"
            ));
        }
    }

    fn backends(
        &self,
    ) -> (
        Box<dyn obj_core::backend::StorageBackend>,
        Box<dyn obj_core::backend::StorageBackend>,
    ) {
        match &self.plan {
            Some(plan) => (
                Box::new(Faulty::new(self.main.clone(), plan.clone())),
                Box::new(Faulty::new(self.wal.clone(), plan.clone())),
            ),
            None => (Box::new(self.main.clone()), Box::new(self.wal.clone())),
        }
    }

    /// Opens a handle if none is open; checks what it recovered.
    fn ensure_open(&mut self) -> bool {
        if self.db.is_some() {
            return true;
        }
        let (main, wal) = self.backends();
        let db = match Db::open_with_backends(main, wal, self.opts.clone()) {
            Ok(db) => db,
            Err(e) => {
                self.log(format!("open failed: {e}"));
                if self.known_torn_wal_header(&e) {
                    self.unopenable = true;
                } else if self.ever_opened || !matches!(e, Error::Corruption(_)) {
                    self.check_error("open", &e);
                }
                return false;
            }
        };
        let from = self.open_from.take().unwrap_or(self.acked_from);
        let got = Self::read_all(&db);
        let state = match got {
            Ok(s) => s,
            Err(Ok(msg)) => {
                self.problem(format!("after open: {msg}"));
                self.open_from = Some(from);
                return false;
            }
            Err(Err(e)) => {
                // A file whose creation never completed may be unreadable.
                if self.ever_opened || !matches!(e, Error::Corruption(_)) {
                    self.check_error("reading after open", &e);
                }
                self.open_from = Some(from);
                let _ = db.close_without_checkpoint();
                return false;
            }
        };
        let found = (from..self.history.len()).find(|&j| self.history[j] == state);
        let j = match found {
            Some(j) => j,
            None if skip_known_bugs() && self.lost.contains(&state) => {
                self.log("a commit lost in an earlier power loss came back (known bug)".into());
                self.history.push(state.clone());
                self.history.len() - 1
            }
            None => {
                let msg = format!(
                    "reopen recovered a state that is not one of the {} allowed ({})",
                    self.history.len().saturating_sub(from),
                    explain(&state, &self.history[from.min(self.history.len())..])
                );
                self.problem(msg);
                // Go on from what is there.
                self.history.push(state.clone());
                self.history.len() - 1
            }
        };
        self.log(format!(
            "opened: state {j} of {} ({})",
            self.history.len(),
            describe(&state)
        ));
        if std::mem::take(&mut self.after_power_loss) {
            // What a power loss left is on the disk for good.
            self.durable_from = j;
            self.lost.extend(self.history.drain(j + 1..));
        }
        self.history.truncate(j + 1);
        self.acked_from = j;
        self.committed = vec![state];
        self.ever_opened = true;
        self.out.reopens += 1;
        match db.integrity_check() {
            Ok(_) => {}
            Err(Error::Integrity(list))
                if self.faulted() && list.iter().any(|p| p.contains("I/O error")) =>
            {
                let msg = format!(
                    "integrity_check after open reports a failed read as damage: {}",
                    list.join("; ")
                );
                if skip_known_bugs() {
                    self.log(msg);
                } else {
                    self.problem(msg);
                }
            }
            Err(e @ Error::Integrity(_)) => {
                self.problem(format!("integrity_check after open: {e}"))
            }
            Err(e) => self.check_error("integrity_check after open", &e),
        }
        self.db = Some(db);
        true
    }

    fn read_all(db: &Db) -> Result<State, Result<String, Error>> {
        let rx = db.begin_read().map_err(Err)?;
        dump(&rx)
    }

    /// The open write transaction, beginning one if needed.
    fn txn(&mut self) -> bool {
        if self.txn.is_some() {
            return true;
        }
        if !self.ensure_open() {
            return false;
        }
        let Some(db) = &self.db else { return false };
        match db.begin_write() {
            Ok(tx) => {
                self.txn = Some(Txn {
                    tx,
                    alts: self.committed.clone(),
                    failed_writes: 0,
                });
                true
            }
            Err(e) => {
                self.log(format!("begin_write failed: {e}"));
                self.check_error("begin_write", &e);
                false
            }
        }
    }

    fn write(&mut self, w: Write, inp: &mut Input) {
        if !self.txn() {
            return;
        }
        let Some(t) = self.txn.as_mut() else { return };
        let got = w.run(&mut t.tx);
        let what = w.describe();
        match got {
            Ok(answer) => {
                let mut next = Vec::new();
                let mut expected = Vec::new();
                for s in &t.alts {
                    let (a, s2) = w.apply(s);
                    if a == answer {
                        if !next.contains(&s2) {
                            next.push(s2);
                        }
                    } else {
                        expected.push(a);
                    }
                }
                if next.is_empty() {
                    let msg = format!("{what} answered {answer:?}, the model expects {expected:?}");
                    self.problem(msg);
                    self.abandon_txn();
                    return;
                }
                t.alts = next;
                self.log(format!("{what} -> {answer:?}"));
            }
            Err(e) => {
                self.log(format!("{what} failed: {e}"));
                self.check_error(&what, &e);
                let Some(t) = self.txn.as_mut() else { return };
                t.failed_writes += 1;
                // Either the write happened or it did not; the caller chooses to go on with
                // the transaction or to roll it back.
                let mut alts = t.alts.clone();
                for s in &t.alts {
                    let (_, s2) = w.apply(s);
                    if !alts.contains(&s2) {
                        alts.push(s2);
                    }
                }
                if alts.len() > MAX_ALTERNATIVES || inp.u8() & 1 == 0 {
                    self.log("rollback after the failed write".into());
                    self.abandon_txn();
                } else {
                    t.alts = alts;
                }
            }
        }
    }

    fn abandon_txn(&mut self) {
        if let Some(t) = self.txn.take() {
            t.tx.rollback();
        }
    }

    fn commit(&mut self) {
        let Some(t) = self.txn.take() else { return };
        let alts = t.alts;
        match t.tx.commit() {
            Ok(()) => {
                self.log(format!("commit ok ({} alternatives)", alts.len()));
                let start = self.history.len();
                self.history.extend(alts.iter().cloned());
                self.acked_from = start;
                if self.opts.durability == Durability::Immediate {
                    self.durable_from = start;
                }
                self.committed = alts;
                self.out.commits_acked += 1;
            }
            Err(e) => {
                self.log(format!("commit failed: {e}"));
                self.check_error("commit", &e);
                // The commit may still be in the log: a reopen may find it.
                self.history.extend(alts);
            }
        }
    }

    /// A read, in the open transaction if there is one, else in a fresh snapshot.
    fn read(&mut self, q: Read) {
        let what = q.describe();
        if let Some(t) = self.txn.as_mut() {
            let got = q.run(&t.tx);
            let alts = std::mem::take(&mut t.alts);
            let kept = self.narrow(&format!("{what} in a transaction"), got, alts, |s| {
                q.expect(s)
            });
            match kept {
                Some(k) => {
                    if let Some(t) = self.txn.as_mut() {
                        t.alts = k;
                    }
                }
                None => self.abandon_txn(),
            }
            return;
        }
        if !self.ensure_open() {
            return;
        }
        let Some(db) = &self.db else { return };
        let got = db.begin_read().and_then(|rx| q.run(&rx));
        let alts = std::mem::take(&mut self.committed);
        let kept = self.narrow(&what, got, alts.clone(), |s| q.expect(s));
        self.committed = kept.unwrap_or(alts);
    }

    /// Keeps the alternatives that agree with an answer; None (after reporting) if none does.
    fn narrow(
        &mut self,
        what: &str,
        got: Result<Answer, Error>,
        alts: Vec<State>,
        model: impl Fn(&State) -> Answer,
    ) -> Option<Vec<State>> {
        match got {
            Ok(v) => {
                let kept: Vec<State> = alts.iter().filter(|s| model(s) == v).cloned().collect();
                if kept.is_empty() {
                    let want: Vec<String> = alts.iter().map(|s| model(s).describe()).collect();
                    self.problem(format!(
                        "{what} gave {}, the model has {want:?}",
                        v.describe()
                    ));
                    return None;
                }
                self.log(format!("{what} -> {}", v.describe()));
                Some(kept)
            }
            Err(e) => {
                self.log(format!("{what} failed: {e}"));
                self.check_error(what, &e);
                Some(alts)
            }
        }
    }

    /// Reads everything the open handle shows and checks it against the model.
    fn check_all(&mut self) {
        if self.txn.is_some() {
            let Some(t) = self.txn.as_mut() else { return };
            let got = dump(&t.tx);
            match got {
                Ok(s) => {
                    if !t.alts.contains(&s) {
                        let msg = format!(
                            "the transaction's own view differs from the model: {}",
                            explain(&s, &t.alts)
                        );
                        self.problem(msg);
                        self.abandon_txn();
                    } else {
                        t.alts = vec![s];
                    }
                }
                Err(Ok(msg)) => self.problem(format!("in a transaction: {msg}")),
                Err(Err(e)) => self.check_error("reading in a transaction", &e),
            }
            return;
        }
        if !self.ensure_open() {
            return;
        }
        let Some(db) = &self.db else { return };
        match Self::read_all(db) {
            Ok(s) => {
                if !self.committed.contains(&s) {
                    let msg = format!(
                        "a new snapshot differs from the last commit: {}",
                        explain(&s, &self.committed)
                    );
                    self.problem(msg);
                } else {
                    self.committed = vec![s];
                }
            }
            Err(Ok(msg)) => self.problem(msg),
            Err(Err(e)) => self.check_error("reading a snapshot", &e),
        }
    }

    fn reader(&mut self, inp: &mut Input) {
        if !self.readers.is_empty() && (self.readers.len() >= 2 || inp.u8() & 1 == 0) {
            let i = inp.u8() as usize % self.readers.len();
            let (rx, alts) = self.readers.remove(i);
            match dump(&rx) {
                Ok(s) if alts.contains(&s) => self.log(format!("held reader {i} unchanged")),
                Ok(s) => {
                    let msg = format!("a held snapshot changed: {}", explain(&s, &alts));
                    self.problem(msg);
                }
                Err(Ok(msg)) => self.problem(format!("held snapshot: {msg}")),
                Err(Err(e)) => self.check_error("reading a held snapshot", &e),
            }
            return;
        }
        if !self.ensure_open() {
            return;
        }
        let Some(db) = &self.db else { return };
        match db.begin_read() {
            Ok(rx) => {
                self.log("begin_read (held)".into());
                self.readers.push((rx, self.committed.clone()));
            }
            Err(e) => self.check_error("begin_read", &e),
        }
    }

    fn checkpoint(&mut self) {
        if !self.ensure_open() {
            return;
        }
        let Some(db) = &self.db else { return };
        let busy = self.txn.is_some();
        match db.checkpoint() {
            Ok(info) if busy => {
                let msg = format!("checkpoint ran ({info:?}) while a write transaction was open");
                self.problem(msg);
            }
            Ok(info) => {
                self.log(format!("checkpoint {info:?}"));
                if self.opts.durability != Durability::None {
                    self.durable_from = self.acked_from;
                }
            }
            Err(Error::Busy(_)) if busy => self.log("checkpoint busy".into()),
            Err(e) => {
                self.log(format!("checkpoint failed: {e}"));
                self.check_error("checkpoint", &e);
            }
        }
    }

    fn compact(&mut self) {
        if !self.ensure_open() {
            return;
        }
        let Some(db) = &self.db else { return };
        let busy = self.txn.is_some();
        match db.compact() {
            Ok(info) if busy => {
                let msg = format!("compact ran ({info:?}) while a write transaction was open");
                self.problem(msg);
            }
            Ok(info) => {
                self.log(format!("compact {info:?}"));
                // Its commit and checkpoint: everything acknowledged is now durable.
                if self.opts.durability != Durability::None {
                    self.durable_from = self.acked_from;
                }
            }
            Err(Error::Busy(_)) if busy => self.log("compact busy".into()),
            Err(e) => {
                self.log(format!("compact failed: {e}"));
                self.check_error("compact", &e);
            }
        }
    }

    /// Ends the handle: `close()` (checkpoints) or a process exit (nothing more is written).
    fn shut(&mut self, clean: bool) {
        self.readers.clear();
        self.abandon_txn();
        if let Some(db) = self.db.take() {
            if clean {
                if let Err(e) = db.close() {
                    self.check_error("close", &e);
                }
            } else {
                let _ = db.close_without_checkpoint();
            }
        }
        if self.open_from.is_none() {
            self.open_from = Some(self.acked_from);
        }
    }

    fn power_loss(&mut self) {
        self.shut(false);
        self.log(format!(
            "before the power loss: main {} bytes, wal {} bytes, pending {:?}",
            self.main.contents().len(),
            self.wal.contents().len(),
            self.wal.describe_pending()
        ));
        let main = self.main.crash(&mut self.rng);
        let wal = self.wal.crash(&mut self.rng);
        self.main = SimDisk::with_contents(main);
        self.wal = SimDisk::with_contents(wal);
        self.acked_from = self.durable_from;
        self.open_from = Some(self.durable_from);
        self.after_power_loss = true;
        self.out.power_losses += 1;
        self.log(format!(
            "power loss (main {} bytes, wal {} bytes survive)",
            self.main.contents().len(),
            self.wal.contents().len()
        ));
    }

    fn value(&mut self, inp: &mut Input) -> Vec<u8> {
        let b = inp.u8();
        let len = if b >= 232 {
            2000 + (inp.u16() as usize % 14_000)
        } else {
            b as usize % 120
        };
        self.value_seq += 1;
        let seq = self.value_seq;
        let mut v = Vec::with_capacity(len);
        let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let random = b & 1 == 1;
        for i in 0..len {
            v.push(if random {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            } else {
                (seq as u8).wrapping_add((i / 64) as u8)
            });
        }
        let n = len.min(8);
        v[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
        v
    }

    fn id(&self, inp: &mut Input, c: &str) -> u64 {
        let b = inp.u8();
        let alts = match &self.txn {
            Some(t) => &t.alts,
            None => &self.committed,
        };
        let coll = alts.first().and_then(|s| s.get(c));
        match b % 16 {
            0 => 0,
            1 => u64::MAX,
            2..=4 => coll.map_or(1, |c| c.next_id.wrapping_add(u64::from(b % 3))),
            5..=7 => 1 + u64::from(b / 16),
            _ => coll
                .and_then(|c| c.docs.keys().nth(b as usize % c.docs.len().max(1)).copied())
                .unwrap_or(1),
        }
    }
}

impl Run {
    /// A key of `c` for a keyed operation: one that exists or a neighbour of one, a short
    /// one over a tiny alphabet (0x00 and 0xFF included, so prefixes collide), a long one
    /// up to exactly `MAX_KEY_LEN` (long runs shared, the last byte differs), now and then
    /// one the engine must refuse (empty, or one byte over the limit).
    fn key(&self, inp: &mut Input, c: &str) -> Vec<u8> {
        const ALPHABET: [u8; 5] = [0x00, 0x01, b'a', b'b', 0xFF];
        let b = inp.u8();
        let alts = match &self.txn {
            Some(t) => &t.alts,
            None => &self.committed,
        };
        let keys = alts.first().and_then(|s| s.get(c)).map(|c| &c.keys);
        let existing = |n: usize| keys.and_then(|k| k.keys().nth(n % k.len().max(1)).cloned());
        let short = |inp: &mut Input, n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| ALPHABET[inp.u8() as usize % ALPHABET.len()])
                .collect()
        };
        match b % 16 {
            0 if b < 128 => Vec::new(),
            0 => vec![b'K'; MAX_KEY_LEN + 1],
            1 | 2 => {
                // 1: exactly MAX_KEY_LEN; 2: 200 bytes up to it.
                let len = if b % 16 == 1 {
                    MAX_KEY_LEN
                } else {
                    200 + inp.u16() as usize % (MAX_KEY_LEN - 199)
                };
                let mut k = vec![if b & 0x10 != 0 { 0xFF } else { b'L' }; len - 1];
                k.push(inp.u8());
                k
            }
            3..=7 => short(inp, 1 + (b as usize / 16) % 4),
            8 | 9 => match existing(b as usize / 16) {
                // A neighbour: one byte longer, or one shorter.
                Some(mut k) if b % 16 == 8 && k.len() < MAX_KEY_LEN => {
                    k.push(ALPHABET[(b as usize / 16) % ALPHABET.len()]);
                    k
                }
                Some(mut k) if k.len() > 1 => {
                    k.pop();
                    k
                }
                _ => short(inp, 2),
            },
            _ => existing(b as usize / 16).unwrap_or_else(|| short(inp, 1)),
        }
    }

    fn key_bound(&self, inp: &mut Input, c: &str) -> Bound<Vec<u8>> {
        match inp.u8() % 3 {
            0 => Bound::Unbounded,
            1 => Bound::Included(self.key(inp, c)),
            _ => Bound::Excluded(self.key(inp, c)),
        }
    }

    /// A read of a keyed collection, decoded from the input.
    fn key_read(&self, inp: &mut Input, c: &str) -> Read {
        let b = inp.u8();
        let reverse = b & 0x80 != 0;
        match b % 8 {
            0..=3 => Read::GetKey(c.into(), self.key(inp, c)),
            4 | 5 => {
                let lo = self.key_bound(inp, c);
                let hi = self.key_bound(inp, c);
                Read::KeyRange(c.into(), lo, hi, reverse)
            }
            6 => {
                let mut p = self.key(inp, c);
                let n = inp.u8() as usize % (p.len() + 1);
                p.truncate(n);
                Read::KeyPrefix(c.into(), p, reverse)
            }
            _ => Read::Count(c.into()),
        }
    }
}

/// The operations, by opcode byte `% 32`.
#[derive(Clone, Copy, Debug)]
enum Op {
    Insert,
    Put,
    Delete,
    Get,
    Commit,
    Rollback,
    Checkpoint,
    Reader,
    CheckAll,
    Reopen,
    PowerLoss,
    Compact,
}

fn op_of(b: u8) -> Op {
    match b % 32 {
        0..=8 => Op::Insert,
        9..=12 => Op::Put,
        13..=16 => Op::Delete,
        17 | 18 => Op::Get,
        19..=22 => Op::Commit,
        23 => Op::Rollback,
        24 | 25 => Op::Checkpoint,
        26 => Op::Reader,
        27 | 31 => Op::CheckAll,
        28 => Op::Reopen,
        29 => Op::PowerLoss,
        _ => Op::Compact,
    }
}

/// Runs one input. Never panics by itself; engine panics propagate.
pub fn ops_model(data: &[u8]) -> Outcome {
    let mut inp = Input { data, pos: 0 };
    let cfg = inp.u8();
    let durability = match cfg & 3 {
        1 => Durability::Eventual,
        2 => Durability::None,
        _ => Durability::Immediate,
    };
    let frames = match inp.u8() {
        0 => 1000,
        b => 2 + u64::from(b % 40),
    };
    let opts = Options::default()
        .durability(durability)
        .compression(cfg & 4 != 0)
        .cache_size(if cfg & 8 != 0 { 0 } else { 8 << 20 })
        .page_size(if cfg & 16 != 0 { 8192 } else { 4096 })
        .checkpoint_frames(frames)
        .busy_timeout(Duration::ZERO);
    let fault = inp.u8();
    let nth = 1 + u64::from(inp.u16() % 400);
    let kind = match fault % 8 {
        3 => Some(OpKind::Read),
        4 => Some(OpKind::Write),
        5 => Some(OpKind::Sync),
        6 => Some(OpKind::SetLen),
        7 => Some(OpKind::Any),
        _ => None,
    };
    let plan = kind.map(|k| FaultPlan::new(k, nth, fault & 0x80 != 0));
    let rng = CrashRng::new(u64::from(inp.u8()));
    let mut run = Run {
        main: SimDisk::new(),
        wal: SimDisk::new(),
        plan,
        opts,
        rng,
        db: None,
        txn: None,
        readers: Vec::new(),
        committed: vec![State::new()],
        history: vec![State::new()],
        acked_from: 0,
        durable_from: 0,
        open_from: Some(0),
        ever_opened: false,
        after_power_loss: false,
        unopenable: false,
        fault_kind: kind,
        lost: Vec::new(),
        value_seq: 0,
        out: Outcome::default(),
    };
    run.ensure_open();
    let with_keyed = cfg & 0x80 != 0;
    while !inp.is_empty() && run.out.ops < MAX_OPS && run.out.problems.is_empty() && !run.unopenable
    {
        run.out.ops += 1;
        let op = op_of(inp.u8());
        let cb = inp.u8();
        let c = if with_keyed {
            WITH_KEYED[cb as usize % WITH_KEYED.len()]
        } else {
            COLLECTIONS[cb as usize % COLLECTIONS.len()]
        };
        // The keyed operations: on `k` and `l`, or on the others with a wrong-kind byte.
        let keyed = with_keyed && (matches!(c, "k" | "l") != (cb >= WRONG_KIND));
        match op {
            Op::Insert | Op::Put if keyed => {
                if matches!(op, Op::Put) && inp.u8() & 7 == 0 {
                    run.write(Write::CreateKeyed(c.into()), &mut inp);
                } else {
                    let k = run.key(&mut inp, c);
                    let v = run.value(&mut inp);
                    run.write(Write::PutKey(c.into(), k, v), &mut inp);
                }
            }
            Op::Delete if keyed => {
                let k = run.key(&mut inp, c);
                run.write(Write::DeleteKey(c.into(), k), &mut inp);
            }
            Op::Get if keyed => {
                let q = run.key_read(&mut inp, c);
                run.read(q);
            }
            Op::Insert => {
                let v = run.value(&mut inp);
                run.write(Write::Insert(c.into(), v), &mut inp);
            }
            Op::Put => {
                let id = run.id(&mut inp, c);
                let v = run.value(&mut inp);
                run.write(Write::Put(c.into(), id, v), &mut inp);
            }
            Op::Delete => {
                let id = run.id(&mut inp, c);
                run.write(Write::Delete(c.into(), id), &mut inp);
            }
            Op::Get => {
                let id = run.id(&mut inp, c);
                if id != 0 {
                    run.read(Read::Get(c.into(), id));
                }
            }
            Op::Commit => run.commit(),
            Op::Rollback => {
                if run.txn.is_some() {
                    run.log("rollback".into());
                }
                run.abandon_txn();
            }
            Op::Checkpoint => run.checkpoint(),
            Op::Reader => run.reader(&mut inp),
            Op::CheckAll => run.check_all(),
            Op::Reopen => {
                let clean = inp.u8() & 1 == 0;
                run.log(format!("reopen ({})", if clean { "close" } else { "exit" }));
                run.shut(clean);
                run.ensure_open();
            }
            Op::PowerLoss => {
                if run.opts.durability == Durability::None {
                    // No promise survives a power loss without syncs: a process exit instead.
                    run.shut(false);
                } else {
                    run.power_loss();
                }
                run.ensure_open();
            }
            Op::Compact => run.compact(),
        }
    }
    if run.out.problems.is_empty() && !run.unopenable {
        finish(&mut run, cfg);
    }
    run.out.faults = run.plan.as_ref().map_or(0, |p| p.failures());
    run.out
}

/// The end of the run: the process exits (or the power goes), and a fault-free reopen must
/// find an allowed state, pass `integrity_check` and take a new commit.
fn finish(run: &mut Run, cfg: u8) {
    let power = cfg & 32 != 0 && run.opts.durability != Durability::None;
    if power {
        run.power_loss();
    } else {
        run.shut(cfg & 64 != 0);
    }
    let from = run.open_from.unwrap_or(run.acked_from);
    run.log(format!(
        "final reopen ({}), allowed states {}..{}",
        if power { "power loss" } else { "exit" },
        from,
        run.history.len()
    ));
    let opts = run.opts.clone().busy_timeout(Duration::ZERO);
    let db = match Db::open_with_backends(
        Box::new(MemoryBackend::with_contents(run.main.contents())),
        Box::new(MemoryBackend::with_contents(run.wal.contents())),
        opts,
    ) {
        Ok(db) => db,
        Err(e) => {
            if run.known_torn_wal_header(&e) {
                return;
            }
            // A file whose creation never completed may be unreadable.
            if run.ever_opened || !matches!(e, Error::Corruption(_)) {
                run.problem(format!("the final fault-free reopen failed: {e:?}"));
            }
            return;
        }
    };
    let state = match Run::read_all(&db) {
        Ok(s) => s,
        // A file whose creation never completed may be unreadable (as in `ensure_open`).
        Err(Err(Error::Corruption(_))) if !run.ever_opened => return,
        Err(e) => return run.problem(format!("reading after the final reopen: {e:?}")),
    };
    let resurrected = skip_known_bugs() && run.out.power_losses > 0 && run.lost.contains(&state);
    if !resurrected && !run.history[from.min(run.history.len())..].contains(&state) {
        let msg = format!(
            "the final reopen recovered a state that is not one of the {} allowed ({})",
            run.history.len().saturating_sub(from),
            explain(&state, &run.history[from.min(run.history.len())..])
        );
        run.problem(msg);
    }
    if let Err(e) = db.integrity_check() {
        run.problem(format!("integrity_check after the final reopen: {e}"));
    }
    let after = db.begin_write().and_then(|mut tx| {
        tx.insert("after", b"the end")?;
        tx.commit()
    });
    if let Err(e) = after {
        run.problem(format!("the recovered database refuses a commit: {e:?}"));
    }
}
