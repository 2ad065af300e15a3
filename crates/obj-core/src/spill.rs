//! Where a write transaction keeps the changed pages that do not fit its memory budget.
//!
//! A transaction's changed pages live in memory until it commits. One that changes more
//! than its budget (a quarter of `cache_size`, at least 4 MiB) moves some of them to a
//! spill file: a private, already-unlinked file beside the database, so a crash or a
//! rollback leaves nothing behind and no other process ever sees it. The commit then
//! streams the spilled pages into the log one batch at a time, so a transaction may write
//! far more than fits in memory (a blob larger than RAM is one commit).
//!
//! The file is append-only: a page spilled again goes to a new place, and a page taken
//! back into memory keeps its old bytes where they were. So a [`SpillView`] (the map of
//! the moment plus the shared file) stays valid for a frozen view of the transaction
//! however the transaction goes on. Pages are stored as the database stores them
//! (encrypted when the database is), never in the clear on disk.

use crate::backend::StorageBackend;
use crate::error::{Error, Result};
use crate::pager::{PageBuf, PageMap, Pager};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Spill files of this process, numbered so two transactions never share a name.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// The spilled pages of one write transaction.
pub(crate) struct Spill {
    file: Arc<dyn StorageBackend>,
    /// Page number → offset of its newest spilled image.
    map: Arc<PageMap<u64>>,
    end: u64,
    /// Bytes of one stored page (the physical page size).
    slot: usize,
}

/// A frozen map of spilled pages over the shared file.
#[derive(Clone)]
pub(crate) struct SpillView {
    file: Arc<dyn StorageBackend>,
    map: Arc<PageMap<u64>>,
    slot: usize,
}

impl Spill {
    /// Creates the spill file beside `db_path` and unlinks it at once.
    pub(crate) fn create(db_path: &Path, slot: usize) -> Result<Spill> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}-spill-{}-{n}",
            db_path
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("obj"),
            std::process::id()
        );
        let path = db_path.with_file_name(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                Error::Io(std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create the spill file {} for a large transaction: {e}",
                        path.display()
                    ),
                ))
            })?;
        // Nothing else ever opens it: gone from the directory now, from the disk once the
        // transaction drops it (on Windows the name stays until then).
        let _ = std::fs::remove_file(&path);
        Ok(Spill {
            file: Arc::new(crate::backend::FileBackend::new(file)),
            map: Arc::new(PageMap::default()),
            end: 0,
            slot,
        })
    }

    /// Writes `pages` (logical images) to the file, encoded as the database stores them.
    pub(crate) fn put(&mut self, pager: &Pager, pages: &[(u64, PageBuf)]) -> Result<()> {
        let mut buf = Vec::with_capacity(pages.len() * self.slot);
        for (no, page) in pages {
            let encoded = pager.encode(*no, page)?;
            debug_assert_eq!(encoded.len(), self.slot);
            buf.extend_from_slice(&encoded);
        }
        self.file.write_at(self.end, &buf)?;
        let map = Arc::make_mut(&mut self.map);
        for (i, (no, _)) in pages.iter().enumerate() {
            map.insert(*no, self.end + (i * self.slot) as u64);
        }
        self.end += buf.len() as u64;
        Ok(())
    }

    pub(crate) fn contains(&self, no: u64) -> bool {
        self.map.contains_key(&no)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The spilled image of page `no`, if it is spilled.
    pub(crate) fn get(&self, pager: &Pager, no: u64) -> Result<Option<Vec<u8>>> {
        self.view().get(pager, no)
    }

    /// Forgets page `no` (taken back into memory, or freed).
    pub(crate) fn remove(&mut self, no: u64) {
        if self.map.contains_key(&no) {
            Arc::make_mut(&mut self.map).remove(&no);
        }
    }

    /// Keeps only the pages `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        if self.map.keys().any(|no| !keep(*no)) {
            Arc::make_mut(&mut self.map).retain(|no, _| keep(*no));
        }
    }

    pub(crate) fn view(&self) -> SpillView {
        SpillView {
            file: self.file.clone(),
            map: self.map.clone(),
            slot: self.slot,
        }
    }
}

impl SpillView {
    /// The spilled image of page `no` (logical), if it is spilled.
    pub(crate) fn get(&self, pager: &Pager, no: u64) -> Result<Option<Vec<u8>>> {
        let Some(&at) = self.map.get(&no) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; self.slot];
        self.file.read_at(at, &mut buf)?;
        pager.decode(no, buf).map(Some)
    }

    /// The spilled page numbers, in order.
    pub(crate) fn pages(&self) -> Vec<u64> {
        let mut pages: Vec<u64> = self.map.keys().copied().collect();
        pages.sort_unstable();
        pages
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
