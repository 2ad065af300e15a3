//! The change log in Python: `obj.Change` (one commit's record) and `obj.DocumentChange`
//! (one changed document of it), the metadata a write transaction records, and the reads,
//! replays and reverts `obj.Db` builds its change-log methods on (python/obj/_changes.py).
//!
//! Records are read in batches on a snapshot; the Python objects are thin handles on the
//! engine's decoded record, and an image becomes a Python value only when asked for (a
//! follower that looks at keys pays for no document). Typed images are decoded by the
//! schema the file stored for them, found while the snapshot was held.

use crate::datum;
use crate::error::{to_py, InvalidArgumentError};
use obj_core::changes::{ChangeReads, Entry, Images, LogSettings, Record, Retention};
use obj_core::codec::{dynamic, Schema};
use obj_core::{DocKind, ReadTxn, Reader, Value};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use pyo3::IntoPyObjectExt;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The schemas the typed images of a batch need, by (collection, version).
type Schemas = HashMap<(Arc<str>, u32), Arc<Schema>>;

/// One commit's record: `seq`, `time` (UTC), `action`, `user`, `meta` and `changes`, the
/// documents it changed in the order the transaction changed them.
#[pyclass(frozen, module = "obj", name = "Change")]
pub struct Change {
    record: Arc<Record>,
    schemas: Arc<Schemas>,
    /// Indexes of the record's document entries (schema and index entries are kept for
    /// replaying, not shown).
    data: Vec<usize>,
    changes: OnceLock<Py<PyList>>,
}

impl Change {
    fn new(record: Record, schemas: Arc<Schemas>) -> Self {
        let data = (record.entries.iter().enumerate())
            .filter(|(_, e)| e.op.is_data())
            .map(|(i, _)| i)
            .collect();
        Change {
            record: Arc::new(record),
            schemas,
            data,
            changes: OnceLock::new(),
        }
    }

    pub(crate) fn record(&self) -> &Record {
        &self.record
    }

    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        if let Some(l) = self.changes.get() {
            return Ok(l.bind(py).clone());
        }
        let items = self
            .data
            .iter()
            .map(|&index| DocumentChange {
                record: self.record.clone(),
                schemas: self.schemas.clone(),
                index,
            })
            .map(|d| Bound::new(py, d))
            .collect::<PyResult<Vec<_>>>()?;
        let list = PyList::new(py, items)?;
        let _ = self.changes.set(list.clone().unbind());
        Ok(self.changes.get().map_or(list, |l| l.bind(py).clone()))
    }
}

#[pymethods]
impl Change {
    /// The record's number: gap-free and increasing, from 1.
    #[getter]
    fn seq(&self) -> u64 {
        self.record.seq
    }

    /// The commit time, an aware `datetime` in UTC.
    #[getter]
    fn time<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        utc(py, self.record.time_micros)
    }

    /// What the commit did, as `transaction(action=...)` or `db.context(action=...)` said.
    #[getter]
    fn action(&self) -> Option<&str> {
        self.record.context.action.as_deref()
    }

    /// Who made the commit.
    #[getter]
    fn user(&self) -> Option<&str> {
        self.record.context.user.as_deref()
    }

    /// The commit's extra metadata (a dict), or None.
    #[getter]
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.record.context.meta {
            Some(m) => crate::codec::value_to_py(py, m),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The documents the commit changed, as `DocumentChange`s.
    #[getter]
    fn changes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.list(py)
    }

    /// The record as bytes, for another process or machine: `Change.from_bytes` reads it
    /// back and `Db.apply_changes` accepts either.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.record.to_bytes())
    }

    /// A record from `Change.to_bytes()`. Its typed images decode by the schemas the
    /// record itself carries, if any; apply it to a database to read them there.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Change> {
        let record = Record::from_bytes(data).map_err(to_py)?;
        let mut schemas = Schemas::new();
        for e in &record.entries {
            if let obj_core::changes::Op::Schema(s) = &e.op {
                schemas.insert((e.collection.clone(), s.version), Arc::new(s.clone()));
            }
        }
        Ok(Change::new(record, Arc::new(schemas)))
    }

    fn __len__(&self) -> usize {
        self.data.len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.list(py)?.as_any().try_iter()?.into_any())
    }

    fn __repr__(&self) -> String {
        let mut s = format!("Change(seq={}", self.record.seq);
        if let Some(a) = &self.record.context.action {
            s.push_str(&format!(", action={a:?}"));
        }
        if let Some(u) = &self.record.context.user {
            s.push_str(&format!(", user={u:?}"));
        }
        s.push_str(&format!(", changes={})", self.data.len()));
        s
    }
}

