//! Concurrency stress: many reader threads, one writer, a checkpointer and an occasional
//! compaction on one `Arc<Db>`, for a bounded time. Unlike `threads.rs` (which checks
//! invariants such as a constant sum), every snapshot is compared with the *exact* state of
//! the commit it claims to be: the writer publishes the expected contents of commit `k`
//! before committing it, and a reader that sees commit `k` (through a counter document)
//! checks every document, the counts, `get` against `iter`, id ranges, and that a held
//! snapshot stays the same while commits, checkpoints and compactions go on.
//!
//! Env: OBJ_CONC_SECS (default 4), OBJ_CONC_SEED (default 1), OBJ_CONC_READERS (default 8).

mod support;

use obj_core::{Db, Durability, Options, Reader};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Rng;

/// Keys of the "kv" collection.
const KEYS: u64 = 48;
/// The "seq" collection keeps the ids of the last SEQ_WINDOW commits.
const SEQ_WINDOW: u64 = 20;

/// The value commit `version` gives `key`: self-describing, from a few bytes to several
/// overflow pages.
fn value(key: u64, version: u64) -> Vec<u8> {
    let h = (key * 1_000_003 + version).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let len = match h % 10 {
        0..=5 => 16 + (h % 40) as usize,
        6..=8 => 500 + (h % 700) as usize,
        _ => 3000 + (h % 6000) as usize,
    };
    let mut v = key.to_le_bytes().to_vec();
    v.extend_from_slice(&version.to_le_bytes());
    v.extend((16..len).map(|i| (i as u8) ^ (version as u8).wrapping_mul(13) ^ key as u8));
    v
}

/// The expected "kv" contents after a commit: the version that last wrote each key (0 =
/// absent).
type Versions = Arc<Vec<u64>>;

/// Checks a snapshot against the expected state of the commit it shows; returns the commit.
fn check<R: Reader>(r: &R, expected: &RwLock<Vec<Versions>>, rng: &mut Rng, who: &str) -> u64 {
    let k = r
        .get("meta", 1)
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()));
    let want = expected.read()[k as usize].clone();
    let ctx = format!("{who} at commit {k}");
    // Every document, in id order.
    let mut ids = Vec::new();
    for item in r.iter("kv").unwrap() {
        let (key, v) = item.unwrap_or_else(|e| panic!("{ctx}: iter kv: {e:?}"));
        let ver = want[key as usize];
        assert!(
            ver != 0,
            "{ctx}: kv/{key} exists but the commit deleted it or never wrote it"
        );
        if *v != *value(key, ver) {
            let got = u64::from_le_bytes(v[8..16].try_into().unwrap());
            panic!("{ctx}: kv/{key} holds version {got}, expected {ver}");
        }
        ids.push(key);
    }
    let want_ids: Vec<u64> = (1..=KEYS).filter(|&key| want[key as usize] != 0).collect();
    assert_eq!(ids, want_ids, "{ctx}: kv ids");
    assert_eq!(
        r.count("kv").unwrap(),
        want_ids.len() as u64,
        "{ctx}: count kv"
    );
    // Point reads and a range agree with the scan.
    for _ in 0..6 {
        let key = rng.range(1, KEYS);
        let got = r.get("kv", key).unwrap().map(|v| v.into_vec());
        let ver = want[key as usize];
        assert_eq!(
            got.is_some(),
            ver != 0,
            "{ctx}: get kv/{key} disagrees with iter"
        );
        if let Some(v) = got {
            assert!(
                v == value(key, ver),
                "{ctx}: get kv/{key} gives another value"
            );
        }
    }
    let (a, b) = (rng.range(1, KEYS), rng.range(1, KEYS));
    let (a, b) = (a.min(b), a.max(b));
    let ranged: Vec<u64> = r
        .range("kv", a..=b)
        .unwrap()
        .map(|x| x.unwrap().0)
        .collect();
    let want_range: Vec<u64> = want_ids
        .iter()
        .copied()
        .filter(|id| (a..=b).contains(id))
        .collect();
    assert_eq!(ranged, want_range, "{ctx}: range {a}..={b}");
    // The sequence documents of the last SEQ_WINDOW commits.
    let seq: Vec<u64> = r.iter("seq").unwrap().map(|x| x.unwrap().0).collect();
    let want_seq: Vec<u64> = (k.saturating_sub(SEQ_WINDOW - 1).max(1)..=k).collect();
    assert_eq!(seq, want_seq, "{ctx}: seq ids");
    assert_eq!(
        r.count("seq").unwrap(),
        want_seq.len() as u64,
        "{ctx}: count seq"
    );
    k
}

