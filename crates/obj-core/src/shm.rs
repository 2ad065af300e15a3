//! Several processes on one file: the shared index `<db>-shm` and the lock bytes.
//! The protocol is in `docs/architecture.md` ("Several processes on one file") and the
//! layout in `docs/format.md` ("The shared index"); this module is only the mechanism:
//! words in shared memory read and written with atomics, and open-file-description byte
//! locks on the main file.
//!
//! The locks live on the main file's description (at offsets far past any page, where they
//! never touch data), not on the shm file: the shm is derived and may be deleted or
//! replaced, the main file may not, so two processes can never disagree about a lock.

use crate::error::{Error, IoContext, Result};
use crate::wal::LogPosition;
use obj_sys::{LockKind, SharedWords};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Read marks: how many distinct snapshots (commits) processes can pin at once before a
/// new one shares an older mark.
pub(crate) const MARKS: usize = 16;

/// Bytes of the shm file (one page; everything below fits in its first 1 KiB).
const FILE_BYTES: u64 = 4096;
const WORDS: usize = (FILE_BYTES / 8) as usize;

const MAGIC: u64 = u64::from_le_bytes(*b"objSHM\x00\x01");

// Word offsets: two copies of the header, then the marks.
const HEADER_A: usize = 0;
const HEADER_B: usize = 8;
const HEADER_WORDS: usize = 8;
const H_MAGIC: usize = 0;
const H_DB_ID: usize = 1;
const H_GENERATION: usize = 2;
const H_SALTS: usize = 3;
const H_FRAMES: usize = 4;
/// The chain value in the low 32 bits; bit 32 set when the log has a header.
const H_CHAIN: usize = 5;
const H_SUM: usize = 7;
/// Frames copied into the main file (`mark_value` form).
const BACKFILLED: usize = 16;
/// Nonzero while a checkpoint restarts the log (set before the log's header is rewritten,
/// cleared once the new position is published): a writer that finds it set took the write
/// lock from a process killed in between, and checks the log's header before appending.
const RESTARTING: usize = 17;
/// Nonzero while a checkpoint that copied everything waits to restart the log: readers
/// then keep no idle pins and take main-file-only snapshots (see [`MAIN_ONLY`]).
const RESTART_WANTED: usize = 18;
const MARK: usize = 32;
/// Per mark: how many handles have live snapshots on it (for `stat`).
const ACTIVE: usize = MARK + MARKS;
/// Per mark: when it was set (microseconds since the Unix epoch), for `stat`'s ages.
const SINCE: usize = ACTIVE + MARKS;

/// A mark nobody has set.
pub(crate) const UNUSED: u64 = u64::MAX;

/// Flag of a mark value (in the frame count's top bit) whose snapshots read the main file
/// only: taken when the main file already holds every frame of the snapshot. The log may
/// restart under such a mark (its readers read no frame), but nothing may be copied into
/// the main file while it is held.
pub(crate) const MAIN_ONLY: u64 = 1 << 31;

/// Where the lock bytes start in the main file (far beyond any page: 64 TiB).
const LOCK_BASE: u64 = 1 << 46;

/// The lock bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Held shared by every handle with the file open; exclusive by the first opener while
    /// it recovers and rebuilds the shm.
    Dms,
    /// The one write transaction across processes (and checkpoints, which move the log).
    Write,
    /// Held by a checkpoint (under `Write`): lets tools see one is running.
    Checkpoint,
    /// Rebuilding a damaged shm header.
    Recover,
    /// Read mark `i`: shared by every handle with a snapshot on it, exclusive while set.
    Read(usize),
}

impl Lock {
    fn byte(self) -> u64 {
        LOCK_BASE
            + match self {
                Lock::Dms => 0,
                Lock::Write => 1,
                Lock::Checkpoint => 2,
                Lock::Recover => 3,
                Lock::Read(i) => 16 + i as u64,
            }
    }
}

/// A snapshot's mark value: the log generation (low 32 bits) and its frame count (below
/// 2^31; the top bit is [`MAIN_ONLY`]).
pub(crate) fn mark_value(generation: u64, frames: u64) -> u64 {
    ((generation & 0xffff_ffff) << 32) | (frames & (MAIN_ONLY - 1))
}

/// The frame count of a mark value set in `generation`; None for another generation.
pub(crate) fn mark_frames(value: u64, generation: u64) -> Option<u64> {
    (value != UNUSED && value >> 32 == generation & 0xffff_ffff).then_some(value & (MAIN_ONLY - 1))
}

/// True for the mark of a main-file-only snapshot.
pub(crate) fn is_main_only(value: u64) -> bool {
    value != UNUSED && value & MAIN_ONLY != 0
}

/// `<path>-shm`.
pub fn shm_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push("-shm");
    PathBuf::from(s)
}

/// The shared index of one handle: the mapping of `<db>-shm` and the main file's
/// description that carries the lock bytes.
pub(crate) struct Shm {
    map: SharedWords,
    /// The shm file itself (to tell whether it was deleted or replaced under the mapping).
    file: File,
    locks: File,
    path: PathBuf,
    busy_timeout: Duration,
    /// This open created the file (with other handles on the database and no header in
    /// it once they let this one in, theirs was deleted under them).
    pub(crate) created: bool,
}

