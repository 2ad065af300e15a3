//! The engine state one open database shares between its handle and its transactions:
//! the pager (main file and page cache), the WAL, the published commit and the readers
//! pinning older ones, the writer lock, and the caches of collection roots, schemas and
//! index definitions. `db.rs` fronts it; transactions borrow it through an `Arc`.
//!
//! Lock order (never take an earlier one while holding a later one): `writer_busy` (held
//! as a [`WriterGuard`] for a whole write transaction or checkpoint) → `wal` → `published`;
//! the cache locks (`roots`, `schemas`, `indexes`) and the pager's are leaves, taken alone.

use crate::catalog::{IndexDef, NameMap, Root};
use crate::codec::Schema;
use crate::error::{Error, IoContext, Result};
use crate::format::Meta;
use crate::options::{Durability, Options};
use crate::pager::{PageBuf, Pager};
use crate::wal::{self, Wal};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What a checkpoint did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointInfo {
    /// Page versions copied from the WAL into the main file.
    pub frames_copied: u64,
    /// True when the WAL was reset to its header.
    pub wal_reset: bool,
    /// True when a live reader kept some frames in the WAL.
    pub deferred: bool,
}

/// The readers of one commit.
struct Pins {
    count: usize,
    since: Instant,
}

impl Pins {
    fn add(readers: &mut BTreeMap<u64, Pins>, seq: u64) {
        readers
            .entry(seq)
            .or_insert_with(|| Pins {
                count: 0,
                since: Instant::now(),
            })
            .count += 1;
    }
}

/// Who holds snapshots open (for `stat`): what a long-lived reader keeps in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ReaderStat {
    /// The latest commit.
    pub commit_seq: u64,
    /// Live snapshots (read transactions, iterators, views) on this handle.
    pub readers: u64,
    /// The commit the oldest live snapshot reads, and how long it has been pinned.
    pub oldest: Option<(u64, Duration)>,
}

struct Published {
    seq: u64,
    meta: Meta,
    /// Live snapshots: commit number → how many readers pin it, and since when.
    readers: BTreeMap<u64, Pins>,
}

type IndexDefs = Arc<Vec<IndexDef>>;

pub(crate) struct Shared {
    pub(crate) pager: Pager,
    wal: Mutex<Wal>,
    published: Mutex<Published>,
    writer_busy: Mutex<bool>,
    writer_cv: Condvar,
    /// Collection roots never move; each entry is valid for snapshots at or after its seq.
    roots: RwLock<NameMap<(Root, u64)>>,
    /// Committed schemas; a stored (collection, version) shape never changes.
    schemas: RwLock<NameMap<HashMap<u32, Arc<Schema>>>>,
    /// Latest committed index definitions per collection, valid from the given commit.
    indexes: RwLock<NameMap<(u64, IndexDefs)>>,
    opts: Options,
    /// The first failure while writing the log or checkpointing: from then on the handle
    /// refuses writes, and every refusal restates it.
    failed: OnceLock<Failure>,
    closed: AtomicBool,
    /// Set in a child process after `fork()`: the handle belongs to the parent, and the
    /// child must neither read through it nor touch its files and locks.
    forked: AtomicBool,
    lock_file: Option<File>,
    path: PathBuf,
}

impl Shared {
    /// The state of a database just opened (recovered) at commit `seq`.
    pub(crate) fn new(
        pager: Pager,
        wal: Wal,
        seq: u64,
        meta: Meta,
        opts: Options,
        lock_file: Option<File>,
        path: PathBuf,
    ) -> Shared {
        Shared {
            pager,
            wal: Mutex::new(wal),
            published: Mutex::new(Published {
                seq,
                meta,
                readers: BTreeMap::new(),
            }),
            writer_busy: Mutex::new(false),
            writer_cv: Condvar::new(),
            roots: RwLock::new(NameMap::default()),
            schemas: RwLock::new(NameMap::default()),
            indexes: RwLock::new(NameMap::default()),
            opts,
            failed: OnceLock::new(),
            closed: AtomicBool::new(false),
            forked: AtomicBool::new(false),
            lock_file,
            path,
        }
    }
}

/// The writer lock, held for as long as this lives (a write transaction, a checkpoint).
pub(crate) struct WriterGuard(Arc<Shared>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        *self.0.writer_busy.lock() = false;
        self.0.writer_cv.notify_one();
    }
}

/// One reader's pin on a commit: the log keeps that commit's pages until it is dropped.
pub(crate) struct Snapshot {
    pub(crate) shared: Arc<Shared>,
    pub(crate) seq: u64,
    pub(crate) meta: Meta,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.shared.unpin(self.seq);
    }
}

