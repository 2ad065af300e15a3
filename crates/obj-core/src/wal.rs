//! The write-ahead log: a header and a sequence of page-image frames with a chained
//! checksum. Layout and protocol: `docs/format.md` ("WAL").
//!
//! Recovery streams the log through one bounded buffer and hands back where each committed
//! frame lies, not its bytes; the pager reads page images from the log on demand.

use crate::backend::StorageBackend;
use crate::error::{Error, Result};
use crate::format::{get_u32, get_u64, put_u32, put_u64, verify_page, Meta, PAGE_TRAILER};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

pub const WAL_MAGIC: [u8; 8] = *b"objWAL\x00\x01";
pub const WAL_VERSION: u32 = 1;
/// Bytes of the WAL header in front of the first frame.
pub const WAL_HEADER_SIZE: usize = 64;
pub const FRAME_HEADER_SIZE: usize = 32;

/// The most frames one generation of the log may hold: the pager indexes frames with
/// 32 bits (16 TiB of 4 KiB pages).
pub const MAX_FRAMES: u64 = u32::MAX as u64;

/// Frames a commit writes per system call (4 MiB of 4 KiB pages).
pub const APPEND_BATCH: usize = 1024;

/// Bytes recovery reads at a time (rounded down to whole frames, at least one).
const READ_CHUNK: usize = 1 << 20;

// Header field offsets.
const H_MAGIC: usize = 0;
const H_VERSION: usize = H_MAGIC + 8;
const H_PAGE_SIZE: usize = H_VERSION + 4;
const H_GENERATION: usize = H_PAGE_SIZE + 4;
const H_SALT1: usize = H_GENERATION + 8;
const H_SALT2: usize = H_SALT1 + 4;
const H_DB_ID: usize = H_SALT2 + 4;
const H_CHECKSUM: usize = WAL_HEADER_SIZE - 4;

// Frame header field offsets.
const F_PAGE: usize = 0;
const F_COMMIT: usize = F_PAGE + 8;
const F_SALT1: usize = F_COMMIT + 8;
const F_SALT2: usize = F_SALT1 + 4;
const F_CHECKSUM: usize = F_SALT2 + 4;
const F_MARK: usize = F_CHECKSUM + 4;

/// Byte offset in the log of the page image of frame `index` (frames hold `page_size`-byte
/// physical pages).
pub fn frame_page_offset(index: u64, page_size: usize) -> u64 {
    let frame = (FRAME_HEADER_SIZE + page_size) as u64;
    WAL_HEADER_SIZE as u64 + index * frame + FRAME_HEADER_SIZE as u64
}

/// What recovery found in the log: where the committed frames lie, not their bytes.
#[derive(Default)]
pub struct Recovered {
    /// The page number of every committed frame, in log order (entry `i` is frame `i`).
    pub frame_pages: Vec<u64>,
    /// The commits, oldest first.
    pub commits: Vec<RecoveredCommit>,
}

/// One recovered commit: its frames and the database size (in pages) it committed.
pub struct RecoveredCommit {
    /// One past its last frame (its first is the previous commit's `end`, or 0).
    pub end: u32,
    pub db_pages: u64,
}

/// What the main file says about the log that may lie beside it.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    pub db_id: u64,
    /// WAL generation recorded in the main header.
    pub generation: u64,
    /// Last commit the main file holds.
    pub commit_seq: u64,
    /// Bytes at the end of each page outside the checksummed area (encryption).
    pub reserved: usize,
}

/// Checks one committed frame's page image at open (decryption, checksum, structure):
/// gets the page number and the physical page.
pub type FrameCheck<'a> = &'a mut dyn FnMut(u64, &[u8]) -> Result<()>;

/// Append state of the log. Only the writer (or open/checkpoint under the writer lock)
/// touches it; the pager shares the backend to read page images (positioned reads).
pub struct Wal {
    backend: Arc<dyn StorageBackend>,
    page_size: usize,
    db_id: u64,
    generation: u64,
    salt1: u32,
    salt2: u32,
    /// Byte offset where the next frame goes (just after the last committed frame).
    end: u64,
    /// Checksum chain value after the last committed frame.
    chain: u32,
    /// Committed frames currently in the log.
    frames: u64,
    /// The log is durable up to this offset (0: not even the header is known durable). A
    /// commit that starts exactly here marks its first frame as written behind a synced log.
    synced_end: u64,
    /// False while the file holds no valid header of this log (a read-only open of a
    /// missing, torn or foreign log): frames may only follow a header, so the next writer
    /// starts a generation first.
    headed: bool,
}

/// Where the log stands: what the shared index (`shm.rs`) publishes after every commit
/// and reset, so another process can follow the log without rereading it from the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPosition {
    pub generation: u64,
    pub salt1: u32,
    pub salt2: u32,
    /// Committed frames.
    pub frames: u64,
    /// Checksum chain value after the last committed frame.
    pub chain: u32,
    /// The log file holds a valid header of this generation.
    pub headed: bool,
}

/// The commits another process appended, found by [`Wal::catch_up`].
pub struct Appended {
    /// True when the log was reset (a new generation): every frame known before is gone.
    pub reset: bool,
    /// The frame the first new commit starts at.
    pub first: u64,
    /// Page numbers of the new frames, and the commits they form (`end` is absolute).
    pub recovered: Recovered,
}

/// Reads the log's whole frames through one buffer of at most [`READ_CHUNK`] bytes, reading
/// ahead from the frame asked for: recovery's memory does not grow with the log.
struct FrameReader<'a> {
    backend: &'a dyn StorageBackend,
    frame_size: usize,
    /// Whole frames in the log.
    count: u64,
    buf: Vec<u8>,
    /// The frames `buf` holds: `first .. first + held`.
    first: u64,
    held: u64,
}

impl<'a> FrameReader<'a> {
    fn new(backend: &'a dyn StorageBackend, page_size: usize, len: u64) -> Self {
        let frame_size = FRAME_HEADER_SIZE + page_size;
        FrameReader {
            backend,
            frame_size,
            count: len.saturating_sub(WAL_HEADER_SIZE as u64) / frame_size as u64,
            buf: Vec::new(),
            first: 0,
            held: 0,
        }
    }

