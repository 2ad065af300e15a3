//! The one error type of the engine. Each variant maps to exactly one Python exception class
//! in `obj-py` (see `crates/obj-py/src/error.rs`).

use std::io;

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O failure (disk full, permission denied, ...).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The file or WAL is damaged: a checksum, a structural rule or a B-tree invariant failed.
    #[error("database is corrupted: {0}")]
    Corruption(String),
    /// Another writer (thread or process) held the lock longer than the busy timeout.
    #[error("database is busy: {0}")]
    Busy(String),
    /// A file, collection, index or namespace that must exist does not.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller passed something the engine cannot accept.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `integrity_check` found problems; each entry describes one.
    #[error("integrity check failed with {} problem(s): {}", .0.len(), .0.join("; "))]
    Integrity(Vec<String>),
    /// The file needs a feature this build does not have.
    #[error("feature unsupported: {0}")]
    FeatureUnsupported(String),
    /// A missing, wrong or mismatched encryption key.
    #[error("encryption error: {0}")]
    Encryption(String),
    /// A write was attempted on a read-only handle.
    #[error("database is read-only: {0}")]
    ReadOnly(String),
    /// The handle was closed, or an earlier I/O failure during commit made it refuse writes.
    #[error("database handle unusable: {0}")]
    Closed(String),
}

impl Error {
    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        Error::Corruption(msg.into())
    }

    pub(crate) fn corrupt_page(page: u64, msg: impl std::fmt::Display) -> Self {
        Error::Corruption(format!("page {page}: {msg}"))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}
