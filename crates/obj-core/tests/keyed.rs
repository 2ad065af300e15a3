//! Keyed collections: documents under caller-given byte-string keys, in the same file, WAL,
//! transactions and snapshots as id collections.

use obj_core::codec::Datum;
use obj_core::query;
use obj_core::{
    CollectionKind, Db, DocKind, EncryptionKey, Error, IndexKind, IndexSpec, Options, Reader,
    MAX_KEY_LEN,
};
use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

fn open(path: &std::path::Path) -> Db {
    Db::open(path, Options::default()).unwrap()
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Included(k) => Included(k.as_slice()),
        Excluded(k) => Excluded(k.as_slice()),
        Unbounded => Unbounded,
    }
}

fn keys<R: Reader>(r: &R, lo: Bound<&[u8]>, hi: Bound<&[u8]>, reverse: bool) -> Vec<Vec<u8>> {
    r.key_range("kv", lo, hi, reverse)
        .unwrap()
        .map(|e| e.unwrap().0)
        .collect()
}

#[test]
fn put_get_delete_count_and_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("k.obj"));
    let mut tx = db.begin_write().unwrap();
    assert!(!tx.put_key("kv", b"user:42", b"alice").unwrap());
    assert!(tx.put_key("kv", b"user:42", b"alice v2").unwrap());
    assert!(!tx.put_key("kv", b"user:7", b"bob").unwrap());
    assert_eq!(
        &*tx.get_key("kv", b"user:42").unwrap().unwrap(),
        b"alice v2"
    );
    assert_eq!(tx.count("kv").unwrap(), 2);
    tx.commit().unwrap();

    let rx = db.begin_read().unwrap();
    assert_eq!(rx.kind("kv").unwrap(), Some(CollectionKind::Keyed));
    assert_eq!(rx.kind("nope").unwrap(), None);
    assert!(rx.get_key("kv", b"user:1").unwrap().is_none());
    assert!(rx.get_key("missing", b"x").unwrap().is_none());

    let mut tx = db.begin_write().unwrap();
    assert!(tx.delete_key("kv", b"user:7").unwrap());
    assert!(!tx.delete_key("kv", b"user:7").unwrap());
    assert!(!tx.delete_key("missing", b"user:7").unwrap());
    tx.commit().unwrap();
    // The snapshot taken before the delete still sees it.
    assert_eq!(&*rx.get_key("kv", b"user:7").unwrap().unwrap(), b"bob");
    assert_eq!(rx.count("kv").unwrap(), 2);
    let now = db.begin_read().unwrap();
    assert!(now.get_key("kv", b"user:7").unwrap().is_none());
    assert_eq!(now.count("kv").unwrap(), 1);

    // Each kind refuses the other's operations, naming what the collection is.
    let mut tx = db.begin_write().unwrap();
    tx.insert("ids", b"x").unwrap();
    for err in [
        tx.insert("kv", b"x").unwrap_err(),
        tx.put("kv", 1, b"x").unwrap_err(),
        tx.delete("kv", 1).unwrap_err(),
        tx.get("kv", 1).unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("keyed collection")),
            "{err}"
        );
    }
    for err in [
        tx.put_key("ids", b"k", b"x").unwrap_err(),
        tx.delete_key("ids", b"k").unwrap_err(),
        tx.get_key("ids", b"k").unwrap_err(),
        tx.key_range("ids", Unbounded, Unbounded, false)
            .err()
            .unwrap(),
        tx.create_collection("ids", CollectionKind::Keyed)
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("id collection")),
            "{err}"
        );
    }
    assert!(tx
        .create_collection("empty", CollectionKind::Keyed)
        .unwrap());
    assert!(!tx
        .create_collection("empty", CollectionKind::Keyed)
        .unwrap());
    tx.commit().unwrap();
    assert_eq!(
        db.begin_read().unwrap().kind("empty").unwrap(),
        Some(CollectionKind::Keyed)
    );
}