    /// Frame `index` (below `count`) as (header, page).
    fn get(&mut self, index: u64) -> Result<(&[u8], &[u8])> {
        debug_assert!(index < self.count);
        if index < self.first || index >= self.first + self.held {
            let per_read = (READ_CHUNK / self.frame_size).max(1) as u64;
            let n = per_read.min(self.count - index);
            self.buf.resize(n as usize * self.frame_size, 0);
            let offset = WAL_HEADER_SIZE as u64 + index * self.frame_size as u64;
            self.backend.read_at(offset, &mut self.buf)?;
            self.first = index;
            self.held = n;
        }
        let at = (index - self.first) as usize * self.frame_size;
        Ok(self.buf[at..at + self.frame_size].split_at(FRAME_HEADER_SIZE))
    }
}

impl Wal {
    /// Opens the log and returns where the commits it holds lie, oldest first. A torn or
    /// stale tail is ignored (and cut when `writable`). A break in the chain in front of
    /// frames that were appended after it was synced is damage: a read-write open fails with
    /// corruption and leaves the log as it is, a read-only one returns the commits before the
    /// break. `owner` is what the main file says: a log that belongs to another database,
    /// or to an older or newer state of this one, is not replayed (and is reset when
    /// `writable`). A damaged header in front of frames is corruption unless every commit
    /// those frames hold is already in the main file (a reset torn by a crash). With `owner`
    /// unknown (the main header is damaged) the log is trusted as it is.
    ///
    /// `check` sees the page image of every frame that verifies in the chain; the first
    /// error it gives for a frame of a recovered commit fails the open (after the tail is
    /// dealt with, as if the pages had been checked afterwards). The log is read a chunk at
    /// a time, never whole.
    pub fn open(
        backend: Arc<dyn StorageBackend>,
        page_size: usize,
        writable: bool,
        owner: Option<Owner>,
        check: FrameCheck<'_>,
    ) -> Result<(Wal, Recovered)> {
        let len = backend.len()?;
        let frame_size = (FRAME_HEADER_SIZE + page_size) as u64;
        let (db_id, main_generation) = owner.map_or((0, 0), |o| (o.db_id, o.generation));
        let mut wal = Wal::detached(backend.clone(), page_size, db_id);
        wal.generation = main_generation;
        if len < WAL_HEADER_SIZE as u64 {
            if writable {
                wal.reset(true, 0)?;
            }
            return Ok((wal, Recovered::default()));
        }
        let mut header = [0u8; WAL_HEADER_SIZE];
        backend.read_at(0, &mut header)?;
        let mut frames = FrameReader::new(backend.as_ref(), page_size, len);
        let header_ok = header[H_MAGIC..H_MAGIC + 8] == WAL_MAGIC
            && get_u32(&header, H_CHECKSUM) == crc32fast::hash(&header[..H_CHECKSUM]);
        if !header_ok {
            if frames.count > 0 {
                let stale = match owner {
                    Some(o) => holds_only_checkpointed(&mut frames, page_size, o)?,
                    None => false,
                };
                if !stale {
                    return Err(Error::corrupt("WAL header is damaged but frames follow it"));
                }
            }
            if writable {
                wal.reset(true, 0)?;
            }
            return Ok((wal, Recovered::default()));
        }
        if get_u32(&header, H_VERSION) != WAL_VERSION {
            return Err(Error::FeatureUnsupported(format!(
                "WAL format version {} (this build reads {WAL_VERSION})",
                get_u32(&header, H_VERSION)
            )));
        }
        if get_u32(&header, H_PAGE_SIZE) as usize != page_size {
            return Err(Error::corrupt(
                "WAL page size differs from the database page size",
            ));
        }
        let generation = get_u64(&header, H_GENERATION);
        let header_db = get_u64(&header, H_DB_ID);
        if let Some(o) = owner {
            let ours = header_db == o.db_id
                && (generation == o.generation || o.generation.checked_add(1) == Some(generation));
            if !ours {
                if writable {
                    wal.reset(true, 0)?;
                }
                return Ok((wal, Recovered::default()));
            }
        }
        wal.db_id = header_db;
        wal.generation = generation;
        wal.salt1 = get_u32(&header, H_SALT1);
        wal.salt2 = get_u32(&header, H_SALT2);
        wal.chain = get_u32(&header, H_CHECKSUM);
        wal.headed = true;

        let mut recovered = Recovered::default();
        // The first page the check refused in a recovered commit, and one refused in the
        // commit still being read (which counts only if that commit completes).
        let mut refused: Option<Error> = None;
        let mut refused_pending: Option<Error> = None;
        let mut chain = wal.chain;
        let mut index = 0u64;
        while index < frames.count {
            let (hdr, page) = frames.get(index)?;
            if !wal.frame_verifies(chain, hdr, page) {
                break;
            }
            chain = get_u32(hdr, F_CHECKSUM);
            let no = get_u64(hdr, F_PAGE);
            let db_pages = get_u64(hdr, F_COMMIT);
            if refused.is_none() && refused_pending.is_none() {
                refused_pending = check(no, page).err();
            }
            recovered.frame_pages.push(no);
            index += 1;
            if db_pages != 0 {
                let start = recovered.commits.last().map_or(0, |c| c.end as usize);
                if let Some(no) = recovered.frame_pages[start..]
                    .iter()
                    .find(|&&no| no >= db_pages)
                {
                    return Err(Error::corrupt(format!(
                        "WAL frame for page {no} lies beyond its commit's size of {db_pages} pages"
                    )));
                }
                let end = frame_index(index)?;
                recovered.commits.push(RecoveredCommit { end, db_pages });
                refused = refused.or(refused_pending.take());
                wal.end = WAL_HEADER_SIZE as u64 + index * frame_size;
                wal.chain = chain;
                wal.frames = index;
            }
        }
        recovered.frame_pages.truncate(wal.frames as usize);
        if index < frames.count {
            // The chain broke at frame `index`. A torn tail (what a crash leaves) is dropped
            // below; a break in front of frames written after it was durable is not.
            let later = wal.frames_behind(&mut frames, index, chain)?;
            if later.proven_durable {
                let off = WAL_HEADER_SIZE as u64 + index * frame_size;
                let msg = format!(
                    "the WAL is damaged in the middle, not torn at its end: frame {index} (byte \
                     {off}) fails its checksum, yet {} later frames holding {} commits verify \
                     and were written after that frame was on disk; recovery would lose them, \
                     so the log is left as it is. Restore the database from a backup, or open \
                     it read-only (read_only=True) to read it as of the last commit before the \
                     damage",
                    later.frames, later.commits
                );
                if writable {
                    return Err(Error::corrupt(msg));
                }
            }
        }
        drop(frames);
        if writable {
            // Drop the torn or unacknowledged tail and make what is left durable: a later
            // commit then never lands beside stale frames that could complete a lost one,
            // and never builds on bytes that only the OS cache held.
            if len > wal.end {
                wal.backend.set_len(wal.end)?;
            }
            wal.backend.sync()?;
            wal.synced_end = wal.end;
        }
        if let Some(e) = refused {
            return Err(e);
        }
        Ok((wal, recovered))
    }

