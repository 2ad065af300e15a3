//! `obj._obj.Db`: an open database. The public `obj.Db` (python/obj/_db.py) subclasses it,
//! adding path handling, option checks, the context-manager rules and the pure-Python
//! conveniences; the single-document operations here are inherited as they are, so
//! `db.get(Order, id)` is one native call that builds no transaction object.
//!
//! Each write runs in its own write transaction (one commit); each read on a fresh
//! snapshot. Typed operations dispatch on their first argument exactly like the
//! transactions' (see `write_txn.rs`).

use crate::args::{self, Given, NewDoc, Target};
use crate::codec::DocType;
use crate::cursor::QueryCursor;
use crate::datum;
use crate::error::{to_py, InvalidArgumentError, ObjError};
use crate::iter::DocumentIterator;
use crate::reads::{self, IndexInfo, QueryArgs, UniqueLookup};
use crate::shared::{migrate_older, prepare, Checks, Local, Shared};
use crate::source::Source;
use crate::stored::Decode;
use obj_core::{Db as CoreDb, DocKind, Durability, Options, Reader, WriteTxn};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

type IndexStatRow = (String, &'static str, Vec<String>, &'static str, u64);
type CollectionStatRow = (String, u64, u64, Vec<IndexStatRow>);
type StatRow = (u64, u64, u64, u64, Vec<CollectionStatRow>);
/// `(id, kind, flags, type_version, collection_id, payload)` of a stored record.
type RawRow<'py> = (u64, &'static str, u8, u32, u64, Bound<'py, PyBytes>);

