//! Pages: one bounded cache of verified page images, and the index of the committed page
//! versions that still live in the WAL.
//!
//! A reader at snapshot `S` sees, for page `p`, the newest version of `p` committed at or
//! before `S` if the WAL still holds one, and the main file's copy otherwise. Checkpoint only
//! copies versions that every live reader already sees (see `docs/format.md`, invariant 4),
//! so a main-file page a reader may still need is never overwritten under it.
//!
//! # Versions live in the log, not in memory
//!
//! The pager keeps no page image of its own beyond the cache. What it keeps per committed
//! version is where the version lies in the WAL: the [`Versions`] index maps a page number
//! to the frames holding its versions (oldest first), and a commit number to the frames it
//! covers, much as SQLite's wal-index does. A version is read from the log on demand
//! (a positioned read of the WAL backend, which the pager shares with the [`Wal`]), decoded
//! and verified like a main-file page, and kept in the cache. So memory is the cache's
//! `cache_size` bytes plus the index (4 bytes per frame and per commit, a few dozen bytes
//! per distinct page), whatever the log's length — also while a long-lived reader keeps a
//! checkpoint from resetting the log. The bytes on disk are exactly those of the earlier
//! design, which kept every version in memory: only where versions are kept changed.
//!
//! The cache holds both kinds of image under one budget: main-file pages under their page
//! number, WAL versions under `FRAME_KEY | frame index`. A commit puts the images it has just
//! written in the cache (fresh commits are read without touching the disk); a checkpoint
//! puts each copied page in under its page number (replacing the main file's old image);
//! resetting the log drops every frame entry, since frame numbers start over.
//!
//! # Why a read never sees a frame reused under it
//!
//! Frames are only ever overwritten after a reset of the log, and a reset follows
//! [`Pager::clear_versions`], which takes the index's write lock. A reader holds the index's
//! read lock from looking a frame up until it has read it and put it in the cache. So a
//! frame found in the index cannot be reset, truncated or overwritten while it is being
//! read, and no frame entry of an old generation can enter the cache after the reset purged
//! them. (The writer, which resets and appends, holds the writer lock over both; the lock
//! order is writer → WAL → index.)
//!
//! [`Wal`]: crate::wal::Wal

use crate::backend::StorageBackend;
use crate::cipher::PageCipher;
use crate::error::{Error, Result};
use crate::format;
use crate::wal;
use parking_lot::{Mutex, RwLock};
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Page numbers are already well spread; a multiplicative hash beats SipHash on the hot path.
#[derive(Default)]
pub struct PageHasher(u64);

impl Hasher for PageHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub type PageMap<V> = HashMap<u64, V, BuildHasherDefault<PageHasher>>;

/// An immutable page image shared between the cache, writers and readers.
pub type PageBuf = Arc<Vec<u8>>;

/// Checks a page's structure after its checksum passed; supplied by the B-tree layer so
/// malformed pages never enter the cache.
pub type PageValidator = fn(u64, &[u8]) -> Result<()>;

const CACHE_SHARDS: usize = 16;

/// Cache keys of WAL versions: the frame index with the top bit set. Main-file page numbers
/// never have it (a page's byte offset must fit in 64 bits).
const FRAME_KEY: u64 = 1 << 63;

fn frame_key(frame: u32) -> u64 {
    FRAME_KEY | u64::from(frame)
}

/// Bounded, sharded cache of verified pages: main-file pages and WAL versions.
struct PageCache {
    shards: Vec<Mutex<PageMap<PageBuf>>>,
    per_shard: usize,
}

impl PageCache {
    fn new(capacity_pages: usize) -> Self {
        let per_shard = (capacity_pages / CACHE_SHARDS).max(8);
        PageCache {
            shards: (0..CACHE_SHARDS)
                .map(|_| Mutex::new(PageMap::default()))
                .collect(),
            per_shard,
        }
    }

    fn shard(&self, key: u64) -> &Mutex<PageMap<PageBuf>> {
        &self.shards[(key as usize) % CACHE_SHARDS]
    }

    #[inline]
    fn get(&self, key: u64) -> Option<PageBuf> {
        self.shard(key).lock().get(&key).cloned()
    }

