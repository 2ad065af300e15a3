//! Memory stays bounded by the page cache whatever the length of the WAL: a reader pins an
//! old snapshot (so no checkpoint can reset the log) while a writer commits
//! `OBJ_BOUNDED_MEMORY_BYTES` (default 2 GiB) of page versions, then the log is recovered
//! at open, and finally checkpointed.
//!
//! Peak RSS (`VmHWM`) covers the whole process, so this file holds one test and keeps its
//! own allocations small (one value at a time).

use obj_core::{Db, Durability, Options, Reader};

const CACHE: usize = 8 << 20;
/// What the engine may use beyond the cache: the index of the log, one transaction's pages
/// (written twice: the pages and the frames), the binary and the allocator's slack.
const SLACK: u64 = 64 << 20;
const DOCS: u64 = 4;
const VALUE: usize = 1 << 20;
const FRAME: u64 = 4096 + 32;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Version `version` of document `doc`: incompressible bytes that differ between versions.
fn value(doc: u64, version: u64) -> Vec<u8> {
    let mut x = (doc << 32 | version).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(VALUE);
    while out.len() < VALUE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn check_all(r: &impl Reader, ids: &[u64], versions: &[u64], what: &str) {
    for (k, &id) in ids.iter().enumerate() {
        let got = r
            .get("c", id)
            .unwrap()
            .expect("document present")
            .into_vec();
        assert!(
            got == value(k as u64, versions[k]),
            "{what}: document {id} is not at version {}",
            versions[k]
        );
    }
}

#[test]
fn rss_stays_bounded_while_a_pinned_reader_holds_a_long_log() {
    let target: u64 = std::env::var("OBJ_BOUNDED_MEMORY_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2 << 30);
    let limit_kib = (CACHE as u64 + SLACK) / 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.obj");
    let opts = Options::default()
        .cache_size(CACHE)
        .durability(Durability::None)
        .compression(false);
    let started = std::time::Instant::now();

    let db = Db::open(&path, opts.clone()).unwrap();
    let mut tx = db.begin_write().unwrap();
    let ids: Vec<u64> = (0..DOCS)
        .map(|k| tx.insert("c", &value(k, 0)).unwrap())
        .collect();
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let pinned = db.begin_read().unwrap();

    // Rewrite the documents in turn until the log holds `target` bytes of frames.
    let mut versions = vec![0u64; DOCS as usize];
    let mut commits = 0u64;
    while db.wal_frames() * FRAME < target {
        let k = (commits % DOCS) as usize;
        versions[k] += 1;
        let mut tx = db.begin_write().unwrap();
        tx.put("c", ids[k], &value(k as u64, versions[k])).unwrap();
        tx.commit().unwrap();
        commits += 1;
    }
    let log_bytes = db.wal_frames() * FRAME;
    assert!(
        log_bytes >= target,
        "the log was reset under a pinned reader"
    );
    assert!(
        std::fs::metadata(obj_core::wal_path(&path)).unwrap().len() >= target,
        "the WAL file holds the frames"
    );
    // The pinned reader still reads its snapshot, a new one the latest commit.
    check_all(&pinned, &ids, &[0; DOCS as usize], "pinned reader");
    check_all(&db.begin_read().unwrap(), &ids, &versions, "new reader");
    let written_kib = status_kib("VmHWM:");

    // Recovery of the whole log at open (no checkpoint on the way out).
    drop(pinned);
    db.close_without_checkpoint().unwrap();
    drop(db);
    let db = Db::open(&path, opts.clone()).unwrap();
    assert_eq!(db.wal_frames() * FRAME, log_bytes, "every frame recovered");
    check_all(&db.begin_read().unwrap(), &ids, &versions, "after recovery");
    let recovered_kib = status_kib("VmHWM:");

    // Checkpoint (the log is reset), reopen, read again.
    let info = db.checkpoint().unwrap();
    assert!(info.wal_reset && !info.deferred, "{info:?}");
    drop(db);
    let db = Db::open(&path, opts).unwrap();
    assert_eq!(db.wal_frames(), 0);
    check_all(
        &db.begin_read().unwrap(),
        &ids,
        &versions,
        "after checkpoint",
    );
    drop(db);
    let peak_kib = status_kib("VmHWM:");

    eprintln!(
        "{commits} commits, {} MiB of WAL in {:.1}s; peak RSS {} MiB after the writes, {} MiB \
         after recovery, {} MiB at the end (limit {} MiB)",
        log_bytes >> 20,
        started.elapsed().as_secs_f64(),
        written_kib >> 10,
        recovered_kib >> 10,
        peak_kib >> 10,
        limit_kib >> 10
    );
    assert!(
        written_kib < limit_kib,
        "peak RSS {written_kib} KiB while writing exceeds cache + 64 MiB ({limit_kib} KiB)"
    );
    assert!(
        peak_kib < limit_kib,
        "peak RSS {peak_kib} KiB (recovery, checkpoint) exceeds cache + 64 MiB ({limit_kib} KiB)"
    );
}
