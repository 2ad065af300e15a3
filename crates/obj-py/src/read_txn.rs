//! `obj._obj.ReadTransaction`: a read-only snapshot of the database as of the latest commit
//! when it began. It never blocks the writer and never sees uncommitted work. The snapshot
//! is released at the end of its `with` block (or by `close()`); any later use raises
//! `ObjError`.
//!
//! Reads dispatch on their first argument like the write transaction's: a collection `str`
//! returns what was written, an `@obj.document` class returns instances.

use crate::args::{self, Target};
use crate::cursor::QueryCursor;
use crate::db::Db;
use crate::error::{to_py, ObjError};
use crate::iter::DocumentIterator;
use crate::reads::{self, IndexInfo, QueryArgs, UniqueLookup};
use crate::shared::{Checks, Shared};
use crate::source::Source;
use crate::stored::Decode;
use obj_core::{ReadTxn, Reader};
use parking_lot::{RwLock, RwLockReadGuard};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::sync::Arc;

fn read_ended() -> PyErr {
    ObjError::new_err("this read transaction has ended; start a new one with db.read_transaction()")
}

#[pyclass(frozen, subclass, module = "obj._obj", name = "ReadTransaction")]
pub struct ReadTransaction {
    shared: Arc<Shared>,
    inner: RwLock<Option<ReadTxn>>,
}

impl ReadTransaction {
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    fn read(&self, py: Python<'_>) -> RwLockReadGuard<'_, Option<ReadTxn>> {
        match self.inner.try_read() {
            Some(guard) => guard,
            None => py.detach(|| self.inner.read()),
        }
    }

    /// A handle on the same snapshot that outlives the lock (for work done detached).
    pub(crate) fn snapshot(&self, py: Python<'_>) -> PyResult<ReadTxn> {
        self.read(py).clone().ok_or_else(read_ended)
    }

    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.check_open()?;
        self.read(py).as_ref().map(|_| ()).ok_or_else(read_ended)
    }

    fn release(&self, py: Python<'_>) -> Option<ReadTxn> {
        match self.inner.try_write() {
            Some(mut guard) => guard.take(),
            None => py.detach(|| self.inner.write().take()),
        }
    }

    /// Runs `f` on the snapshot with this database's schema checks.
    fn with_snapshot<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&ReadTxn, &mut Checks<'_>) -> PyResult<R>,
    ) -> PyResult<R> {
        let guard = self.read(py);
        let snap = guard.as_ref().ok_or_else(read_ended)?;
        let mut checks = Checks {
            shared: &self.shared,
            local: None,
        };
        f(snap, &mut checks)
    }

    fn iterator(slf: &Bound<'_, Self>, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        let target = args::target(target)?;
        slf.get().check_active(slf.py())?;
        Ok(DocumentIterator::new(
            Source::Read(slf.clone().unbind()),
            target.collection().to_owned(),
            Decode::of(&target),
        ))
    }

    fn cursor(
        slf: &Bound<'_, Self>,
        target: &Target<'_>,
        query: QueryArgs,
    ) -> PyResult<QueryCursor> {
        let py = slf.py();
        let source = Source::Read(slf.clone().unbind());
        slf.get().with_snapshot(py, |snap, _| {
            let plan = query.plan(py, snap, &slf.get().shared, target)?;
            let collection = target.collection().to_owned();
            QueryCursor::new(snap, source, collection, query.decode, plan)
        })
    }
}

#[pymethods]
impl ReadTransaction {
    /// Starts a snapshot of the latest commit of `db`.
    #[new]
    fn new(db: &Db) -> PyResult<Self> {
        let shared = db.shared().clone();
        let txn = shared.db.begin_read().map_err(to_py)?;
        Ok(ReadTransaction {
            shared,
            inner: RwLock::new(Some(txn)),
        })
    }

    /// The document `id` as of this snapshot, or None.
    #[pyo3(signature = (target, id, /))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let target = args::target(target)?;
        let id = args::doc_id(id)?;
        let decode = Decode::of(&target);
        let ready = self.with_snapshot(py, |snap, checks| {
            reads::get(py, snap, checks, target.collection(), &decode, id)
        })?;
        ready.map(|r| decode.build(py, r)).transpose()
    }

    /// The stored payload bytes of document `id` (whatever its encoding), or None.
    #[pyo3(signature = (collection, id, /))]
    fn get_raw<'py>(
        &self,
        py: Python<'py>,
        collection: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let name = args::collection(collection)?;
        let id = args::doc_id(id)?;
        let value = self.with_snapshot(py, |snap, _| snap.get(&name, id).map_err(to_py))?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// Number of documents in the collection (0 if it does not exist).
    #[pyo3(signature = (target, /))]
    fn count(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<u64> {
        let target = args::target(target)?;
        self.with_snapshot(py, |snap, _| snap.count(target.collection()).map_err(to_py))
    }

    /// Lazy `(id, document)` pairs in id order.
    #[pyo3(signature = (target, /))]
    fn all(slf: &Bound<'_, Self>, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        Self::iterator(slf, target)
    }

    /// Lazy `(id, document)` pairs in id order (the same as `all`).
    #[pyo3(signature = (target, /))]
    fn iter_all(slf: &Bound<'_, Self>, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        Self::iterator(slf, target)
    }

    /// The document whose unique index `index` holds `value`, or None.
    #[pyo3(signature = (target, index, value, /))]
    fn find_unique<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        index: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let target = args::target(target)?;
        let lookup = UniqueLookup::new(&target, &args::index_name(index)?, value)?;
        let decode = Decode::of(&target);
        let ready = self.with_snapshot(py, |snap, checks| {
            lookup.run(py, snap, checks, &target, &decode)
        })?;
        ready.map(|r| decode.build(py, r)).transpose()
    }

    /// Lazy `(id, document)` pairs whose `index` value lies in `lo..hi` (inclusive, None
    /// = open), in key order.
    #[pyo3(signature = (target, index, /, lo = None, hi = None))]
    fn index_range(
        slf: &Bound<'_, Self>,
        target: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
        lo: Option<&Bound<'_, PyAny>>,
        hi: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<QueryCursor> {
        let py = slf.py();
        let target = args::target(target)?;
        let none = py.None().into_bound(py);
        let index = args::index_name(index)?;
        let range = (index, lo.unwrap_or(&none), hi.unwrap_or(&none)).into_pyobject(py)?;
        let query = QueryArgs::new(&target, None, Some(range.as_any()), None, false, true)?;
        Self::cursor(slf, &target, query)
    }

    /// A query cursor (used by `obj.Query`).
    #[pyo3(signature = (target, node, index_range, sort_field, reverse, decode, /))]
    fn _query_cursor(
        slf: &Bound<'_, Self>,
        target: &Bound<'_, PyAny>,
        node: Option<&Bound<'_, PyAny>>,
        index_range: Option<&Bound<'_, PyAny>>,
        sort_field: Option<String>,
        reverse: bool,
        decode: bool,
    ) -> PyResult<QueryCursor> {
        let target = args::target(target)?;
        let query = QueryArgs::new(&target, node, index_range, sort_field, reverse, decode)?;
        Self::cursor(slf, &target, query)
    }

    /// `(name, kind, key_paths, ready)` of each index of the collection.
    #[pyo3(signature = (target, /))]
    fn indexes(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<Vec<IndexInfo>> {
        let target = args::target(target)?;
        self.with_snapshot(py, |snap, _| reads::indexes(snap, target.collection()))
    }

    /// Names of all collections, sorted.
    fn collections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names = self.with_snapshot(py, |snap, _| snap.collections().map_err(to_py))?;
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
