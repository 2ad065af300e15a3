//! The public engine API: transactions, visibility, rollback, reopen, checkpoint, errors.

use obj_core::{wal_path, Db, Durability, Error, Locking, Options, Reader, WAL_HEADER_SIZE};
use std::time::Duration;

fn open(path: &std::path::Path) -> Db {
    Db::open(path, Options::default()).unwrap()
}

#[test]
fn insert_get_put_delete_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.obj");
    {
        let db = open(&path);
        let mut tx = db.begin_write().unwrap();
        let a = tx.insert("orders", b"one").unwrap();
        let b = tx.insert("orders", b"two").unwrap();
        assert_eq!((a, b), (1, 2));
        // Reads in the write transaction see its own writes.
        assert_eq!(&*tx.get("orders", 2).unwrap().unwrap(), b"two");
        assert!(!tx.put("orders", 10, b"ten").unwrap());
        assert!(tx.put("orders", 10, b"TEN").unwrap());
        assert_eq!(tx.insert("orders", b"eleven").unwrap(), 11);
        assert!(tx.delete("orders", 1).unwrap());
        assert!(!tx.delete("orders", 1).unwrap());
        assert_eq!(tx.count("orders").unwrap(), 3);
        tx.commit().unwrap();
    }
    let db = open(&path);
    let rx = db.begin_read().unwrap();
    let all: Vec<(u64, Vec<u8>)> = rx
        .iter("orders")
        .unwrap()
        .map(|r| r.map(|(id, v)| (id, v.into_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        all,
        vec![
            (2, b"two".to_vec()),
            (10, b"TEN".to_vec()),
            (11, b"eleven".to_vec())
        ]
    );
    let mid: Vec<u64> = rx
        .range("orders", 3..=10)
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(mid, vec![10]);
    assert_eq!(rx.count("missing").unwrap(), 0);
    assert!(rx.get("missing", 1).unwrap().is_none());
    assert_eq!(rx.iter("missing").unwrap().count(), 0);
    assert_eq!(rx.collections().unwrap(), vec!["orders".to_string()]);
    db.integrity_check().unwrap();
}

#[test]
fn dropping_a_write_txn_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("r.obj"));
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"kept").unwrap();
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"gone").unwrap();
    tx.insert("new", b"gone").unwrap();
    drop(tx);
    let rx = db.begin_read().unwrap();
    assert_eq!(rx.count("c").unwrap(), 1);
    assert_eq!(rx.count("new").unwrap(), 0);
    // The id handed out by the rolled-back insert is handed out again.
    let mut tx = db.begin_write().unwrap();
    assert_eq!(tx.insert("c", b"x").unwrap(), 2);
    tx.rollback();
    db.integrity_check().unwrap();
}

#[test]
fn readers_keep_their_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("s.obj"));
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"v1").unwrap();
    tx.commit().unwrap();
    let old = db.begin_read().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put("c", 1, b"v2").unwrap();
    tx.insert("c", b"more").unwrap();
    // Uncommitted work is invisible to readers.
    assert_eq!(
        &*db.begin_read().unwrap().get("c", 1).unwrap().unwrap(),
        b"v1"
    );
    tx.commit().unwrap();
    assert_eq!(&*old.get("c", 1).unwrap().unwrap(), b"v1");
    assert_eq!(old.count("c").unwrap(), 1);
    // A checkpoint while the old reader lives is deferred, not destructive.
    let info = db.checkpoint().unwrap();
    assert!(info.deferred && !info.wal_reset, "{info:?}");
    assert_eq!(&*old.get("c", 1).unwrap().unwrap(), b"v1");
    drop(old);
    let info = db.checkpoint().unwrap();
    assert!(info.wal_reset, "{info:?}");
    assert_eq!(
        std::fs::metadata(wal_path(db.path())).unwrap().len(),
        WAL_HEADER_SIZE as u64
    );
    assert_eq!(
        &*db.begin_read().unwrap().get("c", 1).unwrap().unwrap(),
        b"v2"
    );
    // Nothing to fold: a no-op.
    assert_eq!(db.checkpoint().unwrap(), Default::default());
}

