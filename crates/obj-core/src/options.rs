//! How a database is opened: [`Options`] and the durability levels. The defaults here are
//! the only ones: the binding and the Python package read them from [`Options::default`].

use crate::format;
use std::time::Duration;

/// When commits reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
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

impl Durability {
    /// Every level, strongest first.
    pub const ALL: [Durability; 3] = [
        Durability::Immediate,
        Durability::Eventual,
        Durability::None,
    ];

    /// The level's name: "immediate", "eventual" or "none".
    pub fn name(self) -> &'static str {
        match self {
            Durability::Immediate => "immediate",
            Durability::Eventual => "eventual",
            Durability::None => "none",
        }
    }

    /// The level named `name` (see [`Durability::name`]).
    pub fn from_name(name: &str) -> Option<Durability> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// Whether [`crate::Db::open`] may create the file, or must.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenMode {
    /// Open the file, creating it when it does not exist (or is empty).
    #[default]
    OpenOrCreate,
    /// Create a new file; one that already exists is refused with [`crate::Error::Exists`].
    Create,
    /// Open an existing file; a missing one is refused with [`crate::Error::NotFound`].
    Open,
}

/// Whether other handles (other processes) may open the file while this one has it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Locking {
    /// Any number of handles and processes at once, one writer at a time across all of
    /// them, coordinated through `<db>-shm` (see `docs/architecture.md`).
    #[default]
    Shared,
    /// This handle is the only one on the file: an exclusive file lock, no `<db>-shm`.
    /// For file systems where shared memory between processes is not safe (network
    /// file systems), or to keep every other process out.
    Exclusive,
}

impl Locking {
    /// "shared" or "exclusive".
    pub fn name(self) -> &'static str {
        match self {
            Locking::Shared => "shared",
            Locking::Exclusive => "exclusive",
        }
    }

    /// The mode named `name` (see [`Locking::name`]).
    pub fn from_name(name: &str) -> Option<Locking> {
        [Locking::Shared, Locking::Exclusive]
            .into_iter()
            .find(|l| l.name() == name)
    }
}

/// Options for [`crate::Db::open`]. Build them from [`Options::default`] with the setters
/// below (or by assigning the public fields).
#[derive(Clone, Debug)]
#[non_exhaustive]
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
    /// Bytes of page images (main-file pages and the versions the WAL holds) kept in the
    /// shared page cache; memory stays bounded by it however long the log grows.
    pub cache_size: usize,
    /// WAL frames after which a commit triggers an automatic checkpoint.
    pub checkpoint_frames: u64,
    /// Compress payloads of 256 bytes or more with lz4 (when that makes them smaller).
    /// Turning it on marks the file as needing lz4 to open; it then stays on.
    pub compression: bool,
    /// Whether opening may, or must, create the file.
    pub mode: OpenMode,
    /// Whether other processes may share the file.
    pub locking: Locking,
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
            mode: OpenMode::OpenOrCreate,
            locking: Locking::Shared,
        }
    }
}

/// Builder-style setters, so options are written as
/// `Options::default().cache_size(8 << 20).durability(Durability::Eventual)` (the struct is
/// `#[non_exhaustive]`: later versions may add options without breaking callers).
impl Options {
    /// Sets [`Options::read_only`].
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets [`Options::page_size`].
    #[must_use]
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self
    }

    /// Sets [`Options::busy_timeout`].
    #[must_use]
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// Sets [`Options::durability`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`Options::encryption_key`].
    #[must_use]
    pub fn encryption_key(mut self, encryption_key: Option<crate::cipher::EncryptionKey>) -> Self {
        self.encryption_key = encryption_key;
        self
    }

    /// Sets [`Options::cache_size`].
    #[must_use]
    pub fn cache_size(mut self, cache_size: usize) -> Self {
        self.cache_size = cache_size;
        self
    }

    /// Sets [`Options::checkpoint_frames`].
    #[must_use]
    pub fn checkpoint_frames(mut self, checkpoint_frames: u64) -> Self {
        self.checkpoint_frames = checkpoint_frames;
        self
    }

    /// Sets [`Options::compression`].
    #[must_use]
    pub fn compression(mut self, compression: bool) -> Self {
        self.compression = compression;
        self
    }

    /// Sets [`Options::mode`].
    #[must_use]
    pub fn locking(mut self, locking: Locking) -> Self {
        self.locking = locking;
        self
    }

    /// Sets [`Options::mode`].
    pub fn mode(mut self, mode: OpenMode) -> Self {
        self.mode = mode;
        self
    }
}