/// One changed document: `collection`, `key` (the id of an id collection, the key bytes
/// of a keyed one), `op` ("insert", "update" or "delete"), `old` and `new` (the document
/// before and after, None where the log keeps no such image). Also a 5-tuple in that
/// order: `collection, key, op, old, new = change`.
#[pyclass(frozen, module = "obj", name = "DocumentChange")]
pub struct DocumentChange {
    record: Arc<Record>,
    schemas: Arc<Schemas>,
    index: usize,
}

impl DocumentChange {
    fn entry(&self) -> &Entry {
        &self.record.entries[self.index]
    }

    fn image<'py>(&self, py: Python<'py>, bytes: Option<&[u8]>) -> PyResult<Bound<'py, PyAny>> {
        let Some(bytes) = bytes else {
            return Ok(py.None().into_bound(py));
        };
        let e = self.entry();
        let value = image_value(bytes)?;
        let h = value.header();
        match h.kind {
            DocKind::Raw => Ok(PyBytes::new(py, &value).into_any()),
            DocKind::Value => crate::codec::value_to_py(py, &value),
            DocKind::Typed => {
                let schema = self
                    .schemas
                    .get(&(e.collection.clone(), h.type_version))
                    .ok_or_else(|| {
                        InvalidArgumentError::new_err(format!(
                            "no schema of {:?} version {} came with this change; read it from \
                             the database that stores the schema",
                            &*e.collection, h.type_version
                        ))
                    })?;
                let d = dynamic::decode(&schema.root, &value).map_err(to_py)?;
                datum::to_py(py, &d)
            }
        }
    }

    fn key_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let e = self.entry();
        match e.id() {
            Some(id) => id.into_bound_py_any(py),
            None => Ok(PyBytes::new(py, &e.key).into_any()),
        }
    }

    fn parts<'py>(&self, py: Python<'py>) -> PyResult<[Bound<'py, PyAny>; 5]> {
        let e = self.entry();
        Ok([
            e.collection.as_ref().into_bound_py_any(py)?,
            self.key_py(py)?,
            e.op.name().into_bound_py_any(py)?,
            self.image(py, e.old.as_deref())?,
            self.image(py, e.new.as_deref())?,
        ])
    }
}

fn image_value(bytes: &[u8]) -> PyResult<Value> {
    obj_core::changes::image(bytes).map_err(to_py)
}

#[pymethods]
impl DocumentChange {
    /// The collection the document is in.
    #[getter]
    fn collection(&self) -> &str {
        &self.entry().collection
    }