#[test]
fn second_writer_waits_then_gets_busy() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default().busy_timeout(Duration::from_millis(100));
    let db = Db::open(dir.path().join("b.obj"), opts).unwrap();
    let tx = db.begin_write().unwrap();
    let start = std::time::Instant::now();
    assert!(matches!(db.begin_write(), Err(Error::Busy(_))));
    assert!(start.elapsed() >= Duration::from_millis(90));
    drop(tx);
    db.begin_write().unwrap();
}

#[test]
fn an_exclusive_handle_keeps_every_other_out_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.obj");
    let exclusive = Options::default()
        .busy_timeout(Duration::from_millis(50))
        .locking(Locking::Exclusive);
    let db = Db::open(&path, exclusive.clone()).unwrap();
    assert!(
        !obj_core::shm_path(&path).exists(),
        "an exclusive handle needs no shm"
    );
    let opts = Options::default().busy_timeout(Duration::from_millis(50));
    assert!(matches!(Db::open(&path, opts.clone()), Err(Error::Busy(_))));
    assert!(matches!(
        Db::open(&path, opts.clone().read_only(true)),
        Err(Error::Busy(_))
    ));
    db.close().unwrap();
    db.close().unwrap();
    assert!(matches!(db.begin_read(), Err(Error::Closed(_))));
    // And a shared handle keeps an exclusive one out.
    let shared = Db::open(&path, opts).unwrap();
    assert!(matches!(Db::open(&path, exclusive), Err(Error::Busy(_))));
    drop(shared);
}

#[test]
fn read_only_handles_refuse_writes_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.obj");
    let ro = Options::default().read_only(true);
    assert!(matches!(
        Db::open(&path, ro.clone()),
        Err(Error::NotFound(_))
    ));
    {
        let db = open(&path);
        let mut tx = db.begin_write().unwrap();
        tx.insert("c", b"x").unwrap();
        tx.commit().unwrap();
        db.close_without_checkpoint().unwrap();
    }
    let db = Db::open(&path, ro).unwrap();
    assert_eq!(db.begin_read().unwrap().count("c").unwrap(), 1);
    assert!(matches!(db.begin_write(), Err(Error::ReadOnly(_))));
    assert!(matches!(db.checkpoint(), Err(Error::ReadOnly(_))));
}

