//! One handle's part in sharing a database between processes: the read marks it holds
//! (with how many of its pinned commits use each), the last log position it followed, and
//! the reaper of idle snapshots. The shared words and locks are in `shm.rs`; what the
//! handle does with them (follow the log, pin, write, checkpoint) is in `state.rs`.
//!
//! The pin of the latest commit stays (with its mark) after its last snapshot ended, so a
//! loop of short reads (a `get` each) takes no lock per read; a background thread drops
//! such idle pins after [`IDLE`], so a process that stops reading never keeps another
//! process's checkpoint from restarting the log for longer than that.

use crate::error::{Error, Result};
use crate::shm::{is_main_only, mark_frames, Lock, Shm, MARKS, UNUSED};
use crate::wal::LogPosition;
use obj_sys::LockKind;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long a mark nobody uses stays held.
pub(crate) const IDLE: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Default)]
struct Held {
    held: bool,
    /// Pinned commits of this handle on the mark.
    users: u32,
    value: u64,
}

pub(crate) struct Coord {
    pub(crate) shm: Shm,
    pub(crate) db_id: u64,
    /// Generation and frame count last followed: the lock-free "did anything change" test.
    known: [AtomicU64; 2],
    marks: Mutex<[Held; MARKS]>,
    /// Per mark, this handle's pinned commits on it that have live snapshots: its own
    /// share of the mark's `active` count in the shm.
    reading: [AtomicU64; MARKS],
    /// The process that opened the handle; after fork() a child shares its lock
    /// descriptions, so it must never unlock anything (see [`Coord::disown`]).
    pid: u32,
    disowned: AtomicBool,
    /// Handles on this database use different shm files (one was deleted while in use):
    /// the marks of the others are not all visible here, so this handle never copies into
    /// the main file nor restarts the log (until every handle has reopened).
    split: AtomicBool,
}

/// What a checkpoint learnt from the marks (see [`Coord::survey`]).
pub(crate) struct Survey {
    /// Frames every reader elsewhere can do without: backfill no further.
    pub(crate) safe_frames: u64,
}

impl Coord {
    pub(crate) fn new(shm: Shm, db_id: u64, pos: &LogPosition) -> Arc<Coord> {
        let c = Arc::new(Coord {
            shm,
            db_id,
            known: [AtomicU64::new(0), AtomicU64::new(0)],
            marks: Mutex::new([Held::default(); MARKS]),
            reading: std::array::from_fn(|_| AtomicU64::new(0)),
            pid: std::process::id(),
            disowned: AtomicBool::new(false),
            split: AtomicBool::new(false),
        });
        c.set_known(pos);
        c
    }

    /// In a child after fork(): the parent's locks are the child's too (shared open file
    /// descriptions), so from now on this handle releases none of them.
    pub(crate) fn disown(&self) {
        self.disowned.store(true, Ordering::Release);
    }

    /// Records that other handles may use another shm file (see `split`).
    pub(crate) fn mark_split(&self) {
        self.split.store(true, Ordering::Release);
    }

    /// True when checkpoints must not trust the marks (see `split`); checks whether the
    /// shm file was deleted or replaced since (a slow path: checkpoints only).
    pub(crate) fn split(&self) -> bool {
        if !self.split.load(Ordering::Acquire) && self.shm.replaced() {
            self.mark_split();
        }
        self.split.load(Ordering::Acquire)
    }

    fn owned(&self) -> bool {
        !self.disowned.load(Ordering::Acquire) && std::process::id() == self.pid
    }

    /// True when nothing was published since the handle last followed the log.
    #[inline]
    pub(crate) fn unchanged(&self) -> bool {
        self.shm.quick()
            == (
                self.known[0].load(Ordering::Acquire),
                self.known[1].load(Ordering::Acquire),
            )
    }

    pub(crate) fn set_known(&self, pos: &LogPosition) {
        self.known[0].store(pos.generation, Ordering::Release);
        self.known[1].store(pos.frames, Ordering::Release);
    }