    /// True when a frame has this log's salts and its checksum chains from `prev`.
    fn frame_verifies(&self, prev: u32, hdr: &[u8], page: &[u8]) -> bool {
        frame_verifies(self.salt1, self.salt2, prev, hdr, page)
    }

    /// The whole frames behind a break in the chain at frame `broken` (whose predecessor's
    /// chain value is `seed`) that are still frames of this log: each has the log's salts,
    /// and its checksum verifies with the chain restarted at its predecessor — from the
    /// checksum the predecessor stores, or (when that stored value is what was damaged) from
    /// the one the predecessor's bytes give. One of them carrying a valid durability mark (see
    /// [`durable_mark`]) proves that everything before it, the broken frame included, had
    /// been synced when it was written: the break is damage, not a torn write.
    fn frames_behind(
        &self,
        frames: &mut FrameReader<'_>,
        broken: u64,
        seed: u32,
    ) -> Result<FramesBehind> {
        // The two candidate chain values in front of the next frame: the checksum the
        // previous frame stores, and the one its bytes give from its own predecessor's
        // stored checksum.
        let (hdr, page) = frames.get(broken)?;
        let mut stored = get_u32(hdr, F_CHECKSUM);
        let mut computed = frame_checksum(seed, hdr, page);
        let mut later = FramesBehind::default();
        for index in broken + 1..frames.count {
            let (hdr, page) = frames.get(index)?;
            if [stored, computed]
                .iter()
                .any(|&seed| self.frame_verifies(seed, hdr, page))
            {
                later.frames += 1;
                if get_u64(hdr, F_COMMIT) != 0 {
                    later.commits += 1;
                }
                let mark = get_u32(hdr, F_MARK);
                if mark == durable_mark(get_u32(hdr, F_CHECKSUM), index) {
                    later.proven_durable = true;
                }
            }
            computed = frame_checksum(stored, hdr, page);
            stored = get_u32(hdr, F_CHECKSUM);
        }
        Ok(later)
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The identity of the database this log belongs to (from its header).
    pub fn db_id(&self) -> u64 {
        self.db_id
    }

    /// A handle on a log another process keeps: nothing known yet, so the first
    /// [`Wal::catch_up`] reads it from the start.
    pub fn detached(backend: Arc<dyn StorageBackend>, page_size: usize, db_id: u64) -> Wal {
        Wal {
            backend,
            page_size,
            db_id,
            generation: u64::MAX,
            salt1: 0,
            salt2: 0,
            end: WAL_HEADER_SIZE as u64,
            chain: 0,
            frames: 0,
            synced_end: 0,
            headed: false,
        }
    }

    /// Where the log stands now (see [`LogPosition`]).
    pub fn position(&self) -> LogPosition {
        LogPosition {
            generation: self.generation,
            salt1: self.salt1,
            salt2: self.salt2,
            frames: self.frames,
            chain: self.chain,
            headed: self.headed,
        }
    }

    /// False while no header of this log is on disk (see [`Wal::reset`]).
    pub fn headed(&self) -> bool {
        self.headed
    }

    /// Follows the log to `to`, where another process left it: rereads the header when the
    /// log was reset, then reads and checks the headers (salts, commit markers, the last
    /// one's chain value) of the frames appended since this handle last looked; their
    /// pages are verified when read. The caller holds a lock that keeps the
    /// log from being reset meanwhile, or checks afterwards that it was not (a reset racing
    /// the read shows up as an error here).
    pub fn catch_up(&mut self, to: &LogPosition) -> Result<Appended> {
        let reset = to.generation != self.generation
            || to.salt1 != self.salt1
            || to.salt2 != self.salt2
            || to.headed != self.headed;
        if !reset && to.frames < self.frames {
            return Err(Error::corrupt(format!(
                "the shared index says the log holds {} frames, fewer than the {} this \
                 handle already read",
                to.frames, self.frames
            )));
        }
        let (mut chain, first) = match (reset, to.headed) {
            (false, _) => (self.chain, self.frames),
            (true, false) => (0, 0),
            (true, true) => {
                let header = self.read_header()?;
                let valid = header.is_some_and(|h| {
                    get_u32(&h, H_PAGE_SIZE) as usize == self.page_size
                        && get_u64(&h, H_GENERATION) == to.generation
                        && get_u32(&h, H_SALT1) == to.salt1
                        && get_u32(&h, H_SALT2) == to.salt2
                });
                match header.filter(|_| valid) {
                    Some(h) => (get_u32(&h, H_CHECKSUM), 0),
                    None => {
                        return Err(Error::corrupt(
                            "the WAL header differs from the one the shared index names",
                        ))
                    }
                }
            }
        };
        let (salt1, salt2) = (to.salt1, to.salt2);
        let frame_size = (FRAME_HEADER_SIZE + self.page_size) as u64;
        let len = WAL_HEADER_SIZE as u64 + to.frames * frame_size;
        let mut recovered = Recovered::default();
        if to.frames > first {
            // Only the frames' headers are read and checked here (salts, commit markers,
            // the chain value the shm names): each page is verified when it is read, as a
            // main-file page is. A few frames are read header by header; a long run (a
            // handle joining a long log) a chunk at a time.
            let mut frames = FrameReader::new(self.backend.as_ref(), self.page_size, len);
            let few = to.frames - first <= 64;
            let mut hdr = [0u8; FRAME_HEADER_SIZE];
            let mut start = 0usize;
            let short = |e: Error| match e {
                Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Error::corrupt("the WAL is shorter than the shared index says")
                }
                e => e,
            };
            for index in first..to.frames {
                let header: &[u8] = if few {
                    let at = WAL_HEADER_SIZE as u64 + index * frame_size;
                    self.backend
                        .read_at(at, &mut hdr)
                        .map_err(|e| short(e.into()))?;
                    &hdr
                } else {
                    frames.get(index).map_err(short)?.0
                };
                if get_u32(header, F_SALT1) != salt1 || get_u32(header, F_SALT2) != salt2 {
                    return Err(Error::corrupt(format!(
                        "WAL frame {index} is not of the log the shared index names"
                    )));
                }
                chain = get_u32(header, F_CHECKSUM);
                recovered.frame_pages.push(get_u64(header, F_PAGE));
                let db_pages = get_u64(header, F_COMMIT);
                if db_pages != 0 {
                    if recovered.frame_pages[start..]
                        .iter()
                        .any(|&no| no >= db_pages)
                    {
                        return Err(Error::corrupt("a WAL frame lies beyond its commit's size"));
                    }
                    start = recovered.frame_pages.len();
                    let end = frame_index(index + 1)?;
                    recovered.commits.push(RecoveredCommit { end, db_pages });
                }
            }
            if start != recovered.frame_pages.len() || chain != to.chain {
                return Err(Error::corrupt(
                    "the shared index ends the log inside a commit or on another chain",
                ));
            }
        }
        // Only a catch-up that verified everything moves this handle's position.
        self.generation = to.generation;
        self.salt1 = salt1;
        self.salt2 = salt2;
        self.headed = to.headed;
        self.chain = chain;
        self.frames = to.frames;
        self.end = len;
        // Another process's frames: whether they were synced is unknown here.
        self.synced_end = 0;
        Ok(Appended {
            reset,
            first,
            recovered,
        })
    }

