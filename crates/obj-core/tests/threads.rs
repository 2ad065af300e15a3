//! Concurrency: snapshot readers, a writer and a checkpointer on one `Arc<Db>`.
//!
//! Env: OBJ_THREADS_SECS (run time of each test, default 3), OBJ_THREADS_SEED (default 1).

mod support;

use obj_core::{Db, Durability, Error, Options, Reader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Rng;

const ACCOUNTS: u64 = 50;
const START_BALANCE: u64 = 1_000;
const TOTAL: u64 = ACCOUNTS * START_BALANCE;

fn secs() -> Duration {
    Duration::from_secs_f64(support::env_usize("OBJ_THREADS_SECS", 3) as f64)
}

fn seed() -> u64 {
    support::seeds_from_env("OBJ_THREADS_SEED", &[1])[0]
}

/// An account record: the balance, then padding of a varying length (0 to a few pages) so
/// transfers also split, merge and move values between inline and overflow storage.
fn account(balance: u64, pad: usize) -> Vec<u8> {
    let mut v = balance.to_le_bytes().to_vec();
    v.extend(std::iter::repeat_n((balance % 251) as u8, pad));
    v
}

fn balance(v: &[u8]) -> u64 {
    let b = u64::from_le_bytes(v[..8].try_into().expect("account shorter than 8 bytes"));
    assert!(
        v[8..].iter().all(|&x| x == (b % 251) as u8),
        "account padding does not match its balance {b}: a torn value"
    );
    b
}

/// Reads all balances of a snapshot twice (iter and get) and checks the invariants.
fn check_snapshot<R: Reader>(r: &R, who: &str) -> Vec<u64> {
    let by_iter: Vec<(u64, u64)> = r
        .iter("accounts")
        .unwrap()
        .map(|x| {
            let (id, v) = x.unwrap_or_else(|e| panic!("{who}: iter: {e:?}"));
            (id, balance(&v))
        })
        .collect();
    assert_eq!(
        by_iter.iter().map(|x| x.0).collect::<Vec<_>>(),
        (1..=ACCOUNTS).collect::<Vec<_>>(),
        "{who}: account ids"
    );
    assert_eq!(r.count("accounts").unwrap(), ACCOUNTS, "{who}: count");
    let sum: u64 = by_iter.iter().map(|x| x.1).sum();
    assert_eq!(sum, TOTAL, "{who}: balances sum to {sum}, not {TOTAL}");
    let by_get: Vec<u64> = (1..=ACCOUNTS)
        .map(|id| balance(&r.get("accounts", id).unwrap().unwrap()))
        .collect();
    let iter_balances: Vec<u64> = by_iter.iter().map(|x| x.1).collect();
    assert_eq!(
        by_get, iter_balances,
        "{who}: get and iter disagree in one snapshot"
    );
    // The transfer counter and the journal move together with the balances.
    let n = r
        .get("meta", 1)
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()));
    assert_eq!(
        r.count("journal").unwrap(),
        n.min(100),
        "{who}: journal length does not match the transfer counter {n}"
    );
    by_get
}

fn setup(path: &std::path::Path, opts: Options) -> Arc<Db> {
    let db = Db::open(path, opts).unwrap();
    let mut tx = db.begin_write().unwrap();
    for id in 1..=ACCOUNTS {
        tx.put("accounts", id, &account(START_BALANCE, 0)).unwrap();
    }
    tx.commit().unwrap();
    Arc::new(db)
}