    /// The document's id (an id collection) or key bytes (a keyed collection: a Store's
    /// str keys are their UTF-8 bytes; `table_key` decodes a Table's).
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.key_py(py)
    }

    /// The document's id, or None in a keyed collection.
    #[getter]
    fn id(&self) -> Option<u64> {
        self.entry().id()
    }

    /// The key of a Table item as `(partition_key, sort_key)` (sort_key None for a table
    /// without one); InvalidArgumentError for a key that is not a table key.
    #[getter]
    fn table_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        crate::table::key_to_py(py, &self.entry().key)
    }

    /// "insert", "update" or "delete".
    #[getter]
    fn op(&self) -> &'static str {
        self.entry().op.name()
    }

    /// The document before the change, as a read by collection name returns it (None
    /// for an insert, or when the log keeps no old images).
    #[getter]
    fn old<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.image(py, self.entry().old.as_deref())
    }

    /// The document after the change (None for a delete, or when the log keeps no new
    /// images).
    #[getter(new)]
    fn new_image<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.image(py, self.entry().new.as_deref())
    }

    /// `(kind, type_version, payload)` of the old (`new` False) or new image, as stored
    /// (payload decompressed), or None.
    fn _image<'py>(
        &self,
        py: Python<'py>,
        new: bool,
    ) -> PyResult<Option<(&'static str, u32, Bound<'py, PyBytes>)>> {
        let e = self.entry();
        let bytes = if new {
            e.new.as_deref()
        } else {
            e.old.as_deref()
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let value = image_value(bytes)?;
        let h = value.header();
        Ok(Some((
            h.kind.name(),
            h.type_version,
            PyBytes::new(py, &value),
        )))
    }

    fn __len__(&self) -> usize {
        5
    }

    fn __getitem__<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let i = if i < 0 { i + 5 } else { i };
        let mut parts = self.parts(py)?;
        match usize::try_from(i) {
            Ok(i) if i < 5 => Ok(std::mem::replace(&mut parts[i], py.None().into_bound(py))),
            _ => Err(PyIndexError::new_err(
                "DocumentChange index out of range (0 to 4)",
            )),
        }
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyTuple::new(py, self.parts(py)?)?
            .as_any()
            .try_iter()?
            .into_any())
    }

    fn __repr__(&self) -> String {
        let e = self.entry();
        let key = match e.id() {
            Some(id) => id.to_string(),
            None => format!("{:?}", String::from_utf8_lossy(&e.key)),
        };
        format!(
            "DocumentChange({:?}, {key}, {:?})",
            &*e.collection,
            e.op.name()
        )
    }
}

/// An aware UTC datetime of `micros` since the epoch.
fn utc(py: Python<'_>, micros: u64) -> PyResult<Bound<'_, PyAny>> {
    static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let naive = datum::datetime_to_py(py, micros as i64, None)?;
    let tz = UTC.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("datetime")?
            .getattr("timezone")?
            .getattr("utc")?
            .unbind())
    })?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("tzinfo", tz.bind(py))?;
    naive.call_method("replace", (), Some(&kwargs))
}

/// Records of the log after `since` read on `snap`: the Python objects, how far the read
/// got, and whether it reached the end.
pub(crate) fn read_batch(
    py: Python<'_>,
    snap: &ReadTxn,
    since: u64,
    until: Option<u64>,
    collections: Option<Vec<String>>,
    max_entries: usize,
) -> PyResult<(Vec<Change>, u64, bool)> {
    let (batch, schemas) = py
        .detach(|| -> obj_core::Result<_> {
            let batch = snap.changes(since, until, max_entries, collections.as_deref())?;
            let mut schemas = Schemas::new();
            for e in batch.records.iter().flat_map(|r| &r.entries) {
                for image in [&e.old, &e.new].into_iter().flatten() {
                    let Some(version) = typed_version(image) else {
                        continue;
                    };
                    let k = (e.collection.clone(), version);
                    if let std::collections::hash_map::Entry::Vacant(slot) = schemas.entry(k) {
                        if let Some(s) = snap.schema(&e.collection, version)? {
                            slot.insert(s);
                        }
                    }
                }
            }
            Ok((batch, schemas))
        })
        .map_err(to_py)?;
    let schemas = Arc::new(schemas);
    let through = batch.through;
    let done = batch.done;
    let changes = batch
        .records
        .into_iter()
        .map(|r| Change::new(r, schemas.clone()))
        .collect();
    Ok((changes, through, done))
}

/// The schema version of a typed image (None for other kinds).
fn typed_version(image: &[u8]) -> Option<u32> {
    let (h, _) = obj_core::DocHeader::decode(image).ok()?;
    (h.kind == DocKind::Typed).then_some(h.type_version)
}

/// Log settings from `changes=` / `enable_changes` arguments.
pub(crate) fn settings(
    images: &str,
    max_records: Option<u64>,
    max_age_micros: Option<u64>,
) -> PyResult<LogSettings> {
    let s = LogSettings {
        images: Images::parse(images).map_err(to_py)?,
        retention: Retention {
            max_records,
            max_age_micros,
        },
    };
    s.check().map_err(to_py)?;
    Ok(s)
}