#[test]
fn key_lengths_from_one_byte_to_the_limit() {
    const { assert!(MAX_KEY_LEN >= 1024) };
    let db = Db::memory(Options::default()).unwrap();
    let mut tx = db.begin_write().unwrap();
    let longest = vec![0xABu8; MAX_KEY_LEN];
    tx.put_key("kv", &[0], b"one byte").unwrap();
    tx.put_key("kv", &longest, &vec![7u8; 5000]).unwrap();
    let err = tx
        .put_key("kv", &vec![1u8; MAX_KEY_LEN + 1], b"x")
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains(&format!("{} bytes", MAX_KEY_LEN + 1))),
        "{err}"
    );
    let err = tx.put_key("kv", b"", b"x").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("empty")),
        "{err}"
    );
    tx.commit().unwrap();
    let rx = db.begin_read().unwrap();
    assert_eq!(&*rx.get_key("kv", &[0]).unwrap().unwrap(), b"one byte");
    assert_eq!(rx.get_key("kv", &longest).unwrap().unwrap().len(), 5000);
    // Many long keys split the tree through several levels.
    let mut tx = db.begin_write().unwrap();
    for i in 0..400u32 {
        let mut k = vec![b'k'; MAX_KEY_LEN - 4];
        k.extend_from_slice(&i.to_be_bytes());
        tx.put_key("long", &k, &i.to_le_bytes()).unwrap();
    }
    tx.commit().unwrap();
    let rx = db.begin_read().unwrap();
    let all: Vec<_> = rx
        .key_range("long", Unbounded, Unbounded, false)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(all.len(), 400);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    db.integrity_check().unwrap();
}

#[test]
fn ranges_and_prefixes_forward_and_reverse_match_a_btreemap() {
    let db = Db::memory(Options::default()).unwrap();
    let mut model = BTreeMap::new();
    let mut tx = db.begin_write().unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..3000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Short keys over a small alphabet, 0x00 and 0xFF included, so prefixes collide.
        let len = 1 + (x % 4) as usize;
        let key: Vec<u8> = (0..len)
            .map(|j| [0x00, 0x01, b'a', b'b', 0xFF][((x >> (8 * j)) % 5) as usize])
            .collect();
        tx.put_key("kv", &key, &i.to_le_bytes()).unwrap();
        model.insert(key, i);
    }
    tx.commit().unwrap();
    let rx = db.begin_read().unwrap();
    assert_eq!(rx.count("kv").unwrap(), model.len() as u64);
    let probes: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x01, b'a'],
        vec![b'a'],
        vec![b'b', 0xFF],
        vec![0xFF],
        vec![0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    ];
    let bound = |k: &Vec<u8>, how: u8| -> Bound<Vec<u8>> {
        match how {
            0 => Included(k.clone()),
            1 => Excluded(k.clone()),
            _ => Unbounded,
        }
    };
    for lo in &probes {
        for hi in &probes {
            for (lh, hh) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (0, 2), (2, 2)] {
                let (l, h) = (bound(lo, lh), bound(hi, hh));
                let want: Vec<Vec<u8>> = if matches!((&l, &h), (Included(a) | Excluded(a), Included(b) | Excluded(b)) if a > b)
                    || matches!((&l, &h), (Excluded(a), Excluded(b)) if a == b)
                {
                    Vec::new()
                } else {
                    model
                        .range((l.clone(), h.clone()))
                        .map(|(k, _)| k.clone())
                        .collect()
                };
                let got = keys(&rx, as_ref(&l), as_ref(&h), false);
                assert_eq!(got, want, "{l:?}..{h:?}");
                let mut back = keys(&rx, as_ref(&l), as_ref(&h), true);
                back.reverse();
                assert_eq!(back, want, "reverse {l:?}..{h:?}");
            }
        }
        let want: Vec<Vec<u8>> = model
            .keys()
            .filter(|k| k.starts_with(lo))
            .cloned()
            .collect();
        let got: Vec<Vec<u8>> = rx
            .key_prefix("kv", lo, false)
            .unwrap()
            .map(|e| e.unwrap().0)
            .collect();
        assert_eq!(got, want, "prefix {lo:?}");
        let mut back: Vec<Vec<u8>> = rx
            .key_prefix("kv", lo, true)
            .unwrap()
            .map(|e| e.unwrap().0)
            .collect();
        back.reverse();
        assert_eq!(back, want, "reverse prefix {lo:?}");
    }
    // Values come with their keys.
    for (k, v) in rx
        .key_range("kv", Unbounded, Unbounded, false)
        .unwrap()
        .map(|e| e.unwrap())
    {
        assert_eq!(&*v, &model[&k].to_le_bytes()[..]);
    }
    // The resumable scan pages through the same order.
    let mut seen = Vec::new();
    let mut from: Option<Vec<u8>> = None;
    loop {
        let lo = match &from {
            Some(k) => Excluded(k.as_slice()),
            None => Unbounded,
        };
        let batch = rx.scan_keys("kv", lo, Unbounded, false, 97).unwrap();
        let Some(last) = batch.last() else { break };
        from = Some(last.0.clone());
        seen.extend(batch.into_iter().map(|(k, _)| k));
    }
    assert_eq!(seen, model.keys().cloned().collect::<Vec<_>>());
}

