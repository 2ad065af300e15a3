//! Several handles on one file in one process: each has its own open file description,
//! so they meet exactly as handles in different processes do (locks, read marks, the shm).

use obj_core::{shm_path, Db, Error, Options, Reader};
use std::time::Duration;

fn opts() -> Options {
    Options::default().busy_timeout(Duration::from_millis(200))
}

fn put(db: &Db, key: u64, value: &[u8]) {
    let mut tx = db.begin_write().unwrap();
    tx.put("c", key, value).unwrap();
    tx.commit().unwrap();
}

fn get(db: &Db, key: u64) -> Option<Vec<u8>> {
    db.begin_read()
        .unwrap()
        .get("c", key)
        .unwrap()
        .map(|v| v.to_vec())
}

#[test]
fn commits_of_one_handle_are_seen_by_the_next_snapshot_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.obj");
    let a = Db::open(&path, opts()).unwrap();
    let b = Db::open(&path, opts()).unwrap();
    assert!(shm_path(&path).exists());
    put(&a, 1, b"one");
    assert_eq!(get(&b, 1).as_deref(), Some(&b"one"[..]));
    let old = b.begin_read().unwrap();
    put(&b, 2, b"two");
    put(&a, 1, b"uno");
    assert!(
        old.get("c", 2).unwrap().is_none(),
        "a snapshot changed under its reader"
    );
    assert_eq!(&*old.get("c", 1).unwrap().unwrap(), b"one");
    assert_eq!(get(&a, 2).as_deref(), Some(&b"two"[..]));
    assert_eq!(get(&b, 1).as_deref(), Some(&b"uno"[..]));
    drop(old);
    // Many rounds across checkpoints (each restarts the log) and both handles.
    for i in 0..300u64 {
        let (w, r) = if i % 3 == 0 { (&a, &b) } else { (&b, &a) };
        put(w, 10 + i % 7, &i.to_le_bytes());
        assert_eq!(get(r, 10 + i % 7).unwrap(), i.to_le_bytes());
        if i % 50 == 0 {
            r.checkpoint().unwrap();
        }
    }
    a.integrity_check().unwrap();
    b.integrity_check().unwrap();
}

#[test]
fn one_writer_at_a_time_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.obj");
    let a = Db::open(&path, opts()).unwrap();
    let b = Db::open(&path, opts()).unwrap();
    let tx = a.begin_write().unwrap();
    let start = std::time::Instant::now();
    let e = b.begin_write().err().unwrap();
    assert!(
        matches!(&e, Error::Busy(m) if m.contains("busy_timeout")),
        "{e:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(190));
    drop(tx);
    put(&b, 1, b"after");
    assert_eq!(get(&a, 1).as_deref(), Some(&b"after"[..]));
}

#[test]
fn a_long_reader_in_one_handle_keeps_the_log_from_restarting_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.obj");
    let a = Db::open(&path, opts()).unwrap();
    let b = Db::open(&path, opts()).unwrap();
    for k in 1..21 {
        put(&b, k, b"v0");
    }
    b.checkpoint().unwrap();
    let view = a.begin_read().unwrap();
    for round in 1..6u8 {
        for k in 1..21 {
            put(&b, k, &[b'v', b'0' + round]);
        }
        let cp = b.checkpoint().unwrap();
        assert!(
            !cp.wal_reset,
            "the log restarted under a reader in another handle"
        );
        for k in 1..21 {
            assert_eq!(&*view.get("c", k).unwrap().unwrap(), b"v0");
        }
    }
    let seen = b.readers();
    assert_eq!((seen.other_marks, seen.other_readers), (1, 1), "{seen:?}");
    drop(view);
    let cp = b.checkpoint().unwrap();
    assert!(
        cp.wal_reset,
        "the log did not restart once the reader ended: {cp:?}"
    );
    assert_eq!(b.wal_frames(), 0);
    assert_eq!(get(&a, 3).as_deref(), Some(&b"v5"[..]));
}

#[test]
fn more_snapshots_than_marks_share_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.obj");
    let handles: Vec<Db> = (0..4).map(|_| Db::open(&path, opts()).unwrap()).collect();
    let mut views = Vec::new();
    for i in 0..60u64 {
        let h = &handles[i as usize % 4];
        put(h, 1, &i.to_le_bytes());
        views.push((i, handles[(i as usize + 1) % 4].begin_read().unwrap()));
    }
    for (i, v) in &views {
        assert_eq!(&*v.get("c", 1).unwrap().unwrap(), &i.to_le_bytes());
    }
}

