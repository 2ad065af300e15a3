//! `obj._obj.Db`: an open database. The public `obj.Db` (python/obj/_db.py) wraps it with
//! path handling, option checks and the context-manager rules.

use crate::error::{to_py, InvalidArgumentError};
use crate::txn::{ReadTransaction, WriteTransaction};
use obj_core::{Db as CoreDb, Durability, Options};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

#[pyclass(frozen, module = "obj._obj", name = "Db")]
pub struct Db {
    db: CoreDb,
}

fn durability(name: &str) -> PyResult<Durability> {
    match name {
        "immediate" => Ok(Durability::Immediate),
        "eventual" => Ok(Durability::Eventual),
        "none" => Ok(Durability::None),
        other => Err(InvalidArgumentError::new_err(format!(
            "durability must be \"immediate\", \"eventual\" or \"none\", got {other:?}"
        ))),
    }
}

#[pymethods]
impl Db {
    /// Opens (or creates) the database at `path`. Waits up to `busy_timeout` seconds for
    /// another process that holds the file.
    #[new]
    #[pyo3(signature = (
        path, *, read_only = false, busy_timeout = 5.0, durability = "immediate".to_string(),
        page_size = 4096, cache_size = 64 << 20, checkpoint_frames = 1000,
    ), text_signature = "(path, *, read_only=False, busy_timeout=5.0, durability='immediate', \
        page_size=4096, cache_size=67108864, checkpoint_frames=1000)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        busy_timeout: f64,
        durability: String,
        page_size: u32,
        cache_size: usize,
        checkpoint_frames: u64,
    ) -> PyResult<Self> {
        let busy_timeout = Duration::try_from_secs_f64(busy_timeout).map_err(|_| {
            InvalidArgumentError::new_err(format!(
                "busy_timeout must be a finite number of seconds >= 0, got {busy_timeout}"
            ))
        })?;
        let opts = Options {
            read_only,
            page_size,
            busy_timeout,
            durability: self::durability(&durability)?,
            cache_size,
            checkpoint_frames,
            ..Options::default()
        };
        // Opening waits for the file lock and replays the WAL: both can take a while.
        let db = py.detach(move || CoreDb::open(path, opts)).map_err(to_py)?;
        Ok(Db { db })
    }

    /// Starts the write transaction, waiting up to busy_timeout for the current writer.
    fn begin_write(&self, py: Python<'_>) -> PyResult<WriteTransaction> {
        let txn = py.detach(|| self.db.begin_write()).map_err(to_py)?;
        Ok(WriteTransaction::new(txn))
    }

    /// A snapshot of the latest commit.
    fn begin_read(&self) -> PyResult<ReadTransaction> {
        let txn = self.db.begin_read().map_err(to_py)?;
        Ok(ReadTransaction::new(txn))
    }

    /// Folds committed WAL frames into the main file: `(frames_copied, wal_reset, deferred)`.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<(u64, bool, bool)> {
        let info = py.detach(|| self.db.checkpoint()).map_err(to_py)?;
        Ok((info.frames_copied, info.wal_reset, info.deferred))
    }

    /// Checkpoints best-effort, then releases the file lock. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.db.close()).map_err(to_py)
    }

    /// Releases the file lock without checkpointing. Idempotent.
    fn close_without_checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.db.close_without_checkpoint())
            .map_err(to_py)
    }

    /// Committed frames currently in the WAL.
    fn wal_frames(&self) -> u64 {
        self.db.wal_frames()
    }

    #[getter]
    fn read_only(&self) -> bool {
        self.db.is_read_only()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.db.is_closed()
    }

    #[getter]
    fn page_size(&self) -> usize {
        self.db.page_size()
    }

    fn __repr__(&self) -> String {
        format!(
            "<obj._obj.Db {:?}{}{}>",
            self.db.path(),
            if self.db.is_read_only() {
                " read-only"
            } else {
                ""
            },
            if self.db.is_closed() { " closed" } else { "" }
        )
    }
}
