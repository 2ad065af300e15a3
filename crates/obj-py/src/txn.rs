//! `obj.WriteTransaction` and `obj.ReadTransaction`.
//!
//! Each holds its engine transaction in an `Option` behind a lock; `None` means the
//! transaction has ended, and every later use raises `ObjError`. Locks are taken with a
//! non-blocking attempt first; only when another thread holds one does this thread detach
//! from the interpreter to wait, so a thread that holds a lock while detached (a scan, a
//! commit) can always re-attach. Python objects are built only after the lock is released.

use crate::args;
use crate::error::{to_py, ObjError};
use crate::iter::{DocumentIterator, Source};
use obj_core::{ReadTxn, Reader, Value, WriteTxn};
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::sync::atomic::{AtomicU64, Ordering};

fn ended(kind: &str, hint: &str) -> PyErr {
    ObjError::new_err(format!(
        "this {kind} transaction has ended; start a new one with {hint}"
    ))
}

fn write_ended() -> PyErr {
    ended("write", "db.transaction()")
}

fn read_ended() -> PyErr {
    ended("read", "db.read_transaction()")
}

/// Values at least this large are written with the interpreter released: copying them
/// into overflow pages takes long enough for other threads to want the GIL meanwhile.
const DETACH_VALUE_BYTES: usize = 64 << 10;

/// Runs `f` detached from the interpreter when the value it writes is large. The value's
/// bytes cannot change meanwhile: they belong to an immutable `bytes` object or to a copy.
fn detach_if_large<R: Send>(py: Python<'_>, len: usize, f: impl FnOnce() -> R + Send) -> R {
    if len >= DETACH_VALUE_BYTES {
        py.detach(f)
    } else {
        f()
    }
}

/// A value as a new `bytes` object.
fn to_bytes<'py>(py: Python<'py>, value: Option<Value>) -> Option<Bound<'py, PyBytes>> {
    value.map(|v| PyBytes::new(py, &v))
}

/// The write transaction: the one writer of the database until it commits or rolls back.
/// Inside `with`, a clean exit commits and an exception rolls back.
#[pyclass(frozen, module = "obj._obj", name = "WriteTransaction")]
pub struct WriteTransaction {
    inner: Mutex<Option<WriteTxn>>,
    /// Number of changes made so far: iterators drop documents they fetched before a change.
    changes: AtomicU64,
}

impl WriteTransaction {
    pub(crate) fn new(txn: WriteTxn) -> Self {
        WriteTransaction {
            inner: Mutex::new(Some(txn)),
            changes: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self, py: Python<'_>) -> MutexGuard<'_, Option<WriteTxn>> {
        match self.inner.try_lock() {
            Some(guard) => guard,
            None => py.detach(|| self.inner.lock()),
        }
    }

    /// Runs `f` on the live transaction.
    pub(crate) fn with_txn<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut WriteTxn) -> obj_core::Result<R>,
    ) -> PyResult<R> {
        let mut guard = self.lock(py);
        let txn = guard.as_mut().ok_or_else(write_ended)?;
        f(txn).map_err(to_py)
    }

    /// Runs the change `f` on the live transaction.
    fn change<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut WriteTxn) -> obj_core::Result<R>,
    ) -> PyResult<R> {
        let result = self.with_txn(py, f);
        self.changes.fetch_add(1, Ordering::Relaxed);
        result
    }

    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        self.lock(py).as_ref().map(|_| ()).ok_or_else(write_ended)
    }

    fn finish(&self, py: Python<'_>, commit: bool) -> PyResult<()> {
        let txn = self.lock(py).take().ok_or_else(write_ended)?;
        if commit {
            // The commit appends to the WAL and fsyncs it.
            py.detach(|| txn.commit()).map_err(to_py)
        } else {
            txn.rollback();
            Ok(())
        }
    }
}

#[pymethods]
impl WriteTransaction {
    /// Stores `value` under a new id (one above the highest id the collection ever had).
    fn insert(
        &self,
        py: Python<'_>,
        collection: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let name = args::collection(collection)?;
        args::with_value(value, |bytes| {
            self.change(py, |txn| {
                detach_if_large(py, bytes.len(), || txn.insert(&name, bytes))
            })
        })?
    }

    /// Stores `value` under `id`, replacing any document there. True if one was replaced.
    fn upsert(
        &self,
        py: Python<'_>,
        collection: &Bound<'_, PyAny>,
        id: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let name = args::collection(collection)?;
        let id = args::doc_id(id)?;
        args::with_value(value, |bytes| {
            self.change(py, |txn| {
                detach_if_large(py, bytes.len(), || txn.put(&name, id, bytes))
            })
        })?
    }

    /// Removes document `id`; True if it existed.
    fn delete(
        &self,
        py: Python<'_>,
        collection: &Bound<'_, PyAny>,
        id: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let name = args::collection(collection)?;
        let id = args::doc_id(id)?;
        self.change(py, |txn| txn.delete(&name, id))
    }