#[test]
fn a_write_transaction_sees_its_own_writes_and_its_views_stay_frozen() {
    let db = Db::memory(Options::default()).unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.put_key("kv", b"a", b"1").unwrap();
    let view = tx.view().unwrap();
    tx.put_key("kv", b"b", b"2").unwrap();
    tx.delete_key("kv", b"a").unwrap();
    let in_tx: Vec<_> = tx
        .key_range("kv", Unbounded, Unbounded, false)
        .unwrap()
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(in_tx, vec![b"b".to_vec()]);
    let in_view: Vec<_> = view
        .key_range("kv", Unbounded, Unbounded, false)
        .unwrap()
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(in_view, vec![b"a".to_vec()]);
    assert_eq!(view.count("kv").unwrap(), 1);
    drop(view);
    tx.rollback();
    assert_eq!(db.begin_read().unwrap().kind("kv").unwrap(), None);
}

fn value_doc(email: &str, tags: &[&str], n: i64) -> Vec<u8> {
    Datum::Map(vec![
        ("email".into(), Datum::Str(email.into())),
        (
            "tags".into(),
            Datum::List(tags.iter().map(|t| Datum::Str((*t).into())).collect()),
        ),
        ("n".into(), Datum::Int(n)),
    ])
    .to_bytes()
}