    /// The log's header if it is valid and belongs to the database `self` belongs to.
    fn read_header(&self) -> Result<Option<[u8; WAL_HEADER_SIZE]>> {
        let mut header = [0u8; WAL_HEADER_SIZE];
        match self.backend.read_at(0, &mut header) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            other => other?,
        }
        let valid = header[H_MAGIC..H_MAGIC + 8] == WAL_MAGIC
            && get_u32(&header, H_CHECKSUM) == crc32fast::hash(&header[..H_CHECKSUM])
            && get_u32(&header, H_VERSION) == WAL_VERSION
            && get_u64(&header, H_DB_ID) == self.db_id;
        Ok(valid.then_some(header))
    }

    /// True when the log on disk still carries this handle's header (a process killed
    /// between restarting the log and publishing that leaves the shm naming the old one).
    pub fn header_matches(&self) -> Result<bool> {
        Ok(self.read_header()?.is_some_and(|h| {
            get_u64(&h, H_GENERATION) == self.generation
                && get_u32(&h, H_SALT1) == self.salt1
                && get_u32(&h, H_SALT2) == self.salt2
        }))
    }

    /// True when a frame that verifies (this log's salts, chained from its last commit)
    /// lies just past the end this handle knows: another handle appended without the shm
    /// saying so (a writer killed before it published, or one using another shm file after
    /// this one was deleted), and appending here would overwrite it. Reads a frame header
    /// (32 bytes), and the frame only when the header carries this log's salts.
    pub fn more_beyond(&self) -> Result<bool> {
        // The header first (usually past the end of the file, or of an older generation).
        let mut hdr = [0u8; FRAME_HEADER_SIZE];
        match self.backend.read_at(self.end, &mut hdr) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        if get_u32(&hdr, F_SALT1) != self.salt1 || get_u32(&hdr, F_SALT2) != self.salt2 {
            return Ok(false);
        }
        let frame_size = FRAME_HEADER_SIZE + self.page_size;
        let mut frame = vec![0u8; frame_size];
        match self.backend.read_at(self.end, &mut frame) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let (hdr, page) = frame.split_at(FRAME_HEADER_SIZE);
        Ok(self.frame_verifies(self.chain, hdr, page))
    }

    /// Where the last complete commit of the log on disk ends (for rebuilding the shared
    /// index): from this handle's position when the log still has its generation, from the
    /// start otherwise. The caller holds the write lock; nothing changes here.
    pub fn scan_end(&self) -> Result<LogPosition> {
        let Some(header) = self.read_header()? else {
            return Ok(LogPosition {
                frames: 0,
                chain: 0,
                headed: false,
                ..self.position()
            });
        };
        let (generation, salt1, salt2) = (
            get_u64(&header, H_GENERATION),
            get_u32(&header, H_SALT1),
            get_u32(&header, H_SALT2),
        );
        let same = self.headed
            && generation == self.generation
            && (salt1, salt2) == (self.salt1, self.salt2);
        let mut pos = LogPosition {
            generation,
            salt1,
            salt2,
            frames: 0,
            chain: get_u32(&header, H_CHECKSUM),
            headed: true,
        };
        if same {
            pos.frames = self.frames;
            pos.chain = self.chain;
        }
        let len = self.backend.len()?;
        let mut frames = FrameReader::new(self.backend.as_ref(), self.page_size, len);
        let mut chain = pos.chain;
        for index in pos.frames..frames.count {
            let (hdr, page) = frames.get(index)?;
            if !frame_verifies(salt1, salt2, chain, hdr, page) {
                break;
            }
            chain = get_u32(hdr, F_CHECKSUM);
            if get_u64(hdr, F_COMMIT) != 0 {
                pos.frames = index + 1;
                pos.chain = chain;
            }
        }
        Ok(pos)
    }

    /// Appends one commit: a frame per page, the last one carrying the commit marker.
    /// Returns the index of its first frame (the others follow it in order).
    #[cfg(test)]
    pub fn append_commit(
        &mut self,
        pages: &[(u64, &[u8])],
        db_pages: u64,
        sync: bool,
    ) -> Result<u32> {
        self.append_commit_with(pages.len(), db_pages, sync, &mut |i, body| {
            let (no, page) = pages[i];
            body.copy_from_slice(page);
            Ok(no)
        })
    }

    /// Appends one commit of `count` frames, `fill(i, body)` writing the `i`-th page's
    /// stored image into `body` and returning its page number. Frames go out in batches,
    /// so a commit larger than memory streams through a buffer of [`APPEND_BATCH`] frames;
    /// the log's end moves only once every frame is written (a failure part-way leaves
    /// frames without a commit marker past the end, which recovery ignores and the next
    /// commit overwrites).
    pub fn append_commit_with(
        &mut self,
        count: usize,
        db_pages: u64,
        sync: bool,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> Result<u64>,
    ) -> Result<u32> {
        debug_assert!(count > 0 && db_pages > 0);
        let frame_size = FRAME_HEADER_SIZE + self.page_size;
        let first_index = (self.end - WAL_HEADER_SIZE as u64) / frame_size as u64;
        let first = u32::try_from(first_index)
            .ok()
            .filter(|_| first_index + count as u64 <= MAX_FRAMES)
            .ok_or_else(|| {
                Error::Busy(format!(
                    "the WAL holds {} frames, the most it can: a reader has pinned an old \
                     snapshot for too long; end it so a checkpoint can empty the log",
                    self.frames
                ))
            })?;
        let mut buf = vec![0u8; frame_size * count.min(APPEND_BATCH)];
        let mut chain = self.chain;
        let behind_synced_log = self.synced_end == self.end;
        let mut at = self.end;
        let mut i = 0;
        while i < count {
            let n = (count - i).min(APPEND_BATCH);
            for (j, frame) in buf.chunks_exact_mut(frame_size).take(n).enumerate() {
                let index = i + j;
                let (hdr, body) = frame.split_at_mut(FRAME_HEADER_SIZE);
                hdr.fill(0);
                let no = fill(index, body)?;
                put_u64(hdr, F_PAGE, no);
                let marker = if index + 1 == count { db_pages } else { 0 };
                put_u64(hdr, F_COMMIT, marker);
                put_u32(hdr, F_SALT1, self.salt1);
                put_u32(hdr, F_SALT2, self.salt2);
                chain = frame_checksum(chain, hdr, body);
                put_u32(hdr, F_CHECKSUM, chain);
                if index == 0 && behind_synced_log {
                    put_u32(hdr, F_MARK, durable_mark(chain, first_index));
                }
            }
            self.backend.write_at(at, &buf[..n * frame_size])?;
            at += (n * frame_size) as u64;
            i += n;
        }
        if sync {
            self.backend.sync()?;
        }
        self.end = at;
        if sync {
            self.synced_end = self.end;
        }
        self.chain = chain;
        self.frames += count as u64;
        Ok(first)
    }

    pub fn sync(&mut self) -> Result<()> {
        self.backend.sync()?;
        self.synced_end = self.end;
        Ok(())
    }

    /// Gives back the disk space of stale frames behind an empty log (after an in-place
    /// reset). Nothing valid lies there, so a crash part-way changes nothing.
    pub fn truncate_stale(&mut self, sync: bool) -> Result<()> {
        if self.frames == 0 && self.backend.len()? > self.end {
            self.backend.set_len(self.end)?;
            if sync {
                self.backend.sync()?;
            }
        }
        Ok(())
    }

    /// Starts a new generation: fresh salts, a new header, nothing after it that validates.
    /// Frames of the old generation can never validate again (their salts differ), so a log
    /// of at most `keep_bytes` is rewritten in place: later commits overwrite its blocks
    /// instead of growing the file, which makes each commit's fsync a data-only flush rather
    /// than a journal commit of the new file size (about twice as fast on ext4). A longer log
    /// is cut to `keep_bytes` first, so one huge transaction does not pin its disk space;
    /// `keep_bytes == 0` empties the log (durably, before the new header).
    pub fn reset(&mut self, sync: bool, keep_bytes: u64) -> Result<()> {
        self.generation = self.generation.wrapping_add(1);
        let (s1, s2) = fresh_salts();
        let mut header = [0u8; WAL_HEADER_SIZE];
        header[H_MAGIC..H_MAGIC + 8].copy_from_slice(&WAL_MAGIC);
        put_u32(&mut header, H_VERSION, WAL_VERSION);
        put_u32(&mut header, H_PAGE_SIZE, self.page_size as u32);
        put_u64(&mut header, H_GENERATION, self.generation);
        put_u64(&mut header, H_DB_ID, self.db_id);
        put_u32(&mut header, H_SALT1, s1);
        put_u32(&mut header, H_SALT2, s2);
        let crc = crc32fast::hash(&header[..H_CHECKSUM]);
        put_u32(&mut header, H_CHECKSUM, crc);
        // A crash while the header is written in place leaves a torn header in front of old
        // frames: `open` tells that from damage because every commit in those frames is
        // already in the main file (the reset only follows a complete, synced checkpoint).
        let len = self.backend.len()?;
        if keep_bytes == 0 && len > WAL_HEADER_SIZE as u64 {
            // Giving all the space back: empty the log durably first, so a crash leaves at
            // most a short log with a torn header.
            self.backend.set_len(0)?;
            if sync {
                self.backend.sync()?;
            }
        }
        self.backend.write_at(0, &header)?;
        if sync {
            self.backend.sync()?;
            // Only behind a durable new header may old frames be cut: behind the old header
            // a cut log would replay a prefix of commits the main file has moved past.
            let keep = keep_bytes.max(WAL_HEADER_SIZE as u64);
            if keep_bytes != 0 && len > keep {
                self.backend.set_len(keep)?;
            }
        }
        self.salt1 = s1;
        self.salt2 = s2;
        self.chain = crc;
        self.end = WAL_HEADER_SIZE as u64;
        self.frames = 0;
        self.headed = true;
        // Unsynced, the old header (and its frames) may still be what a power loss leaves.
        self.synced_end = if sync { self.end } else { 0 };
        Ok(())
    }
}