    /// The document, including this transaction's own uncommitted writes, or None.
    fn get<'py>(
        &self,
        py: Python<'py>,
        collection: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let name = args::collection(collection)?;
        let id = args::doc_id(id)?;
        let value = self.with_txn(py, |txn| txn.get(&name, id))?;
        Ok(to_bytes(py, value))
    }

    /// Number of documents in the collection (0 if it does not exist).
    fn count(&self, py: Python<'_>, collection: &Bound<'_, PyAny>) -> PyResult<u64> {
        let name = args::collection(collection)?;
        self.with_txn(py, |txn| txn.count(&name))
    }

    /// Lazy iterator of `(id, bytes)` in id order.
    fn iter_all(
        slf: &Bound<'_, Self>,
        collection: &Bound<'_, PyAny>,
    ) -> PyResult<DocumentIterator> {
        let name = args::collection(collection)?;
        slf.get().check_active(slf.py())?;
        Ok(DocumentIterator::new(
            Source::Write(slf.clone().unbind()),
            name.into_owned(),
        ))
    }

    /// Names of all collections, sorted.
    fn collections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names = self.with_txn(py, |txn| txn.collections())?;
        PyList::new(py, names)
    }

    /// Makes every change durable and visible. The transaction ends.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.finish(py, true)
    }

    /// Discards every change. The transaction ends.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.finish(py, false)
    }

    /// False once the transaction has committed or rolled back.
    #[getter]
    fn active(&self, py: Python<'_>) -> bool {
        self.lock(py).is_some()
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.get().check_active(slf.py())?;
        Ok(slf.clone())
    }

    /// Commits on a clean exit, rolls back on an exception (which then propagates).
    /// Nothing to do if the block already committed or rolled back explicitly.
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        _exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let Some(txn) = self.lock(py).take() else {
            return Ok(());
        };
        if exc_type.is_none() {
            py.detach(|| txn.commit()).map_err(to_py)
        } else {
            txn.rollback();
            Ok(())
        }
    }

    fn __repr__(&self, py: Python<'_>) -> &'static str {
        if self.lock(py).is_some() {
            "<obj.WriteTransaction active>"
        } else {
            "<obj.WriteTransaction ended>"
        }
    }
}

/// A read-only snapshot of the database as of the latest commit when it began. It never
/// blocks the writer and never sees uncommitted work. The snapshot is released at the end of
/// its `with` block (or by `close()`).
#[pyclass(frozen, module = "obj._obj", name = "ReadTransaction")]
pub struct ReadTransaction {
    inner: RwLock<Option<ReadTxn>>,
}

impl ReadTransaction {
    pub(crate) fn new(txn: ReadTxn) -> Self {
        ReadTransaction {
            inner: RwLock::new(Some(txn)),
        }
    }

    fn read(&self, py: Python<'_>) -> RwLockReadGuard<'_, Option<ReadTxn>> {
        match self.inner.try_read() {
            Some(guard) => guard,
            None => py.detach(|| self.inner.read()),
        }
    }

    fn with_txn<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&ReadTxn) -> obj_core::Result<R>,
    ) -> PyResult<R> {
        let guard = self.read(py);
        let txn = guard.as_ref().ok_or_else(read_ended)?;
        f(txn).map_err(to_py)
    }

    /// A handle on the same snapshot that outlives the lock (for work done detached).
    pub(crate) fn snapshot(&self, py: Python<'_>) -> PyResult<ReadTxn> {
        self.read(py).clone().ok_or_else(read_ended)
    }

    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        self.read(py).as_ref().map(|_| ()).ok_or_else(read_ended)
    }

    fn release(&self, py: Python<'_>) -> Option<ReadTxn> {
        match self.inner.try_write() {
            Some(mut guard) => guard.take(),
            None => py.detach(|| self.inner.write().take()),
        }
    }
}

#[pymethods]
impl ReadTransaction {
    /// The document as of this snapshot, or None.
    fn get<'py>(
        &self,
        py: Python<'py>,
        collection: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let name = args::collection(collection)?;
        let id = args::doc_id(id)?;
        let value = self.with_txn(py, |txn| txn.get(&name, id))?;
        Ok(to_bytes(py, value))
    }

    /// Number of documents in the collection (0 if it does not exist).
    fn count(&self, py: Python<'_>, collection: &Bound<'_, PyAny>) -> PyResult<u64> {
        let name = args::collection(collection)?;
        self.with_txn(py, |txn| txn.count(&name))
    }

    /// Lazy iterator of `(id, bytes)` in id order.
    fn iter_all(
        slf: &Bound<'_, Self>,
        collection: &Bound<'_, PyAny>,
    ) -> PyResult<DocumentIterator> {
        let name = args::collection(collection)?;
        slf.get().check_active(slf.py())?;
        Ok(DocumentIterator::new(
            Source::Read(slf.clone().unbind()),
            name.into_owned(),
        ))
    }

    /// Names of all collections, sorted.
    fn collections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names = self.with_txn(py, |txn| txn.collections())?;
        PyList::new(py, names)
    }

    /// Releases the snapshot. Idempotent.
    fn close(&self, py: Python<'_>) {
        drop(self.release(py));
    }

    /// False once the snapshot has been released.
    #[getter]
    fn active(&self, py: Python<'_>) -> bool {
        self.read(py).is_some()
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.get().check_active(slf.py())?;
        Ok(slf.clone())
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) {
        drop(self.release(py));
    }

    fn __repr__(&self, py: Python<'_>) -> &'static str {
        if self.read(py).is_some() {
            "<obj.ReadTransaction active>"
        } else {
            "<obj.ReadTransaction ended>"
        }
    }
}