#[test]
fn a_deleted_or_damaged_shm_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.obj");
    {
        let a = Db::open(&path, opts()).unwrap();
        put(&a, 1, b"kept");
    }
    std::fs::remove_file(shm_path(&path)).unwrap();
    let a = Db::open(&path, opts()).unwrap();
    assert_eq!(get(&a, 1).as_deref(), Some(&b"kept"[..]));
    put(&a, 2, b"more");
    // Zeroed while open: the next handle and the next snapshot rebuild the header.
    std::fs::write(shm_path(&path), vec![0u8; 4096]).unwrap();
    let b = Db::open(&path, opts()).unwrap();
    assert_eq!(get(&b, 2).as_deref(), Some(&b"more"[..]));
    put(&b, 3, b"three");
    assert_eq!(get(&a, 3).as_deref(), Some(&b"three"[..]));
    put(&a, 4, b"four");
    assert_eq!(get(&b, 4).as_deref(), Some(&b"four"[..]));
}

#[test]
fn a_reader_rebuilds_a_zeroed_header_also_while_its_own_writer_is_in_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.obj");
    let a = Db::open(&path, opts()).unwrap();
    let ro = Db::open(&path, opts().read_only(true)).unwrap();
    put(&a, 1, b"one");
    std::fs::write(shm_path(&path), vec![0u8; 4096]).unwrap();
    // A read-only handle rebuilds it (taking the write lock for that only).
    assert_eq!(get(&ro, 1).as_deref(), Some(&b"one"[..]));
    let mut tx = a.begin_write().unwrap();
    tx.put("c", 2, b"two").unwrap();
    std::fs::write(shm_path(&path), vec![0u8; 4096]).unwrap();
    // The writer's own handle reads while its transaction holds the write lock.
    assert_eq!(get(&a, 1).as_deref(), Some(&b"one"[..]));
    tx.commit().unwrap();
    assert_eq!(get(&ro, 2).as_deref(), Some(&b"two"[..]));
}

/// A checkpointer killed after rewriting the log's header but before publishing it: the
/// shm still names the old generation. The next writer must not chain frames to the old
/// salts behind the new header (a later recovery would drop them).
#[test]
fn a_writer_after_a_half_done_restart_chains_to_the_header_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.obj");
    let a = Db::open(&path, opts()).unwrap();
    put(&a, 1, b"before");
    {
        // A reader at the latest commit lets the checkpoint copy everything but keeps it
        // from restarting the log.
        let c = Db::open(&path, opts().read_only(true)).unwrap();
        let view = c.begin_read().unwrap();
        assert!(!a.checkpoint().unwrap().wal_reset);
        drop(view);
    }
    // What the killed restart left: a new header (next generation, new salts) in place.
    let wal = obj_core::wal_path(&path);
    let mut log = std::fs::read(&wal).unwrap();
    let generation = u64::from_le_bytes(log[16..24].try_into().unwrap()) + 1;
    log[16..24].copy_from_slice(&generation.to_le_bytes());
    log[24..32].copy_from_slice(&0x1234_5678_9abc_def0u64.to_le_bytes());
    let crc = crc32(&log[..60]);
    log[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&wal, &log).unwrap();
    let mut shm = std::fs::read(shm_path(&path)).unwrap();
    shm[17 * 8..18 * 8].copy_from_slice(&1u64.to_le_bytes());
    std::fs::write(shm_path(&path), &shm).unwrap();
    put(&a, 2, b"after");
    // As after a crash: the next opener recovers from the log (nothing checkpointed).
    a.close_without_checkpoint().unwrap();
    let fresh = Db::open(&path, opts()).unwrap();
    assert_eq!(get(&fresh, 1).as_deref(), Some(&b"before"[..]));
    assert_eq!(
        get(&fresh, 2).as_deref(),
        Some(&b"after"[..]),
        "a commit was lost"
    );
    fresh.integrity_check().unwrap();
}