/// Readers check invariants on their snapshots while a writer moves money in small commits
/// (some rolled back) and a third thread checkpoints.
#[test]
fn readers_see_consistent_snapshots_during_writes_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("threads.obj");
    let db = setup(
        &path,
        Options::default()
            .durability(Durability::Eventual)
            .checkpoint_frames(200)
            // Small: readers and the checkpointer fight over evictions.
            .cache_size(256 << 10),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let checkpoints = Arc::new(AtomicU64::new(0));
    let deferred = Arc::new(AtomicU64::new(0));
    let resets = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();

    // Writer.
    {
        let (db, stop, commits) = (db.clone(), stop.clone(), commits.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed());
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut tx = db.begin_write().unwrap();
                let a = rng.range(1, ACCOUNTS);
                let b = rng.range(1, ACCOUNTS);
                let ba = balance(&tx.get("accounts", a).unwrap().unwrap());
                let amount = rng.below(ba + 1);
                let pad = |rng: &mut Rng| match rng.below(10) {
                    0..=5 => rng.below(40) as usize,
                    6..=8 => rng.range(500, 1200) as usize,
                    _ => rng.range(4000, 9000) as usize,
                };
                let pa = pad(&mut rng);
                tx.put("accounts", a, &account(ba - amount, pa)).unwrap();
                // Read b after writing a: sees a's new value when a == b.
                let bb = balance(&tx.get("accounts", b).unwrap().unwrap());
                let pb = pad(&mut rng);
                tx.put("accounts", b, &account(bb + amount, pb)).unwrap();
                if rng.chance(10) {
                    // Rolled back: must never be seen.
                    tx.put("accounts", 1, &account(u64::MAX / 2, 0)).unwrap();
                    tx.rollback();
                    continue;
                }
                n += 1;
                tx.put("meta", 1, &n.to_le_bytes()).unwrap();
                tx.insert("journal", &a.to_le_bytes()).unwrap();
                if n > 100 {
                    // Keep the journal at 100 entries: delete the oldest.
                    let oldest = tx.scan("journal", 1, 1).unwrap()[0].0;
                    assert!(tx.delete("journal", oldest).unwrap());
                }
                tx.commit().unwrap();
                commits.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Checkpointer.
    {
        let (db, stop, checkpoints, deferred, resets) = (
            db.clone(),
            stop.clone(),
            checkpoints.clone(),
            deferred.clone(),
            resets.clone(),
        );
        handles.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let info = db.checkpoint().unwrap();
                checkpoints.fetch_add(1, Ordering::Relaxed);
                if info.deferred {
                    deferred.fetch_add(1, Ordering::Relaxed);
                }
                if info.wal_reset {
                    resets.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(3));
            }
        }));
    }
    // Readers.
    for r in 0..3u64 {
        let (db, stop, reads) = (db.clone(), stop.clone(), reads.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed() ^ (r + 100));
            let mut last_seq = 0;
            while !stop.load(Ordering::Relaxed) {
                let rx = db.begin_read().unwrap();
                let who = format!("reader {r} at commit {}", rx.commit_seq());
                assert!(
                    rx.commit_seq() >= last_seq,
                    "{who}: snapshots went backwards"
                );
                last_seq = rx.commit_seq();
                let first = check_snapshot(&rx, &who);
                if rng.chance(30) {
                    // Hold the snapshot while commits and checkpoints happen: it must not move.
                    std::thread::sleep(Duration::from_millis(rng.range(1, 15)));
                    let again = check_snapshot(&rx.clone(), &who);
                    assert_eq!(first, again, "{who}: a held snapshot changed");
                }
                reads.fetch_add(1, Ordering::Relaxed);
                drop(rx);
                if rng.chance(30) {
                    // Pauses let some checkpoints finish and reset the WAL.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }));
    }
    std::thread::sleep(secs());
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        if let Err(p) = h.join() {
            std::panic::resume_unwind(p);
        }
    }
    let (c, r, k) = (
        commits.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed),
        checkpoints.load(Ordering::Relaxed),
    );
    eprintln!(
        "{c} commits, {r} snapshot checks, {k} checkpoints ({} deferred by readers, {} reset \
         the WAL)",
        deferred.load(Ordering::Relaxed),
        resets.load(Ordering::Relaxed)
    );
    assert!(
        c > 50 && r > 10 && k > 10,
        "too little happened: {c} commits, {r} reads, {k} checkpoints"
    );
    check_snapshot(&db.begin_read().unwrap(), "final");
    db.integrity_check().unwrap();
    let n = db.begin_read().unwrap().get("meta", 1).unwrap().unwrap();
    assert_eq!(u64::from_le_bytes(n[..8].try_into().unwrap()), c);
    db.close().unwrap();
    drop(db);
    let db = Db::open(&path, Options::default()).unwrap();
    check_snapshot(&db.begin_read().unwrap(), "after reopen");
    db.integrity_check().unwrap();
}

/// Several threads increment counters in read-modify-write transactions: the writer lock
/// serialises them, so no increment is lost; readers meanwhile see both counters equal.
#[test]
fn concurrent_writers_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::open(
            dir.path().join("writers.obj"),
            Options::default()
                .durability(Durability::None)
                .checkpoint_frames(50)
                .busy_timeout(Duration::from_secs(30)),
        )
        .unwrap(),
    );
    let deadline = Instant::now() + secs();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let db = db.clone();
        writers.push(std::thread::spawn(move || {
            let mut mine = 0u64;
            let mut busy = 0u64;
            while Instant::now() < deadline {
                let mut tx = match db.begin_write() {
                    Ok(tx) => tx,
                    Err(Error::Busy(_)) => {
                        busy += 1;
                        continue;
                    }
                    Err(e) => panic!("writer {w}: {e:?}"),
                };
                let get = |tx: &obj_core::WriteTxn, id| {
                    tx.get("counters", id)
                        .unwrap()
                        .map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()))
                };
                let (a, b) = (get(&tx, 1), get(&tx, 2));
                assert_eq!(a, b, "writer {w}: counters differ inside a transaction");
                tx.put("counters", 1, &(a + 1).to_le_bytes()).unwrap();
                std::thread::yield_now();
                tx.put("counters", 2, &(b + 1).to_le_bytes()).unwrap();
                tx.put("by-writer", w + 1, &(mine + 1).to_le_bytes())
                    .unwrap();
                tx.commit().unwrap();
                mine += 1;
            }
            (mine, busy)
        }));
    }
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let rx = db.begin_read().unwrap();
                let get = |id| {
                    rx.get("counters", id)
                        .unwrap()
                        .map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()))
                };
                assert_eq!(get(1), get(2), "reader: counters differ in a snapshot");
                n += 1;
            }
            n
        })
    };
    let mut total = 0;
    for (w, h) in writers.into_iter().enumerate() {
        let (mine, busy) = h.join().unwrap();
        assert_eq!(busy, 0, "writer {w} timed out waiting for the lock");
        let rx = db.begin_read().unwrap();
        let stored = rx.get("by-writer", w as u64 + 1).unwrap();
        assert_eq!(
            stored.map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap())),
            mine,
            "writer {w}'s own counter"
        );
        total += mine;
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    let rx = db.begin_read().unwrap();
    let c = u64::from_le_bytes(
        rx.get("counters", 1).unwrap().unwrap()[..8]
            .try_into()
            .unwrap(),
    );
    assert_eq!(c, total, "increments lost: counter {c}, commits {total}");
    assert!(
        total > 100 && reads > 10,
        "too little happened: {total} commits, {reads} reads"
    );
    drop(rx);
    db.integrity_check().unwrap();
    eprintln!("{total} serialised increments by 4 writers, {reads} reader checks");
}
