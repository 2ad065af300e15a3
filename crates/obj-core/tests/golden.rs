//! Format stability: small databases written by each format version are checked in under
//! `tests/golden/` (`v1-*` by format 1, `v2-*` by format 2, `v3-*` by format 3, `v4-*` by format 4, each plain,
//! lz4 and encrypted with a commit still in the WAL); these tests open them and check every
//! document, schema and index, so a change that breaks old files fails here.
//!
//! `OBJ_WRITE_GOLDEN=1 cargo test -p obj-core --test golden` rewrites the files of the
//! current format (`v4-*`) with this build. Older files are never rewritten: this build
//! writes format 4, so they could not be made again. When the format version changes, add
//! the new version's files and keep every old one.

use obj_core::changes::{ChangeReads, Context, Images, LogSettings, Op, Retention};
use obj_core::codec::wire::{put_bytes, put_ivarint};
use obj_core::codec::{Datum, Field, FieldType, Schema, StructType};
#[allow(unused_imports)]
use obj_core::{
    wal_path, CollectionKind, Db, DocKind, EncryptionKey, IndexKind, IndexSpec, Options, ReadTxn,
    Reader, MAX_KEY_LEN,
};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn schema() -> Schema {
    Schema {
        version: 1,
        root: StructType {
            fields: vec![
                Field {
                    name: "name".into(),
                    ty: FieldType::Str,
                },
                Field {
                    name: "age".into(),
                    ty: FieldType::Int,
                },
            ],
        },
    }
}

fn person(name: &str, age: i64) -> Vec<u8> {
    let mut p = Vec::new();
    put_bytes(&mut p, name.as_bytes());
    put_ivarint(&mut p, age);
    p
}

fn event(i: i64) -> Datum {
    Datum::Map(vec![
        (
            "kind".into(),
            Datum::Str(["click", "view"][i as usize % 2].into()),
        ),
        ("n".into(), Datum::Int(i)),
        (
            "tags".into(),
            Datum::List(vec![Datum::Str(format!("t{}", i % 3))]),
        ),
    ])
}

/// (file name, options) of each golden database of format `version`.
fn variants(version: u32) -> Vec<(String, Options)> {
    vec![
        (format!("v{version}-plain.obj"), Options::default()),
        (
            format!("v{version}-lz4.obj"),
            Options::default().compression(true),
        ),
        (
            format!("v{version}-encrypted.obj"),
            Options::default().encryption_key(Some(EncryptionKey::Passphrase("golden".into()))),
        ),
    ]
}

/// The format version in a main file's header.
fn format_version(path: &Path) -> u32 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

/// Writes a golden database of the current format: the id collections the v1 files hold
/// (written the same way), the keyed collections of [`write_keyed`] (what v2 added) and the
/// table of [`write_table`] (what v3 added).
fn write(path: &Path, opts: &Options) {
    for p in [path.to_path_buf(), wal_path(path)] {
        let _ = std::fs::remove_file(p);
    }
    let db = Db::open(path, opts.clone()).unwrap();
    // What format 4 added: a change log, recording both commits below.
    db.set_changes(Some(LogSettings {
        images: Images::Both,
        retention: Retention::default(),
    }))
    .unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.set_context(Context {
        action: Some("load".into()),
        user: Some("golden".into()),
        ..Context::default()
    });
    tx.register_schema("people", &schema()).unwrap();
    tx.ensure_index(
        "people",
        &IndexSpec {
            name: "name".into(),
            kind: IndexKind::Unique,
            paths: vec!["name".into()],
        },
    )
    .unwrap();
    tx.ensure_index(
        "events",
        &IndexSpec {
            name: "tags".into(),
            kind: IndexKind::Each,
            paths: vec!["tags".into()],
        },
    )
    .unwrap();
    for (name, age) in [("ada", 36), ("grace", 85), ("linus", 54)] {
        tx.insert_doc("people", DocKind::Typed, 1, &person(name, age))
            .unwrap();
    }
    for i in 0..40 {
        tx.insert_doc("events", DocKind::Value, 0, &event(i).to_bytes())
            .unwrap();
    }
    tx.insert("raw", &b"0123456789".repeat(100)).unwrap();
    write_keyed(&mut tx, false);
    write_table(&mut tx, false);
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    // A second commit that stays in the WAL.
    let mut tx = db.begin_write().unwrap();
    tx.delete("events", 2).unwrap();
    tx.insert("raw", b"in the log").unwrap();
    write_keyed(&mut tx, true);
    write_table(&mut tx, true);
    tx.commit().unwrap();
    db.close_without_checkpoint().unwrap();
}