/// CRC-32 (IEEE), as the log's header uses.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Readers in a tight loop of short snapshots (another handle, as another process) must
/// not keep the log from ever restarting: a checkpoint that copied everything asks them
/// to move to main-file-only snapshots and restarts under those.
#[test]
fn a_log_restarts_beside_readers_that_never_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.obj");
    let w = Db::open(
        &path,
        opts()
            .durability(obj_core::Durability::None)
            .checkpoint_frames(64),
    )
    .unwrap();
    put(&w, 1, &0u64.to_le_bytes());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let r = Db::open(&path, opts()).unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut last = 0u64;
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let v = get(&r, 1).unwrap();
                    let n = u64::from_le_bytes(v[..8].try_into().unwrap());
                    assert!(n >= last, "a reader went back in time: {n} < {last}");
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let (mut most, mut restarts, mut before) = (0u64, 0u64, 0u64);
    for n in 1..=3000u64 {
        put(&w, 1, &n.to_le_bytes());
        let frames = w.wal_frames();
        most = most.max(frames);
        if frames < before {
            restarts += 1;
        }
        before = frames;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert!(
        restarts > 0,
        "the log never restarted beside busy readers (max {most} frames)"
    );
    assert!(most < 64 * 40, "the log grew to {most} frames");
    assert_eq!(get(&w, 1).unwrap(), 3000u64.to_le_bytes());
}

/// A checkpointer killed after emptying the log for a restart but before publishing it:
/// a reader elsewhere whose index still names the old frames must read the main file
/// (which holds them all), not fail on frames that are gone.
#[test]
fn a_reader_after_a_restart_that_emptied_the_log_and_died_reads_the_main_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.obj");
    let a = Db::open(&path, opts()).unwrap();
    for k in 1..50 {
        put(&a, k, &k.to_le_bytes());
    }
    let b = Db::open(&path, opts().read_only(true)).unwrap();
    {
        let view = b.begin_read().unwrap();
        assert!(!a.checkpoint().unwrap().wal_reset);
        drop(view);
    }
    std::fs::File::options()
        .write(true)
        .open(obj_core::wal_path(&path))
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut shm = std::fs::read(shm_path(&path)).unwrap();
    shm[17 * 8..18 * 8].copy_from_slice(&1u64.to_le_bytes());
    std::fs::write(shm_path(&path), &shm).unwrap();
    for k in 1..50 {
        assert_eq!(get(&b, k).unwrap(), k.to_le_bytes());
    }
    put(&a, 50, b"after");
    assert_eq!(get(&b, 50).as_deref(), Some(&b"after"[..]));
    a.close_without_checkpoint().unwrap();
    drop(b);
    let fresh = Db::open(&path, opts()).unwrap();
    assert_eq!(get(&fresh, 50).as_deref(), Some(&b"after"[..]));
    assert_eq!(get(&fresh, 7).unwrap(), 7u64.to_le_bytes());
    fresh.integrity_check().unwrap();
}

/// The shm deleted while handles have it open: a handle opened afterwards works on a new
/// one. Commits through either must never overwrite the other's in the log.
#[test]
fn handles_on_a_deleted_and_a_new_shm_never_overwrite_each_others_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.obj");
    let a = Db::open(&path, opts()).unwrap();
    put(&a, 1, b"one");
    std::fs::remove_file(shm_path(&path)).unwrap();
    let b = Db::open(&path, opts()).unwrap();
    assert_eq!(get(&b, 1).as_deref(), Some(&b"one"[..]));
    put(&a, 2, b"two from a");
    put(&b, 3, b"three from b");
    put(&a, 4, b"four from a");
    put(&b, 5, b"five from b");
    assert_eq!(get(&b, 2).as_deref(), Some(&b"two from a"[..]));
    // Neither side can see all of the other's marks: no checkpoint copies or restarts.
    for h in [&a, &b] {
        let cp = h.checkpoint().unwrap();
        assert!(
            cp.deferred && !cp.wal_reset && cp.frames_copied == 0,
            "{cp:?}"
        );
    }
    a.close().unwrap();
    b.close().unwrap();
    let fresh = Db::open(&path, opts()).unwrap();
    for (k, v) in [
        (1, &b"one"[..]),
        (2, b"two from a"),
        (3, b"three from b"),
        (4, b"four from a"),
        (5, b"five from b"),
    ] {
        assert_eq!(get(&fresh, k).as_deref(), Some(v), "commit {k} was lost");
    }
    fresh.integrity_check().unwrap();
}
