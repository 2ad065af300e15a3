//! The engine state one open database shares between its handle and its transactions:
//! the pager (main file and page cache), the WAL, the published commit and the readers
//! pinning older ones, the writer lock, and the caches of collection roots, schemas and
//! index definitions. `db.rs` fronts it; transactions borrow it through an `Arc`.
//!
//! Lock order (never take an earlier one while holding a later one): `writer_busy` (held
//! as a [`WriterGuard`] for a whole write transaction or checkpoint) → `wal` → `published`
//! → the read marks of `coord.rs`;
//! the cache locks (`roots`, `schemas`, `indexes`) and the pager's are leaves, taken alone.

use crate::catalog::{IndexDef, NameMap, Root};
use crate::codec::Schema;
use crate::coord::Coord;
use crate::error::{Error, IoContext, Result};
use crate::format::{self, Meta};
use crate::options::{Durability, Options};
use crate::pager::{PageBuf, Pager};
use crate::shm::{mark_value, Lock, MAIN_ONLY};
use crate::spill::SpillView;
use crate::wal::{self, Wal};
use obj_sys::LockKind;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How often a waiter for commits looks whether another process committed.
const FOLLOW_POLL: Duration = Duration::from_millis(10);

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
    /// The read mark that keeps other processes from checkpointing past this commit (a
    /// shared handle's readers; the writer's own base needs none: it holds the write lock).
    mark: Option<usize>,
    /// The main file held every frame of this commit when the mark was taken: its readers
    /// read the main file only (see `shm::MAIN_ONLY`).
    main_only: bool,
}

