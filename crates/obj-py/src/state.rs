//! The state of a read and of a write transaction, apart from their Python classes, so that
//! the reads, iterators and cursors over them need nothing from the classes.
//!
//! The engine transaction sits in an `Option` behind a lock; `None` means the transaction
//! has ended, and every later use raises `ObjError`. The lock is taken with a non-blocking
//! attempt first; only when another thread holds it does this thread detach from the
//! interpreter to wait, so a thread that holds it while detached (a scan, a commit) can
//! always re-attach. Python arguments are converted before the lock is taken and Python
//! objects are built after it is released, so no user code runs while it is held.
//!
//! A transaction also pins a snapshot of each attached database it reads, at its first
//! read there, until it ends: its reads of one attached file agree with each other. The
//! files commit independently, so a transaction is not one snapshot across them.

use crate::error::{to_py, ObjError};
use crate::shared::{Local, Shared};
use obj_core::{ReadTxn, TxnView, WriteTxn};
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use pyo3::prelude::*;
use std::sync::Arc;

pub(crate) fn read_ended() -> PyErr {
    ObjError::new_err("this read transaction has ended; start a new one with db.read_transaction()")
}

pub(crate) fn write_ended() -> PyErr {
    ObjError::new_err("this write transaction has ended; start a new one with db.transaction()")
}

/// The snapshots of attached databases a transaction has read.
#[derive(Default)]
struct Pins(Mutex<Vec<(Arc<Shared>, ReadTxn)>>);

impl Pins {
    /// The snapshot of `attached` this transaction reads: the one taken at its first read
    /// there, or one taken now.
    fn of(&self, attached: &Arc<Shared>) -> PyResult<ReadTxn> {
        let mut pins = self.0.lock();
        if let Some((_, snap)) = pins.iter().find(|(s, _)| Arc::ptr_eq(s, attached)) {
            return Ok(snap.clone());
        }
        let snap = attached.db.begin_read().map_err(to_py)?;
        pins.push((attached.clone(), snap.clone()));
        Ok(snap)
    }

    fn release(&self) {
        self.0.lock().clear();
    }
}

/// A read-only snapshot of the latest commit when it began.
pub(crate) struct ReadState {
    pub(crate) shared: Arc<Shared>,
    snap: RwLock<Option<ReadTxn>>,
    pins: Pins,
}

impl ReadState {
    pub(crate) fn begin(shared: Arc<Shared>) -> PyResult<Self> {
        let snap = shared.db.begin_read().map_err(to_py)?;
        Ok(ReadState {
            shared,
            snap: RwLock::new(Some(snap)),
            pins: Pins::default(),
        })
    }

    fn read(&self, py: Python<'_>) -> RwLockReadGuard<'_, Option<ReadTxn>> {
        match self.snap.try_read() {
            Some(guard) => guard,
            None => py.detach(|| self.snap.read()),
        }
    }

    /// Runs `f` on the snapshot.
    pub(crate) fn with<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&ReadTxn) -> PyResult<R>,
    ) -> PyResult<R> {
        let guard = self.read(py);
        f(guard.as_ref().ok_or_else(read_ended)?)
    }

    /// The snapshot of the attached database `attached` this transaction reads.
    pub(crate) fn pin(&self, py: Python<'_>, attached: &Arc<Shared>) -> PyResult<ReadTxn> {
        // Held while pinning, so a concurrent `release` cannot miss the new pin.
        let guard = self.read(py);
        guard.as_ref().ok_or_else(read_ended)?;
        self.pins.of(attached)
    }

    pub(crate) fn is_active(&self, py: Python<'_>) -> bool {
        self.read(py).is_some()
    }

    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.check_open()?;
        self.read(py).as_ref().map(|_| ()).ok_or_else(read_ended)
    }

    /// Releases the snapshots. Idempotent.
    pub(crate) fn release(&self, py: Python<'_>) {
        let snap = match self.snap.try_write() {
            Some(mut guard) => guard.take(),
            None => py.detach(|| self.snap.write().take()),
        };
        self.pins.release();
        drop(snap);
    }
}

/// The live engine transaction and the facts it established about document classes.
pub(crate) struct Live {
    pub(crate) txn: WriteTxn,
    pub(crate) local: Local,
}

/// The write transaction: the one writer of the database until it commits or rolls back.
pub(crate) struct WriteState {
    pub(crate) shared: Arc<Shared>,
    live: Mutex<Option<Live>>,
    pins: Pins,
}

impl WriteState {
    /// Starts the write transaction, waiting up to the busy timeout for the current writer.
    pub(crate) fn begin(py: Python<'_>, shared: Arc<Shared>) -> PyResult<Self> {
        let txn = shared.begin_write(py)?;
        shared.set_writer(Some(std::thread::current().id()));
        Ok(WriteState {
            shared,
            live: Mutex::new(Some(Live {
                txn,
                local: Local::default(),
            })),
            pins: Pins::default(),
        })
    }

    pub(crate) fn lock(&self, py: Python<'_>) -> MutexGuard<'_, Option<Live>> {
        match self.live.try_lock() {
            Some(guard) => guard,
            None => py.detach(|| self.live.lock()),
        }
    }

    /// Runs `f` on the live transaction.
    pub(crate) fn with<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Live) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut guard = self.lock(py);
        f(guard.as_mut().ok_or_else(write_ended)?)
    }

    /// A frozen view of the transaction as it is now, with the schema checks it has made.
    pub(crate) fn freeze(&self, py: Python<'_>) -> PyResult<(TxnView, Local)> {
        self.with(py, |live| {
            Ok((live.txn.view().map_err(to_py)?, live.local.clone()))
        })
    }

    /// The snapshot of the attached database `attached` this transaction reads.
    pub(crate) fn pin(&self, py: Python<'_>, attached: &Arc<Shared>) -> PyResult<ReadTxn> {
        // Held while pinning, so a concurrent end cannot miss the new pin.
        let guard = self.lock(py);
        guard.as_ref().ok_or_else(write_ended)?;
        self.pins.of(attached)
    }

    pub(crate) fn is_active(&self, py: Python<'_>) -> bool {
        self.lock(py).is_some()
    }

    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.check_open()?;
        self.lock(py).as_ref().map(|_| ()).ok_or_else(write_ended)
    }

    /// Commits or rolls back, if still live (`Ok(false)` when it had ended already); a
    /// commit publishes what the transaction learned about document classes to the
    /// database's caches.
    pub(crate) fn end(&self, py: Python<'_>, commit: bool) -> PyResult<bool> {
        let Some(Live { txn, local }) = self.lock(py).take() else {
            return Ok(false);
        };
        self.pins.release();
        self.shared.set_writer(None);
        if commit {
            // The commit appends to the WAL and fsyncs it.
            py.detach(|| txn.commit()).map_err(to_py)?;
            self.shared.mark_prepared(local.prepared);
            self.shared.mark_checked(local.checked);
        } else {
            txn.rollback();
        }
        Ok(true)
    }
}

impl Drop for WriteState {
    fn drop(&mut self) {
        // Dropped while still open: the engine transaction rolls back as it drops.
        if self.live.get_mut().is_some() {
            self.shared.set_writer(None);
        }
    }
}