    fn insert(&self, key: u64, page: PageBuf) {
        let mut shard = self.shard(key).lock();
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            // Evict an arbitrary entry; hash order is effectively random.
            if let Some(&victim) = shard.keys().next() {
                shard.remove(&victim);
            }
        }
        shard.insert(key, page);
    }

    fn remove(&self, key: u64) {
        self.shard(key).lock().remove(&key);
    }

    fn purge_all(&self) {
        for shard in &self.shards {
            shard.lock().clear();
        }
    }

    /// Drops every WAL version (the log was reset: frame numbers start over).
    fn purge_frames(&self) {
        for shard in &self.shards {
            shard.lock().retain(|key, _| key & FRAME_KEY == 0);
        }
    }
}

/// Where one page's versions lie in the WAL.
#[derive(Clone, Copy)]
enum Slot {
    /// One version, in this frame.
    One(u32),
    /// Several: `Versions::lists[i]` holds their frames, oldest first.
    Many(u32),
}

/// The committed page versions in the WAL: for each page the frames holding its versions,
/// and for each commit the frames it covers. Frames are numbered from 0 after each reset and
/// appended in commit order, so "the newest version of `p` at or before commit `S`" is the
/// last frame of `p` below the end of commit `S`.
#[derive(Default)]
struct Versions {
    /// The log holds commits `base + 1 ..= base + ends.len()`.
    base: u64,
    /// `ends[k]`: one past the last frame of commit `base + 1 + k`.
    ends: Vec<u32>,
    pages: PageMap<Slot>,
    lists: Vec<Vec<u32>>,
    /// Versions at or below this commit have been copied into the main file.
    backfilled: u64,
}

impl Versions {
    /// One past the last frame of the newest commit at or before `seq`.
    fn limit(&self, seq: u64) -> u32 {
        let commits = seq.saturating_sub(self.base).min(self.ends.len() as u64) as usize;
        commits.checked_sub(1).map_or(0, |k| self.ends[k])
    }

    /// The frame of the newest version of page `no` below frame `limit`.
    #[inline]
    fn newest(&self, no: u64, limit: u32) -> Option<u32> {
        match *self.pages.get(&no)? {
            Slot::One(frame) => (frame < limit).then_some(frame),
            Slot::Many(i) => {
                let list = &self.lists[i as usize];
                let below = list.partition_point(|&frame| frame < limit);
                below.checked_sub(1).map(|k| list[k])
            }
        }
    }

    /// Records commit `seq`, whose versions of `pages` lie in frames `first ..`.
    fn push_commit(&mut self, seq: u64, first: u32, pages: impl Iterator<Item = u64>) {
        if self.ends.is_empty() {
            self.base = seq - 1;
        }
        debug_assert_eq!(seq, self.base + self.ends.len() as u64 + 1);
        debug_assert_eq!(first, self.ends.last().copied().unwrap_or(0));
        let mut frame = first;
        for no in pages {
            match self.pages.entry(no) {
                Entry::Vacant(e) => {
                    e.insert(Slot::One(frame));
                }
                Entry::Occupied(mut e) => match *e.get() {
                    Slot::One(older) => {
                        e.insert(Slot::Many(self.lists.len() as u32));
                        self.lists.push(vec![older, frame]);
                    }
                    Slot::Many(i) => self.lists[i as usize].push(frame),
                },
            }
            frame += 1;
        }
        self.ends.push(frame);
    }

    /// The newest commit whose frames all lie below `frames` (the oldest one a read mark
    /// at `frames` may pin).
    fn seq_within(&self, frames: u64) -> u64 {
        self.base + self.ends.partition_point(|&e| u64::from(e) <= frames) as u64
    }

    /// The commit that ends exactly at frame count `frames`, if this index holds it.
    fn seq_ending_at(&self, frames: u64) -> Option<u64> {
        if frames == 0 {
            return Some(self.base);
        }
        let k = self.ends.partition_point(|&e| u64::from(e) < frames);
        (self.ends.get(k).map(|&e| u64::from(e)) == Some(frames))
            .then_some(self.base + 1 + k as u64)
    }

    /// Forgets every version (the log was reset), giving back the memory a long log took.
    fn clear(&mut self) {
        const KEEP: usize = 4096;
        self.ends.clear();
        self.ends.shrink_to(KEEP);
        self.pages.clear();
        self.pages.shrink_to(KEEP);
        self.lists.clear();
        self.lists.shrink_to(KEEP);
    }
}

/// Result of copying committed versions into the main file.
pub struct Backfill {
    pub pages_written: u64,
    /// True when every version was copied and the WAL can be reset.
    pub complete: bool,
}