/// What a write transaction hands to [`Shared::commit`].
pub(crate) struct Commit {
    /// The commit the transaction read; the new one is `base_seq + 1`.
    pub(crate) base_seq: u64,
    /// Every changed page, sealed, in page order (page 0 carries `meta`).
    pub(crate) pages: Vec<(u64, PageBuf)>,
    pub(crate) meta: Meta,
    /// Collection roots created or moved.
    pub(crate) new_roots: Vec<(String, Root)>,
    /// Schemas stored.
    pub(crate) schemas: Vec<(String, Arc<Schema>)>,
    /// Collections whose index definitions changed, with the new definitions.
    pub(crate) indexes: Vec<(String, IndexDefs)>,
}

/// Why a handle refuses writes: what failed (`during`: "a commit", "an automatic
/// checkpoint", ...) and the error it failed with.
struct Failure {
    during: &'static str,
    cause: Cause,
}

/// A kept copy of an error: an I/O error keeps its kind, OS error number and file.
enum Cause {
    Io(std::io::Error),
    Other(String),
}

impl Shared {
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.forked.load(Ordering::Acquire) {
            return Err(Error::Closed(
                "this handle was opened before fork(), in the parent process; open the \
                 database again in the child"
                    .into(),
            ));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the database has been closed".into()));
        }
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.opts.read_only {
            return Err(Error::ReadOnly(format!(
                "{} was opened read-only",
                self.path.display()
            )));
        }
        self.check_not_failed()
    }

    /// Refuses once a write to the log or a checkpoint failed, restating that failure: an I/O
    /// cause gives an I/O error of the same kind, OS error number and file.
    pub(crate) fn check_not_failed(&self) -> Result<()> {
        let Some(Failure { during, cause }) = self.failed.get() else {
            return Ok(());
        };
        let message = |cause: &dyn std::fmt::Display| {
            format!(
                "{during} failed earlier, so this handle refuses writes: {cause}; reopen the \
                 database to continue"
            )
        };
        Err(match cause {
            Cause::Io(e) => Error::Io(IoContext::restate(e, message(e))),
            Cause::Other(m) => Error::Closed(message(m)),
        })
    }

    /// Records the first failure that leaves the handle unable to write.
    fn fail(&self, during: &'static str, e: &Error) {
        let cause = match e {
            Error::Io(io) => Cause::Io(IoContext::restate(io, io.to_string())),
            other => Cause::Other(other.to_string()),
        };
        let _ = self.failed.set(Failure { during, cause });
    }

    /// Waits up to the busy timeout for the writer lock; the guard releases it when dropped.
    pub(crate) fn writer(self: &Arc<Self>) -> Result<WriterGuard> {
        let deadline = Instant::now() + self.opts.busy_timeout;
        let mut busy = self.writer_busy.lock();
        while *busy {
            if self.writer_cv.wait_until(&mut busy, deadline).timed_out() && *busy {
                return Err(Error::Busy(format!(
                    "another write transaction held the writer lock for longer than {:.1}s",
                    self.opts.busy_timeout.as_secs_f64()
                )));
            }
        }
        *busy = true;
        Ok(WriterGuard(self.clone()))
    }

    /// The writer lock if it is free now.
    fn try_writer(self: &Arc<Self>) -> Option<WriterGuard> {
        let mut busy = self.writer_busy.lock();
        if *busy {
            return None;
        }
        *busy = true;
        Some(WriterGuard(self.clone()))
    }

    /// The latest commit: its number and header.
    pub(crate) fn latest(&self) -> (u64, Meta) {
        let p = self.published.lock();
        (p.seq, p.meta.clone())
    }

    /// Pins the latest commit for a reader.
    pub(crate) fn pin_latest(self: &Arc<Self>) -> Result<Snapshot> {
        self.check_open()?;
        let (seq, meta) = {
            let mut p = self.published.lock();
            let seq = p.seq;
            Pins::add(&mut p.readers, seq);
            (seq, p.meta.clone())
        };
        Ok(Snapshot {
            shared: self.clone(),
            seq,
            meta,
        })
    }

    /// Pins commit `seq`, which the caller knows is still readable (the writer's base
    /// commit, pinned here before anything can checkpoint past it).
    pub(crate) fn pin(self: &Arc<Self>, seq: u64, meta: Meta) -> Snapshot {
        Pins::add(&mut self.published.lock().readers, seq);
        Snapshot {
            shared: self.clone(),
            seq,
            meta,
        }
    }

    fn unpin(&self, seq: u64) {
        let mut p = self.published.lock();
        if let Some(pins) = p.readers.get_mut(&seq) {
            pins.count -= 1;
            if pins.count == 0 {
                p.readers.remove(&seq);
            }
        }
    }

    /// The live snapshots (see [`ReaderStat`]).
    pub(crate) fn readers(&self) -> ReaderStat {
        let p = self.published.lock();
        ReaderStat {
            commit_seq: p.seq,
            readers: p.readers.values().map(|pins| pins.count as u64).sum(),
            oldest: p
                .readers
                .iter()
                .next()
                .map(|(seq, pins)| (*seq, pins.since.elapsed())),
        }
    }

    pub(crate) fn cached_root(&self, collection: &str, seq: u64) -> Option<Root> {
        let roots = self.roots.read();
        roots
            .get(collection)
            .filter(|(_, since)| *since <= seq)
            .map(|(root, _)| *root)
    }

    /// A reader found `root` in its snapshot: keep it only if nothing newer is known (a
    /// writer that creates or moves a root publishes it at commit).
    pub(crate) fn offer_root(&self, collection: &str, root: Root, seen_at: u64) {
        self.roots
            .write()
            .entry(collection.to_string())
            .or_insert((root, seen_at));
    }

    /// A commit created or moved the root: it holds from `seq` on.
    pub(crate) fn publish_root(&self, collection: &str, root: Root, seq: u64) {
        self.roots
            .write()
            .insert(collection.to_string(), (root, seq));
    }

    pub(crate) fn cached_schema(&self, collection: &str, version: u32) -> Option<Arc<Schema>> {
        self.schemas.read().get(collection)?.get(&version).cloned()
    }

    pub(crate) fn cache_schema(&self, collection: &str, schema: Arc<Schema>) {
        self.schemas
            .write()
            .entry(collection.to_string())
            .or_default()
            .insert(schema.version, schema);
    }

    pub(crate) fn cached_indexes(&self, collection: &str, seq: u64) -> Option<Arc<Vec<IndexDef>>> {
        let cache = self.indexes.read();
        cache
            .get(collection)
            .filter(|(since, _)| *since <= seq)
            .map(|(_, d)| d.clone())
    }

    /// A writer's commit changed the definitions: they hold from `seq` on.
    pub(crate) fn publish_indexes(&self, collection: &str, seq: u64, defs: Arc<Vec<IndexDef>>) {
        self.indexes
            .write()
            .insert(collection.to_string(), (seq, defs));
    }

    /// A reader loaded the definitions of its snapshot: keep them only if nothing newer is
    /// known (any later change was published by its writer and is already here).
    pub(crate) fn offer_indexes(&self, collection: &str, seq: u64, defs: Arc<Vec<IndexDef>>) {
        self.indexes
            .write()
            .entry(collection.to_string())
            .or_insert((seq, defs));
    }

    pub(crate) fn wal_generation(&self) -> u64 {
        self.wal.lock().generation()
    }

    /// Appends a commit to the WAL and publishes it: its pages to new readers, and what it
    /// changed to the caches. The one place a commit becomes durable and visible; the
    /// caller holds the writer lock (the guard is the proof).
    pub(crate) fn commit(&self, _writer: &WriterGuard, c: Commit) -> Result<()> {
        let seq = c.base_seq + 1;
        let sync = self.opts.durability == Durability::Immediate;
        let mut wal = self.wal.lock();
        let first = {
            let encoded = c
                .pages
                .iter()
                .map(|(no, p)| Ok((*no, self.pager.encode(*no, p)?)))
                .collect::<Result<Vec<_>>>()?;
            let frames: Vec<(u64, &[u8])> = encoded.iter().map(|(no, p)| (*no, &**p)).collect();
            match wal.append_commit(&frames, c.meta.page_count, sync) {
                Ok(first) => first,
                Err(e) => {
                    self.fail("writing a commit to the log", &e);
                    return Err(e);
                }
            }
        };
        self.pager.publish(seq, first, c.pages);
        for (name, root) in &c.new_roots {
            self.publish_root(name, *root, seq);
        }
        for (collection, schema) in c.schemas {
            self.cache_schema(&collection, schema);
        }
        for (collection, defs) in c.indexes {
            self.publish_indexes(&collection, seq, defs);
        }
        {
            let mut p = self.published.lock();
            p.seq = seq;
            p.meta = c.meta;
        }
        if wal.frames() >= self.opts.checkpoint_frames {
            drop(wal);
            // The commit is already durable; a failed automatic checkpoint loses nothing (and
            // makes the handle refuse further writes until reopened, naming the cause).
            let _ = self.checkpoint_locked(false);
        }
        Ok(())
    }

    /// Copies committed pages from the WAL into the main file and, when no reader still
    /// needs the log, resets it to its header.
    /// Syncs the log up to its last commit. The log's lock is the commit path's, so no
    /// commit is half-appended meanwhile.
    pub(crate) fn flush(&self) -> Result<()> {
        self.check_open()?;
        if self.opts.read_only {
            return Ok(());
        }
        self.check_not_failed()?;
        let result = self.wal.lock().sync();
        if let Err(e) = &result {
            self.fail("a flush", e);
        }
        result
    }

    pub(crate) fn checkpoint(self: &Arc<Self>) -> Result<CheckpointInfo> {
        self.check_writable()?;
        let _writer = self.writer()?;
        self.checkpoint_locked(true)
    }

    /// Checkpoints best-effort (when `checkpoint`, the handle is writable and nothing
    /// failed), then releases the file lock. Idempotent.
    pub(crate) fn close(self: &Arc<Self>, checkpoint: bool) -> Result<()> {
        if self.forked.load(Ordering::Acquire) {
            // The parent's lock and files: the child lets go of nothing but its memory.
            self.closed.store(true, Ordering::Release);
            return Ok(());
        }
        if checkpoint && !self.is_closed() && !self.opts.read_only && self.failed.get().is_none() {
            if let Some(_writer) = self.try_writer() {
                let _ = self.checkpoint_locked(true);
            }
        }
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(f) = &self.lock_file {
            f.unlock()?;
        }
        Ok(())
    }

    /// Marks the handle as the parent's, in a child process after `fork()`.
    pub(crate) fn mark_forked(&self) {
        self.forked.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn opts(&self) -> &Options {
        &self.opts
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Committed frames currently in the WAL.
    pub(crate) fn wal_frames(&self) -> u64 {
        self.wal.lock().frames()
    }

    /// Checkpoint with the writer lock held. A failure part-way leaves the main file or the
    /// log in a state this handle can no longer describe, so it turns the handle read-only
    /// until reopened (recovery then sorts it out from what is on disk).
    ///
    /// `shrink` (explicit checkpoints and close) also gives the log's disk space back; the
    /// automatic checkpoint after a commit keeps the file to rewrite it in place.
    fn checkpoint_locked(&self, shrink: bool) -> Result<CheckpointInfo> {
        let result = self.checkpoint_steps(shrink);
        if let Err(e) = &result {
            let during = if shrink {
                "a checkpoint"
            } else {
                "an automatic checkpoint"
            };
            self.fail(during, e);
        }
        result
    }

    fn checkpoint_steps(&self, shrink: bool) -> Result<CheckpointInfo> {
        let sync = self.opts.durability != Durability::None;
        if !self.pager.has_versions() {
            if shrink {
                self.wal.lock().truncate_stale(sync)?;
            }
            return Ok(CheckpointInfo::default());
        }
        let (latest, upto, page_count) = {
            let p = self.published.lock();
            let oldest = p.readers.keys().next().copied().unwrap_or(p.seq);
            (p.seq, oldest.min(p.seq), p.meta.page_count)
        };
        let mut wal = self.wal.lock();
        if sync {
            wal.sync()?;
        }
        let backfill = self.pager.backfill(upto, latest)?;
        if backfill.complete {
            // Exactly the database size: grows over pages never written, and gives pages
            // back to the file system after a compaction.
            let main = self.pager.main();
            let want = page_count
                .checked_mul(self.pager.physical_size() as u64)
                .ok_or_else(|| Error::corrupt_page(0, "page count out of range"))?;
            if main.len()? != want {
                main.set_len(want)?;
            }
        }
        if sync && backfill.pages_written > 0 {
            self.pager.main().sync()?;
        }
        if backfill.complete {
            // Keep a log of up to twice the automatic checkpoint size for in-place reuse.
            let keep = if shrink {
                0
            } else {
                let frame = (wal::FRAME_HEADER_SIZE + self.pager.physical_size()) as u64;
                self.opts
                    .checkpoint_frames
                    .saturating_mul(2)
                    .saturating_mul(frame)
            };
            // The main file holds every version now: readers move to it before the reset
            // may cut or reuse the frames they were reading.
            self.pager.clear_versions();
            wal.reset(sync, keep)?;
        }
        Ok(CheckpointInfo {
            frames_copied: backfill.pages_written,
            wal_reset: backfill.complete,
            deferred: !backfill.complete,
        })
    }
}