#[pyclass(frozen, subclass, module = "obj._obj", name = "Db")]
pub struct Db {
    shared: Arc<Shared>,
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

impl Db {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs `f` in a write transaction of its own (after preparing `doctype`'s class) and
    /// commits.
    fn write<R>(
        &self,
        py: Python<'_>,
        doctype: Option<&DocType>,
        f: impl FnOnce(&mut WriteTxn) -> obj_core::Result<R>,
    ) -> PyResult<R> {
        let shared = &*self.shared;
        let mut txn = shared.begin_write(py)?;
        let mut local = Local::default();
        if let Some(dt) = doctype {
            prepare(py, &mut txn, &mut local, shared, dt)?;
        }
        let result = f(&mut txn).map_err(to_py)?;
        py.detach(|| txn.commit()).map_err(to_py)?;
        shared.mark_prepared(local.prepared);
        shared.mark_checked(local.checked);
        Ok(result)
    }

    fn write_doc(
        &self,
        py: Python<'_>,
        doc: &NewDoc<'_>,
        id: Option<u64>,
    ) -> PyResult<(u64, bool)> {
        let dt = doc.doctype.as_ref().map(|d| d.get());
        let (collection, kind, version) = (doc.collection.as_str(), doc.kind, doc.version);
        let bytes = doc.payload.as_slice();
        self.write(py, dt, |txn| match id {
            None => txn
                .insert_doc(collection, kind, version, bytes)
                .map(|id| (id, false)),
            Some(id) => txn
                .put_doc(collection, id, kind, version, bytes)
                .map(|replaced| (id, replaced)),
        })
    }

    /// Makes sure the file holds the schema and every index a typed target declares
    /// (building missing indexes from the documents already stored). Nothing to do for a
    /// collection name, a class already prepared, or a read-only handle (which reads what
    /// exists).
    fn ensure_ready(&self, py: Python<'_>, target: &Target<'_>) -> PyResult<()> {
        let Target::Typed(dt) = target else {
            return Ok(());
        };
        let dt = dt.get();
        let shared = &*self.shared;
        if shared.is_prepared(dt) {
            return Ok(());
        }
        let snap = shared.db.begin_read().map_err(to_py)?;
        let collection = dt.collection();
        let defs = snap.indexes(collection).map_err(to_py)?;
        let indexes_built = dt
            .index_specs()
            .iter()
            .all(|s| defs.iter().any(|d| d.spec == *s && d.ready));
        let schema_stored = snap
            .schema(collection, dt.version())
            .map_err(to_py)?
            .is_some_and(|s| *s == *dt.schema());
        drop(snap);
        if indexes_built && schema_stored {
            shared.mark_prepared([dt.serial()]);
            shared.mark_checked([dt.serial()]);
            return Ok(());
        }
        if shared.db.is_read_only() || shared.writer_is_this_thread() {
            // Read what exists: a missing index is then NotFoundError.
            return Ok(());
        }
        self.write(py, Some(dt), |_| Ok(()))
    }

    fn snapshot_source(&self) -> PyResult<Source> {
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        Ok(Source::Snapshot(self.shared.clone(), snap))
    }

    fn cursor(
        &self,
        py: Python<'_>,
        target: &Target<'_>,
        query: QueryArgs,
    ) -> PyResult<QueryCursor> {
        self.ensure_ready(py, target)?;
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        let plan = query.plan(py, &snap, &self.shared, target)?;
        let source = Source::Snapshot(self.shared.clone(), snap.clone());
        let collection = target.collection().to_owned();
        QueryCursor::new(&snap, source, collection, query.decode, plan)
    }
}

#[pymethods]
impl Db {
    /// Opens (or creates) the database at `path`. Waits up to `busy_timeout` seconds for
    /// another process that holds the file.
    #[new]
    #[pyo3(signature = (
        path, *, read_only = false, busy_timeout = 5.0, durability = "immediate".to_string(),
        page_size = 4096, cache_size = 256 << 20, checkpoint_frames = 1000,
        compression = None, encryption_key = None,
    ), text_signature = "(path, *, read_only=False, busy_timeout=5.0, durability='immediate', \
        page_size=4096, cache_size=268435456, checkpoint_frames=1000, compression=None, \
        encryption_key=None)")]
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
        compression: Option<String>,
        encryption_key: Option<&Bound<'_, PyAny>>,
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
            compression: match compression.as_deref() {
                None => false,
                Some("lz4") => true,
                Some(other) => {
                    return Err(InvalidArgumentError::new_err(format!(
                        "compression must be \"lz4\" or None, got {other:?}"
                    )))
                }
            },
            encryption_key: encryption_key.map(args::encryption_key).transpose()?,
        };
        // Opening waits for the file lock and replays the WAL: both can take a while.
        let db = if path.as_os_str() == ":memory:" {
            CoreDb::memory(opts)
        } else {
            py.detach(move || CoreDb::open(path, opts))
        }
        .map_err(to_py)?;
        Ok(Db {
            shared: Arc::new(Shared::new(db)),
        })
    }

    /// Stores a document under a new id, in a transaction of its own, and returns the id:
    /// `insert(doc)` for an `@obj.document` instance, `insert(collection, value)` for bytes
    /// or a dict.
    #[pyo3(signature = (document, value = Given::Missing, /))]
    fn insert<'py>(
        &self,
        py: Python<'py>,
        document: &Bound<'py, PyAny>,
        value: Given<'py>,
    ) -> PyResult<u64> {
        let doc = args::insert_args(document, value)?;
        Ok(self.write_doc(py, &doc, None)?.0)
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
        Ok(self.write_doc(py, &doc, Some(id))?.1)
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
        let collection = target.collection();
        self.write(py, None, |txn| txn.delete(collection, id))
    }

    /// The document `id` of the latest commit, or None.
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
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        let mut checks = Checks {
            shared: &self.shared,
            local: None,
        };
        let ready = reads::get(py, &snap, &mut checks, target.collection(), &decode, id)?;
        drop(snap);
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
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        let value = snap.get(&name, id).map_err(to_py)?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    /// Up to `max_records` records of the collection as stored, in id order, from a
    /// snapshot taken now: `(id, kind, flags, type_version, collection_id, payload)`, with
    /// `kind` "raw", "value" or "typed" and the payload bytes as the codecs see them
    /// (decompressed when the header flags say compressed).
    #[pyo3(signature = (target, max_records, /))]
    fn _dump_raw<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        max_records: usize,
    ) -> PyResult<Vec<RawRow<'py>>> {
        let target = args::target(target)?;
        let collection = target.collection().to_owned();
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        let rows = py
            .detach(|| snap.scan(&collection, 1, max_records))
            .map_err(to_py)?;
        drop(snap);
        Ok(rows
            .into_iter()
            .map(|(id, v)| {
                let h = v.header();
                let kind = match h.kind {
                    DocKind::Raw => "raw",
                    DocKind::Value => "value",
                    DocKind::Typed => "typed",
                };
                let payload = PyBytes::new(py, &v);
                (id, kind, h.flags, h.type_version, h.collection_id, payload)
            })
            .collect())
    }

    /// Number of documents in the collection (0 if it does not exist).
    #[pyo3(signature = (target, /))]
    fn count(&self, target: &Bound<'_, PyAny>) -> PyResult<u64> {
        let target = args::target(target)?;
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        snap.count(target.collection()).map_err(to_py)
    }

    /// Lazy `(id, document)` pairs in id order, from a snapshot taken now.
    #[pyo3(signature = (target, /))]
    fn all(&self, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        let target = args::target(target)?;
        Ok(DocumentIterator::new(
            self.snapshot_source()?,
            target.collection().to_owned(),
            Decode::of(&target),
        ))
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
        self.ensure_ready(py, &target)?;
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        let mut checks = Checks {
            shared: &self.shared,
            local: None,
        };
        let ready = lookup.run(py, &snap, &mut checks, &target, &decode)?;
        drop(snap);
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
        let target = args::target(target)?;
        let none = py.None().into_bound(py);
        let index = args::index_name(index)?;
        let range = (index, lo.unwrap_or(&none), hi.unwrap_or(&none)).into_pyobject(py)?;
        let query = QueryArgs::new(&target, None, Some(range.as_any()), None, false, true)?;
        self.cursor(py, &target, query)
    }

    /// A query cursor over a snapshot taken now (used by `obj.Query`).
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
        let target = args::target(target)?;
        let query = QueryArgs::new(&target, node, index_range, sort_field, reverse, decode)?;
        self.cursor(py, &target, query)
    }

    /// `(name, kind, key_paths, ready)` of each index of the collection.
    #[pyo3(signature = (target, /))]
    fn indexes(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<Vec<IndexInfo>> {
        let target = args::target(target)?;
        self.ensure_ready(py, &target)?;
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        reads::indexes(&snap, target.collection())
    }

    /// Names of all collections, sorted.
    fn collections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        PyList::new(py, snap.collections().map_err(to_py)?)
    }

    /// Sizes and counts of the latest commit: `(page_size, page_count, free_pages,
    /// wal_frames, collections)`, each collection `(name, doc_count, file_size_bytes,
    /// indexes)` and each index `(name, kind, key_paths, status, file_size_bytes)`.
    #[pyo3(name = "_stat")]
    fn stat(&self, py: Python<'_>) -> PyResult<StatRow> {
        let stat = py.detach(|| self.shared.db.stat()).map_err(to_py)?;
        let collections = stat
            .collections
            .into_iter()
            .map(|c| {
                let indexes = c
                    .indexes
                    .into_iter()
                    .map(|i| {
                        (
                            i.name,
                            i.kind.name(),
                            i.key_paths,
                            i.status,
                            i.file_size_bytes,
                        )
                    })
                    .collect();
                (c.name, c.doc_count, c.file_size_bytes, indexes)
            })
            .collect();
        Ok((
            stat.page_size,
            stat.page_count,
            stat.free_pages,
            stat.wal_frames,
            collections,
        ))
    }

    /// Rewrites the documents of the class's collection that are stored at an older
    /// version through its `migrate` (one write transaction) and returns how many were
    /// rewritten. The first write of the class does the same; this is for handles that
    /// only read, and for doing it at a moment of your choosing.
    #[pyo3(signature = (target, /))]
    fn migrate(&self, py: Python<'_>, target: &Bound<'_, PyAny>) -> PyResult<u64> {
        let Target::Typed(dt) = args::write_target(target)? else {
            return Err(InvalidArgumentError::new_err(
                "migrate() takes an @obj.document class (a collection name has no migration)",
            ));
        };
        let dt = dt.get();
        let shared = &*self.shared;
        let mut txn = shared.begin_write(py)?;
        let mut local = Local::default();
        // A class already prepared in this process skips its migration in `prepare`: run it
        // here too (it finds nothing to do when `prepare` just did it).
        let mut migrated = prepare(py, &mut txn, &mut local, shared, dt)?;
        let mut checks = Checks {
            shared,
            local: Some(&mut local),
        };
        migrated += migrate_older(py, &mut txn, &mut checks, dt)?;
        py.detach(|| txn.commit()).map_err(to_py)?;
        shared.mark_prepared(local.prepared);
        shared.mark_checked(local.checked);
        Ok(migrated)
    }

    /// The live snapshots of this handle: `(commit_seq, readers, oldest_seq, oldest_age)`,
    /// the last two None when there is no reader (age in seconds).
    fn _readers(&self) -> (u64, u64, Option<u64>, Option<f64>) {
        let r = self.shared.db.readers();
        (
            r.commit_seq,
            r.readers,
            r.oldest.map(|(seq, _)| seq),
            r.oldest.map(|(_, age)| age.as_secs_f64()),
        )
    }

    /// Folds committed WAL frames into the main file: `(frames_copied, wal_reset, deferred)`.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<(u64, bool, bool)> {
        self.shared.refuse_if_writer_here("checkpoint()")?;
        let info = py.detach(|| self.shared.db.checkpoint()).map_err(to_py)?;
        Ok((info.frames_copied, info.wal_reset, info.deferred))
    }

    /// Checkpoints best-effort, then releases the file lock. Idempotent.
    /// Closing with this thread's write transaction still open closes all the same (its
    /// writes are rolled back), then says so with ObjError instead of discarding them
    /// silently.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let discarding = self.shared.writer_is_this_thread() && !self.shared.db.is_closed();
        py.detach(|| self.shared.db.close()).map_err(to_py)?;
        if discarding {
            return Err(ObjError::new_err(
                "the database was closed with a write transaction of this thread still open: \
                 its writes were rolled back; commit it (or roll it back) before closing",
            ));
        }
        Ok(())
    }

    /// Releases the file lock without checkpointing. Idempotent.
    fn close_without_checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.shared.db.close_without_checkpoint())
            .map_err(to_py)
    }

    /// Writes a consistent copy of the latest commit to `dest` (refusing an existing file
    /// unless `overwrite`); returns its size in bytes.
    #[pyo3(signature = (dest, overwrite = false))]
    fn backup(&self, py: Python<'_>, dest: PathBuf, overwrite: bool) -> PyResult<u64> {
        py.detach(|| self.shared.db.backup(&dest, overwrite))
            .map_err(to_py)
    }

    /// Moves live pages down and truncates the file:
    /// `(pages_before, pages_after, pages_moved, truncated)`.
    fn compact(&self, py: Python<'_>) -> PyResult<(u64, u64, u64, bool)> {
        self.shared.refuse_if_writer_here("compact()")?;
        let info = py.detach(|| self.shared.db.compact()).map_err(to_py)?;
        Ok((
            info.pages_before,
            info.pages_after,
            info.pages_moved,
            info.truncated,
        ))
    }

    /// Walks every tree, index and the freelist; raises IntegrityError listing problems.
    fn integrity_check(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let report = py
            .detach(|| self.shared.db.integrity_check())
            .map_err(to_py)?;
        Ok((report.page_count, report.free_pages))
    }

    /// Committed frames currently in the WAL.
    fn wal_frames(&self) -> u64 {
        self.shared.db.wal_frames()
    }

    #[getter]
    fn read_only(&self) -> bool {
        self.shared.db.is_read_only()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.shared.db.is_closed()
    }

    #[getter]
    fn page_size(&self) -> usize {
        self.shared.db.page_size()
    }

    /// Every schema stored for the collection, oldest version first, as `(version, schema)`
    /// with the schema in its self-describing form (`WriteTransaction._register_schema`
    /// takes it back).
    #[pyo3(signature = (target, /))]
    fn _schemas<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<(u32, Bound<'py, PyAny>)>> {
        let target = args::target(target)?;
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        let schemas = snap.schemas(target.collection()).map_err(to_py)?;
        drop(snap);
        schemas
            .iter()
            .map(|s| Ok((s.version, datum::to_py(py, &s.to_datum())?)))
            .collect()
    }

    /// Lazy `(id, (kind, type_version, document))` of every record in id order, from a
    /// snapshot taken now: the document as read by name, and how it is stored (`kind`
    /// "raw", "value" or "typed").
    #[pyo3(signature = (target, /))]
    fn _records(&self, target: &Bound<'_, PyAny>) -> PyResult<DocumentIterator> {
        let target = args::target(target)?;
        Ok(DocumentIterator::new(
            self.snapshot_source()?,
            target.collection().to_owned(),
            Decode::Stored,
        ))
    }
}
