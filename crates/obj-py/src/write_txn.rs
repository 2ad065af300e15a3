//! `obj._obj.WriteTransaction`: the single writer of a database.
//!
//! The engine transaction sits in an `Option` behind a lock; `None` means the transaction
//! has ended, and every later use raises `ObjError`. The lock is taken with a non-blocking
//! attempt first; only when another thread holds it does this thread detach from the
//! interpreter to wait, so a thread that holds it while detached (a scan, a commit) can
//! always re-attach. Python arguments are converted before the lock is taken and Python
//! objects are built after it is released, so no user code runs while it is held.
//!
//! Methods dispatch on their first argument: a collection `str` (raw bytes or dict-native
//! documents) or an `@obj.document` class or instance (typed documents). Before its first
//! typed write of a class, the transaction stores the class's schema (or checks it against
//! the file) and creates the indexes the class declares.

use crate::args::{self, Given, NewDoc, Target};
use crate::cursor::QueryCursor;
use crate::datum;
use crate::db::Db;
use crate::error::{to_py, ObjError};
use crate::iter::DocumentIterator;
use crate::reads::{self, IndexInfo, QueryArgs, UniqueLookup};
use crate::shared::{prepare, Checks, Local, Shared};
use crate::source::Source;
use crate::stored::Decode;
use obj_core::codec::Schema;
use obj_core::{Reader, TxnView, WriteTxn};
use parking_lot::{Mutex, MutexGuard};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::sync::Arc;

pub(crate) fn write_ended() -> PyErr {
    ObjError::new_err("this write transaction has ended; start a new one with db.transaction()")
}

/// Values at least this large are written with the interpreter released: copying them
/// into overflow pages takes long enough for other threads to want the GIL meanwhile.
const DETACH_VALUE_BYTES: usize = 64 << 10;

/// The live transaction and the facts it established about document classes.
pub(crate) struct Live {
    txn: WriteTxn,
    local: Local,
}

/// The write transaction: the one writer of the database until it commits or rolls back.
/// Inside `with`, a clean exit commits and an exception rolls back.
#[pyclass(frozen, subclass, module = "obj._obj", name = "WriteTransaction")]
pub struct WriteTransaction {
    shared: Arc<Shared>,
    inner: Mutex<Option<Live>>,
}

