//! I/O failures are reported with their cause: what the engine was doing, on which file, and
//! the OS error (kept by the handle and restated by every later refusal). Opening a path
//! that cannot be a database says why.

use obj_core::backend::StorageBackend;
use obj_core::fault::{FaultPlan, Faulty, OpKind, SimDisk};
use obj_core::{Db, Error, Options, Reader};

// Linux errno values.
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const ENOSPC: i32 = 28;

fn opts() -> Options {
    Options::default().checkpoint_frames(4)
}

/// A new database on two shared simulated disks, with `n` documents in collection "c".
fn disks_with(n: u64) -> (SimDisk, SimDisk) {
    let (main, wal) = (SimDisk::new(), SimDisk::new());
    let db = Db::open_with_backends(Box::new(main.clone()), Box::new(wal.clone()), opts()).unwrap();
    for i in 0..n {
        let mut tx = db.begin_write().unwrap();
        tx.insert("c", &i.to_le_bytes()).unwrap();
        tx.commit().unwrap();
    }
    db.close().unwrap();
    (main, wal)
}

fn count(main: &SimDisk, wal: &SimDisk) -> u64 {
    let db = Db::open_with_backends(Box::new(main.clone()), Box::new(wal.clone()), opts()).unwrap();
    let n = db.begin_read().unwrap().count("c").unwrap();
    db.close().unwrap();
    n
}

fn insert(db: &Db, v: u64) -> obj_core::Result<()> {
    let mut tx = db.begin_write()?;
    tx.insert("c", &v.to_le_bytes())?;
    tx.commit()
}

#[test]
fn a_full_disk_during_an_automatic_checkpoint_is_named_by_every_later_refusal() {
    let (main, wal) = disks_with(1);
    // Every write to the main file fails as on a full disk; the log still takes commits.
    let plan = FaultPlan::with_os_error(OpKind::Write, 1, true, ENOSPC);
    let db = Db::open_with_backends(
        Box::new(Faulty::new(main.clone(), plan.clone())),
        Box::new(wal.clone()),
        opts(),
    )
    .unwrap();
    let mut acked = 1;
    // The commit that reaches checkpoint_frames is durable in the log: it succeeds, and the
    // automatic checkpoint after it fails.
    while plan.failures() == 0 {
        insert(&db, acked).unwrap();
        acked += 1;
        assert!(acked < 50, "no automatic checkpoint ran");
    }
    for attempt in 0..3 {
        let refused = match attempt {
            0 => insert(&db, 99).unwrap_err(),
            1 => db.checkpoint().unwrap_err(),
            _ => db.compact().unwrap_err(),
        };
        let msg = refused.to_string();
        assert!(matches!(refused, Error::Io(_)), "{refused:?}");
        assert_eq!(refused.os_error(), Some(ENOSPC), "{msg}");
        for part in [
            "an automatic checkpoint failed earlier",
            "writing the database file failed",
            "No space left on device",
            "reopen the database",
        ] {
            assert!(msg.contains(part), "{msg:?} lacks {part:?}");
        }
        assert!(!msg.contains("WAL") && !msg.contains("log"), "{msg}");
    }
    // Reads go on, and nothing acknowledged is lost.
    assert_eq!(db.begin_read().unwrap().count("c").unwrap(), acked);
    db.close().unwrap();
    drop(db);
    assert_eq!(count(&main, &wal), acked);
}

#[test]
fn a_failed_log_write_names_the_log_and_is_restated() {
    let (main, wal) = disks_with(0);
    let plan = FaultPlan::with_os_error(OpKind::Write, 1, true, ENOSPC);
    let db = Db::open_with_backends(
        Box::new(main.clone()),
        Box::new(Faulty::new(wal.clone(), plan)),
        opts(),
    )
    .unwrap();
    let first = insert(&db, 1).unwrap_err();
    assert_eq!(first.os_error(), Some(ENOSPC));
    let msg = first.to_string();
    assert!(
        msg.contains("writing the WAL failed: No space left on device"),
        "{msg}"
    );
    let later = insert(&db, 2).unwrap_err();
    assert_eq!(later.os_error(), Some(ENOSPC));
    let later = later.to_string();
    assert!(
        later.contains("writing a commit to the log failed earlier")
            && later.contains("writing the WAL failed: No space left on device")
            && later.contains("reopen the database"),
        "{later}"
    );
    drop(db);
    assert_eq!(count(&main, &wal), 0);
}

#[test]
fn file_errors_name_the_file_and_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory on the way that is a file.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let inside = file.join("app.obj");
    for read_only in [false, true] {
        let e = Db::open(&inside, Options::default().read_only(read_only)).unwrap_err();
        assert_eq!(e.os_error(), Some(ENOTDIR), "{e}");
        assert_eq!(e.io_path(), Some(inside.as_path()));
        let msg = e.to_string();
        assert!(msg.contains(&inside.display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("{} is a file, not a directory", file.display())),
            "{msg}"
        );
    }
    // The path is a directory.
    let e = Db::open(dir.path(), Options::default()).unwrap_err();
    assert_eq!(e.os_error(), Some(EISDIR), "{e}");
    assert!(e.to_string().contains("is a directory"), "{e}");
}

#[test]
fn a_missing_directory_is_not_reported_as_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let path = missing.join("app.obj");
    for read_only in [false, true] {
        let e = Db::open(&path, Options::default().read_only(read_only)).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert!(
            msg.contains(&format!("directory {} does not exist", missing.display())),
            "{msg}"
        );
    }
    // The directory exists, the file does not: a missing database.
    let path = dir.path().join("app.obj");
    let e = Db::open(&path, Options::default().read_only(true)).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("database file {} does not exist", path.display())),
        "{e}"
    );
}

/// A read that fails while the database opens must fail the open (or be retried), never
/// let it go on under a wrong idea of the file: one such open once started a fresh log
/// that the next open did not recognise, losing every commit acknowledged through it.
#[test]
fn a_failed_read_during_open_never_loses_the_commits_made_after_it() {
    for nth in 1..=8 {
        let (main, wal) = disks_with(2);
        // Closed cleanly, everything is in the main file; without a log at all the open
        // has to start a new one (as after a copy of the main file alone).
        wal.set_len(0).unwrap();
        wal.sync().unwrap();
        let plan = FaultPlan::new(OpKind::Read, nth, false);
        // (No automatic checkpoint: it would copy the commits out of the log in time.)
        let opened = Db::open_with_backends(
            Box::new(Faulty::new(main.clone(), plan.clone())),
            Box::new(Faulty::new(wal.clone(), plan.clone())),
            Options::default().checkpoint_frames(1000),
        );
        let Ok(db) = opened else {
            assert_eq!(
                count(&main, &wal),
                2,
                "read {nth}: a failed open changed the data"
            );
            continue;
        };
        // The open survived the fault (or it comes later, failing one commit): what the
        // handle acknowledges stays.
        let acked = (0..4).filter(|&v| insert(&db, 100 + v).is_ok()).count() as u64;
        assert!(
            acked >= 3,
            "read {nth}: only {acked} of 4 commits succeeded"
        );
        db.close_without_checkpoint().unwrap();
        drop(db);
        assert_eq!(
            count(&main, &wal),
            2 + acked,
            "read {nth} failed during open"
        );
    }
}