#[test]
fn bad_arguments_are_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("x.obj"));
    let mut tx = db.begin_write().unwrap();
    assert!(matches!(
        tx.insert("", b"x"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        tx.put("c", 0, b"x"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(tx.get("c", 0), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        tx.insert(&"n".repeat(300), b"x"),
        Err(Error::InvalidArgument(_))
    ));
    let bad = Options::default().page_size(1000);
    assert!(matches!(
        Db::open(dir.path().join("y.obj"), bad),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn values_from_empty_to_16_mib_and_page_sizes() {
    for page_size in [4096u32, 16384, 65536] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.obj");
        let sizes = [0usize, 1, 100, 4000, 70_000, 1 << 20, 16 << 20];
        {
            let db = Db::open(
                &path,
                Options::default()
                    .page_size(page_size)
                    .durability(Durability::None),
            )
            .unwrap();
            let mut tx = db.begin_write().unwrap();
            for &n in &sizes {
                tx.insert("blobs", &vec![(n % 251) as u8; n]).unwrap();
            }
            tx.commit().unwrap();
        }
        let db = open(&path);
        assert_eq!(db.page_size(), page_size as usize);
        let rx = db.begin_read().unwrap();
        for (i, &n) in sizes.iter().enumerate() {
            let v = rx.get("blobs", i as u64 + 1).unwrap().unwrap();
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|b| *b == (n % 251) as u8));
        }
        db.integrity_check().unwrap();
    }
}

#[test]
fn freed_space_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.obj");
    let db = Db::open(&path, Options::default().durability(Durability::None)).unwrap();
    let fill = |db: &Db| {
        let mut tx = db.begin_write().unwrap();
        for i in 0..100_000u64 {
            tx.insert(
                "docs",
                format!("document number {i} with some padding").as_bytes(),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    };
    fill(&db);
    db.checkpoint().unwrap();
    let size1 = std::fs::metadata(&path).unwrap().len();
    let mut tx = db.begin_write().unwrap();
    let ids: Vec<u64> = tx.iter("docs").unwrap().map(|r| r.unwrap().0).collect();
    for id in ids {
        assert!(tx.delete("docs", id).unwrap());
    }
    tx.commit().unwrap();
    db.integrity_check().unwrap();
    fill(&db);
    db.checkpoint().unwrap();
    let size2 = std::fs::metadata(&path).unwrap().len();
    assert!(
        size2 as f64 <= size1 as f64 * 1.10,
        "file grew from {size1} to {size2}"
    );
    let report = db.integrity_check().unwrap();
    assert_eq!(report.collections[0].documents, 100_000);
}

#[test]
fn schemas_are_persisted_and_checked() {
    use obj_core::codec::{Field, FieldType, Schema, StructType};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.obj");
    let v1 = Schema {
        version: 1,
        root: StructType {
            fields: vec![
                Field {
                    name: "id".into(),
                    ty: FieldType::Int,
                },
                Field {
                    name: "name".into(),
                    ty: FieldType::Str,
                },
            ],
        },
    };
    {
        let db = open(&path);
        let mut tx = db.begin_write().unwrap();
        tx.register_schema("people", &v1).unwrap();
        // Identical again: fine. Different shape under the same version: refused.
        tx.register_schema("people", &v1).unwrap();
        let mut bad = v1.clone();
        bad.root.fields[1].ty = FieldType::Bytes;
        let err = tx.register_schema("people", &bad).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("name")),
            "{err}"
        );
        tx.commit().unwrap();
        // A rolled-back registration leaves nothing behind.
        let mut v2 = v1.clone();
        v2.version = 2;
        let mut tx = db.begin_write().unwrap();
        tx.register_schema("people", &v2).unwrap();
        drop(tx);
        assert!(db
            .begin_read()
            .unwrap()
            .schema("people", 2)
            .unwrap()
            .is_none());
    }
    let db = open(&path);
    let rx = db.begin_read().unwrap();
    assert_eq!(*rx.schema("people", 1).unwrap().unwrap(), v1);
    assert_eq!(rx.schemas("people").unwrap(), vec![v1.clone()]);
    let mut bad = v1.clone();
    bad.root.fields.push(Field {
        name: "extra".into(),
        ty: FieldType::Bool,
    });
    let mut tx = db.begin_write().unwrap();
    assert!(matches!(
        tx.register_schema("people", &bad),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_wal_left_beside_another_database_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.obj"), dir.path().join("b.obj"));
    let write = |path: &std::path::Path, what: &[u8]| {
        let db = open(path);
        let mut tx = db.begin_write().unwrap();
        tx.insert("c", what).unwrap();
        tx.commit().unwrap();
        db.close_without_checkpoint().unwrap();
    };
    write(&a, b"from a");
    write(&b, b"from b");
    // Replace b's log with a's: b must keep its own state, not a's frames.
    std::fs::copy(wal_path(&a), wal_path(&b)).unwrap();
    let db = open(&b);
    let rx = db.begin_read().unwrap();
    // b's own commit lived only in its (now replaced) log, so b reads as empty, never "from a".
    assert!(rx.get("c", 1).unwrap().is_none());
    drop(rx);
    db.integrity_check().unwrap();
    db.close().unwrap();

    // An old copy of the main file restored beside a newer log of the same database.
    let c = dir.path().join("c.obj");
    let db = open(&c);
    for i in 0..3u8 {
        let mut tx = db.begin_write().unwrap();
        tx.insert("c", &[i]).unwrap();
        tx.commit().unwrap();
        db.checkpoint().unwrap();
        if i == 0 {
            std::fs::copy(&c, dir.path().join("old.obj")).unwrap();
        }
    }
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"in the log").unwrap();
    tx.commit().unwrap();
    db.close_without_checkpoint().unwrap();
    drop(db);
    std::fs::copy(dir.path().join("old.obj"), &c).unwrap();
    let db = open(&c);
    let rx = db.begin_read().unwrap();
    assert_eq!(
        rx.count("c").unwrap(),
        1,
        "the restored copy holds one document; the newer log must not apply"
    );
    drop(rx);
    db.integrity_check().unwrap();
}

#[test]
fn compaction_gives_space_back_and_keeps_every_document() {
    use obj_core::codec::Datum;
    use obj_core::{DocKind, IndexKind, IndexSpec};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.obj");
    let db = Db::open(&path, Options::default().durability(Durability::None)).unwrap();
    let mut tx = db.begin_write().unwrap();
    let spec = IndexSpec {
        name: "k".into(),
        kind: IndexKind::Standard,
        paths: vec!["k".into()],
    };
    tx.ensure_index("docs", &spec).unwrap();
    for i in 0..20_000i64 {
        let d = Datum::Map(vec![
            ("k".into(), Datum::Int(i % 100)),
            ("pad".into(), Datum::Str("x".repeat(60))),
        ]);
        tx.insert_doc("docs", DocKind::Value, 0, &d.to_bytes())
            .unwrap();
        if i % 1000 == 0 {
            tx.insert("blobs", &vec![i as u8; 20_000]).unwrap();
        }
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let full = std::fs::metadata(&path).unwrap().len();
    // Delete most documents, keeping every tenth and the blobs.
    let mut tx = db.begin_write().unwrap();
    for id in 1..=20_000u64 {
        if id % 10 != 0 {
            tx.delete("docs", id).unwrap();
        }
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        full,
        "deletes alone do not shrink the file"
    );
    // A reader that started before the compaction keeps its snapshot.
    let old = db.begin_read().unwrap();
    let info = db.compact().unwrap();
    assert!(
        info.pages_moved > 0 && info.pages_after < info.pages_before / 3,
        "{info:?}"
    );
    assert!(!info.truncated, "a live reader defers the truncation");
    assert_eq!(old.count("docs").unwrap(), 2000);
    assert_eq!(
        old.get("docs", 10).unwrap().unwrap().header().kind,
        DocKind::Value
    );
    drop(old);
    db.checkpoint().unwrap();
    let small = std::fs::metadata(&path).unwrap().len();
    assert!(small < full / 3, "file went from {full} to {small} bytes");
    db.integrity_check().unwrap();
    drop(db);
    let db = open(&path);
    let rx = db.begin_read().unwrap();
    assert_eq!(rx.count("docs").unwrap(), 2000);
    assert_eq!(rx.count("blobs").unwrap(), 20);
    assert_eq!(
        &*rx.get("blobs", 20).unwrap().unwrap(),
        &vec![19_000i64 as u8; 20_000][..]
    );
    // Kept ids are multiples of 10, i.e. i = id - 1 ends in 9: k = 59 matches 200 of them.
    let mut scan = rx
        .index_scan(
            "docs",
            "k",
            Some(&[Datum::Int(59)]),
            Some(&[Datum::Int(59)]),
        )
        .unwrap();
    assert_eq!(scan.next_batch(&rx, 1000).unwrap().len(), 200);
    drop(rx);
    db.integrity_check().unwrap();
    // The database keeps working after compaction.
    let mut tx = db.begin_write().unwrap();
    assert_eq!(tx.insert("docs", b"after").unwrap(), 20_001);
    tx.commit().unwrap();
    db.integrity_check().unwrap();
}

#[test]
fn hot_backup_is_a_consistent_copy_while_writers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.obj");
    let db = std::sync::Arc::new(
        Db::open(&path, Options::default().durability(Durability::None)).unwrap(),
    );
    // 50 accounts holding 100 each; the writer moves amounts between them.
    let mut tx = db.begin_write().unwrap();
    for _ in 0..50 {
        tx.insert("acct", &100u64.to_le_bytes()).unwrap();
    }
    for i in 0..3000u32 {
        tx.insert("filler", &i.to_le_bytes().repeat(40)).unwrap();
    }
    tx.commit().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut tx = db.begin_write().unwrap();
                let (a, b) = (1 + n % 50, 1 + (n * 7 + 3) % 50);
                let get = |tx: &obj_core::WriteTxn, id| {
                    u64::from_le_bytes(
                        tx.get("acct", id).unwrap().unwrap()[..8]
                            .try_into()
                            .unwrap(),
                    )
                };
                let (va, vb) = (get(&tx, a), get(&tx, b));
                if a != b && va > 0 {
                    tx.put("acct", a, &(va - 1).to_le_bytes()).unwrap();
                    tx.put("acct", b, &(vb + 1).to_le_bytes()).unwrap();
                }
                tx.commit().unwrap();
                n += 1;
            }
            n
        })
    };
    for round in 0..5 {
        let dest = dir.path().join(format!("copy{round}.obj"));
        db.backup(&dest, false).unwrap();
        assert!(matches!(
            db.backup(&dest, false),
            Err(Error::InvalidArgument(_))
        ));
        let copy = open(&dest);
        copy.integrity_check().unwrap();
        let rx = copy.begin_read().unwrap();
        let total: u64 = rx
            .iter("acct")
            .unwrap()
            .map(|r| u64::from_le_bytes(r.unwrap().1[..8].try_into().unwrap()))
            .sum();
        assert_eq!(
            total, 5000,
            "round {round}: the copy is one consistent commit"
        );
        assert_eq!(rx.count("filler").unwrap(), 3000);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    db.backup(dir.path().join("copy0.obj"), true).unwrap();
    assert!(matches!(
        db.backup(&path, true),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn in_memory_databases_work_like_files() {
    let db = Db::memory(Options::default()).unwrap();
    let mut tx = db.begin_write().unwrap();
    let id = tx.insert("c", b"v").unwrap();
    tx.commit().unwrap();
    let old = db.begin_read().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put("c", id, b"w").unwrap();
    tx.commit().unwrap();
    assert_eq!(&*old.get("c", id).unwrap().unwrap(), b"v");
    drop(old);
    db.checkpoint().unwrap();
    assert_eq!(
        &*db.begin_read().unwrap().get("c", id).unwrap().unwrap(),
        b"w"
    );
    db.integrity_check().unwrap();
    assert_eq!(db.path(), std::path::Path::new(":memory:"));
}

#[test]
fn compression_is_recorded_in_the_file_and_transparent_to_readers() {
    let dir = tempfile::tempdir().unwrap();
    let (plain_path, lz_path) = (dir.path().join("p.obj"), dir.path().join("z.obj"));
    let doc: Vec<u8> = (0..2000u32)
        .flat_map(|i| format!("field{} ", i % 17).into_bytes())
        .collect();
    for (path, compression) in [(&plain_path, false), (&lz_path, true)] {
        let db = Db::open(path, Options::default().compression(compression)).unwrap();
        let mut tx = db.begin_write().unwrap();
        for _ in 0..200 {
            tx.insert("docs", &doc).unwrap();
        }
        tx.insert("docs", b"short").unwrap();
        tx.commit().unwrap();
        db.close().unwrap();
    }
    let (p, z) = (
        std::fs::metadata(&plain_path).unwrap().len(),
        std::fs::metadata(&lz_path).unwrap().len(),
    );
    assert!(z * 4 < p, "compressed file {z} bytes vs plain {p}");
    // Opened without the option: still compressed on disk, read back transparently.
    let db = open(&lz_path);
    let rx = db.begin_read().unwrap();
    assert_eq!(&*rx.get("docs", 7).unwrap().unwrap(), &doc[..]);
    assert_eq!(&*rx.get("docs", 201).unwrap().unwrap(), b"short");
    drop(rx);
    db.integrity_check().unwrap();
    // The header records the requirement.
    let mut head = vec![0u8; 4096];
    use std::io::Read;
    std::fs::File::open(&lz_path)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    let required = u64::from_le_bytes(
        head[obj_core::format::META_REQUIRED..][..8]
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        required & obj_core::format::FEATURE_LZ4,
        obj_core::format::FEATURE_LZ4
    );
}

#[test]
fn an_unknown_required_feature_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.obj");
    open(&path).close().unwrap();
    // Set bit 9 (unknown to this build) and re-seal the header page.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = obj_core::format::META_REQUIRED;
    let bits = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) | (1 << 9);
    bytes[at..at + 8].copy_from_slice(&bits.to_le_bytes());
    obj_core::format::seal_page(0, &mut bytes[..4096]);
    std::fs::write(&path, &bytes).unwrap();
    let err = Db::open(&path, Options::default()).unwrap_err();
    assert!(
        matches!(&err, Error::FeatureUnsupported(m) if m.contains("bit 9")),
        "{err}"
    );
}

#[test]
fn encrypted_databases_need_the_right_key_and_detect_tampering() {
    use obj_core::EncryptionKey;
    let dir = tempfile::tempdir().unwrap();
    for key in [
        EncryptionKey::Raw([9u8; 32]),
        EncryptionKey::Passphrase("correct horse".into()),
    ] {
        let path = dir
            .path()
            .join(format!("{}.obj", matches!(key, EncryptionKey::Raw(_))));
        let with = |key: Option<EncryptionKey>| Options::default().encryption_key(key);
        {
            let db = Db::open(&path, with(Some(key.clone()))).unwrap();
            let mut tx = db.begin_write().unwrap();
            for i in 0..500u32 {
                tx.insert("secrets", format!("the launch code is {i:05}").as_bytes())
                    .unwrap();
            }
            tx.commit().unwrap();
            // Leave some commits only in the WAL: frames are encrypted too.
            db.checkpoint().unwrap();
            let mut tx = db.begin_write().unwrap();
            tx.insert("secrets", b"the launch code is in the log")
                .unwrap();
            tx.commit().unwrap();
            db.close_without_checkpoint().unwrap();
        }
        for file in [path.clone(), wal_path(&path)] {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(15).any(|w| w == b"the launch code"),
                "plaintext in {}",
                file.display()
            );
        }
        let wrong = match &key {
            EncryptionKey::Raw(_) => EncryptionKey::Raw([8u8; 32]),
            EncryptionKey::Passphrase(_) => EncryptionKey::Passphrase("wrong horse".into()),
        };
        assert!(matches!(
            Db::open(&path, with(None)),
            Err(Error::Encryption(_))
        ));
        assert!(matches!(
            Db::open(&path, with(Some(wrong))),
            Err(Error::Encryption(_))
        ));
        let db = Db::open(&path, with(Some(key.clone()))).unwrap();
        assert_eq!(db.begin_read().unwrap().count("secrets").unwrap(), 501);
        assert_eq!(
            &*db.begin_read()
                .unwrap()
                .get("secrets", 501)
                .unwrap()
                .unwrap(),
            b"the launch code is in the log"
        );
        db.integrity_check().unwrap();
        let copy = dir.path().join("copy.obj");
        let _ = std::fs::remove_file(&copy);
        db.backup(&copy, false).unwrap();
        db.close().unwrap();
        drop(db);
        // The backup is encrypted with the same key.
        assert!(matches!(
            Db::open(&copy, with(None)),
            Err(Error::Encryption(_))
        ));
        Db::open(&copy, with(Some(key.clone())))
            .unwrap()
            .integrity_check()
            .unwrap();
        // Tampering with an encrypted page is reported, never served.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[4096 * 2 + 100] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let db = Db::open(&path, with(Some(key.clone()))).unwrap();
        let rx = db.begin_read().unwrap();
        let all: Result<Vec<_>, _> = rx.iter("secrets").and_then(|it| it.collect());
        let res = all.and_then(|_| db.integrity_check().map(|_| ()));
        assert!(
            matches!(res, Err(Error::Corruption(_)) | Err(Error::Integrity(_))),
            "{res:?}"
        );
    }
    // A key for a file that is not encrypted.
    let plain = dir.path().join("plain.obj");
    open(&plain).close().unwrap();
    let opts = Options::default().encryption_key(Some(EncryptionKey::Raw([1; 32])));
    assert!(matches!(Db::open(&plain, opts), Err(Error::Encryption(_))));
    assert!(!format!(
        "{:?}",
        Options::default().encryption_key(Some(EncryptionKey::Passphrase("pw123".into())))
    )
    .contains("pw123"));
}