/// True when the whole frames after a damaged header hold at least one header page (page 0)
/// image and every such image is a valid header of this database whose commit the main file
/// already holds: the log is then one whose reset a crash tore, and nothing in it is needed.
fn holds_only_checkpointed(
    frames: &mut FrameReader<'_>,
    page_size: usize,
    owner: Owner,
) -> Result<bool> {
    let Some(logical) = page_size.checked_sub(owner.reserved) else {
        return Ok(false);
    };
    let mut seen = false;
    for index in 0..frames.count {
        let (hdr, page) = frames.get(index)?;
        if get_u64(hdr, F_PAGE) != 0 {
            continue;
        }
        let page = &page[..logical];
        let covered = verify_page(0, page).is_ok()
            && Meta::read_from(page)
                .is_ok_and(|m| m.db_id == owner.db_id && m.commit_seq <= owner.commit_seq);
        if !covered {
            return Ok(false);
        }
        seen = true;
    }
    Ok(seen)
}

/// True when a frame carries these salts and its checksum chains from `prev`.
fn frame_verifies(salt1: u32, salt2: u32, prev: u32, hdr: &[u8], page: &[u8]) -> bool {
    get_u32(hdr, F_SALT1) == salt1
        && get_u32(hdr, F_SALT2) == salt2
        && frame_checksum(prev, hdr, page) == get_u32(hdr, F_CHECKSUM)
}

