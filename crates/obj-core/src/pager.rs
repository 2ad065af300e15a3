//! Pages: the shared cache of main-file pages and the committed page versions that still
//! live in the WAL.
//!
//! A reader at snapshot `S` sees, for page `p`, the newest version of `p` committed at or
//! before `S` if the WAL still holds one, and the main file's copy otherwise. Checkpoint only
//! copies versions that every live reader already sees (see `docs/format.md`, invariant 4),
//! so a main-file page a reader may still need is never overwritten under it.

use crate::backend::StorageBackend;
use crate::cipher::PageCipher;
use crate::error::{Error, Result};
use crate::format;
use parking_lot::{Mutex, RwLock};
use std::borrow::Cow;
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

/// An immutable page image shared between the cache, the WAL versions and readers.
pub type PageBuf = Arc<Vec<u8>>;

/// Checks a page's structure after its checksum passed; supplied by the B-tree layer so
/// malformed pages never enter the cache.
pub type PageValidator = fn(u64, &[u8]) -> Result<()>;

const CACHE_SHARDS: usize = 16;

/// Bounded, sharded cache of verified main-file pages.
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

    fn shard(&self, no: u64) -> &Mutex<PageMap<PageBuf>> {
        &self.shards[(no as usize) % CACHE_SHARDS]
    }

    fn get(&self, no: u64) -> Option<PageBuf> {
        self.shard(no).lock().get(&no).cloned()
    }

    fn insert(&self, no: u64, page: PageBuf) {
        let mut shard = self.shard(no).lock();
        if shard.len() >= self.per_shard && !shard.contains_key(&no) {
            // Evict an arbitrary entry; hash order is effectively random.
            if let Some(&victim) = shard.keys().next() {
                shard.remove(&victim);
            }
        }
        shard.insert(no, page);
    }
}

/// Committed page versions not yet reset out of the WAL, oldest first per page.
#[derive(Default)]
struct Versions {
    pages: PageMap<Vec<(u64, PageBuf)>>,
    /// Versions at or below this commit have been copied into the main file.
    backfilled: u64,
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
    cache: PageCache,
    versions: RwLock<Versions>,
    /// False while the WAL holds no versions, so reads skip the versions lock.
    has_versions: AtomicBool,
    validate: PageValidator,
}

impl Pager {
    pub fn new(
        main: Box<dyn StorageBackend>,
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
        if let Some(page) = self.read_version(no, seq) {
            return Ok(page);
        }
        self.read_main(no)
    }

    fn read_version(&self, no: u64, seq: u64) -> Option<PageBuf> {
        if !self.has_versions.load(Ordering::Acquire) {
            return None;
        }
        let versions = self.versions.read();
        let list = versions.pages.get(&no)?;
        list.iter()
            .rev()
            .find(|(s, _)| *s <= seq)
            .map(|(_, p)| p.clone())
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
        let offset = no
            .checked_mul(self.physical_size as u64)
            .ok_or_else(|| Error::corrupt_page(no, "page number out of range"))?;
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

    /// Verifies checksum and structure of a page image that came from disk.
    pub fn check(&self, no: u64, page: &[u8]) -> Result<()> {
        format::verify_page(no, page)?;
        if no != 0 {
            (self.validate)(no, page)?;
        }
        Ok(())
    }

    /// Records the pages of commit `seq` as the newest versions.
    pub fn publish(&self, seq: u64, pages: impl IntoIterator<Item = (u64, PageBuf)>) {
        let mut versions = self.versions.write();
        for (no, page) in pages {
            versions.pages.entry(no).or_default().push((seq, page));
        }
        self.has_versions
            .store(!versions.pages.is_empty(), Ordering::Release);
    }

    pub fn has_versions(&self) -> bool {
        self.has_versions.load(Ordering::Acquire)
    }

    /// Copies into the main file, for every page, the newest version at or below `upto`
    /// that is not there yet. The caller holds the writer lock and syncs the main file.
    pub fn backfill(&self, upto: u64, latest: u64) -> Result<Backfill> {
        let mut pending: Vec<(u64, PageBuf)> = {
            let versions = self.versions.read();
            let floor = versions.backfilled;
            versions
                .pages
                .iter()
                .filter_map(|(&no, list)| {
                    list.iter()
                        .rev()
                        .find(|(s, _)| *s <= upto)
                        .filter(|(s, _)| *s > floor)
                        .map(|(_, p)| (no, p.clone()))
                })
                .collect()
        };
        pending.sort_unstable_by_key(|(no, _)| *no);
        let pages_written = pending.len() as u64;
        for (no, page) in &pending {
            self.main
                .write_at(no * self.physical_size as u64, &self.encode(*no, page)?)?;
        }
        for (no, page) in pending {
            self.cache.insert(no, page);
        }
        let mut versions = self.versions.write();
        versions.backfilled = versions.backfilled.max(upto);
        Ok(Backfill {
            pages_written,
            complete: upto >= latest,
        })
    }

    /// Forgets all versions after a full checkpoint reset the WAL.
    pub fn clear_versions(&self) {
        let mut versions = self.versions.write();
        versions.pages.clear();
        self.has_versions.store(false, Ordering::Release);
    }
}