#[test]
fn stat_reports_collections_indexes_and_file_figures() {
    use obj_core::codec::Datum;
    use obj_core::{DocKind, IndexKind, IndexSpec};
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("s.obj"));
    let mut tx = db.begin_write().unwrap();
    let spec = IndexSpec {
        name: "region".into(),
        kind: IndexKind::Standard,
        paths: vec!["region".into()],
    };
    tx.ensure_index("orders", &spec).unwrap();
    for i in 0..3000 {
        let d = Datum::Map(vec![(
            "region".into(),
            Datum::Str(["us", "eu"][i % 2].into()),
        )]);
        tx.insert_doc("orders", DocKind::Value, 0, &d.to_bytes())
            .unwrap();
    }
    tx.insert("blobs", &[0u8; 100_000]).unwrap();
    tx.commit().unwrap();
    let st = db.stat().unwrap();
    assert_eq!(st.page_size, 4096);
    assert!(st.wal_frames > 0);
    let names: Vec<&str> = st.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["blobs", "orders"]);
    let orders = &st.collections[1];
    assert_eq!(orders.doc_count, 3000);
    assert_eq!(orders.indexes.len(), 1);
    assert_eq!(orders.indexes[0].status, "ready");
    assert_eq!(orders.indexes[0].key_paths, vec!["region".to_string()]);
    assert!(orders.file_size_bytes > orders.indexes[0].file_size_bytes);
    assert!(
        st.collections[0].file_size_bytes >= 100_000,
        "overflow pages count toward the collection"
    );
    // Every page belongs to a collection, the catalog, the header or the freelist.
    let owned: u64 = st
        .collections
        .iter()
        .map(|c| c.file_size_bytes / 4096)
        .sum();
    assert!(
        owned + st.free_pages + 2 <= st.page_count + 1
            && owned + st.free_pages + 2 >= st.page_count
    );
}