/// A frame count as the pager indexes it (32 bits).
fn frame_index(index: u64) -> Result<u32> {
    u32::try_from(index)
        .ok()
        .filter(|&e| u64::from(e) <= MAX_FRAMES)
        .ok_or_else(|| {
            Error::FeatureUnsupported(format!(
                "the WAL holds more than {MAX_FRAMES} frames, more than this build indexes"
            ))
        })
}

/// What lies behind a break in the WAL's checksum chain.
#[derive(Default)]
struct FramesBehind {
    /// Frames of this log that still verify (restarting the chain at each).
    frames: u64,
    /// Of them, the last frames of a commit.
    commits: u64,
    /// One of them was written when the log up to it, the broken frame included, was synced.
    proven_durable: bool,
}

/// The durability mark of a commit's first frame (frame header bytes 28..32), written when
/// every byte of the log before that frame had been synced: a CRC32 seeded with the frame's
/// checksum over a tag and the frame's index in the log. It ties the mark to that frame at
/// that place (a frame copied elsewhere, or a flipped bit, does not carry a valid one); 0 is
/// never a mark. Frame headers outside the checksum were zero before marks existed, so older
/// logs simply carry none.
fn durable_mark(checksum: u32, index: u64) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(checksum);
    h.update(b"obj-wal durable");
    h.update(&index.to_le_bytes());
    h.finalize().max(1)
}

/// The chained frame checksum. The page's own CRC trailer is hashed *before* the page body:
/// a CRC over data followed by that data's CRC leaves a residue that no longer depends on
/// the data, so hashing the trailer last would make the chain blind to the page content.
fn frame_checksum(prev: u32, hdr: &[u8], page: &[u8]) -> u32 {
    let (body, trailer) = page.split_at(page.len() - PAGE_TRAILER);
    let mut h = crc32fast::Hasher::new_with_initial(prev);
    h.update(&hdr[..F_CHECKSUM]);
    h.update(trailer);
    h.update(body);
    h.finalize()
}

fn fresh_salts() -> (u32, u32) {
    let x = random_u64();
    (x as u32, (x >> 32) as u32)
}