impl Shm {
    /// Opens (creating it if missing) and maps `<db>-shm` beside the database at `path`;
    /// `locks` is the main file's description. A file too short to map is grown with zeros
    /// (which no header validates in), never shrunk.
    pub(crate) fn open(path: &Path, locks: File, busy_timeout: Duration) -> Result<Shm> {
        let shm = shm_path(path);
        let mut how = OpenOptions::new();
        how.read(true).write(true);
        let (file, created) = match how.clone().create_new(true).open(&shm) {
            Ok(f) => (Ok(f), true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => (how.open(&shm), false),
            Err(e) => (Err(e), false),
        };
        let file = file.map_err(|e| {
            Error::Io(IoContext::wrap(
                e,
                format!("opening the shared index {}", shm.display()),
                Some(&shm),
                Some(
                    "several processes share a database through this file beside it; \
                         to open the database without it, pass locking=\"exclusive\"",
                ),
            ))
        })?;
        if file.metadata()?.len() < FILE_BYTES {
            file.set_len(FILE_BYTES)?;
        }
        let map = SharedWords::map(&file, WORDS)?;
        Ok(Shm {
            map,
            file,
            locks,
            path: shm,
            busy_timeout,
            created,
        })
    }

    /// True when the file this handle maps is no longer `<db>-shm` (deleted, or replaced
    /// by another): handles opened since then share another one.
    pub(crate) fn replaced(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(mine) = self.file.metadata() else {
            return true;
        };
        if mine.nlink() == 0 {
            return true;
        }
        std::fs::metadata(&self.path).map_or(true, |now| {
            (now.dev(), now.ino()) != (mine.dev(), mine.ino())
        })
    }

    fn w(&self, i: usize) -> &AtomicU64 {
        &self.map.words()[i]
    }

    /// Tries a lock once.
    pub(crate) fn try_lock(&self, lock: Lock, kind: LockKind) -> Result<bool> {
        Ok(obj_sys::try_lock(&self.locks, lock.byte(), 1, kind)?)
    }

    /// Takes a lock, waiting up to the busy timeout; `what` says who holds it for the error.
    pub(crate) fn lock(&self, lock: Lock, kind: LockKind, what: &str) -> Result<()> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut pause = Duration::from_micros(100);
        loop {
            if self.try_lock(lock, kind)? {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Busy(format!(
                    "{what} for longer than {:.1}s (raise busy_timeout to wait longer)",
                    self.busy_timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    pub(crate) fn unlock(&self, lock: Lock) -> Result<()> {
        Ok(obj_sys::unlock(&self.locks, lock.byte(), 1)?)
    }

    /// Releases every lock byte this description holds.
    pub(crate) fn unlock_all(&self) -> Result<()> {
        Ok(obj_sys::unlock(&self.locks, LOCK_BASE, 16 + MARKS as u64)?)
    }

    /// The header, if both copies agree and verify: the database id and where the log
    /// stands. None means damaged (or a publisher died between the copies): rebuild it.
    pub(crate) fn header(&self) -> Option<(u64, LogPosition)> {
        for attempt in 0..64 {
            let a = self.copy(HEADER_A);
            let b = self.copy(HEADER_B);
            if a == b {
                return decode(&a);
            }
            // A publisher is between the two copies; give it a moment.
            if attempt > 8 {
                std::thread::yield_now();
            }
        }
        None
    }

    fn copy(&self, at: usize) -> [u64; HEADER_WORDS] {
        std::array::from_fn(|i| self.w(at + i).load(Ordering::Acquire))
    }

    /// The fast check: the generation and frame count of the first copy, two loads. When
    /// they equal what a handle last saw, no commit or reset was published since (each
    /// publish changes one of them).
    pub(crate) fn quick(&self) -> (u64, u64) {
        (
            self.w(HEADER_A + H_GENERATION).load(Ordering::Acquire),
            self.w(HEADER_A + H_FRAMES).load(Ordering::Acquire),
        )
    }

    /// Publishes where the log stands: copy A, then copy B (readers accept only equal
    /// copies). The caller holds `Write` (or `Dms` exclusive).
    pub(crate) fn publish(&self, db_id: u64, pos: &LogPosition) {
        let words = encode(db_id, pos);
        for at in [HEADER_A, HEADER_B] {
            for (i, word) in words.iter().enumerate() {
                self.w(at + i).store(*word, Ordering::Release);
            }
        }
    }

    /// Starts the shm afresh (the first opener, under `Dms` exclusive): every mark unused.
    pub(crate) fn reset(&self, db_id: u64, pos: &LogPosition) {
        for i in HEADER_B + HEADER_WORDS..WORDS {
            self.w(i).store(0, Ordering::Release);
        }
        for i in 0..MARKS {
            self.w(MARK + i).store(UNUSED, Ordering::Release);
        }
        self.set_backfilled(mark_value(pos.generation, 0));
        self.publish(db_id, pos);
    }

    pub(crate) fn mark(&self, i: usize) -> u64 {
        self.w(MARK + i).load(Ordering::SeqCst)
    }

    /// Sets mark `i`; the caller holds `Read(i)` exclusive (or `Write` during a reset, over
    /// marks it holds exclusive).
    pub(crate) fn set_mark(&self, i: usize, value: u64) {
        self.w(MARK + i).store(value, Ordering::SeqCst);
    }

    pub(crate) fn active(&self, i: usize) -> &AtomicU64 {
        self.w(ACTIVE + i)
    }

    /// Mark `i` was set now.
    pub(crate) fn stamp(&self, i: usize) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        self.w(SINCE + i).store(now, Ordering::Release);
    }

    /// How long ago mark `i` was set (None when unknown).
    pub(crate) fn age(&self, i: usize) -> Option<Duration> {
        let since = self.w(SINCE + i).load(Ordering::Acquire);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_micros() as u64;
        (since != 0).then(|| Duration::from_micros(now.saturating_sub(since)))
    }

    pub(crate) fn backfilled(&self) -> u64 {
        self.w(BACKFILLED).load(Ordering::Acquire)
    }

    pub(crate) fn set_backfilled(&self, value: u64) {
        self.w(BACKFILLED).store(value, Ordering::Release);
    }

    pub(crate) fn set_restarting(&self, on: bool) {
        self.w(RESTARTING).store(u64::from(on), Ordering::SeqCst);
    }

    pub(crate) fn set_restart_wanted(&self, on: bool) {
        self.w(RESTART_WANTED)
            .store(u64::from(on), Ordering::SeqCst);
    }

    pub(crate) fn restart_wanted(&self) -> bool {
        self.w(RESTART_WANTED).load(Ordering::Relaxed) != 0
    }

    pub(crate) fn restarting(&self) -> bool {
        self.w(RESTARTING).load(Ordering::SeqCst) != 0
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

fn checksum(words: &[u64]) -> u64 {
    let mut h = crc32fast::Hasher::new();
    for w in words {
        h.update(&w.to_le_bytes());
    }
    u64::from(h.finalize()) | 0x5a00_0000_0000_0000
}

fn encode(db_id: u64, pos: &LogPosition) -> [u64; HEADER_WORDS] {
    let mut w = [0u64; HEADER_WORDS];
    w[H_MAGIC] = MAGIC;
    w[H_DB_ID] = db_id;
    w[H_GENERATION] = pos.generation;
    w[H_SALTS] = (u64::from(pos.salt1) << 32) | u64::from(pos.salt2);
    w[H_FRAMES] = pos.frames;
    w[H_CHAIN] = u64::from(pos.chain) | (u64::from(pos.headed) << 32);
    w[H_SUM] = checksum(&w[..H_SUM]);
    w
}

fn decode(w: &[u64; HEADER_WORDS]) -> Option<(u64, LogPosition)> {
    if w[H_MAGIC] != MAGIC || w[H_SUM] != checksum(&w[..H_SUM]) {
        return None;
    }
    Some((
        w[H_DB_ID],
        LogPosition {
            generation: w[H_GENERATION],
            salt1: (w[H_SALTS] >> 32) as u32,
            salt2: w[H_SALTS] as u32,
            frames: w[H_FRAMES],
            chain: w[H_CHAIN] as u32,
            headed: w[H_CHAIN] >> 32 & 1 == 1,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(frames: u64) -> LogPosition {
        LogPosition {
            generation: 7,
            salt1: 1,
            salt2: 2,
            frames,
            chain: 99,
            headed: true,
        }
    }

    #[test]
    fn a_header_round_trips_and_damage_or_a_torn_publish_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.obj");
        let main = File::create(&db).unwrap();
        let shm = Shm::open(&db, main, Duration::from_millis(10)).unwrap();
        assert!(shm.header().is_none(), "a new shm holds no header");
        shm.reset(42, &pos(3));
        assert_eq!(shm.header(), Some((42, pos(3))));
        assert_eq!(shm.quick(), (7, 3));
        assert!((0..MARKS).all(|i| shm.mark(i) == UNUSED));
        // A publisher that died between the copies leaves them unequal.
        shm.w(HEADER_A + H_FRAMES).store(4, Ordering::SeqCst);
        assert_eq!(shm.header(), None);
        // Equal copies that fail their checksum.
        shm.w(HEADER_B + H_FRAMES).store(4, Ordering::SeqCst);
        assert_eq!(shm.header(), None);
        shm.publish(42, &pos(5));
        assert_eq!(shm.header(), Some((42, pos(5))));
    }

    #[test]
    fn mark_values_name_their_generation() {
        let v = mark_value(3, 10);
        assert_eq!(mark_frames(v, 3), Some(10));
        assert_eq!(mark_frames(v, 4), None);
        assert_eq!(mark_frames(UNUSED, 3), None);
    }
}