    /// Publishes a position this handle wrote (a commit or a reset) and follows it.
    pub(crate) fn publish(&self, pos: &LogPosition) {
        self.shm.publish(self.db_id, pos);
        self.set_known(pos);
    }

    /// A mark protecting a snapshot at `want` (a `mark_value` of the current generation
    /// `generation`), waiting up to `timeout` when every mark is taken. The caller checks
    /// afterwards that the log did not move meanwhile.
    pub(crate) fn acquire(&self, want: u64, generation: u64, timeout: Duration) -> Result<usize> {
        if let Some(i) = self.try_acquire(want, generation)? {
            return Ok(i);
        }
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(50);
        loop {
            if let Some(i) = self.try_acquire(want, generation)? {
                return Ok(i);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Busy(format!(
                    "every one of the {MARKS} read marks of {} is pinned at another commit; \
                     end long-lived snapshots, or raise busy_timeout to wait longer",
                    self.shm.path().display()
                )));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn try_acquire(&self, want: u64, generation: u64) -> Result<Option<usize>> {
        let shm = &self.shm;
        let mut marks = self.marks.lock();
        // This handle's own mark at exactly this commit.
        for i in 0..MARKS {
            let m = &mut marks[i];
            if m.held && m.value == want {
                self.use_mark(m);
                return Ok(Some(i));
            }
        }
        // Another handle's mark at this commit: share it.
        for i in 0..MARKS {
            if !marks[i].held && shm.mark(i) == want && self.join(&mut marks[i], i, want)? {
                return Ok(Some(i));
            }
        }
        // A free mark: set it.
        for i in 0..MARKS {
            if !marks[i].held && shm.try_lock(Lock::Read(i), LockKind::Exclusive)? {
                shm.active(i).store(0, Ordering::SeqCst);
                shm.set_mark(i, want);
                shm.stamp(i);
                if !shm.try_lock(Lock::Read(i), LockKind::Shared)? {
                    shm.unlock(Lock::Read(i))?;
                    return Err(Error::corrupt("a read mark could not be downgraded"));
                }
                let m = &mut marks[i];
                *m = Held {
                    held: true,
                    value: want,
                    ..Held::default()
                };
                self.use_mark(m);
                return Ok(Some(i));
            }
        }
        // Every mark is taken: share one at an older commit of this generation (it keeps
        // more of the log than this snapshot needs, never less). A main-file-only mark
        // protects no frame, so only such a snapshot may share one.
        let Some(frames) = mark_frames(want, generation) else {
            return Ok(None);
        };
        for i in 0..MARKS {
            let m = &mut marks[i];
            let older = |v: u64| {
                is_main_only(v) == is_main_only(want)
                    && mark_frames(v, generation).is_some_and(|f| f <= frames)
            };
            if m.held {
                if older(m.value) {
                    self.use_mark(m);
                    return Ok(Some(i));
                }
            } else {
                let v = shm.mark(i);
                if older(v) && self.join(m, i, v)? {
                    return Ok(Some(i));
                }
            }
        }
        Ok(None)
    }

    /// Takes another handle's mark `i` shared if it still holds `value`.
    fn join(&self, m: &mut Held, i: usize, value: u64) -> Result<bool> {
        if !self.shm.try_lock(Lock::Read(i), LockKind::Shared)? {
            return Ok(false);
        }
        // Under a shared lock nobody can set the mark: the value read now stays.
        if self.shm.mark(i) != value {
            self.shm.unlock(Lock::Read(i))?;
            return Ok(false);
        }
        *m = Held {
            held: true,
            value,
            ..Held::default()
        };
        self.use_mark(m);
        Ok(true)
    }

    fn use_mark(&self, m: &mut Held) {
        m.users += 1;
    }

    /// A pinned commit on mark `i` is gone; the mark goes with its last one.
    pub(crate) fn release(&self, i: usize) {
        let mut marks = self.marks.lock();
        let m = &mut marks[i];
        if m.users == 0 {
            return;
        }
        m.users -= 1;
        if m.users == 0 {
            if self.owned() {
                let _ = self.shm.unlock(Lock::Read(i));
            }
            *m = Held::default();
        }
    }

    /// Live snapshots on mark `i` went from 0 to some (`true`) or back: what other handles
    /// see in `stat` and what tells a checkpoint an idle mark will go soon.
    pub(crate) fn set_reading(&self, i: usize, reading: bool) {
        let active = self.shm.active(i);
        let dec = |n: u64| n.checked_sub(1);
        if reading {
            self.reading[i].fetch_add(1, Ordering::SeqCst);
            active.fetch_add(1, Ordering::SeqCst);
        } else {
            let _ = active.fetch_update(Ordering::SeqCst, Ordering::SeqCst, dec);
            let _ = self.reading[i].fetch_update(Ordering::SeqCst, Ordering::SeqCst, dec);
        }
    }

    /// True when no other handle holds mark `i`, which this one does (probed by converting
    /// its shared lock to exclusive and back). Then the mark's count of readers in the shm
    /// is set to this handle's own: what a process killed on the mark left there goes.
    fn alone_on(&self, i: usize) -> Result<bool> {
        if !self.shm.try_lock(Lock::Read(i), LockKind::Exclusive)? {
            return Ok(false);
        }
        self.shm
            .active(i)
            .store(self.reading[i].load(Ordering::SeqCst), Ordering::SeqCst);
        if !self.shm.try_lock(Lock::Read(i), LockKind::Shared)? {
            return Err(crate::error::Error::corrupt(
                "a read mark could not be downgraded",
            ));
        }
        Ok(true)
    }

    /// Whether another handle holds mark `i` (this handle's own entry is `m`): None when
    /// none does, or when the only others on a mark this handle shares have no snapshot
    /// on it; else the snapshots they have on it (a mark held by others alone counts as
    /// held whatever its count says). Probes with lock calls; the caller holds `marks`.
    fn held_elsewhere(&self, m: &Held, i: usize) -> Result<Option<u64>> {
        if m.held {
            let theirs = self.others_on(i);
            return Ok((theirs != 0 && !self.alone_on(i)?).then_some(theirs));
        }
        if self.shm.try_lock(Lock::Read(i), LockKind::Exclusive)? {
            self.shm.unlock(Lock::Read(i))?;
            return Ok(None);
        }
        Ok(Some(self.shm.active(i).load(Ordering::SeqCst)))
    }

    /// Live snapshots of other handles on mark `i`, which this handle holds too.
    fn others_on(&self, i: usize) -> u64 {
        let active = self.shm.active(i).load(Ordering::SeqCst);
        active.saturating_sub(self.reading[i].load(Ordering::SeqCst))
    }

    /// For a checkpoint (under `Write`, so the log does not grow meanwhile): how far it
    /// may backfill without overwriting a page version a reader elsewhere still needs.
    /// `max` is the log's committed frame count in `generation`. This handle's own
    /// snapshots are the caller's to count (its local pins).
    pub(crate) fn survey(&self, generation: u64, max: u64) -> Result<Survey> {
        let shm = &self.shm;
        let marks = self.marks.lock();
        let mut s = Survey { safe_frames: max };
        for (i, m) in marks.iter().enumerate() {
            if self.held_elsewhere(m, i)?.is_none() {
                continue;
            }
            let v = shm.mark(i);
            // A mark of another generation (or one being set) holds the whole main file.
            s.safe_frames = s.safe_frames.min(mark_frames(v, generation).unwrap_or(0));
        }
        Ok(s)
    }

    /// For restarting the log: every mark locked exclusive, or (another handle's) shared
    /// where it is a main-file-only mark, whose readers read no frame; None (and nothing
    /// held beyond what was) when some other handle's snapshots may read the log. Marks of
    /// this handle's own snapshots convert to exclusive when nobody else shares them.
    pub(crate) fn lock_all_marks(&self) -> Result<Option<MarksLocked<'_>>> {
        let marks = self.marks.lock();
        let mut locked = MarksLocked {
            coord: self,
            marks,
            taken: [Taken::No; MARKS],
        };
        for i in 0..MARKS {
            if self.shm.try_lock(Lock::Read(i), LockKind::Exclusive)? {
                locked.taken[i] = Taken::Exclusive;
                continue;
            }
            let own = locked.marks[i].held;
            // (Shared: nobody is setting it, so the value read now stays.)
            let shared = own || self.shm.try_lock(Lock::Read(i), LockKind::Shared)?;
            if shared && !own {
                locked.taken[i] = Taken::Shared;
            }
            if !(shared && is_main_only(self.shm.mark(i))) {
                return Ok(None);
            }
        }
        Ok(Some(locked))
    }

    /// Marks held by other handles (probed without disturbing this handle's own), the
    /// snapshots on them, and the oldest frame count one pins in `generation`.
    pub(crate) fn others(&self, generation: u64) -> Result<Others> {
        let shm = &self.shm;
        let marks = self.marks.lock();
        let mut o = Others::default();
        for (i, m) in marks.iter().enumerate() {
            let Some(theirs) = self.held_elsewhere(m, i)? else {
                continue;
            };
            o.marks += 1;
            o.snapshots += theirs;
            if theirs == 0 {
                continue; // an idle mark: no snapshot on it
            }
            let f = mark_frames(shm.mark(i), generation).unwrap_or(0);
            o.oldest_frames = Some(o.oldest_frames.map_or(f, |x| x.min(f)));
            if let Some(age) = shm.age(i) {
                o.oldest_age = Some(o.oldest_age.map_or(age, |x| x.max(age)));
            }
        }
        Ok(o)
    }

    /// Releases every lock of this handle (close).
    pub(crate) fn release_all(&self) -> Result<()> {
        *self.marks.lock() = [Held::default(); MARKS];
        if !self.owned() {
            return Ok(());
        }
        self.shm.unlock_all()
    }
}

/// What other handles hold (see [`Coord::others`]).
#[derive(Default)]
pub(crate) struct Others {
    /// Read marks other handles hold.
    pub(crate) marks: u64,
    /// Their live snapshots on those marks.
    pub(crate) snapshots: u64,
    /// The smallest frame count one of those snapshots reads at, and the longest any of
    /// their marks has been set.
    pub(crate) oldest_frames: Option<u64>,
    pub(crate) oldest_age: Option<Duration>,
}

/// How [`MarksLocked`] holds a mark.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Not taken here (this handle's own mark, shared with others).
    No,
    Exclusive,
    /// Another handle's main-file-only mark, held shared so nobody sets it meanwhile.
    Shared,
}