fn scan_keys<R: Reader>(r: &R, index: &str, lo: &[Datum], hi: &[Datum]) -> Vec<Vec<u8>> {
    let mut scan = r.index_scan("users", index, Some(lo), Some(hi)).unwrap();
    let mut out = Vec::new();
    loop {
        let batch = scan.next_keys(r, 2).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

#[test]
fn secondary_indexes_refer_to_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx.obj");
    let db = open(&path);
    let mut tx = db.begin_write().unwrap();
    tx.create_collection("users", CollectionKind::Keyed)
        .unwrap();
    tx.put_key_doc(
        "users",
        b"u:1",
        DocKind::Value,
        0,
        &value_doc("a@x", &["vip"], 5),
    )
    .unwrap();
    // An index declared on a populated keyed collection is built from its documents.
    for (name, kind, paths) in [
        ("email", IndexKind::Unique, vec!["email"]),
        ("tags", IndexKind::Each, vec!["tags"]),
        ("n", IndexKind::Standard, vec!["n"]),
        ("tags_n", IndexKind::Composite, vec!["email", "n"]),
    ] {
        tx.ensure_index(
            "users",
            &IndexSpec {
                name: name.into(),
                kind,
                paths: paths.into_iter().map(String::from).collect(),
            },
        )
        .unwrap();
    }
    tx.put_key_doc(
        "users",
        b"u:2",
        DocKind::Value,
        0,
        &value_doc("b@x", &["vip", "new"], 5),
    )
    .unwrap();
    tx.put_key_doc(
        "users",
        b"u:0\x00z",
        DocKind::Value,
        0,
        &value_doc("c@x", &["new"], 9),
    )
    .unwrap();
    tx.commit().unwrap();

    let rx = db.begin_read().unwrap();
    let s = |v: &str| Datum::Str(v.into());
    assert_eq!(
        rx.find_unique_key("users", "email", &[s("b@x")]).unwrap(),
        Some(b"u:2".to_vec())
    );
    assert_eq!(
        rx.find_unique_key("users", "email", &[s("z@x")]).unwrap(),
        None
    );
    assert_eq!(
        scan_keys(&rx, "tags", &[s("vip")], &[s("vip")]),
        vec![b"u:1".to_vec(), b"u:2".to_vec()]
    );
    // Equal index values order by key (a key with a 0x00 byte included).
    assert_eq!(
        scan_keys(&rx, "n", &[Datum::Int(0)], &[Datum::Int(10)]),
        vec![b"u:1".to_vec(), b"u:2".to_vec(), b"u:0\x00z".to_vec()]
    );
    assert_eq!(
        scan_keys(&rx, "tags_n", &[s("c@x")], &[s("c@x")]),
        vec![b"u:0\x00z".to_vec()]
    );

    // A unique clash names the key that holds the value and changes nothing.
    let mut tx = db.begin_write().unwrap();
    let err = tx
        .put_key_doc(
            "users",
            b"u:3",
            DocKind::Value,
            0,
            &value_doc("a@x", &[], 1),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("'u:1'")),
        "{err}"
    );
    assert!(tx.get_key("users", b"u:3").unwrap().is_none());
    // Updates move entries; deletes remove them.
    tx.put_key_doc(
        "users",
        b"u:1",
        DocKind::Value,
        0,
        &value_doc("a2@x", &["old"], 7),
    )
    .unwrap();
    tx.delete_key("users", b"u:2").unwrap();
    tx.commit().unwrap();
    drop(db);

    let db = open(&path);
    let rx = db.begin_read().unwrap();
    assert_eq!(
        rx.find_unique_key("users", "email", &[s("a@x")]).unwrap(),
        None
    );
    assert_eq!(
        rx.find_unique_key("users", "email", &[s("a2@x")]).unwrap(),
        Some(b"u:1".to_vec())
    );
    assert!(scan_keys(&rx, "tags", &[s("vip")], &[s("vip")]).is_empty());
    assert_eq!(
        scan_keys(&rx, "n", &[Datum::Int(0)], &[Datum::Int(10)]),
        vec![b"u:1".to_vec(), b"u:0\x00z".to_vec()]
    );
    db.integrity_check().unwrap();
}

/// The keys of what a query of `users` finds (filter and planned access), fetched one match
/// per batch so every resume point is crossed.
fn query_keys<R: Reader>(r: &R, filter: Option<query::Expr>) -> Vec<Vec<u8>> {
    let plan = query::plan(&r.indexes("users").unwrap(), filter, None);
    let mut scan = query::QueryScan::new(r, "users", &plan).unwrap();
    let mut out = Vec::new();
    loop {
        let found = scan.next_batch(r, 1).unwrap();
        if found.is_empty() {
            return out;
        }
        for f in found {
            match f.pk {
                obj_core::Pk::Key(key) => out.push(key),
                pk => panic!("a keyed match carries its key, got {pk:?}"),
            }
        }
    }
}

