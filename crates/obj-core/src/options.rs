//! How a database is opened: [`Options`] and the durability levels. The defaults here are
//! the only ones: the binding and the Python package read them from [`Options::default`].

use crate::format;
use std::time::Duration;

/// When commits reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// fsync the WAL on every commit: an acknowledged commit survives power loss.
    #[default]
    Immediate,
    /// No fsync per commit; the WAL is synced at checkpoint. Survives a process crash,
    /// may lose the latest commits on power loss.
    Eventual,
    /// Never fsync. For scratch data and tests.
    None,
}

/// Options for [`crate::Db::open`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Open for reading only: no writes, no WAL created, shared file lock.
    pub read_only: bool,
    /// Page size for a new file (power of two, 4 KiB to 64 KiB); an existing file keeps its own.
    pub page_size: u32,
    /// How long to wait for the writer lock (in-process) or the file lock (other processes).
    pub busy_timeout: Duration,
    /// When commits reach the disk.
    pub durability: Durability,
    /// Encrypts every page (but the header) with this key; needed again to open the file.
    pub encryption_key: Option<crate::cipher::EncryptionKey>,
    /// Bytes of main-file pages kept in the shared page cache.
    pub cache_size: usize,
    /// WAL frames after which a commit triggers an automatic checkpoint.
    pub checkpoint_frames: u64,
    /// Compress payloads of 256 bytes or more with lz4 (when that makes them smaller).
    /// Turning it on marks the file as needing lz4 to open; it then stays on.
    pub compression: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_only: false,
            page_size: format::DEFAULT_PAGE_SIZE,
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Immediate,
            encryption_key: None,
            cache_size: 256 << 20,
            checkpoint_frames: 1000,
            compression: false,
        }
    }
}
