//! Power loss with the change log on (#19): a commit and its record are one atomic unit.
//!
//! Each case opens a database on simulated disks (as `powerloss.rs` does: a fault plan
//! stops every I/O from a random operation on, then a crash image keeps the synced bytes
//! plus a random, possibly torn and reordered part of the unsynced writes), turns the change
//! log on and runs a random workload of multi-write transactions over two id collections
//! and a keyed one. Commit `n` of the history also writes the counter document `ctr/1 = n`,
//! so the recovered data names the last commit that survived, and `n` is the `seq` its
//! record must carry. After the crash the reopened database must:
//!
//! - hold exactly the state after some commit `k` (no half commit), with `k` at least every
//!   commit known durable (acknowledged under `Durability::Immediate`, or followed by a
//!   completed checkpoint);
//! - keep a log with `next_seq == k + 1`, gap-free from `oldest` to `k` (`oldest` exactly as
//!   retention says), each record `s` holding the entries commit `s` made (collection, key,
//!   operation, old and new images as the settings keep them), in order, with its context;
//! - with images "both" and a full log: replaying every record (one transaction each) onto
//!   an empty in-memory database gives the same documents (payload, kind, expiry);
//! - pass `integrity_check`, and take a new commit whose record is `k + 1`.
//!
//! A case crashes one to three times: each later round reopens the crash image on new
//! faulty disks (recovery itself may be cut short) and continues the history from `k`.
//!
//! Variants: images "both"; "both" with `max_records` 1..=4; "keys"; "both" under
//! `Durability::Eventual`. Then one fault at every I/O operation without a crash (the handle
//! goes on after the error), and SIGKILL of a child process committing with the log on.
//!
//! Knobs: OBJ_POWERLOSS_CASES (cases per variant, default 300), OBJ_FAULT_STEPS (range of
//! the fault's position, default 400; single-fault test: operations, default 160),
//! OBJ_POWERLOSS_SEED (run one case of each power-loss variant with that seed, printing
//! details), OBJ_CRASH_ROUNDS / OBJ_CRASH_SECS (SIGKILL rounds and time budget, default
//! 60 rounds / 4 s).

use obj_core::backend::MemoryBackend;
use obj_core::changes::{ChangeReads, Context, Images, LogSettings, Op, Record, Retention};
use obj_core::fault::{CrashRng, FaultPlan, Faulty, OpKind, SimDisk};
use obj_core::{CollectionKind, Db, DocKind, Durability, Error, Options, Reader, MAX_KEY_LEN};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Where a document lives: an id of an id collection or a key of a keyed one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pk {
    Id(u64),
    Key(Vec<u8>),
}

/// A document: its expiry and payload (every document of the workload is raw).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Doc {
    expires: Option<u64>,
    bytes: Vec<u8>,
}

type State = BTreeMap<(String, Pk), Doc>;

/// The keyed collection of the workloads.
const KEYED: &str = "k";
/// The collection of the counter document (id 1): commit `n` writes `n` there.
const CTR: &str = "ctr";
/// An expiry far in the future (year 2100), for keyed documents that carry one.
const FAR: u64 = 4_102_444_800_000_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn dump(db: &Db) -> obj_core::Result<State> {
    let rx = db.begin_read()?;
    let mut out = State::new();
    for c in rx.collections()? {
        if rx.kind(&c)? == Some(CollectionKind::Keyed) {
            for item in rx.key_range(&c, Bound::Unbounded, Bound::Unbounded, false)? {
                let (k, v) = item?;
                out.insert((c.clone(), Pk::Key(k)), doc(v));
            }
        } else {
            for item in rx.iter(&c)? {
                let (id, v) = item?;
                out.insert((c.clone(), Pk::Id(id)), doc(v));
            }
        }
    }
    Ok(out)
}

fn doc(v: obj_core::Value) -> Doc {
    let h = v.header();
    assert_eq!(
        (h.kind, h.type_version),
        (DocKind::Raw, 0),
        "a raw document"
    );
    Doc {
        expires: h.expires_at,
        bytes: v.into_vec(),
    }
}

fn counter(state: &State) -> u64 {
    state
        .get(&(CTR.to_string(), Pk::Id(1)))
        .map_or(0, |d| u64::from_le_bytes(d.bytes[..8].try_into().unwrap()))
}

/// One entry a record must hold.
#[derive(Clone, Debug)]
struct WantEntry {
    collection: String,
    pk: Pk,
    op: Op,
    old: Option<Doc>,
    new: Option<Doc>,
}

