//! Storage backends: the byte stores under the pager and the WAL.
//!
//! The engine talks to files only through [`StorageBackend`], so tests and fuzz targets can
//! swap in a backend that fails or "loses power" (see `fault.rs` behind the
//! `fault-injection` feature).

use crate::error::IoContext;
use parking_lot::RwLock;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A random-access byte store with an explicit durability barrier.
#[expect(
    clippy::len_without_is_empty,
    reason = "a store's length is a byte size, not a count"
)]
pub trait StorageBackend: Send + Sync + std::fmt::Debug {
    /// Fills `buf` from `offset`; reading past the end is an `UnexpectedEof` error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, growing the store if needed.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// The current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every earlier write durable.
    fn sync(&self) -> io::Result<()>;
}

/// A file a read-only handle reads once another process has created it (the WAL of a
/// database whose writer has not opened it yet): until then it is empty.
#[derive(Debug)]
pub struct LaterFile {
    path: PathBuf,
    file: std::sync::OnceLock<File>,
}

impl LaterFile {
    /// The file at `path`, opened (read-only) when first needed.
    pub fn new(path: &Path) -> Self {
        LaterFile {
            path: path.to_path_buf(),
            file: std::sync::OnceLock::new(),
        }
    }

    /// The file, if it exists by now.
    fn file(&self) -> io::Result<Option<&File>> {
        if let Some(f) = self.file.get() {
            return Ok(Some(f));
        }
        match File::open(&self.path) {
            Ok(f) => Ok(Some(self.file.get_or_init(|| f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl StorageBackend for LaterFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self.file()? {
            Some(f) => f.read_exact_at(buf, offset),
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }

    fn write_at(&self, _offset: u64, _data: &[u8]) -> io::Result<()> {
        Err(io::Error::other("a read-only handle writes no log"))
    }

    fn len(&self) -> io::Result<u64> {
        Ok(match self.file()? {
            Some(f) => f.metadata()?.len(),
            None => 0,
        })
    }

    fn set_len(&self, _len: u64) -> io::Result<()> {
        Err(io::Error::other("a read-only handle writes no log"))
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A plain file.
#[derive(Debug)]
pub struct FileBackend {
    file: File,
}

impl FileBackend {
    /// A backend over an open file.
    pub fn new(file: File) -> Self {
        FileBackend { file }
    }

    /// The file underneath.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl StorageBackend for FileBackend {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Names the store behind a backend in its errors: a failure reads "writing the WAL
/// /data/app.obj-wal failed: No space left on device (os error 28)", and keeps the error's
/// kind and OS error number. The database wraps both of its stores in one.
#[derive(Debug)]
pub(crate) struct Named {
    inner: Box<dyn StorageBackend>,
    /// "the WAL /data/app.obj-wal" (or just "the WAL" for stores that are not files).
    name: String,
    path: Option<PathBuf>,
}

impl Named {
    pub(crate) fn new(inner: Box<dyn StorageBackend>, what: &str, path: Option<&Path>) -> Self {
        let name = match path {
            Some(p) => format!("{what} {}", p.display()),
            None => what.to_string(),
        };
        Named {
            inner,
            name,
            path: path.map(Path::to_path_buf),
        }
    }

    fn err(&self, op: &str, e: io::Error) -> io::Error {
        IoContext::wrap(
            e,
            format_args!("{op} {}", self.name),
            self.path.as_deref(),
            None,
        )
    }
}

impl StorageBackend for Named {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner
            .read_at(offset, buf)
            .map_err(|e| self.err("reading", e))
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner
            .write_at(offset, data)
            .map_err(|e| self.err("writing", e))
    }

    fn len(&self) -> io::Result<u64> {
        self.inner
            .len()
            .map_err(|e| self.err("reading the size of", e))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len).map_err(|e| self.err("resizing", e))
    }

    fn sync(&self) -> io::Result<()> {
        self.inner.sync().map_err(|e| self.err("syncing", e))
    }
}

/// A growable in-memory byte store.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    data: RwLock<Vec<u8>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `bytes` (a copy of a file, for tests and fault injection).
    pub fn with_contents(bytes: Vec<u8>) -> Self {
        MemoryBackend {
            data: RwLock::new(bytes),
        }
    }

    /// A copy of everything stored.
    pub fn contents(&self) -> Vec<u8> {
        self.data.read().clone()
    }
}

impl StorageBackend for MemoryBackend {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = self.data.read();
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        if end > data.len() {
            return Err(eof());
        }
        buf.copy_from_slice(&data[start..end]);
        Ok(())
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut data = self.data.write();
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start + bytes.len();
        if end > data.len() {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.data.read().len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| eof())?;
        self.data.write().resize(len, 0);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the store",
    )
}
