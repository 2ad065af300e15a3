//! The change log: one record per commit, images, retention, reads, replay and revert.

use obj_core::changes::{ChangeReads, Context, Images, LogSettings, Op, Record, Retention};
use obj_core::{Db, DocKind, Error, Options, Reader};

fn open(dir: &tempfile::TempDir, name: &str) -> Db {
    Db::open(dir.path().join(name), Options::default()).unwrap()
}

fn enable(db: &Db, images: Images, retention: Retention) {
    assert!(db
        .set_changes(Some(LogSettings { images, retention }))
        .unwrap());
}

fn all(db: &Db, since: u64) -> Vec<Record> {
    let rx = db.begin_read().unwrap();
    let mut out = Vec::new();
    let mut at = since;
    loop {
        let b = rx.changes(at, None, 3, None).unwrap();
        at = b.through;
        out.extend(b.records);
        if b.done {
            return out;
        }
    }
}

#[test]
fn every_commit_appends_one_record_with_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, "a.obj");
    let mut tx = db.begin_write().unwrap();
    tx.insert("before", b"not recorded").unwrap();
    tx.commit().unwrap();
    enable(&db, Images::Both, Retention::default());
    let mut tx = db.begin_write().unwrap();
    tx.set_context(Context {
        action: Some("create_user".into()),
        user: Some("ana".into()),
        ..Context::default()
    });
    let id = tx.insert("users", b"alice").unwrap();
    tx.put_key("kv", b"k", b"v1").unwrap();
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put("users", id, b"alice2").unwrap();
    tx.put_key("kv", b"k", b"v2").unwrap();
    assert!(tx.delete("before", 1).unwrap());
    tx.commit().unwrap();
    let recs = all(&db, 0);
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(recs[0].context.action.as_deref(), Some("create_user"));
    assert_eq!(recs[0].context.user.as_deref(), Some("ana"));
    let ops: Vec<(&str, &str)> = recs[1]
        .entries
        .iter()
        .map(|e| (&*e.collection, e.op.name()))
        .collect();
    assert_eq!(
        ops,
        [("users", "update"), ("kv", "update"), ("before", "delete")]
    );
    let upd = &recs[1].entries[0];
    assert_eq!(upd.id(), Some(id));
    assert_eq!(&*upd.old_value().unwrap().unwrap(), b"alice");
    assert_eq!(&*upd.new_value().unwrap().unwrap(), b"alice2");
    let del = &recs[1].entries[2];
    assert_eq!(&*del.old_value().unwrap().unwrap(), b"not recorded");
    assert!(del.new.is_none());
    assert_eq!(recs[0].entries[0].op, Op::Insert);
    // Survives reopen, and a record round-trips through bytes.
    drop(db);
    let db = open(&dir, "a.obj");
    let again = all(&db, 0);
    assert_eq!(again, recs);
    assert_eq!(Record::from_bytes(&recs[1].to_bytes()).unwrap(), recs[1]);
    db.integrity_check().unwrap();
}

#[test]
fn keys_images_keep_no_documents() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, "a.obj");
    enable(&db, Images::Keys, Retention::default());
    let mut tx = db.begin_write().unwrap();
    let id = tx.insert("c", b"x").unwrap();
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put("c", id, b"y").unwrap();
    tx.commit().unwrap();
    let recs = all(&db, 0);
    assert_eq!(recs[1].entries[0].op, Op::Update);
    assert!(recs[1].entries[0].old.is_none() && recs[1].entries[0].new.is_none());
}

#[test]
fn retention_by_count_expires_old_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, "a.obj");
    let retention = Retention {
        max_records: Some(5),
        max_age_micros: None,
    };
    enable(&db, Images::Both, retention);
    for i in 0..40u64 {
        let mut tx = db.begin_write().unwrap();
        tx.put("c", i + 1, &vec![7u8; 3000]).unwrap();
        tx.commit().unwrap();
    }
    let rx = db.begin_read().unwrap();
    let info = rx.change_log().unwrap().unwrap();
    assert_eq!((info.oldest, info.next_seq), (36, 41));
    match rx.changes(34, None, 100, None) {
        Err(Error::ChangesExpired { oldest, .. }) => assert_eq!(oldest, 36),
        other => panic!("{other:?}"),
    }
    let got: Vec<u64> = rx
        .changes(35, None, 100, None)
        .unwrap()
        .records
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(got, [36, 37, 38, 39, 40]);
    drop(rx);
    db.integrity_check().unwrap();
    // Compaction keeps the numbering and the records.
    db.compact().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put("c", 1, b"after").unwrap();
    tx.commit().unwrap();
    let recs = all(&db, 37);
    assert_eq!(
        recs.last().unwrap().seq,
        recs[0].seq + recs.len() as u64 - 1
    );
    db.integrity_check().unwrap();
}

#[test]
fn retention_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, "a.obj");
    let retention = Retention {
        max_records: None,
        max_age_micros: Some(1_000_000),
    };
    enable(&db, Images::Keys, retention);
    let base = 1_800_000_000_000_000u64;
    for i in 0..10u64 {
        obj_core::clock::set_for_tests(Some(base + i * 400_000));
        let mut tx = db.begin_write().unwrap();
        tx.put("c", i + 1, b"x").unwrap();
        tx.commit().unwrap();
    }
    obj_core::clock::set_for_tests(None);
    let info = db.begin_read().unwrap().change_log().unwrap().unwrap();
    // The last record is at base + 3.6 s: kept are those at or after base + 2.6 s.
    assert_eq!(info.oldest, 8);
}

#[test]
fn a_replica_follows_by_applying_records_and_revert_undoes_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, "p.obj");
    enable(&db, Images::Both, Retention::default());
    let mut tx = db.begin_write().unwrap();
    let a = tx.insert_doc("docs", DocKind::Value, 0, b"\x01").unwrap();
    tx.put_key("kv", b"k1", b"one").unwrap();
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put_key("kv", b"k1", b"uno").unwrap();
    tx.put_key("kv", b"k2", b"two").unwrap();
    tx.delete("docs", a).unwrap();
    tx.commit().unwrap();
    let replica = open(&dir, "r.obj");
    let recs = all(&db, 0);
    // A gap is refused.
    let mut tx = replica.begin_write().unwrap();
    assert!(matches!(
        tx.apply_record(&recs[1]),
        Err(Error::InvalidArgument(_))
    ));
    drop(tx);
    for r in recs.iter().chain(recs.iter()) {
        let mut tx = replica.begin_write().unwrap();
        if tx.apply_record(r).unwrap() {
            tx.commit().unwrap();
        }
    }
    let rx = replica.begin_read().unwrap();
    assert_eq!(&*rx.get_key("kv", b"k1").unwrap().unwrap(), b"uno");
    assert_eq!(&*rx.get_key("kv", b"k2").unwrap().unwrap(), b"two");
    assert!(rx.get("docs", a).unwrap().is_none());
    drop(rx);
    // Revert the second commit on the primary.
    let mut tx = db.begin_write().unwrap();
    tx.revert(2).unwrap();
    tx.commit().unwrap();
    let rx = db.begin_read().unwrap();
    assert_eq!(&*rx.get_key("kv", b"k1").unwrap().unwrap(), b"one");
    assert!(rx.get_key("kv", b"k2").unwrap().is_none());
    assert!(rx.get("docs", a).unwrap().is_some());
    drop(rx);
    // Reverting record 2 again conflicts with the revert (record 3).
    let mut tx = db.begin_write().unwrap();
    assert!(matches!(tx.revert(2), Err(Error::ConditionFailed(_))));
}
