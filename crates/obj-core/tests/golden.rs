//! Format stability: small databases written by format version 1 are checked in under
//! `tests/golden/`; this test opens them and checks every document, schema and index, so a
//! change that breaks old files fails here. Regenerate (only when the format version
//! changes, keeping the old files too) with `OBJ_WRITE_GOLDEN=1 cargo test --test golden`.

use obj_core::codec::wire::{put_bytes, put_ivarint};
use obj_core::codec::{Datum, Field, FieldType, Schema, StructType};
#[allow(unused_imports)]
use obj_core::{wal_path, Db, DocKind, EncryptionKey, IndexKind, IndexSpec, Options, Reader};
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

/// (file name, options) of each golden database.
fn variants() -> Vec<(&'static str, Options)> {
    vec![
        ("v1-plain.obj", Options::default()),
        (
            "v1-lz4.obj",
            Options {
                compression: true,
                ..Options::default()
            },
        ),
        (
            "v1-encrypted.obj",
            Options {
                encryption_key: Some(EncryptionKey::Passphrase("golden".into())),
                ..Options::default()
            },
        ),
    ]
}

fn write(path: &Path, opts: &Options) {
    for p in [path.to_path_buf(), wal_path(path)] {
        let _ = std::fs::remove_file(p);
    }
    let db = Db::open(path, opts.clone()).unwrap();
    let mut tx = db.begin_write().unwrap();
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
    tx.commit().unwrap();
    db.checkpoint().unwrap();
    // A second commit that stays in the WAL.
    let mut tx = db.begin_write().unwrap();
    tx.delete("events", 2).unwrap();
    tx.insert("raw", b"in the log").unwrap();
    tx.commit().unwrap();
    db.close_without_checkpoint().unwrap();
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
    ] {
        if wanted {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(name);
        std::fs::copy(golden_dir().join(name), &path).unwrap();
        let err = Db::open(
            &path,
            Options {
                read_only: true,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, obj_core::Error::FeatureUnsupported(m) if m.contains(feature)),
            "{name}: {err}"
        );
    }
}

#[test]
#[cfg(all(feature = "compression", feature = "encryption"))]
fn golden_files_of_format_1_still_read() {
    let dir = golden_dir();
    if std::env::var("OBJ_WRITE_GOLDEN").is_ok() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, opts) in variants() {
            write(&dir.join(name), &opts);
        }
    }
    for (name, opts) in variants() {
        // Work on a copy: opening replays and may rewrite the log.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(name);
        std::fs::copy(dir.join(name), &path).unwrap_or_else(|e| panic!("{name}: {e}"));
        std::fs::copy(wal_path(&dir.join(name)), wal_path(&path)).unwrap();
        let db = Db::open(
            &path,
            Options {
                read_only: true,
                ..opts
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rx = db.begin_read().unwrap();
        assert_eq!(
            rx.collections().unwrap(),
            vec!["events", "people", "raw"],
            "{name}"
        );
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
        assert_eq!(scan.next_batch(&rx, 100).unwrap().len(), 12, "{name}");
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
        drop(rx);
        db.integrity_check()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