/// The record commit `seq` must have appended.
#[derive(Clone, Debug, Default)]
struct WantRecord {
    action: Option<String>,
    entries: Vec<WantEntry>,
}

/// One power-loss variant.
#[derive(Clone, Copy, Debug)]
struct Variant {
    images: Images,
    /// Retention: `Some(m)` keeps `1..=m` records (drawn per case).
    max_records: Option<u64>,
    durability: Durability,
}

/// The history of one case: committed states (`states[n]` after commit `n`, `states[0]`
/// empty) and the record each commit appended (`records[n]`, `records[0]` unused).
struct History {
    states: Vec<State>,
    records: Vec<WantRecord>,
    /// Commits `1..=durable` must survive.
    durable: usize,
    /// The commit turning the log on must survive.
    log_durable: bool,
    /// Whether any reopen succeeded (a file whose creation never reached the disk may be
    /// unreadable; once one reopen worked it may not be).
    reopened: bool,
}

impl History {
    fn truncate(&mut self, k: usize) {
        self.states.truncate(k + 1);
        self.records.truncate(k + 1);
    }
}

/// A random key of the model that is not the counter.
fn pick(next: &State, rng: &mut CrashRng) -> Option<(String, Pk)> {
    let keys: Vec<&(String, Pk)> = next.keys().filter(|k| k.0 != CTR).collect();
    if keys.is_empty() {
        return None;
    }
    Some(keys[rng.below(keys.len() as u64) as usize].clone())
}

fn value(rng: &mut CrashRng) -> Vec<u8> {
    let size = if rng.below(8) == 0 {
        3000 + rng.below(9000)
    } else {
        rng.below(200)
    } as usize;
    (0..size).map(|_| rng.next_u64() as u8).collect()
}

/// Records a write of `doc` (None: a delete) at `key` into the model and the wanted record.
fn note(
    next: &mut State,
    want: &mut WantRecord,
    images: Images,
    key: (String, Pk),
    doc: Option<Doc>,
) {
    let old = next.get(&key).cloned();
    let op = match (&old, &doc) {
        (_, None) => Op::Delete,
        (Some(_), Some(_)) => Op::Update,
        (None, Some(_)) => Op::Insert,
    };
    want.entries.push(WantEntry {
        collection: key.0.clone(),
        pk: key.1.clone(),
        op,
        old: old.filter(|_| images.keeps_old()),
        new: doc.clone().filter(|_| images.keeps_new()),
    });
    match doc {
        Some(d) => next.insert(key, d),
        None => next.remove(&key),
    };
}

/// One random write of a transaction; Err when the engine refused it (the fault).
fn random_write(
    tx: &mut obj_core::WriteTxn,
    next: &mut State,
    want: &mut WantRecord,
    images: Images,
    rng: &mut CrashRng,
) -> obj_core::Result<()> {
    let c = ["a", "b", KEYED][rng.below(3) as usize].to_string();
    let val = value(rng);
    match rng.below(10) {
        // Delete an existing document.
        0 | 1 => {
            if let Some(k) = pick(next, rng) {
                let existed = match &k.1 {
                    Pk::Id(id) => tx.delete(&k.0, *id)?,
                    Pk::Key(key) => tx.delete_key(&k.0, key)?,
                };
                assert!(existed, "delete of {k:?}: the document should exist");
                note(next, want, images, k, None);
            }
        }
        // Replace an existing document.
        2 | 3 => {
            if let Some(k) = pick(next, rng) {
                let d = Doc {
                    expires: None,
                    bytes: val,
                };
                let replaced = match &k.1 {
                    Pk::Id(id) => tx.put(&k.0, *id, &d.bytes)?,
                    Pk::Key(key) => tx.put_key(&k.0, key, &d.bytes)?,
                };
                assert!(replaced, "put of {k:?}: the document should exist");
                note(next, want, images, k, Some(d));
            }
        }
        // Delete what is not there: no entry.
        4 => {
            let gone = match rng.below(2) {
                0 => tx.delete("a", 1_000_000 + rng.below(1000))?,
                _ => tx.delete_key(KEYED, b"never-written")?,
            };
            assert!(
                !gone,
                "a delete of a document that never existed removed one"
            );
        }
        _ if c == KEYED => {
            // Mostly short keys (often written before); one in five long, up to the limit.
            let len = if rng.below(5) == 0 {
                200 + rng.below(MAX_KEY_LEN as u64 - 199)
            } else {
                1 + rng.below(12)
            } as usize;
            let key: Vec<u8> = (0..len)
                .map(|_| b'a' + (rng.next_u64() % 4) as u8)
                .collect();
            let expires = (rng.below(6) == 0).then_some(FAR + rng.below(1000));
            tx.put_key_doc_until(&c, &key, DocKind::Raw, 0, &val, expires)?;
            let d = Doc {
                expires,
                bytes: val,
            };
            note(next, want, images, (c, Pk::Key(key)), Some(d));
        }
        // Put under an explicit id, mostly a new one.
        5 => {
            let id = 1 + rng.below(40);
            tx.put(&c, id, &val)?;
            let d = Doc {
                expires: None,
                bytes: val,
            };
            note(next, want, images, (c, Pk::Id(id)), Some(d));
        }
        _ => {
            let id = tx.insert(&c, &val)?;
            let d = Doc {
                expires: None,
                bytes: val,
            };
            note(next, want, images, (c, Pk::Id(id)), Some(d));
        }
    }
    Ok(())
}

