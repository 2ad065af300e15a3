//! `obj._obj.Reads`: the read surface `Db`, `ReadTransaction` and `WriteTransaction` all
//! have, written once. Each of the three classes extends it with the [`Origin`] it reads
//! through; every method resolves its target first (an attached namespace goes to the
//! attached database, see `source.rs`), then reads.
//!
//! Reads dispatch on their first argument: a collection `str` returns what was written, an
//! `@obj.document` class returns instances. Python arguments are converted before a
//! transaction's lock is taken, the engine work runs under it, and Python objects are
//! built after it is released.

use crate::args::{self, Target};
use crate::at::At;
use crate::cursor::QueryCursor;
use crate::error::to_py;
use crate::iter::DocumentIterator;
use crate::keyed::{self, KeyedHandle};
use crate::reads::{self, IndexInfo, QueryArgs, UniqueLookup};
use crate::source::{on_snap, Origin, Place};
use crate::stored::Decode;
use obj_core::Reader;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

#[pyclass(frozen, subclass, module = "obj._obj", name = "Reads")]
pub struct Reads {
    origin: Origin,
}

impl Reads {
    pub(crate) fn new(origin: Origin) -> Self {
        Reads { origin }
    }

    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    fn iterator(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        let (place, target) = self.origin.resolve(args::read_target(target)?)?;
        let source = self.origin.source(py, &place)?;
        Ok(DocumentIterator::new(
            source,
            target.collection().to_owned(),
            Decode::of(&target),
        ))
    }

    fn cursor(
        &self,
        py: Python<'_>,
        place: &Place,
        target: &Target<'_>,
        query: QueryArgs,
    ) -> PyResult<QueryCursor> {
        self.origin.prepare(py, place, target)?;
        let source = self.origin.source(py, place)?;
        QueryCursor::open(py, source, target, query)
    }
}

