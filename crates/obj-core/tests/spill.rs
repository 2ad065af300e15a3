//! Transactions larger than their memory budget: changed pages move to a spill file and
//! come back when read or written again; the commit streams them into the log. With an
//! 8 MiB cache the budget is 4 MiB (1,024 pages of 4 KiB), so these transactions spill
//! many times over.

use obj_core::{Db, EncryptionKey, Options, Reader};

const CACHE: usize = 1 << 20;
const VALUE: usize = 64 << 10;

fn value(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(VALUE);
    while out.len() < VALUE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn opts() -> Options {
    Options::default().cache_size(CACHE)
}

fn spill_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-spill-"))
        .collect()
}

/// Spill files this process holds open (unlinked, so only /proc still names them).
fn open_spill_files() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|fds| {
            fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|t| t.to_string_lossy().contains("-spill-"))
                .count()
        })
        .unwrap_or(1)
}

fn check(r: &impl Reader, n: u64, what: &str) {
    assert_eq!(r.count("big").unwrap(), n, "{what}: count");
    for i in 1..=n {
        let got = r.get("big", i).unwrap().expect("present").into_vec();
        assert!(got == value(i), "{what}: document {i} differs");
    }
}

#[test]
fn a_transaction_far_larger_than_its_budget_reads_its_writes_and_commits_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.obj");
    let n = 600; // 600 x 64 KiB = 37.5 MiB of overflow pages, ~9x the budget
    {
        let db = Db::open(&path, opts()).unwrap();
        let mut tx = db.begin_write().unwrap();
        for i in 1..=n / 2 {
            assert_eq!(tx.insert("big", &value(i)).unwrap(), i);
        }
        // A frozen view of the transaction half-way sees the first half, now and later.
        let view = tx.view().unwrap();
        for i in n / 2 + 1..=n {
            assert_eq!(tx.insert("big", &value(i)).unwrap(), i);
        }
        check(&tx, n, "the transaction's own reads");
        check(&view, n / 2, "the view taken half-way");
        let view_after = view.clone();
        // Rewrite some early documents (their pages come back from the spill file).
        for i in (1..=20).step_by(3) {
            tx.put("big", i, &value(i)).unwrap();
        }
        assert!(
            spill_files(dir.path()).is_empty(),
            "the spill file is unlinked"
        );
        assert!(open_spill_files() >= 1, "the transaction spilled");
        tx.commit().unwrap();
        check(&view_after, n / 2, "the view after the commit");
        drop((view, view_after));
        check(&db.begin_read().unwrap(), n, "a reader after the commit");
        db.integrity_check().unwrap();
    }
    let db = Db::open(&path, opts()).unwrap();
    check(
        &db.begin_read().unwrap(),
        n,
        "after reopening (recovered from the log)",
    );
    db.checkpoint().unwrap();
    check(&db.begin_read().unwrap(), n, "after a checkpoint");
    db.integrity_check().unwrap();
}

#[test]
fn a_rolled_back_spilled_transaction_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.obj");
    let db = Db::open(&path, opts()).unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.insert("big", &value(1)).unwrap();
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    for i in 2..=300 {
        tx.insert("big", &value(i)).unwrap();
    }
    tx.rollback();
    check(&db.begin_read().unwrap(), 1, "after the rollback");
    // The next transaction starts clean and commits normally.
    let mut tx = db.begin_write().unwrap();
    assert_eq!(tx.insert("big", &value(2)).unwrap(), 2);
    tx.commit().unwrap();
    drop(db);
    let db = Db::open(&path, opts()).unwrap();
    check(&db.begin_read().unwrap(), 2, "after reopening");
    db.integrity_check().unwrap();
    assert!(spill_files(dir.path()).is_empty());
}

#[test]
fn encrypted_databases_spill_encrypted_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.obj");
    let with_key = || opts().encryption_key(Some(EncryptionKey::Raw([7u8; 32])));
    let n = 200;
    {
        let db = Db::open(&path, with_key()).unwrap();
        let mut tx = db.begin_write().unwrap();
        for i in 1..=n {
            tx.insert("big", &value(i)).unwrap();
        }
        check(&tx, n, "the transaction's own reads");
        tx.commit().unwrap();
    }
    let db = Db::open(&path, with_key()).unwrap();
    check(&db.begin_read().unwrap(), n, "after reopening");
    db.integrity_check().unwrap();
}

#[test]
fn deleting_what_a_transaction_spilled_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.obj");
    let db = Db::open(&path, opts()).unwrap();
    let mut tx = db.begin_write().unwrap();
    for i in 1..=300 {
        tx.insert("big", &value(i)).unwrap();
    }
    for i in 1..=300 {
        if i % 2 == 0 {
            assert!(tx.delete("big", i).unwrap());
        }
    }
    tx.commit().unwrap();
    let r = db.begin_read().unwrap();
    assert_eq!(r.count("big").unwrap(), 150);
    for i in (1..=300).step_by(2) {
        assert!(r.get("big", i).unwrap().unwrap().into_vec() == value(i));
    }
    drop(r);
    db.integrity_check().unwrap();
}