/// 2000-01-01 and 2200-01-01, in microseconds since the Unix epoch.
const EXPIRED_AT: u64 = 946_684_800_000_000;
const EXPIRES_AT: u64 = 7_258_118_400_000_000;

fn table_item(n: i64) -> Datum {
    Datum::Map(vec![
        ("n".into(), Datum::Int(n)),
        ("tag".into(), Datum::Str(format!("t{}", n.rem_euclid(3)))),
    ])
}

/// The table part of the v3 files: `items` with int partition keys and str sort keys, an
/// index on `n`, an item with a set and a float32 vector, an item that expired in 2000 (not
/// reclaimed) and one expiring in 2200; the commit in the WAL (`in_wal`) changes one item
/// and deletes another.
fn write_table(tx: &mut obj_core::WriteTxn, in_wal: bool) {
    use obj_core::table;
    let key = |p: i64, s: &str| table::encode_key(&Datum::Int(p), Some(&Datum::Str(s.into())));
    let bytes = |d: &Datum| d.to_bytes();
    if in_wal {
        // Written below the table API, which would reclaim the expired item on its way.
        let changed = bytes(&table_item(999));
        tx.put_key_doc("items", &key(0, "s1").unwrap(), DocKind::Value, 0, &changed)
            .unwrap();
        assert!(tx.delete_key("items", &key(1, "s2").unwrap()).unwrap());
        return;
    }
    for p in -2..3i64 {
        for j in 0..3i64 {
            let sk = Datum::Str(format!("s{j}"));
            let item = bytes(&table_item(p * 10 + j));
            table::put(tx, "items", &Datum::Int(p), Some(&sk), &item, None, None).unwrap();
        }
    }
    table::ensure_index(tx, "items", &table::index_spec(&["n".into()]).unwrap()).unwrap();
    let new = Datum::Str("new".into());
    let item = bytes(&table_item(71));
    table::put(
        tx,
        "items",
        &Datum::Int(7),
        Some(&new),
        &item,
        None,
        Some(EXPIRES_AT),
    )
    .unwrap();
    let with_set = Datum::Map(vec![
        ("n".into(), Datum::Int(80)),
        (
            "tags".into(),
            Datum::Set(vec![Datum::Str("a".into()), Datum::Str("b".into())]),
        ),
        ("emb".into(), Datum::Vector(vec![0.5, -1.25, 3.0])),
    ]);
    let sk = Datum::Str("vec".into());
    table::put(
        tx,
        "items",
        &Datum::Int(8),
        Some(&sk),
        &bytes(&with_set),
        None,
        None,
    )
    .unwrap();
    let old = bytes(&table_item(70));
    tx.put_key_doc_until(
        "items",
        &key(7, "old").unwrap(),
        DocKind::Value,
        0,
        &old,
        Some(EXPIRED_AT),
    )
    .unwrap();
}