impl Pins {
    fn add(readers: &mut BTreeMap<u64, Pins>, seq: u64) -> &mut Pins {
        let pins = readers.entry(seq).or_insert_with(|| Pins {
            count: 0,
            since: Instant::now(),
            mark: None,
            main_only: false,
        });
        pins.count += 1;
        pins
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
    /// Read marks other handles (other processes, or other handles in this one) hold on
    /// the file (0 for an exclusive handle).
    pub other_marks: u64,
    /// Live snapshots of other handles on those marks.
    pub other_readers: u64,
    /// The oldest commit another handle's snapshot reads, counted like `commit_seq` (None
    /// when no other handle reads, or it reads a commit this handle no longer indexes).
    pub other_oldest: Option<u64>,
    /// How long the longest-held of those snapshots' marks has been set.
    pub other_oldest_age: Option<Duration>,
}

impl Published {
    /// The latest commit now lies where `pos` says (its read-mark value).
    fn at(&mut self, pos: &crate::wal::LogPosition) {
        self.generation = pos.generation;
        self.frames = pos.frames;
    }
}

struct Published {
    seq: u64,
    /// The header of commit `meta_seq`: `seq`'s, unless another process's commit moved
    /// `seq` on and nothing read its header yet (see [`Shared::latest_meta`]).
    meta: Meta,
    meta_seq: u64,
    /// Where the log stood at `seq` (generation, committed frames): its read-mark value.
    generation: u64,
    frames: u64,
    /// Live snapshots: commit number → how many readers pin it, and since when.
    readers: BTreeMap<u64, Pins>,
    /// A shared handle's pin of the latest commit whose last reader ended (count 0, mark
    /// still held, so the next reader takes no lock), and the reaper tick it went idle at.
    sticky: Option<(u64, u64)>,
}

type IndexDefs = Arc<Vec<IndexDef>>;

pub(crate) struct Shared {
    pub(crate) pager: Pager,
    wal: Mutex<Wal>,
    published: Mutex<Published>,
    writer_busy: Mutex<bool>,
    writer_cv: Condvar,
    /// Signalled (under `published`) when this handle publishes a commit or closes.
    commit_cv: Condvar,
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
    /// Set when other processes may share the file (see `coord.rs`).
    coord: Option<Arc<Coord>>,
    /// Cache entries learnt from snapshots older than this commit are refused: another
    /// process committed at it, and the caches were emptied (see [`Shared::apply`]).
    floor: AtomicU64,
    /// This handle's writer holds the `Write` lock byte (set and cleared under `wal`).
    write_held: AtomicBool,
    /// The log length below which no automatic checkpoint is tried (after one was deferred).
    next_auto: AtomicU64,
    path: PathBuf,
}

/// Where a handle's file lives and what it holds on it: the file lock's description, the
/// coordination with other processes (None for a handle alone on its file or in memory).
pub(crate) struct Place {
    pub(crate) lock_file: Option<File>,
    pub(crate) coord: Option<Arc<Coord>>,
    pub(crate) path: PathBuf,
}

impl Shared {
    /// The state of a database just opened (recovered) at commit `seq`.
    pub(crate) fn new(
        pager: Pager,
        wal: Wal,
        seq: u64,
        meta: Meta,
        opts: Options,
        place: Place,
    ) -> Shared {
        let Place {
            lock_file,
            coord,
            path,
        } = place;
        let pos = wal.position();
        Shared {
            pager,
            wal: Mutex::new(wal),
            published: Mutex::new(Published {
                seq,
                meta,
                meta_seq: seq,
                sticky: None,
                generation: pos.generation,
                frames: pos.frames,
                readers: BTreeMap::new(),
            }),
            writer_busy: Mutex::new(false),
            writer_cv: Condvar::new(),
            commit_cv: Condvar::new(),
            roots: RwLock::new(NameMap::default()),
            schemas: RwLock::new(NameMap::default()),
            indexes: RwLock::new(NameMap::default()),
            opts,
            failed: OnceLock::new(),
            closed: AtomicBool::new(false),
            forked: AtomicBool::new(false),
            lock_file,
            coord,
            floor: AtomicU64::new(0),
            write_held: AtomicBool::new(false),
            next_auto: AtomicU64::new(0),
            path,
        }
    }
}

/// What following the log came to.
#[derive(PartialEq, Eq)]
enum Followed {
    Done,
    /// The shm header must be rebuilt, under the write lock.
    NeedsRebuild,
}

/// The writer lock, held for as long as this lives (a write transaction, a checkpoint):
/// the in-process one, and for a shared handle the `Write` lock byte across processes.
pub(crate) struct WriterGuard {
    shared: Arc<Shared>,
    across: bool,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if self.across && !self.shared.forked.load(Ordering::Acquire) {
            if let Some(c) = &self.shared.coord {
                // Under the log's mutex: a follow that saw `write_held` finishes first.
                let _wal = self.shared.wal.lock();
                self.shared.write_held.store(false, Ordering::Release);
                let _ = c.shm.unlock(Lock::Write);
            }
        }
        *self.shared.writer_busy.lock() = false;
        self.shared.writer_cv.notify_one();
    }
}