#[test]
fn many_readers_see_exact_snapshots_during_writes_checkpoints_and_compactions() {
    let secs = support::env_usize("OBJ_CONC_SECS", 4) as u64;
    let seed = support::seeds_from_env("OBJ_CONC_SEED", &[1])[0];
    let readers = support::env_usize("OBJ_CONC_READERS", 8) as u64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concurrency.obj");
    let db = Arc::new(
        Db::open(
            &path,
            Options::default()
                .durability(Durability::Eventual)
                .checkpoint_frames(300)
                // Small, so readers, the writer and checkpoints evict each other's pages.
                .cache_size(512 << 10)
                .busy_timeout(Duration::from_secs(30)),
        )
        .unwrap(),
    );
    // expected[k] = the kv versions after commit k.
    let expected: Arc<RwLock<Vec<Versions>>> =
        Arc::new(RwLock::new(vec![Arc::new(vec![0; KEYS as usize + 1])]));
    let stop = Arc::new(AtomicBool::new(false));
    let counters: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
    const COMMITS: usize = 0;
    const ROLLBACKS: usize = 1;
    const CHECKS: usize = 2;
    const HELD: usize = 3;
    const CHECKPOINTS: usize = 4;
    const COMPACTIONS: usize = 5;
    let mut handles = Vec::new();

    // The writer: commit k changes 1-4 keys (puts of new versions, some deletes), appends
    // seq document k and drops seq document k - SEQ_WINDOW; some transactions roll back.
    {
        let (db, expected, stop, counters) =
            (db.clone(), expected.clone(), stop.clone(), counters.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut next = (*expected.read()[k as usize]).clone();
                let mut tx = db.begin_write().unwrap();
                let version = k + 1;
                for _ in 0..rng.range(1, 4) {
                    let key = rng.range(1, KEYS);
                    if next[key as usize] != 0 && rng.chance(20) {
                        assert!(tx.delete("kv", key).unwrap());
                        next[key as usize] = 0;
                    } else {
                        tx.put("kv", key, &value(key, version)).unwrap();
                        next[key as usize] = version;
                    }
                }
                assert_eq!(tx.insert("seq", &version.to_le_bytes()).unwrap(), version);
                if version > SEQ_WINDOW {
                    assert!(tx.delete("seq", version - SEQ_WINDOW).unwrap());
                }
                tx.put("meta", 1, &version.to_le_bytes()).unwrap();
                if rng.chance(8) {
                    // Never visible; the next transaction reuses the version and the id.
                    tx.rollback();
                    counters[ROLLBACKS].fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // Published before the commit, so a reader that sees the commit finds it.
                expected.write().push(Arc::new(next));
                tx.commit().unwrap();
                k = version;
                counters[COMMITS].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Checkpoints every few milliseconds; a compaction now and then (itself a writer).
    {
        let (db, stop, counters) = (db.clone(), stop.clone(), counters.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed ^ 0xC0FFEE);
            while !stop.load(Ordering::Relaxed) {
                if rng.chance(3) {
                    db.compact().unwrap();
                    counters[COMPACTIONS].fetch_add(1, Ordering::Relaxed);
                } else {
                    db.checkpoint().unwrap();
                    counters[CHECKPOINTS].fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(rng.range(1, 6)));
            }
        }));
    }
    // Readers: fresh snapshots never go back; held ones never change.
    for r in 0..readers {
        let (db, expected, stop, counters) =
            (db.clone(), expected.clone(), stop.clone(), counters.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed ^ ((r + 1) * 0x1000));
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                let rx = db.begin_read().unwrap();
                let who = format!("reader {r}");
                let k = check(&rx, &expected, &mut rng, &who);
                assert!(
                    k >= last,
                    "{who}: snapshot went back from commit {last} to {k}"
                );
                last = k;
                counters[CHECKS].fetch_add(1, Ordering::Relaxed);
                if rng.chance(25) {
                    std::thread::sleep(Duration::from_millis(rng.range(1, 20)));
                    let again = check(&rx, &expected, &mut rng, &format!("{who} (held)"));
                    assert_eq!(again, k, "{who}: a held snapshot moved");
                    counters[HELD].fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        if let Err(p) = h.join() {
            std::panic::resume_unwind(p);
        }
    }
    let n = |i: usize| counters[i].load(Ordering::Relaxed);
    eprintln!(
        "{} commits ({} rolled back), {} snapshot checks ({} held across changes), {} checkpoints, \
         {} compactions, {readers} readers, in {:.1?}",
        n(COMMITS),
        n(ROLLBACKS),
        n(CHECKS),
        n(HELD),
        n(CHECKPOINTS),
        n(COMPACTIONS),
        start.elapsed()
    );
    assert!(
        n(COMMITS) > 50
            && n(CHECKS) > 50
            && n(HELD) > 5
            && n(CHECKPOINTS) > 10
            && n(COMPACTIONS) > 0,
        "too little happened"
    );
    let mut rng = Rng::new(seed);
    let k = check(&db.begin_read().unwrap(), &expected, &mut rng, "final");
    assert_eq!(k, n(COMMITS), "final commit number");
    db.integrity_check().unwrap();
    db.close().unwrap();
    drop(db);
    let db = Db::open(&path, Options::default()).unwrap();
    assert_eq!(
        check(&db.begin_read().unwrap(), &expected, &mut rng, "reopened"),
        k
    );
    db.integrity_check().unwrap();
}