#[test]
fn queries_walk_keyed_collections_and_name_matches_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("q.obj"));
    let mut tx = db.begin_write().unwrap();
    tx.create_collection("users", CollectionKind::Keyed)
        .unwrap();
    tx.ensure_index(
        "users",
        &IndexSpec {
            name: "n".into(),
            kind: IndexKind::Standard,
            paths: vec!["n".into()],
        },
    )
    .unwrap();
    // More than one batch of the engine's 256 candidates.
    for i in 0..600i64 {
        let key = format!("k{i:04}");
        tx.put_key_doc(
            "users",
            key.as_bytes(),
            DocKind::Value,
            0,
            &value_doc(&format!("{i}@x"), &[], i % 7),
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let rx = db.begin_read().unwrap();
    let all: Vec<Vec<u8>> = (0..600).map(|i| format!("k{i:04}").into_bytes()).collect();
    // A full scan, in key order.
    assert_eq!(query_keys(&rx, None), all);
    let n_is = |v: i64| query::Expr::Cmp {
        path: "n".into(),
        op: query::CmpOp::Eq,
        value: Datum::Int(v),
    };
    let want: Vec<Vec<u8>> = (0..600)
        .filter(|i| i % 7 == 3)
        .map(|i| format!("k{i:04}").into_bytes())
        .collect();
    // Through the index on n (equal values in key order), and as a filter over the scan.
    assert_eq!(query_keys(&rx, Some(n_is(3))), want);
    let not = query::Expr::Not(Box::new(query::Expr::Not(Box::new(n_is(3)))));
    assert_eq!(query_keys(&rx, Some(not)), want);
}

#[test]
fn keyed_collections_survive_checkpoint_compaction_backup_encryption_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.obj");
    let opts = Options::default().encryption_key(Some(EncryptionKey::Passphrase("k".into())));
    let db = Db::open(&path, opts.clone()).unwrap();
    let mut tx = db.begin_write().unwrap();
    for i in 0..2000u32 {
        tx.put_key("kv", format!("key{i:05}").as_bytes(), &vec![i as u8; 300])
            .unwrap();
        tx.insert("ids", &i.to_le_bytes()).unwrap();
    }
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    for i in (0..2000u32).filter(|i| i % 3 != 0) {
        tx.delete_key("kv", format!("key{i:05}").as_bytes())
            .unwrap();
    }
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    let info = db.compact().unwrap();
    assert!(info.pages_after < info.pages_before, "{info:?}");
    let report = db.integrity_check().unwrap();
    let kv = report.collections.iter().find(|c| c.name == "kv").unwrap();
    assert_eq!(kv.documents, 667);
    let stat = db.stat().unwrap();
    let kv = stat.collections.iter().find(|c| c.name == "kv").unwrap();
    assert_eq!((kv.kind, kv.doc_count), (CollectionKind::Keyed, 667));
    let copy = dir.path().join("copy.obj");
    db.backup(&copy, false).unwrap();
    drop(db);
    for p in [&path, &copy] {
        let db = Db::open(p, opts.clone()).unwrap();
        let rx = db.begin_read().unwrap();
        assert_eq!(rx.count("kv").unwrap(), 667);
        assert_eq!(rx.get_key("kv", b"key00003").unwrap().unwrap().len(), 300);
        assert!(rx.get_key("kv", b"key00004").unwrap().is_none());
        assert_eq!(rx.count("ids").unwrap(), 2000);
        db.integrity_check().unwrap();
    }
}

#[test]
fn a_format_1_file_opens_and_is_written_as_the_current_format() {
    let dir = tempfile::tempdir().unwrap();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let path = dir.path().join("v1.obj");
    std::fs::copy(golden.join("v1-plain.obj"), &path).unwrap();
    std::fs::copy(golden.join("v1-plain.obj-wal"), obj_core::wal_path(&path)).unwrap();
    let version = |p: &std::path::Path| {
        let bytes = std::fs::read(p).unwrap();
        u32::from_le_bytes(bytes[8..12].try_into().unwrap())
    };
    assert_eq!(version(&path), 1);
    let db = open(&path);
    let mut tx = db.begin_write().unwrap();
    tx.put_key("kv", b"new", b"kind").unwrap();
    tx.commit().unwrap();
    db.close().unwrap();
    assert_eq!(version(&path), obj_core::format::FORMAT_VERSION);
    let db = open(&path);
    let rx = db.begin_read().unwrap();
    assert_eq!(&*rx.get_key("kv", b"new").unwrap().unwrap(), b"kind");
    assert_eq!(rx.count("people").unwrap(), 3);
    db.integrity_check().unwrap();
}