pub struct Pager {
    /// Logical page size: what the engine reads and writes.
    page_size: usize,
    /// Size of a page on disk and in WAL frames (logical + reserved bytes).
    physical_size: usize,
    cipher: Option<PageCipher>,
    main: Box<dyn StorageBackend>,
    /// The WAL's store, shared with the [`wal::Wal`] that appends to it; read-only here.
    wal: Arc<dyn StorageBackend>,
    cache: PageCache,
    versions: RwLock<Versions>,
    /// False while the WAL holds no versions, so reads skip the versions lock.
    has_versions: AtomicBool,
    validate: PageValidator,
}

impl Pager {
    pub fn new(
        main: Box<dyn StorageBackend>,
        wal: Arc<dyn StorageBackend>,
        physical_size: usize,
        reserved: usize,
        cipher: Option<PageCipher>,
        cache_bytes: usize,
        validate: PageValidator,
    ) -> Self {
        Pager {
            page_size: physical_size - reserved,
            physical_size,
            cipher,
            main,
            wal,
            cache: PageCache::new(cache_bytes / physical_size),
            versions: RwLock::new(Versions::default()),
            has_versions: AtomicBool::new(false),
            validate,
        }
    }

    pub fn physical_size(&self) -> usize {
        self.physical_size
    }