/// Checks the table of a v3 file through the table API: partitions in sort-key order, the
/// index, expiry (the expired item is gone for reads, counted as expired by stat).
fn check_table_file(name: &str, opts: Options) {
    use obj_core::table::{self, Select};
    let (_tmp, db) = open_copy(name, opts);
    let rx = db.begin_read().unwrap();
    let n = |page: table::Page| -> Vec<i64> {
        page.items
            .iter()
            .map(|(_, v)| match Datum::decode(v).unwrap().get("n") {
                Some(Datum::Int(i)) => *i,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let all = Select::default();
    let mut want_all = Vec::new();
    for p in -2..3i64 {
        let mut want: Vec<i64> = (0..3).map(|j| p * 10 + j).collect();
        if p == 0 {
            want[1] = 999;
        }
        if p == 1 {
            want.pop();
        }
        let got = n(table::query(&rx, "items", &Datum::Int(p), None, &all).unwrap());
        assert_eq!(got, want, "{name}: partition {p}");
        want_all.extend(want);
    }
    want_all.extend([71, 80]);
    assert_eq!(
        n(table::scan(&rx, "items", &all).unwrap()),
        want_all,
        "{name}"
    );
    let key = |p: i64, s: &str| table::encode_key(&Datum::Int(p), Some(&Datum::Str(s.into())));
    assert!(
        table::get(&rx, "items", &key(7, "old").unwrap())
            .unwrap()
            .is_none(),
        "{name}"
    );
    assert!(
        table::get(&rx, "items", &key(7, "new").unwrap())
            .unwrap()
            .is_some(),
        "{name}"
    );
    assert_eq!(table::count(&rx, "items", None).unwrap(), 16, "{name}");
    let vec_item = table::get(&rx, "items", &key(8, "vec").unwrap())
        .unwrap()
        .unwrap();
    let vec_item = Datum::decode(&vec_item).unwrap();
    assert_eq!(
        vec_item.get("emb"),
        Some(&Datum::Vector(vec![0.5, -1.25, 3.0])),
        "{name}"
    );
    assert_eq!(
        vec_item.get("tags"),
        Some(&Datum::Set(vec![
            Datum::Str("a".into()),
            Datum::Str("b".into())
        ])),
        "{name}"
    );
    assert_eq!(table::expired(&rx, "items").unwrap(), 1, "{name}");
    let by_n = table::query_index(&rx, "items", "n", None, &all).unwrap();
    let mut sorted = want_all.clone();
    sorted.sort_unstable();
    assert_eq!(n(by_n), sorted, "{name}: the index on n");
    drop(rx);
    let stat = db.stat().unwrap();
    let items = stat.collections.iter().find(|c| c.name == "items").unwrap();
    assert_eq!((items.doc_count, items.expired), (17, 1), "{name}");
    db.integrity_check()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Deterministic bytes that lz4 cannot shrink much, so they overflow in every variant.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The longest key there is: 1023 bytes of `K` and one `!`.
fn long_key() -> Vec<u8> {
    let mut k = vec![b'K'; MAX_KEY_LEN - 1];
    k.push(b'!');
    k
}

/// A user document: email (unique index), tags (each index), a number and, for some, a
/// blob large enough to overflow.
fn user(i: u64, email: &str) -> Datum {
    let mut fields = vec![
        ("email".into(), Datum::Str(email.into())),
        (
            "tags".into(),
            Datum::List(
                (0..i % 3 + 1)
                    .map(|t| Datum::Str(format!("t{}", (i + t) % 4)))
                    .collect(),
            ),
        ),
        ("n".into(), Datum::Int(i as i64 * 7 - 20)),
    ];
    if i % 10 == 2 {
        fields.push(("blob".into(), Datum::Bytes(noise(i, 5000))));
    }
    Datum::Map(fields)
}

/// Raw documents by key.
type RawByKey = BTreeMap<Vec<u8>, Vec<u8>>;

/// The keyed documents, as the golden files must hold them after both commits:
/// `users` (Value documents) and `kv` (raw bytes).
fn keyed_model() -> (BTreeMap<Vec<u8>, Datum>, RawByKey) {
    let mut users = BTreeMap::new();
    for i in 0..30u64 {
        users.insert(
            format!("user:{i:03}").into_bytes(),
            user(i, &format!("u{i}@x")),
        );
    }
    users.insert(long_key(), user(2, "long@x"));
    // The commit left in the WAL: one user deleted, one changed, one added.
    users.remove(&b"user:002"[..]);
    users.insert(b"user:001".to_vec(), user(1, "u1-new@x"));
    users.insert(b"user:999".to_vec(), user(999, "u999@x"));
    let mut kv = BTreeMap::new();
    for (k, v) in [
        (&[0x00][..], &b"zero"[..]),
        (&[0x00, 0x00][..], &b"zero zero"[..]),
        (&b"a\x00b"[..], &b"with a zero byte"[..]),
        (&[0xFF, 0xFF, 0xFF][..], &b"last"[..]),
    ] {
        kv.insert(k.to_vec(), v.to_vec());
    }
    kv.insert(b"in the log".to_vec(), b"from the WAL".to_vec());
    (users, kv)
}

/// The keyed part of the golden files: the first commit (`in_wal` false) creates `users`
/// with a unique and an each index, then fills both keyed collections; the second one
/// (`in_wal` true, left in the WAL) deletes, changes and adds a few.
fn write_keyed(tx: &mut obj_core::WriteTxn, in_wal: bool) {
    if in_wal {
        assert!(tx.delete_key("users", b"user:002").unwrap());
        let doc = user(1, "u1-new@x").to_bytes();
        assert!(tx
            .put_key_doc("users", b"user:001", DocKind::Value, 0, &doc)
            .unwrap());
        let doc = user(999, "u999@x").to_bytes();
        tx.put_key_doc("users", b"user:999", DocKind::Value, 0, &doc)
            .unwrap();
        tx.put_key("kv", b"in the log", b"from the WAL").unwrap();
        return;
    }
    tx.create_collection("users", CollectionKind::Keyed)
        .unwrap();
    for (name, kind, path) in [
        ("email", IndexKind::Unique, "email"),
        ("tags", IndexKind::Each, "tags"),
    ] {
        tx.ensure_index(
            "users",
            &IndexSpec {
                name: name.into(),
                kind,
                paths: vec![path.into()],
            },
        )
        .unwrap();
    }
    for i in 0..30u64 {
        let doc = user(i, &format!("u{i}@x")).to_bytes();
        tx.put_key_doc(
            "users",
            format!("user:{i:03}").as_bytes(),
            DocKind::Value,
            0,
            &doc,
        )
        .unwrap();
    }
    // The longest key, with a document that overflows beside it.
    let doc = user(2, "long@x").to_bytes();
    tx.put_key_doc("users", &long_key(), DocKind::Value, 0, &doc)
        .unwrap();
    let (_, kv) = keyed_model();
    for (k, v) in kv.iter().filter(|(k, _)| k.as_slice() != b"in the log") {
        tx.put_key("kv", k, v).unwrap();
    }
}

/// A build without a feature refuses a file that needs it, naming the feature (run by
/// `.ci/run` with `--no-default-features`).
#[test]
#[cfg(not(all(feature = "compression", feature = "encryption")))]
fn a_build_without_a_feature_refuses_files_that_need_it() {
    for (name, feature, wanted) in [
        (
            "v1-lz4.obj",
            "compression-lz4",
            cfg!(feature = "compression"),
        ),
        (
            "v1-encrypted.obj",
            "encryption-xchacha20poly1305",
            cfg!(feature = "encryption"),
        ),
        (
            "v2-lz4.obj",
            "compression-lz4",
            cfg!(feature = "compression"),
        ),
        (
            "v2-encrypted.obj",
            "encryption-xchacha20poly1305",
            cfg!(feature = "encryption"),
        ),
    ] {
        if wanted {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(name);
        std::fs::copy(golden_dir().join(name), &path).unwrap();
        let err = Db::open(&path, Options::default().read_only(true)).unwrap_err();
        assert!(
            matches!(&err, obj_core::Error::FeatureUnsupported(m) if m.contains(feature)),
            "{name}: {err}"
        );
    }
}

/// Opens a copy of golden file `name` read-only (opening replays and may rewrite the log).
fn open_copy(name: &str, opts: Options) -> (tempfile::TempDir, Db) {
    let dir = golden_dir();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(name);
    std::fs::copy(dir.join(name), &path).unwrap_or_else(|e| panic!("{name}: {e}"));
    std::fs::copy(wal_path(&dir.join(name)), wal_path(&path)).unwrap();
    let db = Db::open(&path, opts.read_only(true)).unwrap_or_else(|e| panic!("{name}: {e}"));
    (tmp, db)
}

#[test]
#[cfg(all(feature = "compression", feature = "encryption"))]
fn golden_files_of_format_1_still_read() {
    for (name, opts) in variants(1) {
        let name = name.as_str();
        // Still the files format 1 wrote (regenerating never touches them).
        assert_eq!(format_version(&golden_dir().join(name)), 1, "{name}");
        let (_tmp, db) = open_copy(name, opts);
        let rx = db.begin_read().unwrap();
        assert_eq!(
            rx.collections().unwrap(),
            vec!["events", "people", "raw"],
            "{name}"
        );
        check_id_collections(&rx, name);
        drop(rx);
        db.integrity_check()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The id collections every golden file holds: typed people with a unique index, Value
/// events with an each index, raw bytes; one event deleted and one raw document added by
/// the commit left in the WAL.
fn check_id_collections(rx: &ReadTxn, name: &str) {
    assert_eq!(
        *rx.schema("people", 1).unwrap().unwrap(),
        schema(),
        "{name}"
    );
    let people: Vec<Datum> = rx
        .iter("people")
        .unwrap()
        .map(|r| rx.decode_stored("people", &r.unwrap().1).unwrap().unwrap())
        .collect();
    assert_eq!(
        people[1].get("name"),
        Some(&Datum::Str("grace".into())),
        "{name}"
    );
    assert_eq!(people[2].get("age"), Some(&Datum::Int(54)), "{name}");
    assert_eq!(
        rx.find_unique("people", "name", &[Datum::Str("linus".into())])
            .unwrap(),
        Some(3),
        "{name}"
    );
    assert_eq!(rx.count("events").unwrap(), 39, "{name}");
    let e7 = rx.get("events", 8).unwrap().unwrap();
    assert_eq!(Datum::decode(&e7).unwrap(), event(7), "{name}");
    let mut scan = rx
        .index_scan(
            "events",
            "tags",
            Some(&[Datum::Str("t1".into())]),
            Some(&[Datum::Str("t1".into())]),
        )
        .unwrap();
    // t1 is on events 1, 4, .. 37 (13 of them); event 1 (id 2) was deleted.
    assert_eq!(scan.next_batch(rx, 100).unwrap().len(), 12, "{name}");
    assert_eq!(
        &*rx.get("raw", 1).unwrap().unwrap(),
        &b"0123456789".repeat(100)[..],
        "{name}"
    );
    assert_eq!(
        &*rx.get("raw", 2).unwrap().unwrap(),
        b"in the log",
        "{name}"
    );
}

#[test]
#[cfg(all(feature = "compression", feature = "encryption"))]
fn golden_files_of_format_2_still_read() {
    for (name, opts) in variants(2) {
        check_keyed_file(&name, opts, 2, &["events", "kv", "people", "raw", "users"]);
    }
}

#[test]
#[cfg(all(feature = "compression", feature = "encryption"))]
fn golden_files_of_format_3_still_read() {
    for (name, opts) in variants(3) {
        let all = ["events", "items", "kv", "people", "raw", "users"];
        check_keyed_file(&name, opts.clone(), 3, &all);
        check_table_file(&name, opts);
    }
}

#[test]
#[cfg(all(feature = "compression", feature = "encryption"))]
fn golden_files_of_format_4_still_read() {
    let dir = golden_dir();
    if std::env::var("OBJ_WRITE_GOLDEN").is_ok() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, opts) in variants(4) {
            write(&dir.join(name), &opts);
        }
    }
    for (name, opts) in variants(4) {
        let all = ["events", "items", "kv", "people", "raw", "users"];
        check_keyed_file(&name, opts.clone(), 4, &all);
        check_table_file(&name, opts.clone());
        check_change_log(&name, opts);
    }
}

/// The change log of a v4 file: one record per commit, the first with its metadata, the
/// second (in the WAL) with the changes [`write`] makes there, images included; and the
/// file goes on recording after it is opened.
fn check_change_log(name: &str, opts: Options) {
    let (_tmp, db) = open_copy(name, opts);
    let rx = db.begin_read().unwrap();
    let info = rx.change_log().unwrap().unwrap();
    assert_eq!((info.oldest, info.next_seq), (1, 3), "{name}");
    assert_eq!(info.settings.images, Images::Both, "{name}");
    let batch = rx.changes(0, None, usize::MAX, None).unwrap();
    let recs = batch.records;
    assert_eq!(recs.len(), 2, "{name}");
    assert_eq!(recs[0].context.action.as_deref(), Some("load"), "{name}");
    assert_eq!(recs[0].context.user.as_deref(), Some("golden"), "{name}");
    // The first commit: the schema and index registrations come before the documents.
    let first: Vec<&str> = recs[0]
        .entries
        .iter()
        .map(|e| e.op.name())
        .take(3)
        .collect();
    assert_eq!(first, ["schema", "index", "index"], "{name}");
    let second = &recs[1].entries;
    let deleted = second
        .iter()
        .find(|e| &*e.collection == "events" && e.op == Op::Delete)
        .unwrap_or_else(|| panic!("{name}: no delete of events"));
    assert_eq!(deleted.id(), Some(2), "{name}");
    assert_eq!(
        Datum::decode(&deleted.old_value().unwrap().unwrap()).unwrap(),
        event(1),
        "{name}"
    );
    let raw = second
        .iter()
        .find(|e| &*e.collection == "raw")
        .unwrap_or_else(|| panic!("{name}: no insert of raw"));
    assert_eq!(raw.op, Op::Insert, "{name}");
    assert_eq!(&*raw.new_value().unwrap().unwrap(), b"in the log", "{name}");
    drop(rx);
    db.integrity_check()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Checks a golden file of format `version` (2 or later): its id collections, its keyed
/// collections and their indexes, and that it passes the integrity check.
fn check_keyed_file(name: &str, opts: Options, version: u32, collections: &[&str]) {
    let dir = golden_dir();
    let (users, kv) = keyed_model();
    {
        assert_eq!(format_version(&dir.join(name)), version, "{name}");
        let (_tmp, db) = open_copy(name, opts);
        let rx = db.begin_read().unwrap();
        assert_eq!(rx.collections().unwrap(), collections, "{name}");
        check_id_collections(&rx, name);
        for (coll, kind) in [
            ("users", CollectionKind::Keyed),
            ("kv", CollectionKind::Keyed),
            ("people", CollectionKind::Ids),
        ] {
            assert_eq!(rx.kind(coll).unwrap(), Some(kind), "{name} {coll}");
        }

        // Every keyed document, in key order both ways.
        let all = Bound::Unbounded;
        let got: Vec<(Vec<u8>, Datum)> = rx
            .key_range("users", all, all, false)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k, rx.decode_stored("users", &v).unwrap().unwrap())
            })
            .collect();
        let want: Vec<(Vec<u8>, Datum)> = users.clone().into_iter().collect();
        assert!(got == want, "{name}: users differ from the model");
        let back: Vec<Vec<u8>> = rx
            .key_range("users", all, all, true)
            .unwrap()
            .map(|e| e.unwrap().0)
            .collect();
        assert!(back.iter().eq(users.keys().rev()), "{name}: users backward");
        assert_eq!(rx.count("users").unwrap(), users.len() as u64, "{name}");
        let got: Vec<(Vec<u8>, Vec<u8>)> = rx
            .key_range("kv", all, all, false)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k, v.into_vec())
            })
            .collect();
        assert_eq!(got, kv.clone().into_iter().collect::<Vec<_>>(), "{name}");
        let long = rx.get_key("users", &long_key()).unwrap().unwrap();
        assert_eq!(
            rx.decode_stored("users", &long).unwrap().unwrap(),
            user(2, "long@x"),
            "{name}"
        );
        let prefix: Vec<Vec<u8>> = rx
            .key_prefix("kv", &[0x00], false)
            .unwrap()
            .map(|e| e.unwrap().0)
            .collect();
        assert_eq!(prefix, vec![vec![0x00], vec![0x00, 0x00]], "{name}");

        // The indexes refer to the keys, as of the commit in the WAL.
        let s = |v: &str| Datum::Str(v.into());
        for (email, key) in [
            ("u1-new@x", Some(&b"user:001"[..])),
            ("u1@x", None),
            ("u2@x", None),
            ("u999@x", Some(&b"user:999"[..])),
            ("long@x", Some(&long_key()[..])),
        ] {
            assert_eq!(
                rx.find_unique_key("users", "email", &[s(email)]).unwrap(),
                key.map(<[u8]>::to_vec),
                "{name}: email {email}"
            );
        }
        for tag in ["t0", "t1", "t2", "t3"] {
            let mut scan = rx
                .index_scan("users", "tags", Some(&[s(tag)]), Some(&[s(tag)]))
                .unwrap();
            let mut got = Vec::new();
            loop {
                let batch = scan.next_keys(&rx, 7).unwrap();
                if batch.is_empty() {
                    break;
                }
                got.extend(batch);
            }
            let want: Vec<Vec<u8>> = users
                .iter()
                .filter(|(_, d)| match d.get("tags") {
                    Some(Datum::List(l)) => l.contains(&s(tag)),
                    _ => false,
                })
                .map(|(k, _)| k.clone())
                .collect();
            assert!(!want.is_empty(), "{tag}");
            assert_eq!(got, want, "{name}: tag {tag}");
        }
        drop(rx);
        let report = db
            .integrity_check()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let users_report = report
            .collections
            .iter()
            .find(|c| c.name == "users")
            .unwrap();
        assert_eq!(users_report.documents, users.len() as u64, "{name}");
    }
}
