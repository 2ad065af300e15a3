//! Power-loss simulation and I/O fault injection.
//!
//! Each case runs a random workload on simulated disks (id collections and a keyed one,
//! values and keys small and large), stops it at a random I/O operation (everything after
//! it is lost, as when the power goes), then builds what reached the disk:
//! synced data plus a random, possibly torn and reordered part of the unsynced writes. The
//! reopened database must equal some committed state that includes every commit whose sync
//! returned, and pass `integrity_check`.
//!
//! Scale with OBJ_POWERLOSS_CASES (default 300) and OBJ_FAULT_STEPS.

use obj_core::backend::MemoryBackend;
use obj_core::fault::{CrashRng, FaultPlan, Faulty, OpKind, SimDisk};
use obj_core::{CollectionKind, Db, Durability, Error, Options, Reader, MAX_KEY_LEN};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Where a document lives: an id of an id collection or a key of a keyed one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pk {
    Id(u64),
    Key(Vec<u8>),
}

type State = BTreeMap<(String, Pk), Vec<u8>>;

/// The keyed collection of the workloads.
const KEYED: &str = "k";

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
                out.insert((c.clone(), Pk::Key(k)), v.into_vec());
            }
        } else {
            for item in rx.iter(&c)? {
                let (id, v) = item?;
                out.insert((c.clone(), Pk::Id(id)), v.into_vec());
            }
        }
    }
    Ok(out)
}

