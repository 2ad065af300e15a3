//! The one error type of the engine. Each variant maps to exactly one Python exception class
//! in `obj-py` (see `crates/obj-py/src/error.rs`).

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O failure (disk full, permission denied, ...). The engine's own
    /// file operations say what they were doing on which file; [`Error::os_error`] and
    /// [`Error::io_path`] give the OS error number and the file.
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
    /// A file that must be new already exists (opening with [`crate::OpenMode::Create`]).
    #[error("already exists: {0}")]
    Exists(String),
    /// A conditional write found its condition false for the stored item; nothing was
    /// written.
    #[error("condition failed: {0}")]
    ConditionFailed(String),
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
    /// The handle was closed, or an earlier failure while writing the log or checkpointing
    /// made it refuse writes (an I/O cause is restated as `Io` instead).
    #[error("database handle unusable: {0}")]
    Closed(String),
    /// A change-log read asked for records that retention already dropped: the oldest
    /// record kept is `oldest`.
    #[error("change log expired: {message}")]
    ChangesExpired {
        /// The `seq` of the oldest record the log still keeps.
        oldest: u64,
        /// What was asked for and what to do.
        message: String,
    },
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

    /// The OS error number (errno) of an I/O failure, when the OS gave one.
    pub fn os_error(&self) -> Option<i32> {
        match self {
            Error::Io(e) => e
                .raw_os_error()
                .or_else(|| IoContext::of(e).and_then(|c| c.errno)),
            _ => None,
        }
    }

    /// The file an I/O failure happened on, when known.
    pub fn io_path(&self) -> Option<&Path> {
        match self {
            Error::Io(e) => IoContext::of(e).and_then(|c| c.path.as_deref()),
            _ => None,
        }
    }
}

/// What the engine was doing, on which file, when an OS call failed: the payload of the
/// `io::Error`s its own file operations return. It keeps the error's kind and OS error number,
/// so they survive being stored and shown again later.
#[derive(Debug)]
pub(crate) struct IoContext {
    message: String,
    errno: Option<i32>,
    path: Option<PathBuf>,
}

impl IoContext {
    fn of(e: &io::Error) -> Option<&IoContext> {
        e.get_ref()?.downcast_ref::<IoContext>()
    }

    /// `e` as "`action` failed: `e`", naming `path`; `hint` (what to do) is appended. An
    /// error that already says where it happened is kept as it is.
    pub(crate) fn wrap(
        e: io::Error,
        action: impl std::fmt::Display,
        path: Option<&Path>,
        hint: Option<&str>,
    ) -> io::Error {
        if IoContext::of(&e).is_some() {
            return e;
        }
        let hint = hint.map(|h| format!("; {h}")).unwrap_or_default();
        let context = IoContext {
            message: format!("{action} failed: {e}{hint}"),
            errno: e.raw_os_error(),
            path: path.map(Path::to_path_buf),
        };
        io::Error::new(e.kind(), context)
    }

    /// An error saying `message` with the kind, OS error number and file of `cause`: the
    /// refusal of a handle whose earlier write failed is the same kind of I/O error.
    pub(crate) fn restate(cause: &io::Error, message: String) -> io::Error {
        let context = IoContext {
            message,
            errno: cause
                .raw_os_error()
                .or_else(|| IoContext::of(cause).and_then(|c| c.errno)),
            path: IoContext::of(cause).and_then(|c| c.path.clone()),
        };
        io::Error::new(cause.kind(), context)
    }
}

impl std::fmt::Display for IoContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IoContext {}