#[test]
fn compaction_of_a_database_whose_free_pages_are_all_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tail.obj");
    let db = open(&path);
    let mut tx = db.begin_write().unwrap();
    let ids: Vec<u64> = (0..200)
        .map(|_| tx.insert("c", &[7u8; 2000]).unwrap())
        .collect();
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    for id in &ids[1..] {
        tx.delete("c", *id).unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    // Only the header changes (the freelist goes away and the page count drops).
    let info = db.compact().unwrap();
    assert!(
        info.truncated && info.pages_after < info.pages_before,
        "{info:?}"
    );
    assert!(std::fs::metadata(&path).unwrap().len() < before);
    db.integrity_check().unwrap();
    drop(db);
    let db = open(&path);
    assert_eq!(db.begin_read().unwrap().count("c").unwrap(), 1);
    db.integrity_check().unwrap();
}

#[test]
fn a_write_transaction_view_is_frozen_and_outlives_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("v.obj"));
    let mut tx = db.begin_write().unwrap();
    for i in 0..200u32 {
        tx.insert("c", &i.to_be_bytes()).unwrap();
    }
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"own").unwrap();
    let view = tx.view().unwrap();
    // Writes after the view was taken: deletes, replacements, inserts, a new collection.
    for id in 1..=100 {
        tx.delete("c", id).unwrap();
    }
    tx.put("c", 150, b"changed").unwrap();
    tx.insert("c", b"later").unwrap();
    tx.insert("other", b"x").unwrap();
    let seen: Vec<(u64, Vec<u8>)> = view
        .iter("c")
        .unwrap()
        .map(|r| r.map(|(id, v)| (id, v.to_vec())).unwrap())
        .collect();
    assert_eq!(seen.len(), 201);
    assert_eq!(seen[149], (150, 149u32.to_be_bytes().to_vec()));
    assert_eq!(seen[200], (201, b"own".to_vec()));
    assert_eq!(view.count("c").unwrap(), 201);
    assert_eq!(view.collections().unwrap(), vec!["c".to_string()]);
    assert_eq!(tx.count("c").unwrap(), 102);
    tx.commit().unwrap();
    // Checkpoints after the commit keep the pages the view reads.
    db.checkpoint().unwrap();
    assert_eq!(&*view.get("c", 1).unwrap().unwrap(), &0u32.to_be_bytes());
    assert_eq!(view.iter("c").unwrap().count(), 201);
    drop(view);
    let info = db.checkpoint().unwrap();
    assert!(!info.deferred);
}