/// The read marks locked for a restart of the log; dropping it gives each back (the
/// handle's own marks as shared locks again).
pub(crate) struct MarksLocked<'a> {
    coord: &'a Coord,
    marks: parking_lot::MutexGuard<'a, [Held; MARKS]>,
    taken: [Taken; MARKS],
}

impl MarksLocked<'_> {
    /// After the restart: every mark locked exclusive and nobody's is unused; this handle's
    /// own ones (exclusive when nobody shares them) mark the new generation with no frames
    /// (their snapshots read the main file only). Others' main-only marks stay as they are.
    pub(crate) fn restarted(&mut self, empty: u64) {
        for i in 0..MARKS {
            if self.taken[i] != Taken::Exclusive {
                continue;
            }
            let m = &mut self.marks[i];
            if m.held {
                m.value = empty;
                self.coord.shm.set_mark(i, empty);
            } else {
                self.coord.shm.set_mark(i, UNUSED);
            }
        }
    }
}

impl Drop for MarksLocked<'_> {
    fn drop(&mut self) {
        for i in 0..MARKS {
            let _ = match (self.taken[i], self.marks[i].held) {
                (Taken::No, _) => Ok(()),
                (Taken::Exclusive, true) => self
                    .coord
                    .shm
                    .try_lock(Lock::Read(i), LockKind::Shared)
                    .map(drop),
                _ => self.coord.shm.unlock(Lock::Read(i)),
            };
        }
    }
}

