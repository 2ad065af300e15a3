//! One transaction that writes far more than memory holds: its changed pages spill to a
//! file, the commit streams them into the log, and peak RSS stays within the cache plus a
//! fixed slack. `OBJ_LARGE_TXN_BYTES` sets how much the transaction writes (default
//! 512 MiB). One test per file: peak RSS (`VmHWM`) covers the whole process.

use obj_core::{Db, Durability, Options, Reader};

const CACHE: usize = 8 << 20;
/// The dirty-page budget (a quarter of the cache, at least 4 MiB), the batch buffers of
/// the spill and the log (4 MiB each), the log's index and the allocator's slack.
const SLACK: u64 = 64 << 20;
const VALUE: usize = 1 << 20;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
}

#[test]
fn rss_stays_bounded_while_one_transaction_writes_more_than_memory() {
    let total: u64 = std::env::var("OBJ_LARGE_TXN_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512 << 20);
    let docs = (total / VALUE as u64).max(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.obj");
    let opts = || {
        Options::default()
            .cache_size(CACHE)
            .durability(Durability::Eventual)
    };
    let mut buf = vec![0u8; VALUE];
    let before = status_kib("VmRSS:") * 1024;
    {
        let db = Db::open(&path, opts()).unwrap();
        let mut tx = db.begin_write().unwrap();
        for i in 1..=docs {
            fill(&mut buf, i);
            tx.insert("c", &buf).unwrap();
        }
        tx.commit().unwrap();
        let r = db.begin_read().unwrap();
        assert_eq!(r.count("c").unwrap(), docs);
        for i in [1, docs / 2 + 1, docs] {
            fill(&mut buf, i);
            assert!(r.get("c", i).unwrap().unwrap().into_vec() == buf);
        }
        drop(r);
        db.checkpoint().unwrap();
    }
    let peak = status_kib("VmHWM:") * 1024;
    let growth = peak.saturating_sub(before);
    assert!(
        growth < CACHE as u64 + SLACK,
        "peak RSS grew by {} MiB writing {} MiB in one transaction (cache {} MiB)",
        growth >> 20,
        (docs * VALUE as u64) >> 20,
        CACHE >> 20
    );
    let db = Db::open(&path, opts()).unwrap();
    assert_eq!(db.begin_read().unwrap().count("c").unwrap(), docs);
}
