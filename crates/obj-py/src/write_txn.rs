//! `obj._obj.WriteTransaction`: the single writer of a database.
//!
//! Its state and the lock protocol around it are in `state.rs`; its reads are those of
//! every reader (`surface.rs`), its own uncommitted writes included.
//!
//! Methods dispatch on their first argument: a collection `str` (raw bytes or dict-native
//! documents) or an `@obj.document` class or instance (typed documents). Before its first
//! typed write of a class, the transaction stores the class's schema (or checks it against
//! the file) and creates the indexes the class declares.

use crate::args::{self, Given, NewDoc};
use crate::datum;
use crate::db::Db;
use crate::error::to_py;
use crate::keyed;
use crate::shared::prepare;
use crate::source::Origin;
use crate::state::{write_ended, WriteState};
use crate::surface::Reads;
use obj_core::codec::Schema;
use pyo3::prelude::*;
use std::sync::Arc;

/// Values at least this large are written with the interpreter released: copying them
/// into overflow pages takes long enough for other threads to want the GIL meanwhile.
const DETACH_VALUE_BYTES: usize = 64 << 10;

/// The write transaction: the one writer of the database until it commits or rolls back.
/// Inside `with`, a clean exit commits and an exception rolls back.
#[pyclass(frozen, extends = Reads, subclass, module = "obj._obj", name = "WriteTransaction")]
pub struct WriteTransaction {
    state: Arc<WriteState>,
}

impl WriteTransaction {
    /// Writes one document: insert (`id` None) or upsert. Returns the id and whether a
    /// document was replaced.
    fn write(&self, py: Python<'_>, doc: &NewDoc<'_>, id: Option<u64>) -> PyResult<(u64, bool)> {
        let shared = &*self.state.shared;
        self.state.with(py, |live| {
            let (txn, local) = (&mut live.txn, &mut live.local);
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
        })
    }
}

#[pymethods]
impl WriteTransaction {
    /// Starts the write transaction of `db`, waiting up to its busy timeout for the current
    /// writer.
    #[new]
    fn new(py: Python<'_>, db: &Db) -> PyResult<PyClassInitializer<Self>> {
        let state = Arc::new(WriteState::begin(py, db.shared().clone())?);
        Ok(
            PyClassInitializer::from(Reads::new(Origin::Write(state.clone())))
                .add_subclass(WriteTransaction { state }),
        )
    }

    /// Sets who makes this transaction's commit and why, as its change record will say
    /// (`meta` a dict); nothing is recorded when the database keeps no change log.
    #[pyo3(signature = (action = None, user = None, meta = None))]
    fn _set_context(
        &self,
        py: Python<'_>,
        action: Option<String>,
        user: Option<String>,
        meta: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let ctx = crate::context::context(action, user, meta)?;
        self.state.with(py, |live| {
            live.txn.set_context(ctx);
            Ok(())
        })
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

    /// Stores each document under a new id, in order, and returns the ids:
    /// `insert_many(docs)` for `@obj.document` instances, `insert_many(collection, values)`
    /// for bytes or dicts. One call for the whole batch.
    #[pyo3(signature = (documents, values = None, /))]
    fn insert_many<'py>(
        &self,
        py: Python<'py>,
        documents: &Bound<'py, PyAny>,
        values: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<u64>> {
        let shared = &*self.state.shared;
        self.state.with(py, |live| {
            let (txn, local) = (&mut live.txn, &mut live.local);
            crate::shared::insert_each(py, txn, local, shared, documents, values)
        })
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
        self.state.with(py, |live| {
            live.txn.delete(target.collection(), id).map_err(to_py)
        })
    }

    /// Makes every change durable and visible. The transaction ends.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        if !self.state.end(py, true)? {
            return Err(write_ended());
        }
        Ok(())
    }

    /// Discards every change. The transaction ends.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        if !self.state.end(py, false)? {
            return Err(write_ended());
        }
        Ok(())
    }

    /// False once the transaction has committed or rolled back.
    #[getter]
    fn active(&self, py: Python<'_>) -> bool {
        self.state.is_active(py)
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.get().state.check_active(slf.py())?;
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
        self.state.end(py, exc_type.is_none()).map(|_| ())
    }

    fn __repr__(&self, py: Python<'_>) -> &'static str {
        if self.state.is_active(py) {
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
        self.state.with(py, |live| {
            live.txn
                .register_schema(&name, &schema)
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
        self.state.with(py, |live| {
            live.txn
                .write_typed(&name, id, version, &doc)
                .map(|(id, _)| id)
                .map_err(to_py)
        })
    }

    /// As `_write_typed`, under `key` (bytes) of a keyed collection (created keyed if
    /// missing), replacing any document there.
    #[pyo3(signature = (collection, key, version, doc, /))]
    fn _write_typed_key(
        &self,
        py: Python<'_>,
        collection: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        version: u32,
        doc: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let name = args::write_collection(collection)?;
        let key = keyed::key_bytes(key)?;
        let doc = datum::to_datum(doc, "document")?;
        self.state.with(py, |live| {
            live.txn
                .write_typed_key(&name, &key, version, &doc)
                .map(drop)
                .map_err(to_py)
        })
    }
}