#[pymethods]
impl Reads {
    /// The document `id`, or None.
    #[pyo3(signature = (target, id, /))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (place, target) = self.origin.resolve(args::read_target(target)?)?;
        let id = args::doc_id(id)?;
        let decode = Decode::of(&target);
        let collection = target.collection();
        let ready = self.origin.with(py, &place, |snap, checks| {
            on_snap!(snap, |r| reads::get(
                py,
                r,
                checks,
                collection,
                &decode,
                At::Id(id)
            ))
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
        let name = Target::Name(args::read_collection(collection)?.into_owned());
        let (place, target) = self.origin.resolve(name)?;
        let id = args::doc_id(id)?;
        let collection = target.collection();
        let value = self.origin.with(py, &place, |snap, _| {
            on_snap!(snap, |r| r.get(collection, id).map_err(to_py))
        })?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// Number of documents in the collection (0 if it does not exist).
    #[pyo3(signature = (target, /))]
    fn count(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<u64> {
        let (place, target) = self.origin.resolve(args::read_target(target)?)?;
        let collection = target.collection();
        self.origin.with(py, &place, |snap, _| {
            on_snap!(snap, |r| r.count(collection).map_err(to_py))
        })
    }

    /// Lazy `(id, document)` pairs in id order.
    #[pyo3(signature = (target, /))]
    fn all(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        self.iterator(py, target)
    }

    /// Lazy `(id, document)` pairs in id order (the same as `all`).
    #[pyo3(signature = (target, /))]
    fn iter_all(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        self.iterator(py, target)
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
        let (place, target) = self.origin.resolve(args::read_target(target)?)?;
        let lookup = UniqueLookup::new(&target, &args::index_name(index)?, value)?;
        let decode = Decode::of(&target);
        self.origin.prepare(py, &place, &target)?;
        let ready = self.origin.with(py, &place, |snap, checks| {
            on_snap!(snap, |r| lookup.run(py, r, checks, &target, &decode))
        })?;
        ready.map(|r| decode.build(py, r)).transpose()
    }

    /// Lazy `(id, document)` pairs whose `index` value lies in `lo..hi` (inclusive, None
    /// = open), in key order.
    #[pyo3(signature = (target, index, /, lo = None, hi = None))]
    fn index_range(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
        lo: Option<&Bound<'_, PyAny>>,
        hi: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<QueryCursor> {
        let (place, target) = self.origin.resolve(args::read_target(target)?)?;
        let none = py.None().into_bound(py);
        let index = args::index_name(index)?;
        let range = (index, lo.unwrap_or(&none), hi.unwrap_or(&none)).into_pyobject(py)?;
        let query = QueryArgs::new(&target, None, Some(range.as_any()), None, false, true)?;
        self.cursor(py, &place, &target, query)
    }

    /// A query cursor (used by `obj.Query`).
    #[pyo3(signature = (target, node, index_range, sort_field, reverse, decode, /))]
    #[allow(clippy::too_many_arguments)]
    fn _query_cursor(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        node: Option<&Bound<'_, PyAny>>,
        index_range: Option<&Bound<'_, PyAny>>,
        sort_field: Option<String>,
        reverse: bool,
        decode: bool,
    ) -> PyResult<QueryCursor> {
        let (place, target) = self.origin.resolve(args::read_target(target)?)?;
        let query = QueryArgs::new(&target, node, index_range, sort_field, reverse, decode)?;
        self.cursor(py, &place, &target, query)
    }

    /// `(name, kind, key_paths, ready)` of each index of the collection (for a class, after
    /// building the indexes it declares where this reader can).
    #[pyo3(signature = (target, /))]
    fn indexes(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<Vec<IndexInfo>> {
        let (place, target) = self.origin.resolve(args::read_target(target)?)?;
        self.origin.prepare(py, &place, &target)?;
        let collection = target.collection();
        self.origin.with(py, &place, |snap, _| {
            on_snap!(snap, |r| reads::indexes(r, collection))
        })
    }

    /// What the collection is keyed by: "keyed", "id", or None when it does not exist.
    #[pyo3(signature = (collection, /))]
    fn _key_kind(
        &self,
        py: Python<'_>,
        collection: &Bound<'_, PyAny>,
    ) -> PyResult<Option<&'static str>> {
        let name = Target::Name(args::read_collection(collection)?.into_owned());
        let (place, target) = self.origin.resolve(name)?;
        let collection = target.collection();
        self.origin.with(py, &place, |snap, _| {
            on_snap!(snap, |r| keyed::kind_name(r, collection))
        })
    }

    /// A store's handle on the keyed collection of `target` (see `keyed.rs`).
    #[pyo3(signature = (target, raw, key_type_error, key_errors, /))]
    fn _key_handle(
        &self,
        target: &Bound<'_, PyAny>,
        raw: bool,
        key_type_error: Bound<'_, pyo3::types::PyType>,
        key_errors: String,
    ) -> PyResult<KeyedHandle> {
        KeyedHandle::open(
            &self.origin,
            args::read_target(target)?,
            raw,
            key_type_error.unbind(),
            key_errors,
        )
    }

    /// A blob store's handle on its collections (see `blob.rs`).
    #[pyo3(signature = (store, /))]
    fn _blob_handle(&self, store: &Bound<'_, PyAny>) -> PyResult<crate::blob::BlobHandle> {
        let name = args::read_collection(store)?.into_owned();
        if name.contains('.') || name.contains('#') {
            return Err(crate::error::InvalidArgumentError::new_err(format!(
                "blob store name {name:?} may not contain '.' or '#'"
            )));
        }
        Ok(crate::blob::BlobHandle::new(self.origin.clone(), name))
    }

    /// A column's handle (see `column.rs`).
    #[pyo3(signature = (name, /))]
    fn _column_handle(&self, name: &Bound<'_, PyAny>) -> PyResult<crate::column::ColumnHandle> {
        let name = args::read_collection(name)?.into_owned();
        Ok(crate::column::ColumnHandle::new(self.origin.clone(), name))
    }

    /// Names of all collections of this database (not of attached ones), sorted.
    fn collections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names = self.origin.with(py, &Place::Here, |snap, _| {
            on_snap!(snap, |r| r.collections().map_err(to_py))
        })?;
        PyList::new(py, names)
    }
}