    /// The on-disk form of a logical page: encrypted (or, for the header page, padded)
    /// when the database is encrypted, the same bytes otherwise.
    pub fn encode<'a>(&self, no: u64, logical: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        if self.physical_size == self.page_size {
            return Ok(Cow::Borrowed(logical));
        }
        match &self.cipher {
            Some(c) if no != 0 => Ok(Cow::Owned(c.seal(no, logical)?)),
            _ => {
                let mut padded = logical.to_vec();
                padded.resize(self.physical_size, 0);
                Ok(Cow::Owned(padded))
            }
        }
    }

    /// The logical page of an on-disk page (decrypting and authenticating it).
    pub fn decode(&self, no: u64, physical: Vec<u8>) -> Result<Vec<u8>> {
        if self.physical_size == self.page_size {
            return Ok(physical);
        }
        match &self.cipher {
            Some(c) if no != 0 => c.open(no, &physical),
            _ => {
                let mut logical = physical;
                logical.truncate(self.page_size);
                Ok(logical)
            }
        }
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    pub fn main(&self) -> &dyn StorageBackend {
        self.main.as_ref()
    }

    /// The page as of commit `seq`.
    pub fn read(&self, no: u64, seq: u64) -> Result<PageBuf> {
        if self.has_versions.load(Ordering::Acquire) {
            // Held until the version is read and cached: see "Why a read never sees a frame
            // reused under it" above.
            let versions = self.versions.read();
            if let Some(frame) = versions.newest(no, versions.limit(seq)) {
                if let Some(page) = self.cache.get(frame_key(frame)) {
                    return Ok(page);
                }
                let page = self.load_frame(no, frame)?;
                self.cache.insert(frame_key(frame), page.clone());
                return Ok(page);
            }
        }
        self.read_main(no)
    }

    /// Reads, decodes and verifies the version of page `no` in WAL frame `frame`. The caller
    /// holds the versions lock, or the writer lock (nothing resets or appends meanwhile).
    fn load_frame(&self, no: u64, frame: u32) -> Result<PageBuf> {
        let mut buf = vec![0u8; self.physical_size];
        let offset = wal::frame_page_offset(u64::from(frame), self.physical_size);
        match self.wal.read_at(offset, &mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Error::corrupt_page(
                    no,
                    format!("its version in WAL frame {frame} lies beyond the end of the log"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let buf = self.decode(no, buf)?;
        self.check(no, &buf)?;
        Ok(Arc::new(buf))
    }

    /// Reads a page from the main file through the cache, verifying it on first load.
    pub fn read_main(&self, no: u64) -> Result<PageBuf> {
        if let Some(page) = self.cache.get(no) {
            return Ok(page);
        }
        let page = self.load_main(no)?;
        self.cache.insert(no, page.clone());
        Ok(page)
    }

    fn load_main(&self, no: u64) -> Result<PageBuf> {
        let mut buf = vec![0u8; self.physical_size];
        let offset = self.main_offset(no)?;
        match self.main.read_at(offset, &mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Error::corrupt_page(no, "lies beyond the end of the file"));
            }
            Err(e) => return Err(e.into()),
        }
        let buf = self.decode(no, buf)?;
        self.check(no, &buf)?;
        Ok(Arc::new(buf))
    }

    fn main_offset(&self, no: u64) -> Result<u64> {
        no.checked_mul(self.physical_size as u64)
            .filter(|_| no & FRAME_KEY == 0)
            .ok_or_else(|| Error::corrupt_page(no, "page number out of range"))
    }

    /// Verifies checksum and structure of a page image that came from disk.
    pub fn check(&self, no: u64, page: &[u8]) -> Result<()> {
        format::verify_page(no, page)?;
        if no != 0 {
            (self.validate)(no, page)?;
        }
        Ok(())
    }

    /// Decodes and verifies a physical page image (a WAL frame's, at open).
    pub fn check_physical(&self, no: u64, physical: &[u8]) -> Result<()> {
        if self.physical_size == self.page_size {
            return self.check(no, physical);
        }
        let logical = self.decode(no, physical.to_vec())?;
        self.check(no, &logical)
    }

    /// Records the pages of commit `seq`, just appended to the WAL from frame `first` on in
    /// this order, as the newest versions, and caches them.
    pub fn publish(&self, seq: u64, first: u32, spilled: Vec<u64>, pages: Vec<(u64, PageBuf)>) {
        let cached = first + spilled.len() as u32;
        self.index_commit(
            seq,
            first,
            spilled.into_iter().chain(pages.iter().map(|(no, _)| *no)),
        );
        for (frame, (_, page)) in (cached..).zip(pages) {
            self.cache.insert(frame_key(frame), page);
        }
    }

    /// Records commit `seq`, found in the WAL at open: its versions of `pages` lie in frames
    /// `first ..` in this order.
    pub fn index_commit(&self, seq: u64, first: u32, pages: impl Iterator<Item = u64>) {
        let mut versions = self.versions.write();
        versions.push_commit(seq, first, pages);
        self.has_versions
            .store(!versions.pages.is_empty(), Ordering::Release);
    }

    pub fn has_versions(&self) -> bool {
        self.has_versions.load(Ordering::Acquire)
    }

    /// Copies into the main file, for every page, the newest version at or below `upto`
    /// that is not there yet, one page at a time (from the cache, or read from the log and
    /// verified), and caches it as the main file's image. The caller holds the writer lock
    /// (nothing appends to or resets the log meanwhile) and syncs the main file.
    pub fn backfill(&self, upto: u64, latest: u64) -> Result<Backfill> {
        let mut pending: Vec<(u64, u32)> = {
            let versions = self.versions.read();
            let to = versions.limit(upto);
            let from = versions.limit(versions.backfilled);
            versions
                .pages
                .keys()
                .filter_map(|&no| {
                    let frame = versions.newest(no, to)?;
                    (frame >= from).then_some((no, frame))
                })
                .collect()
        };
        pending.sort_unstable_by_key(|(no, _)| *no);
        let pages_written = pending.len() as u64;
        for (no, frame) in pending {
            let page = match self.cache.get(frame_key(frame)) {
                Some(page) => page,
                None => self.load_frame(no, frame)?,
            };
            self.main
                .write_at(self.main_offset(no)?, &self.encode(no, &page)?)?;
            // Replaces any image of the page from before: the file holds this one now.
            self.cache.insert(no, page);
        }
        let mut versions = self.versions.write();
        versions.backfilled = versions.backfilled.max(upto);
        Ok(Backfill {
            pages_written,
            complete: upto >= latest,
        })
    }

    /// The newest commit whose frames all lie below `frames`.
    pub fn seq_within_frames(&self, frames: u64) -> u64 {
        self.versions.read().seq_within(frames)
    }

    /// The commit that ends exactly at frame count `frames`, if the index holds it.
    pub fn seq_at_frames(&self, frames: u64) -> Option<u64> {
        self.versions.read().seq_ending_at(frames)
    }

    /// Records that another process's checkpoint copied every version up to commit `seq`
    /// into the main file.
    /// The main file's images of the pages it copied changed under this process's cache:
    /// they are dropped (the next read loads the new image).
    pub fn note_backfilled(&self, seq: u64) {
        let mut versions = self.versions.write();
        if seq <= versions.backfilled {
            return;
        }
        let (from, to) = (versions.limit(versions.backfilled), versions.limit(seq));
        let copied = |f: &u32| (from..to).contains(f);
        for (&no, slot) in &versions.pages {
            let changed = match slot {
                Slot::One(f) => copied(f),
                Slot::Many(i) => versions.lists[*i as usize].iter().any(copied),
            };
            if changed {
                self.cache.remove(no);
            }
        }
        versions.backfilled = seq;
    }

    /// The log's frame count at commit `seq` (its read-mark frames).
    pub fn frames_at(&self, seq: u64) -> u64 {
        u64::from(self.versions.read().limit(seq))
    }

    /// Drops every cached page: another process rewrote the main file (a checkpoint that
    /// restarted the log), so no image this process read from it can be trusted.
    pub fn purge_cache(&self) {
        let _versions = self.versions.write();
        self.cache.purge_all();
    }

    /// Forgets all versions once a complete backfill copied them into the main file, before
    /// the WAL is reset (readers then read the main file, which holds them all; none is left
    /// holding a frame the reset may cut or a later commit overwrite).
    pub fn clear_versions(&self) {
        let mut versions = self.versions.write();
        versions.clear();
        // Under the write lock: no reader is between finding a frame and caching it.
        self.cache.purge_frames();
        self.has_versions.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use crate::wal::Wal;
    use std::sync::atomic::AtomicBool;
    use std::thread::ThreadId;
    use std::time::Duration;

    const PS: usize = 4096;
    /// Pages 0 .. PAGES exist in the main file.
    const PAGES: u64 = 8;

    fn accept(_: u64, _: &[u8]) -> Result<()> {
        Ok(())
    }

    /// A sealed page filled with `fill`.
    fn page(no: u64, fill: u8) -> PageBuf {
        let mut p = vec![fill; PS];
        format::seal_page(no, &mut p);
        Arc::new(p)
    }

    fn fill_of(p: &[u8]) -> u8 {
        p[0]
    }

    /// A WAL store whose reads on one chosen thread first announce themselves and wait.
    #[derive(Debug, Default)]
    struct SlowLog {
        inner: MemoryBackend,
        slow_thread: Mutex<Option<ThreadId>>,
        reading: AtomicBool,
    }

    impl StorageBackend for SlowLog {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            if *self.slow_thread.lock() == Some(std::thread::current().id()) {
                self.reading.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
            self.inner.read_at(offset, buf)
        }
        fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            self.inner.write_at(offset, data)
        }
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A main file of `PAGES` pages filled with 0, an empty WAL on `log`, and a pager over
    /// both caching `cache_pages` pages.
    fn setup(log: Arc<SlowLog>, cache_pages: usize) -> (Pager, Wal) {
        let main = MemoryBackend::new();
        for no in 0..PAGES {
            main.write_at(no * PS as u64, &page(no, 0)).unwrap();
        }
        let log: Arc<dyn StorageBackend> = log;
        let pager = Pager::new(
            Box::new(main),
            log.clone(),
            PS,
            0,
            None,
            cache_pages * PS,
            accept,
        );
        let (wal, recovered) = Wal::open(log, PS, true, None, &mut |_, _| Ok(())).unwrap();
        assert!(recovered.commits.is_empty());
        (pager, wal)
    }

    /// Appends commit `seq` setting each page to its fill; `cache` as a commit does, or only
    /// indexed (as recovery does, so reads go to the log).
    fn commit(pager: &Pager, wal: &mut Wal, seq: u64, pages: &[(u64, u8)], cache: bool) {
        let pages: Vec<(u64, PageBuf)> = pages.iter().map(|&(no, f)| (no, page(no, f))).collect();
        let frames: Vec<(u64, &[u8])> = pages.iter().map(|(no, p)| (*no, &p[..])).collect();
        let first = wal.append_commit(&frames, PAGES, false).unwrap();
        if cache {
            pager.publish(seq, first, Vec::new(), pages);
        } else {
            pager.index_commit(seq, first, pages.iter().map(|(no, _)| *no));
        }
    }

    /// What a complete checkpoint at `latest` does: backfill, forget versions, reset.
    fn checkpoint(pager: &Pager, wal: &mut Wal, latest: u64) {
        let b = pager.backfill(latest, latest).unwrap();
        assert!(b.complete);
        pager.clear_versions();
        wal.reset(false, u64::MAX).unwrap();
    }

    fn fill(pager: &Pager, no: u64, seq: u64) -> u8 {
        fill_of(&pager.read(no, seq).unwrap())
    }

    #[test]
    fn each_snapshot_sees_the_newest_version_at_or_before_it() {
        for cache in [true, false] {
            let (pager, mut wal) = setup(Arc::default(), 64);
            commit(&pager, &mut wal, 1, &[(1, 11)], cache);
            commit(&pager, &mut wal, 2, &[(1, 12), (2, 22)], cache);
            commit(&pager, &mut wal, 3, &[(2, 23), (3, 33)], cache);
            commit(&pager, &mut wal, 4, &[(1, 14)], cache);
            let want: [(u64, [u8; 5]); 4] = [
                (1, [0, 11, 12, 12, 14]),
                (2, [0, 0, 22, 23, 23]),
                (3, [0, 0, 0, 33, 33]),
                (4, [0, 0, 0, 0, 0]),
            ];
            for (no, fills) in want {
                for (seq, &f) in fills.iter().enumerate() {
                    assert_eq!(fill(&pager, no, seq as u64), f, "page {no} at {seq}");
                }
            }
            // A partial backfill up to commit 2 copies the versions commit 2 sees.
            let b = pager.backfill(2, 4).unwrap();
            assert_eq!((b.pages_written, b.complete), (2, false));
            assert_eq!(fill_of(&pager.read_main(1).unwrap()), 12);
            assert_eq!(fill_of(&pager.read_main(2).unwrap()), 22);
            assert_eq!(fill_of(&pager.read_main(3).unwrap()), 0);
            // The rest, from where it stopped.
            let b = pager.backfill(4, 4).unwrap();
            assert_eq!((b.pages_written, b.complete), (3, true));
            for (no, f) in [(1, 14), (2, 23), (3, 33)] {
                assert_eq!(fill_of(&pager.read_main(no).unwrap()), f);
            }
        }
    }

    #[test]
    fn a_reset_forgets_cached_versions_of_the_old_log() {
        let (pager, mut wal) = setup(Arc::default(), 64);
        commit(&pager, &mut wal, 1, &[(1, 11), (2, 21)], true);
        assert_eq!(fill(&pager, 1, 1), 11);
        checkpoint(&pager, &mut wal, 1);
        // The next commit reuses frames 0 and 1 (indexed only: its images are not cached).
        commit(&pager, &mut wal, 2, &[(2, 22), (1, 12)], false);
        assert_eq!(fill(&pager, 1, 1), 11);
        assert_eq!(fill(&pager, 1, 2), 12, "a stale cached frame was served");
        assert_eq!(fill(&pager, 2, 2), 22, "a stale cached frame was served");
    }

    #[test]
    fn a_backfill_replaces_the_cached_main_file_image() {
        // Frames read from the log (not cached by the commit), main pages cached first.
        let (pager, mut wal) = setup(Arc::default(), 64);
        assert_eq!(fill(&pager, 1, 0), 0);
        commit(&pager, &mut wal, 1, &[(1, 11)], false);
        checkpoint(&pager, &mut wal, 1);
        assert!(!pager.has_versions());
        assert_eq!(fill(&pager, 1, 1), 11, "a stale main-file image was served");
        // Frames in the cache.
        commit(&pager, &mut wal, 2, &[(1, 12)], true);
        checkpoint(&pager, &mut wal, 2);
        assert_eq!(fill(&pager, 1, 2), 12, "a stale main-file image was served");
    }

    #[test]
    fn a_read_racing_a_checkpoint_reset_and_commit_reads_its_snapshot() {
        for _ in 0..5 {
            let log = Arc::new(SlowLog::default());
            let (pager, mut wal) = setup(log.clone(), 0);
            commit(&pager, &mut wal, 1, &[(1, 11)], false);
            std::thread::scope(|s| {
                let reader = s.spawn(|| {
                    *log.slow_thread.lock() = Some(std::thread::current().id());
                    // Finds frame 0 for page 1, then is slow to read it.
                    fill(&pager, 1, 1)
                });
                while !log.reading.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                // Meanwhile the log is checkpointed, reset and frame 0 reused.
                checkpoint(&pager, &mut wal, 1);
                commit(&pager, &mut wal, 2, &[(1, 12)], false);
                assert_eq!(reader.join().unwrap(), 11, "read a frame reused under it");
            });
            *log.slow_thread.lock() = None;
            assert_eq!(fill(&pager, 1, 1), 11);
            assert_eq!(fill(&pager, 1, 2), 12);
        }
    }
}