/// One reader's pin on a commit: the log keeps that commit's pages until it is dropped.
pub(crate) struct Snapshot {
    pub(crate) shared: Arc<Shared>,
    pub(crate) seq: u64,
    pub(crate) meta: Meta,
    /// Reads the main file only (it holds this commit whole; the log may restart).
    pub(crate) main_only: bool,
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
    /// Every changed page in memory, sealed, in page order (page 0 carries `meta`).
    pub(crate) pages: Vec<(u64, PageBuf)>,
    /// The changed pages the transaction spilled (unsealed), written before `pages`.
    pub(crate) spilled: Option<SpillView>,
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
        drop(busy);
        self.writer_across(true)
    }

    /// The writer lock if it is free now.
    fn try_writer(self: &Arc<Self>) -> Option<WriterGuard> {
        let mut busy = self.writer_busy.lock();
        if *busy {
            return None;
        }
        *busy = true;
        drop(busy);
        self.writer_across(false).ok()
    }

    /// With the in-process writer lock just taken: the guard that releases it, and for a
    /// shared handle the `Write` lock byte too (waited for when `wait`, else tried once:
    /// `Busy` when another handle has it), with every commit made elsewhere followed.
    fn writer_across(self: &Arc<Self>, wait: bool) -> Result<WriterGuard> {
        let mut guard = WriterGuard {
            shared: self.clone(),
            across: false,
        };
        let Some(c) = &self.coord else {
            return Ok(guard);
        };
        if wait {
            c.shm.lock(
                Lock::Write,
                LockKind::Exclusive,
                "another process (or another handle on the file) held the write lock",
            )?;
        } else if !c.shm.try_lock(Lock::Write, LockKind::Exclusive)? {
            return Err(Error::Busy("another handle holds the write lock".into()));
        }
        guard.across = true;
        self.write_held.store(true, Ordering::Release);
        self.follow_for_write(c)?;
        Ok(guard)
    }

    /// Under the write lock: follow every commit made elsewhere, and give a log without a
    /// header (a read-only first opener found none) its first generation before any frame.
    fn follow_for_write(&self, c: &Coord) -> Result<()> {
        let mut wal = self.wal.lock();
        self.follow_locked(c, &mut wal, true)?;
        if c.shm.restarting() {
            // A process died restarting the log: frames go only behind the header they
            // chain from, so the shm header is rebuilt when the log's moved on.
            if wal.headed() && !wal.header_matches()? {
                self.rebuild_header(c, &wal)?;
                self.follow_locked(c, &mut wal, true)?;
            }
            c.shm.set_restarting(false);
        }
        if self.opts.read_only {
            // (A read-only handle takes the write lock only to repair the shm header.)
            return Ok(());
        }
        if wal.headed() && wal.more_beyond()? {
            // Commits the shm does not know of: taken in, never overwritten.
            self.rebuild_header(c, &wal)?;
            self.follow_locked(c, &mut wal, true)?;
        }
        if !wal.headed() {
            let sync = self.opts.durability != Durability::None;
            wal.reset(sync, 0)?;
            let pos = wal.position();
            c.publish(&pos);
            self.published.lock().at(&pos);
        }
        Ok(())
    }

    /// Follows commits and restarts of the log made by other handles, if any were
    /// published since this handle last looked (two atomic loads when none were).
    pub(crate) fn follow(self: &Arc<Self>) -> Result<()> {
        let Some(c) = &self.coord else {
            return Ok(());
        };
        if c.unchanged() {
            return Ok(());
        }
        for _ in 0..3 {
            {
                let mut wal = self.wal.lock();
                // This handle's own writer holding the write lock is as good as holding it
                // here: the log's mutex keeps its appends out meanwhile.
                let have_write = self.write_held.load(Ordering::Acquire);
                if self.follow_locked(c, &mut wal, have_write)? == Followed::Done {
                    return Ok(());
                }
            }
            // The header must be rebuilt, which takes the write lock (and the writer's
            // follow does it); the log's mutex is let go first (lock order).
            drop(self.writer()?);
        }
        Err(Error::corrupt(
            "the shared index stayed damaged however often it was rebuilt",
        ))
    }

    /// Catches the log, the pager's version index and the published commit up to the shm
    /// header. A read racing a restart of the log by another process is retried; one that
    /// fails with the header unchanged rebuilds the header from the log once, then fails.
    /// Without the write lock a rebuild is left to the caller (`NeedsRebuild`).
    fn follow_locked(&self, c: &Coord, wal: &mut Wal, have_write: bool) -> Result<Followed> {
        let mut rebuilt = false;
        let mut last = None;
        for _ in 0..100 {
            let pos = match c.shm.header() {
                Some((db_id, pos)) if db_id == c.db_id => pos,
                _ if !have_write => return Ok(Followed::NeedsRebuild),
                _ => {
                    self.rebuild_header(c, wal)?;
                    rebuilt = true;
                    continue;
                }
            };
            if pos == wal.position() {
                c.set_known(&pos);
                return Ok(Followed::Done);
            }
            match wal.catch_up(&pos) {
                Ok(appended) => {
                    self.apply(appended, &pos)?;
                    c.set_known(&pos);
                    return Ok(Followed::Done);
                }
                Err(e) => {
                    let moved = c.shm.header().map(|h| h.1) != Some(pos);
                    if !moved {
                        if rebuilt {
                            return Err(e);
                        }
                        if !have_write {
                            return Ok(Followed::NeedsRebuild);
                        }
                        self.rebuild_header(c, wal)?;
                        rebuilt = true;
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::Busy("the log kept moving while this handle followed it".into())
        }))
    }

    /// Rewrites a damaged, stale or lying shm header from the log itself: where the last
    /// complete commit ends. The caller holds the write lock (nothing appends meanwhile).
    fn rebuild_header(&self, c: &Coord, wal: &Wal) -> Result<()> {
        c.shm.lock(
            Lock::Recover,
            LockKind::Exclusive,
            "another process rebuilt the index",
        )?;
        let pos = wal.scan_end();
        let _ = c.shm.unlock(Lock::Recover);
        c.shm.publish(c.db_id, &pos?);
        Ok(())
    }

    /// Takes in what another process appended (or a restart of the log it made).
    fn apply(&self, appended: crate::wal::Appended, pos: &crate::wal::LogPosition) -> Result<()> {
        let mut seq = self.published.lock().seq;
        if appended.reset {
            // Nobody anywhere held a mark, so no snapshot of this handle is alive: every
            // version and cached page (the checkpoint rewrote the main file) goes. Commits
            // this handle never saw may lie in the main file now: the state there counts as
            // a commit of its own (its header is read from page 0 when pinned).
            self.pager.clear_versions();
            self.pager.purge_cache();
            seq += 1;
        }
        let mut first = appended.first;
        for commit in &appended.recovered.commits {
            seq += 1;
            let from = (first - appended.first) as usize;
            let to = (u64::from(commit.end) - appended.first) as usize;
            self.pager.index_commit(
                seq,
                first as u32,
                appended.recovered.frame_pages[from..to].iter().copied(),
            );
            first = u64::from(commit.end);
        }
        // The caches may hold what another process's commits changed.
        self.floor.store(seq, Ordering::Release);
        self.roots.write().clear();
        self.schemas.write().clear();
        self.indexes.write().clear();
        // The new header is read when a snapshot pins it: no page of the log is read
        // here, where no mark keeps the log from restarting under the read.
        let mut p = self.published.lock();
        self.drop_sticky(&mut p);
        p.seq = seq;
        p.at(pos);
        Ok(())
    }

    /// The latest commit: its number and header. The caller holds the write lock.
    pub(crate) fn latest(&self, _writer: &WriterGuard) -> Result<(u64, Meta)> {
        let mut p = self.published.lock();
        Ok((p.seq, self.latest_meta(&mut p)?))
    }

    /// Waits until a commit after `after` is published (by this handle, or by another one
    /// on the file, which a shared handle notices within a few milliseconds) or `timeout`
    /// passes; returns the latest commit number. Commits of this handle wake the waiter at
    /// once; there is no condition shared between processes, so a shared handle also looks
    /// at the shared index every [`FOLLOW_POLL`].
    pub(crate) fn wait_commit(
        self: &Arc<Self>,
        after: u64,
        timeout: Option<Duration>,
    ) -> Result<u64> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            self.check_open()?;
            self.follow()?;
            let mut p = self.published.lock();
            if p.seq > after {
                return Ok(p.seq);
            }
            let now = Instant::now();
            let mut slice = match self.coord {
                Some(_) => FOLLOW_POLL,
                None => Duration::from_millis(250),
            };
            if let Some(d) = deadline {
                if now >= d {
                    return Ok(p.seq);
                }
                slice = slice.min(d - now);
            }
            self.commit_cv.wait_for(&mut p, slice);
        }
    }

    /// True when other processes may share the file (a `coord` is set).
    pub(crate) fn is_shared(&self) -> bool {
        self.coord.is_some()
    }

    /// Marks the latest header as unknown (a handle that joined others has read none yet).
    pub(crate) fn forget_meta(&self) {
        self.published.lock().meta_seq = u64::MAX;
    }

    /// The header of the latest commit, read from its page 0 if another process made it.
    /// The caller keeps the log from restarting meanwhile (a read mark on that commit, or
    /// the write lock).
    fn latest_meta(&self, p: &mut Published) -> Result<Meta> {
        if p.meta_seq != p.seq {
            p.meta = Meta::read_from(&self.pager.read(0, p.seq)?)?;
            p.meta_seq = p.seq;
        }
        Ok(p.meta.clone())
    }

    /// Pins the latest commit for a reader (for a shared handle: the latest any process
    /// published, under a read mark).
    pub(crate) fn pin_latest(self: &Arc<Self>) -> Result<Snapshot> {
        self.check_open()?;
        let Some(c) = &self.coord else {
            let mut p = self.published.lock();
            let seq = p.seq;
            Pins::add(&mut p.readers, seq);
            return Ok(self.snapshot(seq, p.meta.clone(), false));
        };
        let mut deadline = None;
        loop {
            self.follow()?;
            let (seq, generation, frames) = {
                let mut p = self.published.lock();
                let seq = p.seq;
                // (As below: an idle pin that reads frames is not revived during or after a
                // restart of the log, which nobody could make while it held its mark unless
                // the maker died midway.)
                let restart_wanted = c.shm.restart_wanted() || c.shm.restarting();
                if let Some(pins) = p.readers.get_mut(&seq) {
                    // (An idle pin is not revived while a checkpoint waits to restart the
                    // log, unless it reads the main file only.)
                    let revive = pins.count > 0 || pins.main_only || !restart_wanted;
                    if let (Some(slot), true) = (pins.mark, revive) {
                        pins.count += 1;
                        let main_only = pins.main_only;
                        if pins.count == 1 {
                            c.set_reading(slot, true);
                            p.sticky = None;
                        }
                        debug_assert_eq!(p.meta_seq, seq, "a pinned commit's header was read");
                        return Ok(self.snapshot(seq, p.meta.clone(), main_only));
                    }
                }
                if restart_wanted {
                    self.drop_sticky(&mut p);
                }
                (seq, p.generation, p.frames)
            };
            // The main file holding every frame of the commit, the snapshot reads it only,
            // and a restart of the log need not wait for it.
            let value = mark_value(generation, frames);
            let main_only = c.shm.backfilled() == value;
            let want = if main_only { value | MAIN_ONLY } else { value };
            let timeout = self.opts.busy_timeout;
            let slot = c.acquire(want, generation, timeout)?;
            // The mark counts only if nothing moved while it was taken: a checkpoint that
            // did not see it yet backfilled no further than the log then ended. And a
            // restart of the log left half-done by a killed process (nobody can be making
            // one while this snapshot holds a mark that reads frames) is repaired first.
            let abandoned = !main_only && c.shm.restarting();
            if abandoned || c.shm.quick() != (generation, frames) {
                c.release(slot);
                if abandoned && !self.write_held.load(Ordering::Acquire) {
                    drop(self.writer()?);
                }
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + timeout);
                if Instant::now() >= deadline {
                    return Err(Error::Busy(
                        "other processes committed faster than a snapshot could be pinned".into(),
                    ));
                }
                continue;
            }
            if main_only {
                // Another process's checkpoint may have rewritten pages this handle cached.
                self.pager.note_backfilled(seq);
            }
            let mut p = self.published.lock();
            let meta = match if main_only {
                self.pager
                    .read_main(0)
                    .and_then(|page| Meta::read_from(&page))
            } else if p.seq == seq {
                self.latest_meta(&mut p)
            } else {
                self.pager
                    .read(0, seq)
                    .and_then(|page| Meta::read_from(&page))
            } {
                Ok(meta) => meta,
                Err(e) => {
                    drop(p);
                    c.release(slot);
                    return Err(e);
                }
            };
            let pins = Pins::add(&mut p.readers, seq);
            let first = pins.count == 1;
            let main_only = match pins.mark {
                None => {
                    pins.mark = Some(slot);
                    pins.main_only = main_only;
                    c.set_reading(slot, true);
                    main_only
                }
                Some(mine) => {
                    if first {
                        c.set_reading(mine, true);
                    }
                    c.release(slot);
                    pins.main_only
                }
            };
            if p.sticky.is_some_and(|(s, _)| s == seq) {
                p.sticky = None;
            }
            if p.meta_seq != seq && p.seq == seq {
                p.meta = meta.clone();
                p.meta_seq = seq;
            }
            return Ok(self.snapshot(seq, meta, main_only));
        }
    }

    /// Drops the idle pin of the latest commit (see `Published::sticky`).
    fn drop_sticky(&self, p: &mut Published) {
        let Some((seq, _)) = p.sticky.take() else {
            return;
        };
        if p.readers.get(&seq).is_some_and(|pins| pins.count == 0) {
            if let Some(Pins {
                mark: Some(slot), ..
            }) = p.readers.remove(&seq)
            {
                if let Some(c) = &self.coord {
                    c.release(slot);
                }
            }
        }
    }

    fn snapshot(self: &Arc<Self>, seq: u64, meta: Meta, main_only: bool) -> Snapshot {
        Snapshot {
            shared: self.clone(),
            seq,
            meta,
            main_only,
        }
    }

    /// Pins commit `seq`, which the caller knows is still readable (the writer's base
    /// commit, pinned here before anything can checkpoint past it).
    pub(crate) fn pin(self: &Arc<Self>, seq: u64, meta: Meta) -> Snapshot {
        Pins::add(&mut self.published.lock().readers, seq);
        self.snapshot(seq, meta, false)
    }

    fn unpin(&self, seq: u64) {
        let mut p = self.published.lock();
        let Some(pins) = p.readers.get_mut(&seq) else {
            return;
        };
        pins.count -= 1;
        if pins.count > 0 {
            return;
        }
        let mark = pins.mark;
        if let (Some(c), Some(slot)) = (&self.coord, mark) {
            c.set_reading(slot, false);
            let keep = p.seq == seq && c.unchanged() && !c.shm.restart_wanted();
            if keep && !self.forked.load(Ordering::Acquire) {
                // The next reader of this commit takes no lock; the reaper drops it later.
                p.sticky = Some((seq, crate::coord::tick()));
                return;
            }
            p.readers.remove(&seq);
            c.release(slot);
        } else {
            p.readers.remove(&seq);
        }
    }

    /// The live snapshots (see [`ReaderStat`]).
    pub(crate) fn readers(self: &Arc<Self>) -> ReaderStat {
        let _ = self.follow();
        let (mut stat, generation) = {
            let p = self.published.lock();
            let stat = ReaderStat {
                commit_seq: p.seq,
                readers: p.readers.values().map(|pins| pins.count as u64).sum(),
                oldest: p
                    .readers
                    .iter()
                    .find(|(_, pins)| pins.count > 0)
                    .map(|(seq, pins)| (*seq, pins.since.elapsed())),
                ..ReaderStat::default()
            };
            (stat, p.generation)
        };
        if let Some(c) = &self.coord {
            if let Ok(o) = c.others(generation) {
                stat.other_marks = o.marks;
                stat.other_readers = o.snapshots;
                stat.other_oldest = o.oldest_frames.and_then(|f| self.pager.seq_at_frames(f));
                stat.other_oldest_age = o.oldest_age;
            }
        }
        stat
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
        let mut roots = self.roots.write();
        if seen_at >= self.floor.load(Ordering::Acquire) {
            roots
                .entry(collection.to_string())
                .or_insert((root, seen_at));
        }
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

    /// Remembers a committed schema a snapshot at `seen_at` found (or a commit stored).
    pub(crate) fn cache_schema(&self, collection: &str, schema: Arc<Schema>, seen_at: u64) {
        let mut schemas = self.schemas.write();
        if seen_at >= self.floor.load(Ordering::Acquire) {
            schemas
                .entry(collection.to_string())
                .or_default()
                .insert(schema.version, schema);
        }
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
        let mut indexes = self.indexes.write();
        if seq >= self.floor.load(Ordering::Acquire) {
            indexes.entry(collection.to_string()).or_insert((seq, defs));
        }
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
        let spilled = c.spilled.as_ref().map(SpillView::pages).unwrap_or_default();
        let first = {
            let pager = &self.pager;
            let count = spilled.len() + c.pages.len();
            // Spilled pages stream from the spill file one at a time; the others are here.
            let mut fill = |i: usize, frame: &mut [u8]| -> Result<u64> {
                if let (Some(view), Some(&no)) = (&c.spilled, spilled.get(i)) {
                    let mut page = view
                        .get(pager, no)?
                        .ok_or_else(|| Error::corrupt_page(no, "left the spill file"))?;
                    format::seal_page(no, &mut page);
                    frame.copy_from_slice(&pager.encode(no, &page)?);
                    return Ok(no);
                }
                let (no, page) = &c.pages[i - spilled.len()];
                frame.copy_from_slice(&pager.encode(*no, page)?);
                Ok(*no)
            };
            match wal.append_commit_with(count, c.meta.page_count, sync, &mut fill) {
                Ok(first) => first,
                Err(e) => {
                    self.fail("writing a commit to the log", &e);
                    return Err(e);
                }
            }
        };
        self.pager.publish(seq, first, spilled, c.pages);
        for (name, root) in &c.new_roots {
            self.publish_root(name, *root, seq);
        }
        for (collection, schema) in c.schemas {
            self.cache_schema(&collection, schema, seq);
        }
        for (collection, defs) in c.indexes {
            self.publish_indexes(&collection, seq, defs);
        }
        let pos = wal.position();
        if let Some(coord) = &self.coord {
            coord.publish(&pos);
        }
        {
            let mut p = self.published.lock();
            p.seq = seq;
            p.meta = c.meta;
            p.meta_seq = seq;
            self.drop_sticky(&mut p);
            p.at(&pos);
        }
        self.commit_cv.notify_all();
        let frames = wal.frames();
        if frames >= self.opts.checkpoint_frames && frames >= self.next_auto.load(Ordering::Relaxed)
        {
            drop(wal);
            // The commit is already durable; a failed automatic checkpoint loses nothing (and
            // makes the handle refuse further writes until reopened, naming the cause).
            // One a reader kept from finishing is not tried again on every commit (each try
            // syncs), but after another quarter of the automatic size.
            let retry = match self.checkpoint_locked(false) {
                Ok(info) if info.deferred => frames + (self.opts.checkpoint_frames / 4).max(1),
                _ => 0,
            };
            self.next_auto.store(retry, Ordering::Relaxed);
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
        self.commit_cv.notify_all();
        if let Some(c) = &self.coord {
            c.release_all()?;
        }
        if let Some(f) = &self.lock_file {
            f.unlock()?;
        }
        Ok(())
    }

    /// Marks the handle as the parent's, in a child process after `fork()`.
    pub(crate) fn mark_forked(&self) {
        self.forked.store(true, Ordering::Release);
        if let Some(c) = &self.coord {
            c.disown();
        }
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
        if self.coord.as_ref().is_some_and(|c| c.split()) {
            // Other handles' marks (and frames) may live in another shm file: nothing is
            // copied, cut or restarted until every handle on the file has reopened.
            return Ok(CheckpointInfo {
                deferred: true,
                ..CheckpointInfo::default()
            });
        }
        if !self.pager.has_versions() {
            if shrink {
                self.wal.lock().truncate_stale(sync)?;
            }
            return Ok(CheckpointInfo::default());
        }
        let (latest, mut upto, page_count) = {
            let mut p = self.published.lock();
            self.drop_sticky(&mut p);
            let oldest = p.readers.keys().next().copied().unwrap_or(p.seq);
            (
                p.seq,
                oldest.min(p.seq),
                self.latest_meta(&mut p)?.page_count,
            )
        };
        let mut wal = self.wal.lock();
        let checkpointing = match &self.coord {
            Some(c) => {
                c.shm.lock(
                    Lock::Checkpoint,
                    LockKind::Exclusive,
                    "another checkpoint ran",
                )?;
                // Readers elsewhere: backfill no further than the oldest snapshot they pin.
                let pos = wal.position();
                // What other processes' checkpoints already copied need not be again.
                if let Some(done) = crate::shm::mark_frames(c.shm.backfilled(), pos.generation) {
                    self.pager
                        .note_backfilled(self.pager.seq_within_frames(done));
                }
                let deadline = Instant::now() + Self::restart_wait(shrink);
                let survey = Self::survey_until(c, &pos, deadline)?;
                upto = upto.min(self.pager.seq_within_frames(survey.safe_frames));
                Some((CheckpointLock(c), deadline))
            }
            None => None,
        };
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
        let mut reset = backfill.complete;
        if let Some(c) = &self.coord {
            let pos = wal.position();
            let done = if reset {
                pos.frames
            } else {
                self.pager.frames_at(upto)
            };
            c.shm.set_backfilled(mark_value(pos.generation, done));
        }
        if reset {
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
            // The log restarts only with no reader anywhere that may read it.
            let marks = match (&self.coord, &checkpointing) {
                (Some(c), Some((_, deadline))) => Self::lock_marks_waiting(c, *deadline)?,
                _ => None,
            };
            if self.coord.is_some() && marks.is_none() {
                reset = false;
            } else {
                // The main file holds every version now: readers move to it before the
                // reset may cut or reuse the frames they were reading.
                self.pager.clear_versions();
                if let Some(c) = &self.coord {
                    c.shm.set_restarting(true);
                }
                wal.reset(sync, keep)?;
                if let (Some(c), Some(mut marks)) = (&self.coord, marks) {
                    let pos = wal.position();
                    marks.restarted(mark_value(pos.generation, 0));
                    c.shm.set_backfilled(mark_value(pos.generation, 0));
                    c.publish(&pos);
                    c.shm.set_restarting(false);
                    // (Lock order: the published commit before the marks, never after.)
                    drop(marks);
                    self.published.lock().at(&pos);
                }
            }
        }
        Ok(CheckpointInfo {
            frames_copied: backfill.pages_written,
            wal_reset: reset,
            deferred: !reset,
        })
    }

    /// How long a checkpoint waits for readers elsewhere to move on: short for the
    /// automatic one after a commit, longer for an explicit one (or close's).
    fn restart_wait(explicit: bool) -> Duration {
        Duration::from_millis(if explicit { 100 } else { 2 })
    }

    /// How far a checkpoint may copy without overwriting what a reader elsewhere needs.
    /// Readers behind the log's end are asked to move on (`restart_wanted`: their next
    /// snapshot is of the latest commit, and no idle pin is kept); short reads do within
    /// microseconds, and under the write lock nothing is committed meanwhile. Waits until
    /// `deadline` at most (a long read transaction is simply waited out by a later one).
    fn survey_until(
        c: &Coord,
        pos: &crate::wal::LogPosition,
        deadline: Instant,
    ) -> Result<crate::coord::Survey> {
        let mut survey = c.survey(pos.generation, pos.frames)?;
        if survey.safe_frames < pos.frames {
            c.shm.set_restart_wanted(true);
            while survey.safe_frames < pos.frames && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(50));
                survey = c.survey(pos.generation, pos.frames)?;
            }
        }
        Ok(survey)
    }

    /// Every read mark locked for a restart of the log, waiting until `deadline` for
    /// readers elsewhere to move to main-file-only snapshots (the main file holds
    /// everything now; see [`Self::survey_until`]).
    fn lock_marks_waiting(
        c: &Coord,
        deadline: Instant,
    ) -> Result<Option<crate::coord::MarksLocked<'_>>> {
        if let Some(m) = c.lock_all_marks()? {
            return Ok(Some(m));
        }
        c.shm.set_restart_wanted(true);
        loop {
            std::thread::sleep(Duration::from_micros(50));
            match c.lock_all_marks() {
                Ok(None) if Instant::now() < deadline => continue,
                other => break other,
            }
        }
    }
}

impl crate::coord::Idle for Shared {
    fn reap(&self, before: u64) {
        let mut p = self.published.lock();
        if p.sticky.is_some_and(|(_, stamp)| stamp < before) {
            self.drop_sticky(&mut p);
        }
    }
}

/// The `Checkpoint` lock byte, held while a checkpoint runs; the request to readers to
/// move on ends with it.
struct CheckpointLock<'a>(&'a Coord);

impl Drop for CheckpointLock<'_> {
    fn drop(&mut self) {
        self.0.shm.set_restart_wanted(false);
        let _ = self.0.shm.unlock(Lock::Checkpoint);
    }
}