/// What the reaper asks of a handle: drop what has been idle since before `tick`.
pub(crate) trait Idle: Send + Sync {
    fn reap(&self, before: u64);
}

/// The reaper's clock: it ticks every `IDLE / 2`, so something stamped with a tick is idle
/// for at least `IDLE` once the clock is two ticks on.
pub(crate) fn tick() -> u64 {
    reaper::TICK.load(Ordering::Relaxed)
}

/// Has the reaper look at `handle` until it is dropped.
pub(crate) fn watch(handle: Weak<dyn Idle>) {
    reaper::register(handle);
}

/// Call right before `fork()`: waits until the reaper thread holds none of its locks and
/// keeps it from taking them, so the child (which gets no copy of the thread) never
/// inherits one held. [`after_fork`] (in both processes) lets it go on.
pub fn before_fork() {
    reaper::PAUSED.store(true, Ordering::SeqCst);
    while reaper::INSIDE.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// Call right after `fork()`, in the parent and in the child (see [`before_fork`]).
pub fn after_fork() {
    reaper::PAUSED.store(false, Ordering::SeqCst);
}

/// One thread per process drops idle pins of every shared handle; it ends when no handle
/// is left and starts again with the next one.
mod reaper {
    use super::*;

    pub(super) static TICK: AtomicU64 = AtomicU64::new(0);
    /// Set around a `fork()` (see `before_fork`): the reaper takes no lock meanwhile.
    pub(super) static PAUSED: AtomicBool = AtomicBool::new(false);
    /// 1 while the reaper may hold a lock.
    pub(super) static INSIDE: AtomicU64 = AtomicU64::new(0);

    struct Registry {
        handles: Vec<Weak<dyn Idle>>,
        /// The process that runs the thread (a child after fork has none).
        running_in: Option<u32>,
    }

    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        handles: Vec::new(),
        running_in: None,
    });

    pub(super) fn register(handle: Weak<dyn Idle>) {
        let mut r = REGISTRY.lock();
        r.handles.retain(|w| w.strong_count() > 0);
        r.handles.push(handle);
        let pid = std::process::id();
        if r.running_in != Some(pid) {
            // After fork() the registry holds the parent's handles: they are disowned in
            // the child, and reaping them does nothing.
            let spawned = std::thread::Builder::new()
                .name("obj-idle-reaper".into())
                .spawn(run);
            if spawned.is_ok() {
                r.running_in = Some(pid);
            }
        }
    }

    fn run() {
        loop {
            std::thread::sleep(IDLE / 2);
            INSIDE.store(1, Ordering::SeqCst);
            if PAUSED.load(Ordering::SeqCst) {
                INSIDE.store(0, Ordering::SeqCst);
                continue;
            }
            let go_on = reap_all();
            INSIDE.store(0, Ordering::SeqCst);
            if !go_on {
                return;
            }
        }
    }

    /// One round over every handle; false when none is left (the thread then ends).
    fn reap_all() -> bool {
        let now = TICK.fetch_add(1, Ordering::Relaxed) + 1;
        let live: Vec<Arc<dyn Idle>> = {
            let mut r = REGISTRY.lock();
            r.handles.retain(|w| w.strong_count() > 0);
            if r.handles.is_empty() || r.running_in != Some(std::process::id()) {
                r.running_in = None;
                return false;
            }
            r.handles.iter().filter_map(Weak::upgrade).collect()
        };
        for h in live {
            h.reap(now.saturating_sub(1));
        }
        true
    }
}