/// 64 unpredictable bits (std's per-process random hash keys, time and pid).
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    struct Shared(Arc<MemoryBackend>);
    impl StorageBackend for Shared {
        fn read_at(&self, o: u64, b: &mut [u8]) -> std::io::Result<()> {
            self.0.read_at(o, b)
        }
        fn write_at(&self, o: u64, d: &[u8]) -> std::io::Result<()> {
            self.0.write_at(o, d)
        }
        fn len(&self) -> std::io::Result<u64> {
            self.0.len()
        }
        fn set_len(&self, l: u64) -> std::io::Result<()> {
            self.0.set_len(l)
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn page(fill: u8) -> Vec<u8> {
        vec![fill; 4096]
    }

    /// Opens the log on `backend` with a check that accepts every page.
    fn open_log(
        backend: impl StorageBackend + 'static,
        writable: bool,
        owner: Option<Owner>,
    ) -> Result<(Wal, Recovered)> {
        Wal::open(Arc::new(backend), 4096, writable, owner, &mut |_, _| Ok(()))
    }

    /// The page image of frame `index` in the log.
    fn frame_page(mem: &Shared, index: u64) -> Vec<u8> {
        let mut page = page(0);
        mem.read_at(frame_page_offset(index, 4096), &mut page)
            .unwrap();
        page
    }

    #[test]
    fn frames_round_trip_and_torn_tail_is_ignored() {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, commits) = open_log(mem.clone(), true, None).unwrap();
        assert!(commits.commits.is_empty());
        assert_eq!(mem.len().unwrap(), WAL_HEADER_SIZE as u64);
        let (a, b, c) = (page(1), page(2), page(3));
        wal.append_commit(&[(1, &a), (2, &b)], 3, true).unwrap();
        wal.append_commit(&[(2, &c)], 3, true).unwrap();
        let full = mem.0.contents();

        let (wal2, commits) = open_log(mem.clone(), true, None).unwrap();
        assert_eq!(commits.commits.len(), 2);
        assert_eq!(commits.frame_pages, [1, 2, 2]);
        assert_eq!(commits.commits[0].end, 2);
        assert_eq!(commits.commits[1].end, 3);
        assert_eq!(frame_page(&mem, 2), c);
        assert_eq!(wal2.frames(), 3);

        // Cut the log at every byte of the last frame: only the first commit survives.
        let frame = FRAME_HEADER_SIZE + 4096;
        for cut in [
            full.len() - 1,
            full.len() - frame + 1,
            full.len() - frame / 2,
        ] {
            let torn = Shared(Arc::new(MemoryBackend::with_contents(full[..cut].to_vec())));
            let (_, commits) = open_log(torn, false, None).unwrap();
            assert_eq!(commits.commits.len(), 1, "cut at {cut}");
        }
        // A flipped bit in the second commit's frame ends recovery before it.
        let mut flipped = full.clone();
        flipped[full.len() - 100] ^= 0x10;
        let (_, commits) = open_log(
            Shared(Arc::new(MemoryBackend::with_contents(flipped))),
            false,
            None,
        )
        .unwrap();
        assert_eq!(commits.commits.len(), 1);
    }

    #[test]
    fn chain_depends_on_page_content_even_with_a_valid_trailer() {
        // Two sealed pages that differ only in their body must chain differently.
        let mut a = page(0);
        a[10] = 1;
        crate::format::seal_page(2, &mut a);
        let mut b = page(0);
        b[10] = 2;
        crate::format::seal_page(2, &mut b);
        let hdr = [0u8; FRAME_HEADER_SIZE];
        assert_ne!(frame_checksum(7, &hdr, &a), frame_checksum(7, &hdr, &b));
    }

    #[test]
    fn reset_invalidates_old_frames() {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, _) = open_log(mem.clone(), true, None).unwrap();
        let a = page(9);
        wal.append_commit(&[(1, &a)], 2, true).unwrap();
        let old = mem.0.contents();
        wal.reset(true, 0).unwrap();
        assert_eq!(mem.len().unwrap(), WAL_HEADER_SIZE as u64);
        // Put the old frame back behind the new header: its salts no longer match.
        mem.write_at(WAL_HEADER_SIZE as u64, &old[WAL_HEADER_SIZE..])
            .unwrap();
        let (_, commits) = open_log(mem.clone(), true, None).unwrap();
        assert!(commits.commits.is_empty());
    }

    #[test]
    fn damaged_header_before_frames_is_corruption() {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, _) = open_log(mem.clone(), true, None).unwrap();
        let a = page(9);
        wal.append_commit(&[(1, &a)], 2, true).unwrap();
        mem.write_at(3, &[0xff]).unwrap();
        assert!(matches!(
            open_log(mem, true, None),
            Err(Error::Corruption(_))
        ));
    }

    fn meta_page(db_id: u64, commit_seq: u64) -> Vec<u8> {
        let mut meta = Meta::new(4096);
        meta.db_id = db_id;
        meta.commit_seq = commit_seq;
        let mut p = page(0);
        meta.write_to(&mut p);
        crate::format::seal_page(0, &mut p);
        p
    }

    /// The main file of database 42 at `commit_seq`, last written in WAL `generation`.
    fn owner(commit_seq: u64, generation: u64) -> Option<Owner> {
        Some(Owner {
            db_id: 42,
            generation,
            commit_seq,
            reserved: 0,
        })
    }

    #[test]
    fn in_place_reset_reuses_the_file_and_old_frames_stay_dead() {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, _) = open_log(mem.clone(), true, owner(0, 0)).unwrap();
        for seq in 1..=3 {
            wal.append_commit(&[(0, &meta_page(42, seq)), (1, &page(seq as u8))], 2, true)
                .unwrap();
        }
        let len = mem.len().unwrap();
        wal.reset(true, u64::MAX).unwrap();
        assert_eq!(mem.len().unwrap(), len, "an in-place reset keeps the file");
        let (_, commits) = open_log(mem.clone(), false, owner(3, wal.generation())).unwrap();
        assert!(
            commits.commits.is_empty(),
            "frames of the old generation must not validate"
        );
        // A new commit overwrites the first old frames; only it is recovered.
        wal.append_commit(&[(0, &meta_page(42, 4)), (1, &page(4))], 2, true)
            .unwrap();
        let (_, commits) = open_log(mem.clone(), false, owner(3, wal.generation())).unwrap();
        assert_eq!(commits.commits.len(), 1);
        assert_eq!(commits.frame_pages, [0, 1]);
        assert_eq!(frame_page(&mem, 1), page(4));
        wal.truncate_stale(true).unwrap();
        assert_eq!(mem.len().unwrap(), len, "frames are live: nothing is cut");
        // A log longer than `keep` loses only its tail.
        let keep = (WAL_HEADER_SIZE + FRAME_HEADER_SIZE + 4096) as u64;
        wal.reset(true, keep).unwrap();
        assert_eq!(mem.len().unwrap(), keep);
        wal.truncate_stale(true).unwrap();
        assert_eq!(mem.len().unwrap(), WAL_HEADER_SIZE as u64);
    }

    #[test]
    fn torn_in_place_reset_is_told_from_damage_by_the_main_files_commit() {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, _) = open_log(mem.clone(), true, owner(0, 0)).unwrap();
        for seq in 1..=3 {
            wal.append_commit(&[(0, &meta_page(42, seq)), (1, &page(seq as u8))], 2, true)
                .unwrap();
        }
        // The header is torn (as by a crash while a reset rewrites it in place).
        let mut torn = mem.0.contents();
        torn[20] ^= 0x55;
        let open = |seq: u64, writable: bool| {
            let backend = Shared(Arc::new(MemoryBackend::with_contents(torn.clone())));
            open_log(backend, writable, owner(seq, 1)).map(|(_, c)| c.commits.len())
        };
        // The main file already holds commit 3: nothing in the log is needed.
        assert_eq!(open(3, false).unwrap(), 0);
        assert_eq!(open(3, true).unwrap(), 0);
        // The main file holds only commit 2: commit 3 lives only in the damaged log.
        assert!(matches!(open(2, false), Err(Error::Corruption(_))));
        // Without a header page image among the frames nothing proves they are stale.
        let mut no_meta = torn.clone();
        for off in (WAL_HEADER_SIZE..no_meta.len()).step_by(FRAME_HEADER_SIZE + 4096) {
            no_meta[off] ^= 0x01; // page 0 -> page 1
        }
        let backend = Shared(Arc::new(MemoryBackend::with_contents(no_meta)));
        assert!(matches!(
            open_log(backend, false, owner(3, 1)),
            Err(Error::Corruption(_))
        ));
        // Another database's frames are never taken for ours.
        let backend = Shared(Arc::new(MemoryBackend::with_contents(torn.clone())));
        let other = Some(Owner {
            db_id: 7,
            ..owner(3, 1).unwrap()
        });
        assert!(matches!(
            open_log(backend, false, other),
            Err(Error::Corruption(_))
        ));
    }

    /// A log store that remembers the largest single read.
    #[derive(Debug)]
    struct Reads(Shared, std::sync::atomic::AtomicUsize);
    impl StorageBackend for Reads {
        fn read_at(&self, o: u64, b: &mut [u8]) -> std::io::Result<()> {
            self.1
                .fetch_max(b.len(), std::sync::atomic::Ordering::Relaxed);
            self.0.read_at(o, b)
        }
        fn write_at(&self, o: u64, d: &[u8]) -> std::io::Result<()> {
            self.0.write_at(o, d)
        }
        fn len(&self) -> std::io::Result<u64> {
            self.0.len()
        }
        fn set_len(&self, l: u64) -> std::io::Result<()> {
            self.0.set_len(l)
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Page `no` of commit `seq`, sealed (so the chain covers a real trailer).
    fn sealed(no: u64, seq: u64) -> Vec<u8> {
        let mut p = page(seq as u8);
        p[..8].copy_from_slice(&seq.to_le_bytes());
        crate::format::seal_page(no, &mut p);
        p
    }

    /// A synced log of 300 commits of 3 frames (several read chunks long), and its bytes.
    fn long_log() -> (Shared, Vec<u8>) {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, _) = open_log(mem.clone(), true, None).unwrap();
        for seq in 1..=300u64 {
            let pages: Vec<(u64, Vec<u8>)> = (1..=3).map(|no| (no, sealed(no, seq))).collect();
            let frames: Vec<(u64, &[u8])> = pages.iter().map(|(no, p)| (*no, &p[..])).collect();
            assert_eq!(
                wal.append_commit(&frames, 4, true).unwrap(),
                (seq as u32 - 1) * 3
            );
        }
        let bytes = mem.0.contents();
        assert!(bytes.len() > 3 * READ_CHUNK);
        (mem, bytes)
    }

    #[test]
    fn recovery_streams_a_long_log_in_bounded_reads() {
        let (mem, mut bytes) = long_log();
        // A torn last commit: half its last frame is missing.
        bytes.truncate(bytes.len() - 2000);
        let log = Arc::new(Reads(
            Shared(Arc::new(MemoryBackend::with_contents(bytes))),
            Default::default(),
        ));
        let mut checked = Vec::new();
        let (wal, rec) = Wal::open(log.clone(), 4096, true, None, &mut |no, p| {
            checked.push((no, get_u64(p, 0)));
            Ok(())
        })
        .unwrap();
        assert_eq!(rec.commits.len(), 299);
        assert_eq!(wal.frames(), 299 * 3);
        assert_eq!(rec.frame_pages.len(), 299 * 3);
        for (i, c) in rec.commits.iter().enumerate() {
            assert_eq!((c.end, c.db_pages), ((i as u32 + 1) * 3, 4));
            for (k, &no) in rec.frame_pages[i * 3..(i + 1) * 3].iter().enumerate() {
                assert_eq!(no, k as u64 + 1);
            }
        }
        // Every frame of the chain was checked once, in order; the torn one never.
        let want: Vec<(u64, u64)> = (1..=300u64)
            .flat_map(|seq| (1..=3).map(move |no| (no, seq)))
            .take(299 * 3 + 2)
            .collect();
        assert_eq!(checked, want);
        let largest = log.1.load(std::sync::atomic::Ordering::Relaxed);
        assert!(largest <= READ_CHUNK, "read {largest} bytes at once");
        assert_eq!(
            log.len().unwrap(),
            frame_page_offset(299 * 3, 4096) - FRAME_HEADER_SIZE as u64,
            "the torn tail is cut"
        );
        drop(mem);
    }

    #[test]
    fn a_refused_page_fails_the_open_only_in_a_recovered_commit() {
        let (_, bytes) = long_log();
        let open_refusing = |bytes: &[u8], writable: bool, bad: (u64, u64)| {
            let log = Shared(Arc::new(MemoryBackend::with_contents(bytes.to_vec())));
            Wal::open(Arc::new(log), 4096, writable, None, &mut |no, p| {
                if (no, get_u64(p, 0)) == bad {
                    Err(Error::corrupt_page(no, "refused"))
                } else {
                    Ok(())
                }
            })
            .map(|(_, rec)| rec.commits.len())
        };
        // A page of commit 150 (in the middle, several chunks in) is refused.
        let e = open_refusing(&bytes, true, (2, 150)).err().unwrap();
        assert!(e.to_string().contains("page 2: refused"), "{e}");
        assert!(open_refusing(&bytes, false, (2, 150)).is_err());
        // In a torn last commit it is not needed, so not refused.
        let torn = &bytes[..bytes.len() - 2000];
        assert_eq!(open_refusing(torn, true, (2, 300)).unwrap(), 299);
    }

    #[test]
    fn damage_in_the_middle_of_a_long_log_is_told_from_a_torn_tail() {
        let (_, mut bytes) = long_log();
        // Frame 400 (past the first read chunk) loses a bit.
        let at = frame_page_offset(400, 4096) as usize + 100;
        bytes[at] ^= 0x04;
        let open_it = |writable: bool| {
            let log = Shared(Arc::new(MemoryBackend::with_contents(bytes.clone())));
            open_log(log, writable, None).map(|(_, rec)| rec.commits.len())
        };
        let e = open_it(true).err().unwrap();
        let msg = e.to_string();
        assert!(
            msg.contains("frame 400") && msg.contains("499 later frames holding 167 commits"),
            "{msg}"
        );
        // Read-only: the commits before the damaged one (frame 400 is in commit 134).
        assert_eq!(open_it(false).unwrap(), 133);
    }
}
