//! Blob stores: chunked values under keys, in one transaction however large, their space
//! freed on replace and delete, their headers (not their chunks) in the change log.

use obj_core::blob::{self, chunks_of, BlobReads, BlobWriter, CHUNK_SIZE};
use obj_core::changes::{ChangeReads, Images, LogSettings, Retention};
use obj_core::{Db, Options, Reader};
use sha2::{Digest, Sha256};

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn read_all(r: &impl Reader, store: &str, key: &[u8]) -> Option<Vec<u8>> {
    let info = r.blob_info(store, key).unwrap()?;
    let mut out = Vec::new();
    for i in 0..info.chunks() {
        out.extend(r.blob_chunk(store, &info, i).unwrap());
    }
    assert_eq!(out.len() as u64, info.size);
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&out)), info.sha256);
    Some(out)
}

#[test]
fn sizes_around_the_chunk_size_round_trip_with_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("b.obj"), Options::default()).unwrap();
    let sizes = [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        3 * CHUNK_SIZE + 7,
    ];
    let mut tx = db.begin_write().unwrap();
    for (i, n) in sizes.iter().enumerate() {
        let data = bytes(*n, i as u64);
        // Written in uneven pieces, so chunks fill across writes.
        let mut w =
            BlobWriter::begin(&mut tx, "m", format!("k{i}").as_bytes(), None, None).unwrap();
        for piece in data.chunks(77_777) {
            w.write(&mut tx, piece).unwrap();
        }
        let info = w.finish(&mut tx).unwrap();
        assert_eq!(info.size, *n as u64);
    }
    tx.commit().unwrap();
    let r = db.begin_read().unwrap();
    for (i, n) in sizes.iter().enumerate() {
        let got = read_all(&r, "m", format!("k{i}").as_bytes()).unwrap();
        assert!(got == bytes(*n, i as u64), "blob {i} of {n} bytes");
    }
    assert_eq!(blob::orphan_chunks(&r, "m").unwrap(), 0);
}

#[test]
fn replacing_and_deleting_free_the_chunks_and_abort_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("b.obj"), Options::default()).unwrap();
    let big = bytes(4 << 20, 1);
    let mut tx = db.begin_write().unwrap();
    blob::put_blob(&mut tx, "m", b"a", &big, Some("x/y".into()), None).unwrap();
    tx.commit().unwrap();
    let chunks = |db: &Db| db.begin_read().unwrap().count(&chunks_of("m")).unwrap();
    assert_eq!(chunks(&db), 16);
    let mut tx = db.begin_write().unwrap();
    blob::put_blob(&mut tx, "m", b"a", b"small", None, None).unwrap();
    tx.commit().unwrap();
    assert_eq!(chunks(&db), 1);
    let r = db.begin_read().unwrap();
    assert_eq!(read_all(&r, "m", b"a").unwrap(), b"small");
    drop(r);
    let free_before = db.stat().unwrap().free_pages;
    assert!(
        free_before >= 1000,
        "the 4 MiB blob's pages are free ({free_before})"
    );

    let mut tx = db.begin_write().unwrap();
    let mut w = BlobWriter::begin(&mut tx, "m", b"b", None, None).unwrap();
    w.write(&mut tx, &big).unwrap();
    w.abort(&mut tx).unwrap();
    assert!(blob::delete_blob(&mut tx, "m", b"a").unwrap());
    assert!(!blob::delete_blob(&mut tx, "m", b"a").unwrap());
    tx.commit().unwrap();
    let r = db.begin_read().unwrap();
    assert_eq!(r.count("m").unwrap(), 0);
    assert_eq!(r.count(&chunks_of("m")).unwrap(), 0);
    assert_eq!(blob::orphan_chunks(&r, "m").unwrap(), 0);
    drop(r);
    db.integrity_check().unwrap();
}

#[test]
fn a_blob_larger_than_the_transactions_memory_budget_commits_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.obj");
    let opts = || Options::default().cache_size(1 << 20);
    let mut hasher = Sha256::new();
    let total = 48usize << 20; // 12x the 4 MiB budget
    {
        let db = Db::open(&path, opts()).unwrap();
        let mut tx = db.begin_write().unwrap();
        let mut w = BlobWriter::begin(&mut tx, "m", b"big", None, None).unwrap();
        for i in 0..total / (1 << 20) {
            let piece = bytes(1 << 20, i as u64);
            hasher.update(&piece);
            w.write(&mut tx, &piece).unwrap();
        }
        w.finish(&mut tx).unwrap();
        tx.commit().unwrap();
    }
    let db = Db::open(&path, opts()).unwrap();
    let r = db.begin_read().unwrap();
    let info = r.blob_info("m", b"big").unwrap().unwrap();
    assert_eq!(info.size, total as u64);
    assert_eq!(info.sha256, <[u8; 32]>::from(hasher.finalize()));
    read_all(&r, "m", b"big").unwrap();
    drop(r);
    db.integrity_check().unwrap();
}

#[test]
fn the_change_log_records_headers_not_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("b.obj"), Options::default()).unwrap();
    db.set_changes(Some(LogSettings {
        images: Images::Keys,
        retention: Retention::default(),
    }))
    .unwrap();
    let mut tx = db.begin_write().unwrap();
    blob::put_blob(&mut tx, "m", b"a", &bytes(3 * CHUNK_SIZE, 2), None, None).unwrap();
    tx.commit().unwrap();
    let mut tx = db.begin_write().unwrap();
    blob::delete_blob(&mut tx, "m", b"a").unwrap();
    tx.commit().unwrap();
    let batch = db
        .begin_read()
        .unwrap()
        .changes(0, None, 1000, None)
        .unwrap();
    let data: Vec<(String, String)> = batch
        .records
        .iter()
        .flat_map(|r| r.entries.iter())
        .filter(|e| e.op.is_data())
        .map(|e| (e.collection.to_string(), e.op.name().to_string()))
        .collect();
    assert_eq!(
        data,
        [
            ("m".to_string(), "insert".to_string()),
            ("m".into(), "delete".into())
        ]
    );
}

#[test]
fn blob_ids_stay_above_chunks_copied_in_from_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = Db::open(dir.path().join("a.obj"), Options::default()).unwrap();
    let mut tx = a.begin_write().unwrap();
    blob::put_blob(&mut tx, "m", b"old", &bytes(CHUNK_SIZE + 5, 3), None, None).unwrap();
    tx.commit().unwrap();
    // Copy every record as an export and import would (the id counter does not travel).
    let b = Db::open(dir.path().join("b.obj"), Options::default()).unwrap();
    let r = a.begin_read().unwrap();
    let mut tx = b.begin_write().unwrap();
    for name in ["m".to_string(), chunks_of("m")] {
        tx.create_collection(&name, obj_core::CollectionKind::Keyed)
            .unwrap();
        for entry in r
            .key_range(
                &name,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
            )
            .unwrap()
        {
            let (k, v) = entry.unwrap();
            let h = v.header();
            tx.put_key_doc(&name, &k, h.kind, h.type_version, &v)
                .unwrap();
        }
    }
    blob::put_blob(&mut tx, "m", b"new", &bytes(10, 4), None, None).unwrap();
    tx.commit().unwrap();
    let r = b.begin_read().unwrap();
    assert_eq!(read_all(&r, "m", b"old").unwrap(), bytes(CHUNK_SIZE + 5, 3));
    assert_eq!(read_all(&r, "m", b"new").unwrap(), bytes(10, 4));
    assert!(
        r.blob_info("m", b"new").unwrap().unwrap().id
            > r.blob_info("m", b"old").unwrap().unwrap().id
    );
}