/// Runs commits until the plan's injected failure stops the workload. Returns the committed
/// states (index 0 = empty) and how many of them are known durable.
fn workload(
    db: &Db,
    rng: &mut CrashRng,
    durability: Durability,
    commits: u64,
) -> (Vec<State>, usize) {
    let mut states = vec![State::new()];
    let mut durable = 0usize;
    let mut model = State::new();
    for _ in 0..commits {
        let Ok(mut tx) = db.begin_write() else { break };
        let mut next = model.clone();
        let mut failed = false;
        for _ in 0..1 + rng.below(6) {
            let c = ["a", "b", KEYED][rng.below(3) as usize].to_string();
            let size = if rng.below(8) == 0 {
                3000 + rng.below(9000)
            } else {
                rng.below(200)
            } as usize;
            let val: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
            let res = match rng.below(4) {
                0 if !next.is_empty() => {
                    let k = next
                        .keys()
                        .nth(rng.below(next.len() as u64) as usize)
                        .cloned()
                        .unwrap();
                    match &k.1 {
                        Pk::Id(id) => tx.delete(&k.0, *id),
                        Pk::Key(key) => tx.delete_key(&k.0, key),
                    }
                    .map(|_| {
                        next.remove(&k);
                    })
                }
                1 if !next.is_empty() => {
                    let k = next
                        .keys()
                        .nth(rng.below(next.len() as u64) as usize)
                        .cloned()
                        .unwrap();
                    match &k.1 {
                        Pk::Id(id) => tx.put(&k.0, *id, &val),
                        Pk::Key(key) => tx.put_key(&k.0, key, &val),
                    }
                    .map(|_| {
                        next.insert(k, val.clone());
                    })
                }
                _ if c == KEYED => {
                    // Mostly short keys; one in five long, up to the limit.
                    let len = if rng.below(5) == 0 {
                        200 + rng.below(MAX_KEY_LEN as u64 - 199)
                    } else {
                        1 + rng.below(12)
                    } as usize;
                    let key: Vec<u8> = (0..len)
                        .map(|_| b'a' + (rng.next_u64() % 4) as u8)
                        .collect();
                    tx.put_key(&c, &key, &val).map(|_| {
                        next.insert((c.clone(), Pk::Key(key)), val.clone());
                    })
                }
                _ => tx.insert(&c, &val).map(|id| {
                    next.insert((c.clone(), Pk::Id(id)), val.clone());
                }),
            };
            if res.is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            break;
        }
        states.push(next.clone());
        match tx.commit() {
            Ok(()) => {
                model = next;
                if durability == Durability::Immediate {
                    durable = states.len() - 1;
                }
            }
            Err(_) => break,
        }
        if rng.below(5) == 0 {
            match db.checkpoint() {
                // A completed checkpoint made everything before it durable in any mode but None.
                Ok(_) if durability != Durability::None => durable = states.len() - 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    (states, durable)
}

fn run_case(seed: u64, durability: Durability) -> Result<(), String> {
    let mut rng = CrashRng::new(seed);
    let (main, wal) = (SimDisk::new(), SimDisk::new());
    let kind = [OpKind::Write, OpKind::Sync, OpKind::Any, OpKind::SetLen][rng.below(4) as usize];
    let plan = FaultPlan::new(kind, 5 + rng.below(env("OBJ_FAULT_STEPS", 400)), true);
    let opts = Options::default()
        .durability(durability)
        .checkpoint_frames(4 + rng.below(60));
    let db = Db::open_with_backends(
        Box::new(Faulty::new(main.clone(), plan.clone())),
        Box::new(Faulty::new(wal.clone(), plan.clone())),
        opts.clone(),
    );
    let (states, durable) = match &db {
        Ok(db) => workload(db, &mut rng, durability, 40),
        Err(_) => (vec![State::new()], 0),
    };
    // Nothing after the failure reaches the disk: the process is gone.
    drop(db);
    if std::env::var("OBJ_POWERLOSS_SEED").is_ok() {
        eprintln!(
            "fault {kind:?} at {}; wal pending: {:?}",
            plan.seen(),
            wal.describe_pending()
        );
        eprintln!("durable wal len {}", wal.contents().len());
    }
    let (m, w) = (main.crash(&mut rng), wal.crash(&mut rng));
    let reopened = Db::open_with_backends(
        Box::new(MemoryBackend::with_contents(m)),
        Box::new(MemoryBackend::with_contents(w)),
        Options::default().durability(durability),
    );
    let db = match reopened {
        Ok(db) => db,
        // A crash before the first durable write of a new file may leave no database.
        Err(Error::Corruption(m)) if durable == 0 && states.len() <= 2 => {
            return Ok(()).map_err(|_: ()| m)
        }
        Err(e) => {
            return Err(format!(
                "seed {seed}: reopen failed: {e} (durable commits {durable})"
            ))
        }
    };
    let got = dump(&db).map_err(|e| format!("seed {seed}: read after crash: {e}"))?;
    let k = states.iter().rposition(|s| *s == got).ok_or_else(|| {
        format!("seed {seed}: state after crash matches no committed state ({} commits tried, {durable} durable, {kind:?} fault)", states.len() - 1)
    })?;
    if k < durable {
        return Err(format!("seed {seed}: lost commits: recovered state {k} but {durable} were durable ({kind:?} fault)"));
    }
    db.integrity_check()
        .map_err(|e| format!("seed {seed}: integrity after crash: {e}"))?;
    // The recovered database takes new commits.
    let mut tx = db.begin_write().map_err(|e| format!("seed {seed}: {e}"))?;
    tx.insert("after", b"crash")
        .map_err(|e| format!("seed {seed}: {e}"))?;
    tx.commit().map_err(|e| format!("seed {seed}: {e}"))?;
    Ok(())
}

fn sweep(durability: Durability, salt: u64) {
    if let Ok(seed) = std::env::var("OBJ_POWERLOSS_SEED") {
        let seed: u64 = seed.parse().expect("OBJ_POWERLOSS_SEED is a number");
        run_case(seed, durability).unwrap();
        return;
    }
    let cases = env("OBJ_POWERLOSS_CASES", 300);
    let failures: Vec<String> = (0..cases)
        .filter_map(|i| run_case(i ^ salt, durability).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed; first: {}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn power_loss_at_random_points_immediate() {
    sweep(Durability::Immediate, 0x1000);
}

#[test]
fn power_loss_at_random_points_eventual() {
    sweep(Durability::Eventual, 0x2000);
}

/// Fails the Nth operation once, for every N over a workload: the failing call returns an
/// error, the handle stays safe (a failed log write refuses later writes), and after reopening
/// nothing acknowledged is lost.
#[test]
fn each_single_fault_returns_an_error_and_loses_nothing() {
    for kind in [OpKind::Write, OpKind::Sync, OpKind::Read, OpKind::SetLen] {
        for nth in 1..env("OBJ_FAULT_STEPS", 160) {
            let disk = (SimDisk::new(), SimDisk::new());
            let plan = FaultPlan::new(kind, nth, false);
            let opts = Options::default().checkpoint_frames(8).cache_size(0);
            let mut acked = State::new();
            // Values of commits that returned an error: such a commit may still be in the
            // log, so until an acknowledged commit writes the key again, a reopen may
            // show them instead of the acknowledged value.
            let mut unacked: BTreeMap<(String, Pk), Vec<Vec<u8>>> = BTreeMap::new();
            if let Ok(db) = Db::open_with_backends(
                Box::new(Faulty::new(disk.0.clone(), plan.clone())),
                Box::new(Faulty::new(disk.1.clone(), plan.clone())),
                opts.clone(),
            ) {
                for i in 0..30u64 {
                    let mut writes = Vec::new();
                    let res = db.begin_write().and_then(|mut tx| {
                        let value = i.to_le_bytes().repeat(1 + (i as usize % 5) * 200);
                        let id = tx.insert("c", &value)?;
                        writes.push((("c".to_string(), Pk::Id(id)), value.clone()));
                        // A keyed write beside it: a new key, or one written before again.
                        let key = format!("key{:04}", i % 5 + (i / 10) * 10).into_bytes();
                        tx.put_key(KEYED, &key, &value)?;
                        writes.push(((KEYED.to_string(), Pk::Key(key)), value));
                        tx.commit()
                    });
                    for (k, v) in writes {
                        if res.is_ok() {
                            unacked.remove(&k);
                            acked.insert(k, v);
                        } else {
                            unacked.entry(k).or_default().push(v);
                        }
                    }
                    if i % 7 == 6 {
                        let _ = db.checkpoint();
                    }
                }
                let _ = db.close();
            }
            // Reopen what the disks hold (no crash: the OS kept every write).
            let db = Db::open_with_backends(
                Box::new(MemoryBackend::with_contents(disk.0.contents())),
                Box::new(MemoryBackend::with_contents(disk.1.contents())),
                opts,
            )
            .unwrap_or_else(|e| panic!("{kind:?} fault at op {nth}: reopen failed: {e}"));
            let got = dump(&db).unwrap();
            for (k, v) in &acked {
                let maybe = unacked.get(k).map_or(&[][..], Vec::as_slice);
                assert!(
                    got.get(k).is_some_and(|g| g == v || maybe.contains(g)),
                    "{kind:?} fault at op {nth}: acknowledged {k:?} lost (got {:?} bytes)",
                    got.get(k).map(Vec::len)
                );
            }
            db.integrity_check()
                .unwrap_or_else(|e| panic!("{kind:?} fault at op {nth}: {e}"));
        }
    }
}