#[test]
fn open_modes_create_refuses_an_existing_file_and_open_a_missing_one() {
    use obj_core::OpenMode;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.obj");
    let e = Db::open(&path, Options::default().mode(OpenMode::Open)).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert!(!path.exists(), "Open must not create the file");
    {
        let db = Db::open(&path, Options::default().mode(OpenMode::Create)).unwrap();
        let mut tx = db.begin_write().unwrap();
        tx.insert("c", b"v").unwrap();
        tx.commit().unwrap();
    }
    let e = Db::open(&path, Options::default().mode(OpenMode::Create)).unwrap_err();
    assert!(matches!(e, Error::Exists(_)), "{e:?}");
    let e = Db::open(
        &path,
        Options::default().mode(OpenMode::Create).read_only(true),
    );
    assert!(matches!(e, Err(Error::InvalidArgument(_))));
    let db = Db::open(&path, Options::default().mode(OpenMode::Open)).unwrap();
    assert_eq!(
        &*db.begin_read().unwrap().get("c", 1).unwrap().unwrap(),
        b"v"
    );
}

#[test]
fn flush_makes_eventual_commits_durable() {
    use obj_core::fault::SimDisk;
    for durability in [Durability::Eventual, Durability::None] {
        let (main, wal) = (SimDisk::new(), SimDisk::new());
        let opts = Options::default().durability(durability);
        let db =
            Db::open_with_backends(Box::new(main.clone()), Box::new(wal.clone()), opts).unwrap();
        let mut tx = db.begin_write().unwrap();
        tx.insert("c", b"kept").unwrap();
        tx.commit().unwrap();
        assert!(
            wal.pending_writes() > 0,
            "{durability:?}: the commit is not synced yet"
        );
        db.flush().unwrap();
        assert_eq!(wal.pending_writes(), 0, "{durability:?}");
        // Power goes now: what was flushed is all there is, and it holds the commit.
        let mut rng = obj_core::fault::CrashRng::new(7);
        let (m, w) = (main.crash(&mut rng), wal.crash(&mut rng));
        std::mem::forget(db);
        let db = Db::open_with_backends(
            Box::new(SimDisk::with_contents(m)),
            Box::new(SimDisk::with_contents(w)),
            Options::default(),
        )
        .unwrap();
        assert_eq!(
            &*db.begin_read().unwrap().get("c", 1).unwrap().unwrap(),
            b"kept"
        );
    }
}

#[test]
fn a_handle_forgotten_after_fork_refuses_and_keeps_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fork.obj");
    let db = open(&path);
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"v").unwrap();
    tx.commit().unwrap();
    db.forget_after_fork();
    let e = db.begin_read().err().unwrap();
    assert!(
        matches!(&e, Error::Closed(m) if m.contains("open the database again")),
        "{e:?}"
    );
    assert!(db.begin_write().is_err());
    db.close().unwrap();
    // Closing released nothing: the file lock is still held (the parent's, after a fork),
    // so a handle that wants the file alone cannot have it.
    let opts = Options::default()
        .busy_timeout(Duration::from_millis(20))
        .locking(Locking::Exclusive);
    assert!(matches!(Db::open(&path, opts), Err(Error::Busy(_))));
    drop(db);
    let db = open(&path);
    assert_eq!(
        &*db.begin_read().unwrap().get("c", 1).unwrap().unwrap(),
        b"v"
    );
}
