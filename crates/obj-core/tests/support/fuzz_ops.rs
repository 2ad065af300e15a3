//! The `ops_model` fuzz target's logic, shared by `fuzz/fuzz_targets/ops_model.rs` and
//! `tests/fuzz_replay.rs` (which replays its corpus and regressions under `cargo test`).
//!
//! The input drives a sequence of operations on a database over simulated disks
//! (`fault::SimDisk`, wrapped in `fault::Faulty` with a `FaultPlan` chosen by the input) and
//! checks every answer against a model (`BTreeMap`s of documents and next ids per
//! collection).
//!
//! Input layout (reads past the end give zeros):
//!
//! | byte | meaning |
//! | --- | --- |
//! | 0 | bits 0-1 durability (0 Immediate, 1 Eventual, 2 None, 3 Immediate); bit 2 lz4 compression; bit 3 small page cache; bit 4 8 KiB pages; bit 5 the run ends in a power loss (else the process exits); bit 6 an exit calls `close()` first (else it leaves without a checkpoint) |
//! | 1 | automatic checkpoint after `2 + b % 40` WAL frames (0: the default 1000) |
//! | 2 | fault kind `b % 8`: 0-2 none, 3 read, 4 write, 5 sync, 6 set_len, 7 any; bit 7 sticky (every later operation fails too) |
//! | 3-4 | the fault hits the `1 + u16 % 400`th matching operation (main file and WAL together) |
//! | 5 | seed of the power-loss simulation |
//! | 6.. | operations: an opcode byte (see [`op_of`]), a collection byte, then arguments |
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
use obj_core::{Db, Durability, Error, Options, ReadTxn, Reader, WriteTxn};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One collection of the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coll {
    pub docs: BTreeMap<u64, Vec<u8>>,
    /// What `insert` hands out next (0 once every id was used).
    pub next_id: u64,
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
/// Most alternatives the model tracks for one transaction after failed writes.
const MAX_ALTERNATIVES: usize = 8;
/// Most operations per input (keeps every input fast).
const MAX_OPS: usize = 400;

/// Set (to anything) while fuzzing for new bugs: steers around engine bugs already reported
/// (each kept in `fuzz/regressions/ops_model`) instead of finding them again and again:
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
    /// `InvalidArgument`: a refused argument (id 0, no ids left).
    Invalid,
}

/// A write: what the model does with it.
#[derive(Clone, Debug)]
enum Write {
    Insert(String, Vec<u8>),
    Put(String, u64, Vec<u8>),
    Delete(String, u64),
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
        let answer = match self {
            Write::Insert(c, v) => {
                let coll = s.entry(c.clone()).or_insert(Coll {
                    docs: BTreeMap::new(),
                    next_id: 1,
                });
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
                if *id == 0 {
                    return (Answer::Invalid, s);
                }
                let coll = s.entry(c.clone()).or_insert(Coll {
                    docs: BTreeMap::new(),
                    next_id: 1,
                });
                let replaced = coll.docs.insert(*id, v.clone()).is_some();
                coll.next_id = bump(coll.next_id, *id);
                Answer::Bool(replaced)
            }
            Write::Delete(c, id) => {
                if *id == 0 {
                    return (Answer::Invalid, s);
                }
                match s.get_mut(c) {
                    Some(coll) => Answer::Bool(coll.docs.remove(id).is_some()),
                    None => Answer::Bool(false),
                }
            }
        };
        (answer, s)
    }

    fn run(&self, tx: &mut WriteTxn) -> Result<Answer, Error> {
        let r = match self {
            Write::Insert(c, v) => tx.insert(c, v).map(Answer::Id),
            Write::Put(c, id, v) => tx.put(c, *id, v).map(Answer::Bool),
            Write::Delete(c, id) => tx.delete(c, *id).map(Answer::Bool),
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
        let mut docs = BTreeMap::new();
        let mut last = 0;
        for item in r.iter(&name).map_err(Err)? {
            let (id, v) = item.map_err(Err)?;
            if id <= last {
                return Err(Ok(format!("iter({name:?}) gave id {id} after {last}")));
            }
            last = id;
            docs.insert(id, v.into_vec());
        }
        if rec.count != docs.len() as u64 {
            return Err(Ok(format!(
                "count of {name:?} is {} but iter gave {} documents",
                rec.count,
                docs.len()
            )));
        }
        state.insert(
            name,
            Coll {
                docs,
                next_id: rec.next_id,
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
            let ids: Vec<String> = c
                .docs
                .iter()
                .map(|(id, v)| {
                    let mut seq = [0u8; 8];
                    let n = v.len().min(8);
                    seq[..n].copy_from_slice(&v[..n]);
                    format!("{id}:{}#{}", v.len(), u64::from_le_bytes(seq))
                })
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

    fn get(&mut self, c: &str, id: u64) {
        if let Some(t) = self.txn.as_mut() {
            let got = t.tx.get(c, id).map(|v| v.map(|v| v.into_vec()));
            let alts = std::mem::take(&mut t.alts);
            let kept = self.narrow(
                &format!("get({c}, {id}) in a transaction"),
                got,
                alts,
                |s| s.get(c).and_then(|coll| coll.docs.get(&id)).cloned(),
            );
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
        let got = db
            .begin_read()
            .and_then(|rx| rx.get(c, id))
            .map(|v| v.map(|v| v.into_vec()));
        let alts = std::mem::take(&mut self.committed);
        let kept = self.narrow(&format!("get({c}, {id})"), got, alts.clone(), |s| {
            s.get(c).and_then(|coll| coll.docs.get(&id)).cloned()
        });
        self.committed = kept.unwrap_or(alts);
    }

    /// Keeps the alternatives that agree with an answer; None (after reporting) if none does.
    fn narrow(
        &mut self,
        what: &str,
        got: Result<Option<Vec<u8>>, Error>,
        alts: Vec<State>,
        model: impl Fn(&State) -> Option<Vec<u8>>,
    ) -> Option<Vec<State>> {
        match got {
            Ok(v) => {
                let kept: Vec<State> = alts.iter().filter(|s| model(s) == v).cloned().collect();
                if kept.is_empty() {
                    let want: Vec<Option<usize>> =
                        alts.iter().map(|s| model(s).map(|v| v.len())).collect();
                    self.problem(format!(
                        "{what} gave {:?}, the model has {want:?} (byte lengths)",
                        v.map(|v| v.len())
                    ));
                    return None;
                }
                self.log(format!("{what} -> {:?}", v.map(|v| v.len())));
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
    let opts = Options {
        durability,
        compression: cfg & 4 != 0,
        cache_size: if cfg & 8 != 0 { 0 } else { 8 << 20 },
        page_size: if cfg & 16 != 0 { 8192 } else { 4096 },
        checkpoint_frames: frames,
        busy_timeout: Duration::ZERO,
        ..Options::default()
    };
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
    while !inp.is_empty() && run.out.ops < MAX_OPS && run.out.problems.is_empty() && !run.unopenable
    {
        run.out.ops += 1;
        let op = op_of(inp.u8());
        let c = COLLECTIONS[inp.u8() as usize % COLLECTIONS.len()];
        match op {
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
                    run.get(c, id);
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
    let opts = Options {
        busy_timeout: Duration::ZERO,
        ..run.opts.clone()
    };
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