impl WriteTransaction {
    pub(crate) fn begin(py: Python<'_>, shared: Arc<Shared>) -> PyResult<Self> {
        let txn = shared.begin_write(py)?;
        shared.set_writer(Some(std::thread::current().id()));
        Ok(WriteTransaction {
            shared,
            inner: Mutex::new(Some(Live {
                txn,
                local: Local::default(),
            })),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn lock(&self, py: Python<'_>) -> MutexGuard<'_, Option<Live>> {
        match self.inner.try_lock() {
            Some(guard) => guard,
            None => py.detach(|| self.inner.lock()),
        }
    }

    /// Runs `f` on the live transaction.
    fn with_live<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut WriteTxn, &mut Local) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut guard = self.lock(py);
        let live = guard.as_mut().ok_or_else(write_ended)?;
        f(&mut live.txn, &mut live.local)
    }

    /// Runs `f` with a reader and the schema checks of this transaction.
    fn with_reader<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut WriteTxn, &mut Checks<'_>) -> PyResult<R>,
    ) -> PyResult<R> {
        let shared = &*self.shared;
        self.with_live(py, |txn, local| {
            let mut checks = Checks {
                shared,
                local: Some(local),
            };
            f(txn, &mut checks)
        })
    }

    /// Prepares the class of a typed target (schema stored, indexes built), if any.
    fn prepare_target(&self, py: Python<'_>, target: &Target<'_>) -> PyResult<()> {
        if let Target::Typed(dt) = target {
            let shared = &*self.shared;
            self.with_live(py, |txn, local| prepare(py, txn, local, shared, dt.get()))?;
        }
        Ok(())
    }

    /// Writes one document: insert (`id` None) or upsert. Returns the id and whether a
    /// document was replaced.
    fn write(&self, py: Python<'_>, doc: &NewDoc<'_>, id: Option<u64>) -> PyResult<(u64, bool)> {
        let shared = &*self.shared;
        let result = self.with_live(py, |txn, local| {
            if let Some(dt) = &doc.doctype {
                prepare(py, txn, local, shared, dt.get())?;
            }
            let bytes = doc.payload.as_slice();
            let (collection, kind, version) = (doc.collection.as_str(), doc.kind, doc.version);
            let mut write = || match id {
                None => txn
                    .insert_doc(collection, kind, version, bytes)
                    .map(|id| (id, false)),
                Some(id) => txn
                    .put_doc(collection, id, kind, version, bytes)
                    .map(|replaced| (id, replaced)),
            };
            if bytes.len() >= DETACH_VALUE_BYTES {
                py.detach(write).map_err(to_py)
            } else {
                write().map_err(to_py)
            }
        });
        result
    }

    /// A frozen view of the transaction as it is now, with the schema checks it has made.
    pub(crate) fn freeze(&self, py: Python<'_>) -> PyResult<(TxnView, Local)> {
        self.with_live(py, |txn, local| {
            Ok((txn.view().map_err(to_py)?, local.clone()))
        })
    }

    pub(crate) fn check_active(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.check_open()?;
        self.lock(py).as_ref().map(|_| ()).ok_or_else(write_ended)
    }

    /// Commits or rolls back; a commit publishes what the transaction learned about
    /// document classes to the database's caches.
    fn end(&self, live: Live, py: Python<'_>, commit: bool) -> PyResult<()> {
        let Live { txn, local } = live;
        self.shared.set_writer(None);
        if commit {
            // The commit appends to the WAL and fsyncs it.
            py.detach(|| txn.commit()).map_err(to_py)?;
            self.shared.mark_prepared(local.prepared);
            self.shared.mark_checked(local.checked);
        } else {
            txn.rollback();
        }
        Ok(())
    }

    fn iterator(slf: &Bound<'_, Self>, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        let target = args::target(target)?;
        let (view, local) = slf.get().freeze(slf.py())?;
        Ok(DocumentIterator::new(
            Source::view(slf, view, local),
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
        let this = slf.get();
        this.prepare_target(py, target)?;
        let (view, local) = this.freeze(py)?;
        let plan = query.plan(py, &view, &this.shared, target)?;
        let source = Source::view(slf, view.clone(), local);
        let collection = target.collection().to_owned();
        QueryCursor::new(&view, source, collection, query.decode, plan)
    }
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        // Dropped while still open: the engine transaction rolls back as it drops.
        if self.inner.get_mut().is_some() {
            self.shared.set_writer(None);
        }
    }
}

#[pymethods]
impl WriteTransaction {
    /// Starts the write transaction of `db`, waiting up to its busy timeout for the current
    /// writer.
    #[new]
    fn new(py: Python<'_>, db: &Db) -> PyResult<Self> {
        WriteTransaction::begin(py, db.shared().clone())
    }

    /// Stores a document under a new id and returns the id: `insert(doc)` for an
    /// `@obj.document` instance, `insert(collection, value)` for bytes or a dict.
    #[pyo3(signature = (document, value = Given::Missing, /))]
    fn insert<'py>(
        &self,
        py: Python<'py>,
        document: &Bound<'py, PyAny>,
        value: Given<'py>,
    ) -> PyResult<u64> {
        let doc = args::insert_args(document, value)?;
        Ok(self.write(py, &doc, None)?.0)
    }

    /// Stores a document under `id`, replacing any document there. True if one was replaced.
    #[pyo3(signature = (target, id, value, /))]
    fn upsert(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        id: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let target = args::write_target(target)?;
        let id = args::doc_id(id)?;
        let doc = args::upsert_args(target, value)?;
        Ok(self.write(py, &doc, Some(id))?.1)
    }

    /// Removes document `id`; True if it existed.
    #[pyo3(signature = (target, id, /))]
    fn delete(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        id: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let target = args::write_target(target)?;
        let id = args::doc_id(id)?;
        self.with_live(py, |txn, _| {
            txn.delete(target.collection(), id).map_err(to_py)
        })
    }

    /// The document `id` as this transaction sees it, or None.
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
        let ready = self.with_reader(py, |txn, checks| {
            reads::get(py, &*txn, checks, target.collection(), &decode, id)
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
        let value = self.with_live(py, |txn, _| txn.get(&name, id).map_err(to_py))?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// Number of documents in the collection (0 if it does not exist).
    #[pyo3(signature = (target, /))]
    fn count(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<u64> {
        let target = args::target(target)?;
        self.with_live(py, |txn, _| txn.count(target.collection()).map_err(to_py))
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
        self.prepare_target(py, &target)?;
        let ready = self.with_reader(py, |txn, checks| {
            lookup.run(py, &*txn, checks, &target, &decode)
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
        self.with_live(py, |txn, _| reads::indexes(&*txn, target.collection()))
    }

    /// Names of all collections, sorted.
    fn collections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names = self.with_live(py, |txn, _| txn.collections().map_err(to_py))?;
        PyList::new(py, names)
    }

    /// Makes every change durable and visible. The transaction ends.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        let live = self.lock(py).take().ok_or_else(write_ended)?;
        self.end(live, py, true)
    }

    /// Discards every change. The transaction ends.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        let live = self.lock(py).take().ok_or_else(write_ended)?;
        self.end(live, py, false)
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
        let Some(live) = self.lock(py).take() else {
            return Ok(());
        };
        self.end(live, py, exc_type.is_none())
    }

    fn __repr__(&self, py: Python<'_>) -> &'static str {
        if self.lock(py).is_some() {
            "<obj.WriteTransaction active>"
        } else {
            "<obj.WriteTransaction ended>"
        }
    }
    /// Stores a schema given in its self-describing form (as `Db._schemas` gives it) for
    /// the collection, or checks it against the one stored for its version; returns the
    /// version. A malformed schema or a different stored shape is `InvalidArgumentError`.
    #[pyo3(signature = (collection, schema, /))]
    fn _register_schema(
        &self,
        py: Python<'_>,
        collection: &Bound<'_, PyAny>,
        schema: &Bound<'_, PyAny>,
    ) -> PyResult<u32> {
        let name = args::write_collection(collection)?;
        let schema = Schema::from_datum(&datum::to_datum(schema, "schema")?).map_err(to_py)?;
        self.with_live(py, |txn, _| {
            txn.register_schema(&name, &schema)
                .map(|s| s.version)
                .map_err(to_py)
        })
    }

    /// Encodes `doc` (a dict of field values) by the schema stored for the collection at
    /// `version` and stores it as a typed document under `id` (a new id when None), as the
    /// class of that schema would have written it; returns the id. A value that does not
    /// fit the schema is `InvalidArgumentError`, and nothing is written.
    #[pyo3(signature = (collection, id, version, doc, /))]
    fn _write_typed(
        &self,
        py: Python<'_>,
        collection: &Bound<'_, PyAny>,
        id: Option<&Bound<'_, PyAny>>,
        version: u32,
        doc: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let name = args::write_collection(collection)?;
        let id = id.map(args::doc_id).transpose()?;
        let doc = datum::to_datum(doc, "document")?;
        self.with_live(py, |txn, _| {
            txn.write_typed(&name, id, version, &doc)
                .map(|(id, _)| id)
                .map_err(to_py)
        })
    }
}