/// Runs commits (continuing `h`) until the plan's injected failure stops the workload.
fn workload(db: &Db, rng: &mut CrashRng, v: Variant, h: &mut History, commits: u64) {
    for _ in 0..commits {
        let n = h.states.len() as u64;
        let Ok(mut tx) = db.begin_write() else { return };
        let mut next = h.states.last().unwrap().clone();
        let mut want = WantRecord::default();
        if rng.below(3) == 0 {
            want.action = Some(format!("commit {n}"));
            tx.set_context(Context {
                action: want.action.clone(),
                ..Context::default()
            });
        }
        let writes = 1 + rng.below(6);
        let at = rng.below(writes + 1);
        for i in 0..=writes {
            let res = if i == at {
                let d = Doc {
                    expires: None,
                    bytes: n.to_le_bytes().to_vec(),
                };
                tx.put(CTR, 1, &d.bytes).map(|_| {
                    note(
                        &mut next,
                        &mut want,
                        v.images,
                        (CTR.into(), Pk::Id(1)),
                        Some(d),
                    );
                })
            } else {
                random_write(&mut tx, &mut next, &mut want, v.images, rng)
            };
            if res.is_err() {
                return;
            }
        }
        // The commit may reach the disk whatever it returns.
        h.states.push(next);
        h.records.push(want);
        match tx.commit() {
            Ok(()) if v.durability == Durability::Immediate => h.durable = n as usize,
            Ok(()) => {}
            Err(_) => return,
        }
        if rng.below(5) == 0 {
            match db.checkpoint() {
                // A completed checkpoint made everything before it durable in any mode but None.
                Ok(_) if v.durability != Durability::None => {
                    h.durable = n as usize;
                    h.log_durable = true;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// Every record from `since` on, read in batches of about `batch` entries.
fn read_all<R: ChangeReads>(r: &R, since: u64, batch: usize) -> obj_core::Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut at = since;
    loop {
        let b = r.changes(at, None, batch, None)?;
        if b.through < at {
            return Err(Error::Corruption(format!(
                "changes({at}) went back to {}",
                b.through
            )));
        }
        at = b.through;
        out.extend(b.records);
        if b.done {
            return Ok(out);
        }
    }
}

fn image_doc(
    bytes: Option<obj_core::Result<Option<obj_core::Value>>>,
) -> Result<Option<Doc>, String> {
    match bytes {
        None => Ok(None),
        Some(r) => Ok(r
            .map_err(|e| format!("image does not decode: {e}"))?
            .map(doc)),
    }
}

/// Checks record `got` against what its commit did.
fn check_record(got: &Record, want: &WantRecord, images: Images) -> Result<(), String> {
    let ctx = format!("record {}", got.seq);
    if got.context.action != want.action || got.context.user.is_some() {
        return Err(format!(
            "{ctx}: context {:?}, the commit set action {:?}",
            got.context, want.action
        ));
    }
    if got.entries.len() != want.entries.len() {
        return Err(format!(
            "{ctx}: {} entries, the commit made {} writes: got {:?}, want {:?}",
            got.entries.len(),
            want.entries.len(),
            got.entries
                .iter()
                .map(|e| (&*e.collection, e.op.name(), e.key.len()))
                .collect::<Vec<_>>(),
            want.entries
                .iter()
                .map(|e| (&e.collection, e.op.name()))
                .collect::<Vec<_>>(),
        ));
    }
    for (i, (g, w)) in got.entries.iter().zip(&want.entries).enumerate() {
        let (keyed, key) = match &w.pk {
            Pk::Id(id) => (false, id.to_be_bytes().to_vec()),
            Pk::Key(k) => (true, k.clone()),
        };
        if *g.collection != *w.collection || g.keyed != keyed || g.key != key || g.op != w.op {
            return Err(format!(
                "{ctx} entry {i}: {:?} {} keyed={} key {:?}, want {:?} {} {:?}",
                g.collection,
                g.op.name(),
                g.keyed,
                g.key,
                w.collection,
                w.op.name(),
                w.pk
            ));
        }
        if g.old.is_some() != (images.keeps_old() && w.old.is_some())
            || g.new.is_some() != (images.keeps_new() && w.new.is_some())
        {
            return Err(format!(
                "{ctx} entry {i}: images present old={} new={}, want old={} new={} ({images:?})",
                g.old.is_some(),
                g.new.is_some(),
                w.old.is_some(),
                w.new.is_some()
            ));
        }
        let old = image_doc(g.old.as_ref().map(|_| g.old_value()))?;
        let new = image_doc(g.new.as_ref().map(|_| g.new_value()))?;
        if old != w.old || new != w.new {
            return Err(format!(
                "{ctx} entry {i} ({:?} {:?}): images differ from what the commit wrote \
                 (old {:?} vs {:?} bytes, new {:?} vs {:?} bytes)",
                w.collection,
                w.pk,
                old.as_ref().map(|d| d.bytes.len()),
                w.old.as_ref().map(|d| d.bytes.len()),
                new.as_ref().map(|d| d.bytes.len()),
                w.new.as_ref().map(|d| d.bytes.len()),
            ));
        }
    }
    Ok(())
}

/// Applies `records` (a whole log from seq 1) to an empty in-memory database, one
/// transaction each, and returns its documents.
fn replay(records: &[Record]) -> Result<State, String> {
    let replica = Db::memory(Options::default()).map_err(|e| format!("Db::memory: {e}"))?;
    for r in records {
        let mut tx = replica.begin_write().map_err(|e| e.to_string())?;
        match tx.apply_record(r) {
            Ok(true) => {}
            Ok(false) => return Err(format!("replay: record {} was skipped", r.seq)),
            Err(e) => return Err(format!("replay: record {}: {e}", r.seq)),
        }
        tx.commit()
            .map_err(|e| format!("replay: commit of record {}: {e}", r.seq))?;
    }
    let applied = replica
        .begin_write()
        .and_then(|tx| tx.applied_seq())
        .map_err(|e| e.to_string())?;
    let last = records.last().map_or(0, |r| r.seq);
    if applied != last {
        return Err(format!("replay: applied_seq {applied}, last record {last}"));
    }
    replica
        .integrity_check()
        .map_err(|e| format!("replay: integrity of the replica: {e}"))?;
    dump(&replica).map_err(|e| format!("replay: dump: {e}"))
}

/// Checks a recovered database against the history; returns the commit it holds (`k`) and
/// whether it keeps a log.
fn verify(
    db: &Db,
    v: Variant,
    settings: LogSettings,
    h: &History,
    rng: &mut CrashRng,
    stats: &mut Stats,
) -> Result<(usize, bool), String> {
    let got = dump(db).map_err(|e| format!("read after crash: {e}"))?;
    let k = counter(&got) as usize;
    if k >= h.states.len() {
        return Err(format!(
            "counter {k} but only {} commits were attempted",
            h.states.len() - 1
        ));
    }
    if got != h.states[k] {
        let first_diff = got
            .iter()
            .find(|(key, d)| h.states[k].get(key) != Some(d))
            .map(|(key, _)| key.clone())
            .or_else(|| {
                h.states[k]
                    .keys()
                    .find(|key| !got.contains_key(key))
                    .cloned()
            });
        return Err(format!(
            "the data is not the state after commit {k}, the counter's value (a half-applied \
             commit?); first differing document {first_diff:?}"
        ));
    }
    if k < h.durable {
        return Err(format!(
            "lost commits: recovered commit {k} but {} were durable",
            h.durable
        ));
    }
    let rx = db.begin_read().map_err(|e| e.to_string())?;
    let Some(info) = rx.change_log().map_err(|e| format!("change_log(): {e}"))? else {
        if k > 0 || h.log_durable {
            return Err(format!(
                "no change log after recovery (commit {k} recovered, the log's commit durable: {})",
                h.log_durable
            ));
        }
        return Ok((0, false));
    };
    if info.settings != settings {
        return Err(format!(
            "log settings {:?}, set {settings:?}",
            info.settings
        ));
    }
    let k64 = k as u64;
    let oldest = match settings.retention.max_records {
        Some(m) => (k64 + 1).saturating_sub(m).max(1),
        None => 1,
    };
    if info.next_seq != k64 + 1 || info.oldest != oldest {
        return Err(format!(
            "log counters oldest {} next_seq {} after recovering commit {k} (want oldest \
             {oldest}, next_seq {})",
            info.oldest,
            info.next_seq,
            k64 + 1
        ));
    }
    let batch = 1 + rng.below(12) as usize;
    let recs = read_all(&rx, oldest - 1, batch).map_err(|e| format!("reading the log: {e}"))?;
    let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
    if seqs != (oldest..=k64).collect::<Vec<_>>() {
        return Err(format!(
            "log records {seqs:?} after recovering commit {k} (want {oldest}..={k})"
        ));
    }
    for r in &recs {
        check_record(r, &h.records[r.seq as usize], v.images)?;
    }
    stats.records += recs.len() as u64;
    stats.trimmed += u64::from(oldest > 1);
    if oldest >= 2 {
        match rx.changes(oldest - 2, None, 10, None) {
            Err(Error::ChangesExpired { oldest: o, .. }) if o == oldest => {}
            other => {
                return Err(format!(
                    "changes({}) with oldest {oldest}: {:?}",
                    oldest - 2,
                    other.map(|b| b.records.len())
                ))
            }
        }
    }
    drop(rx);
    if v.images == Images::Both && oldest == 1 {
        let replayed = replay(&recs)?;
        stats.replays += 1;
        if replayed != got {
            return Err(format!(
                "replaying records 1..={k} gives {} documents, the database holds {} (or \
                 their contents differ)",
                replayed.len(),
                got.len()
            ));
        }
    }
    Ok((k, true))
}

/// After verification: the recovered database takes a commit, recorded as `k + 1`.
fn commit_after(db: &Db, k: usize, has_log: bool) -> Result<(), String> {
    let mut tx = db.begin_write().map_err(|e| e.to_string())?;
    tx.insert("after", b"crash").map_err(|e| e.to_string())?;
    tx.commit()
        .map_err(|e| format!("commit after recovery: {e}"))?;
    if has_log {
        let rx = db.begin_read().map_err(|e| e.to_string())?;
        let info = rx.change_log().map_err(|e| e.to_string())?.unwrap();
        let recs = rx
            .changes(k as u64, None, 100, None)
            .map_err(|e| format!("reading the record after recovery: {e}"))?
            .records;
        let ok = info.next_seq == k as u64 + 2
            && recs.len() == 1
            && recs[0].seq == k as u64 + 1
            && recs[0].entries.len() == 1
            && &*recs[0].entries[0].collection == "after";
        if !ok {
            return Err(format!(
                "the first commit after recovering {k}: next_seq {}, records {:?}",
                info.next_seq,
                recs.iter().map(|r| r.seq).collect::<Vec<_>>()
            ));
        }
    }
    db.integrity_check()
        .map_err(|e| format!("integrity after the new commit: {e}"))?;
    Ok(())
}

/// What a sweep exercised (printed, and checked so a broken harness cannot pass vacuously).
#[derive(Debug, Default)]
struct Stats {
    /// Crash images reopened and verified.
    verified: u64,
    /// ... of which held at least one commit.
    with_commits: u64,
    /// ... of which held a commit not known durable (in flight at the crash).
    in_flight_kept: u64,
    /// ... of which lost a commit not known durable.
    in_flight_lost: u64,
    /// Records compared with their commits.
    records: u64,
    /// Logs replayed onto an empty database.
    replays: u64,
    /// Logs whose oldest record was past 1 (retention).
    trimmed: u64,
}

fn run_case(seed: u64, v: Variant, stats: &mut Stats) -> Result<(), String> {
    let verbose = std::env::var("OBJ_POWERLOSS_SEED").is_ok();
    let mut rng = CrashRng::new(seed);
    let settings = LogSettings {
        images: v.images,
        retention: Retention {
            max_records: v.max_records.map(|m| 1 + rng.below(m)),
            max_age_micros: None,
        },
    };
    let mut h = History {
        states: vec![State::new()],
        records: vec![WantRecord::default()],
        durable: 0,
        log_durable: false,
        reopened: false,
    };
    let (mut main_img, mut wal_img) = (Vec::new(), Vec::new());
    let rounds = 1 + rng.below(3);
    for round in 0..rounds {
        let ctx = |m: String| format!("seed {seed} {v:?} {settings:?} round {round}: {m}");
        let (main, wal) = (
            SimDisk::with_contents(main_img.clone()),
            SimDisk::with_contents(wal_img.clone()),
        );
        let kind =
            [OpKind::Write, OpKind::Sync, OpKind::Any, OpKind::SetLen][rng.below(4) as usize];
        let plan = FaultPlan::new(kind, 5 + rng.below(env("OBJ_FAULT_STEPS", 400)), true);
        let opts = Options::default()
            .durability(v.durability)
            .checkpoint_frames(4 + rng.below(60));
        let db = Db::open_with_backends(
            Box::new(Faulty::new(main.clone(), plan.clone())),
            Box::new(Faulty::new(wal.clone(), plan.clone())),
            opts,
        );
        if let Ok(db) = &db {
            let has_log = db
                .begin_read()
                .and_then(|rx| rx.change_log())
                .map(|i| i.is_some());
            let enabled = match has_log {
                Ok(true) => true,
                Ok(false) => match db.set_changes(Some(settings)) {
                    Ok(changed) => {
                        assert!(changed, "{}", ctx("set_changes changed nothing".into()));
                        if v.durability == Durability::Immediate {
                            h.log_durable = true;
                        }
                        true
                    }
                    Err(_) => false,
                },
                Err(_) => false,
            };
            if enabled {
                let commits = 10 + rng.below(30);
                workload(db, &mut rng, v, &mut h, commits);
            }
        }
        // Nothing after the failure reaches the disk: the process is gone.
        drop(db);
        if verbose {
            eprintln!(
                "round {round}: fault {kind:?} at {}; {} commits attempted, {} durable; wal pending: {:?}",
                plan.seen(),
                h.states.len() - 1,
                h.durable,
                wal.describe_pending()
            );
        }
        // Mostly a power loss; one time in four the OS got every write to the disk (as
        // when only the process dies), so a commit whose sync failed is there whole.
        if rng.below(4) == 0 {
            main_img = main.contents();
            wal_img = wal.contents();
        } else {
            main_img = main.crash(&mut rng);
            wal_img = wal.crash(&mut rng);
        }
        let reopened = Db::open_with_backends(
            Box::new(MemoryBackend::with_contents(main_img.clone())),
            Box::new(MemoryBackend::with_contents(wal_img.clone())),
            Options::default().durability(v.durability),
        );
        let db = match reopened {
            Ok(db) => db,
            // A crash before the first durable write of a new file may leave no database.
            Err(Error::Corruption(_))
                if !h.reopened && h.durable == 0 && !h.log_durable && h.states.len() <= 2 =>
            {
                return Ok(());
            }
            Err(e) => {
                return Err(ctx(format!(
                    "reopen failed: {e} ({} commits attempted, {} durable, log durable {})",
                    h.states.len() - 1,
                    h.durable,
                    h.log_durable
                )))
            }
        };
        h.reopened = true;
        let (k, has_log) = verify(&db, v, settings, &h, &mut rng, stats).map_err(&ctx)?;
        stats.verified += 1;
        stats.with_commits += u64::from(k > 0);
        stats.in_flight_kept += u64::from(k > h.durable);
        stats.in_flight_lost += u64::from(k + 1 < h.states.len() && k == h.durable);
        db.integrity_check()
            .map_err(|e| ctx(format!("integrity after crash: {e}")))?;
        if verbose {
            eprintln!("round {round}: recovered commit {k}, log {has_log}");
        }
        commit_after(&db, k, has_log).map_err(&ctx)?;
        drop(db);
        // The crash image is now what the disk holds for sure: the next round goes on from it.
        h.truncate(k);
        h.durable = k;
        h.log_durable = has_log;
    }
    Ok(())
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn sweep(v: Variant, salt: u64) {
    if let Ok(seed) = std::env::var("OBJ_POWERLOSS_SEED") {
        let seed: u64 = seed.parse().expect("OBJ_POWERLOSS_SEED is a number");
        run_case(seed, v, &mut Stats::default()).unwrap();
        return;
    }
    let cases = env("OBJ_POWERLOSS_CASES", 300);
    let mut stats = Stats::default();
    let failures: Vec<String> = (0..cases)
        .filter_map(|i| {
            let seed = i ^ salt;
            let run = std::panic::AssertUnwindSafe(|| run_case(seed, v, &mut stats));
            match std::panic::catch_unwind(run) {
                Ok(r) => r.err(),
                Err(p) => Some(format!("seed {seed} {v:?}: panicked: {}", panic_text(&p))),
            }
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed; first: {}",
        failures.len(),
        failures[0]
    );
    eprintln!("{v:?}: {cases} cases, {stats:?}");
    // At the default scale each of these happens dozens of times or more.
    if cases >= 100 {
        assert!(
            stats.with_commits >= cases / 2
                && stats.in_flight_kept > 0
                && stats.in_flight_lost > 0
                && stats.records >= cases * if v.max_records.is_some() { 1 } else { 5 },
            "{v:?}: the sweep exercised little: {stats:?}"
        );
        if v.max_records.is_some() {
            assert!(
                stats.trimmed >= cases / 4,
                "{v:?}: little retention: {stats:?}"
            );
        }
        if v.images == Images::Both && v.max_records.is_none() {
            assert!(stats.replays >= cases / 2, "{v:?}: few replays: {stats:?}");
        }
    }
}

#[test]
fn power_loss_keeps_commits_and_records_together_both_images() {
    sweep(
        Variant {
            images: Images::Both,
            max_records: None,
            durability: Durability::Immediate,
        },
        0x1_0000,
    );
}

#[test]
fn power_loss_keeps_commits_and_records_together_with_retention() {
    sweep(
        Variant {
            images: Images::Both,
            max_records: Some(4),
            durability: Durability::Immediate,
        },
        0x2_0000,
    );
}

#[test]
fn power_loss_keeps_commits_and_records_together_keys_only() {
    sweep(
        Variant {
            images: Images::Keys,
            max_records: None,
            durability: Durability::Immediate,
        },
        0x3_0000,
    );
}

#[test]
fn power_loss_keeps_commits_and_records_together_eventual() {
    sweep(
        Variant {
            images: Images::Both,
            max_records: None,
            durability: Durability::Eventual,
        },
        0x4_0000,
    );
}

/// One fault at the `nth` operation of `kind`, no crash (the OS keeps every write), the
/// handle going on after the error: after reopening, the log and the data still agree.
fn single_fault(kind: OpKind, nth: u64) -> Result<(), String> {
    let ctx = |m: String| format!("{kind:?} fault at op {nth}: {m}");
    let settings = LogSettings {
        images: Images::Both,
        retention: Retention::default(),
    };
    let disk = (SimDisk::new(), SimDisk::new());
    let plan = FaultPlan::new(kind, nth, false);
    let opts = Options::default().checkpoint_frames(8).cache_size(0);
    let mut acked: Vec<u64> = Vec::new();
    let mut log_acked = false;
    if let Ok(db) = Db::open_with_backends(
        Box::new(Faulty::new(disk.0.clone(), plan.clone())),
        Box::new(Faulty::new(disk.1.clone(), plan.clone())),
        opts.clone(),
    ) {
        for i in 1..=30u64 {
            if !log_acked {
                log_acked = db.set_changes(Some(settings)).is_ok();
                continue;
            }
            let res = db.begin_write().and_then(|mut tx| {
                if i % 3 == 0 {
                    tx.set_context(Context {
                        action: Some(format!("commit {i}")),
                        ..Context::default()
                    });
                }
                tx.put(CTR, 1, &i.to_le_bytes())?;
                let value = i.to_le_bytes().repeat(1 + (i as usize % 5) * 200);
                tx.insert("c", &value)?;
                let key = format!("key{:04}", i % 5 + (i / 10) * 10).into_bytes();
                tx.put_key(KEYED, &key, &value)?;
                if i % 4 == 0 {
                    tx.delete("c", i / 3)?;
                }
                tx.commit()
            });
            if res.is_ok() {
                acked.push(i);
            }
            if i % 7 == 6 {
                let _ = db.checkpoint();
            }
        }
        let _ = db.close();
    }
    let db = Db::open_with_backends(
        Box::new(MemoryBackend::with_contents(disk.0.contents())),
        Box::new(MemoryBackend::with_contents(disk.1.contents())),
        opts,
    )
    .map_err(|e| ctx(format!("reopen failed: {e}")))?;
    let data = dump(&db).map_err(|e| ctx(format!("dump: {e}")))?;
    let rx = db.begin_read().map_err(|e| ctx(e.to_string()))?;
    let Some(info) = rx.change_log().map_err(|e| ctx(e.to_string()))? else {
        if log_acked || !data.is_empty() {
            return Err(ctx(format!(
                "no change log (set_changes acknowledged: {log_acked}, {} documents)",
                data.len()
            )));
        }
        return Ok(());
    };
    let recs = read_all(&rx, 0, 7).map_err(|e| ctx(format!("reading the log: {e}")))?;
    let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
    if info.oldest != 1
        || info.next_seq != recs.len() as u64 + 1
        || seqs != (1..info.next_seq).collect::<Vec<_>>()
    {
        return Err(ctx(format!(
            "log oldest {} next_seq {}, records {seqs:?}",
            info.oldest, info.next_seq
        )));
    }
    // The counter each record wrote: one write of it per record, rising.
    let mut counters = Vec::new();
    for r in &recs {
        let ctr: Vec<&obj_core::changes::Entry> =
            r.entries.iter().filter(|e| &*e.collection == CTR).collect();
        let c = match ctr.as_slice() {
            [e] => e
                .new_value()
                .ok()
                .flatten()
                .map(|v| u64::from_le_bytes(v[..8].try_into().unwrap())),
            _ => None,
        }
        .ok_or_else(|| ctx(format!("record {} has no single counter write", r.seq)))?;
        if counters.last().is_some_and(|&l| l >= c) {
            return Err(ctx(format!(
                "record {} wrote counter {c} after {counters:?}",
                r.seq
            )));
        }
        let action = (c % 3 == 0).then(|| format!("commit {c}"));
        if r.context.action != action {
            return Err(ctx(format!("record {}: context {:?}", r.seq, r.context)));
        }
        // The commit's writes in order; its delete is an entry only if the document existed.
        let ops: Vec<(&str, &str)> = r
            .entries
            .iter()
            .map(|e| (&*e.collection, e.op.name()))
            .collect();
        let ctr_op = if counters.is_empty() {
            "insert"
        } else {
            "update"
        };
        let mut want = vec![(CTR, ctr_op), ("c", "insert"), (KEYED, "?")];
        if ops.len() == 4 && c % 4 == 0 {
            want.push(("c", "delete"));
        }
        let same = ops.len() == want.len()
            && ops
                .iter()
                .zip(&want)
                .all(|(g, w)| g.0 == w.0 && (g.1 == w.1 || w.1 == "?" && g.1 != "delete"));
        if !same {
            return Err(ctx(format!(
                "record {} (counter {c}): entries {ops:?}, want {want:?}",
                r.seq
            )));
        }
        counters.push(c);
    }
    if let Some(lost) = acked.iter().find(|a| !counters.contains(a)) {
        return Err(ctx(format!(
            "acknowledged commit {lost} has no record (records wrote {counters:?})"
        )));
    }
    if counter(&data) != counters.last().copied().unwrap_or(0) {
        return Err(ctx(format!(
            "the data's counter is {}, the last record wrote {:?}",
            counter(&data),
            counters.last()
        )));
    }
    drop(rx);
    let replayed = replay(&recs).map_err(&ctx)?;
    if replayed != data {
        return Err(ctx(format!(
            "replaying the log gives {} documents, the database holds {}",
            replayed.len(),
            data.len()
        )));
    }
    db.integrity_check()
        .map_err(|e| ctx(format!("integrity: {e}")))?;
    Ok(())
}

#[test]
fn each_single_fault_keeps_the_log_and_the_data_together() {
    let steps = env("OBJ_FAULT_STEPS", 160);
    let mut failures = Vec::new();
    let mut runs = 0;
    for kind in [OpKind::Write, OpKind::Sync, OpKind::Read, OpKind::SetLen] {
        for nth in 1..steps {
            runs += 1;
            let run = std::panic::AssertUnwindSafe(|| single_fault(kind, nth));
            match std::panic::catch_unwind(run) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(p) => failures.push(format!(
                    "{kind:?} fault at op {nth}: panicked: {}",
                    panic_text(&p)
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed; first: {}",
        failures.len(),
        failures[0]
    );
}
