//! `obj._obj.Db`: an open database. The public `obj.Db` (python/obj/_db.py) subclasses it,
//! adding path handling, the context-manager rules and the pure-Python conveniences; the
//! single-document operations here are inherited as they are, so `db.get(Order, id)` is one
//! native call that builds no transaction object.
//!
//! Each write runs in its own write transaction (one commit); each read on a fresh
//! snapshot. The reads are those of every reader (`surface.rs`); typed operations dispatch
//! on their first argument exactly like the transactions' (see `write_txn.rs`).

use crate::args::{self, Given, NewDoc, Target};
use crate::changes;
use crate::datum;
use crate::error::{self, to_py, InvalidArgumentError, ObjError};
use crate::iter::DocumentIterator;
use crate::keyed::KeyIterator;
use crate::options;
use crate::shared::{migrate_older, prepare, Checks, Local, Shared};
use crate::source::{resolve, Origin, Place, Source};
use crate::stored::Decode;
use crate::surface::Reads;
use obj_core::{Db as CoreDb, ReadTxn, Reader, Value};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::ops::Bound as Edge;
use std::path::PathBuf;
use std::sync::Arc;

type IndexStatRow = (String, &'static str, Vec<String>, &'static str, u64);
type CollectionStatRow = (String, &'static str, u64, u64, Vec<IndexStatRow>, u64);
/// `(images, max_records, max_age_micros, oldest, next_seq)` of a change log.
type ChangeLogRow = (&'static str, Option<u64>, Option<u64>, u64, u64);
type StatRow = (u64, u64, u64, u64, Vec<CollectionStatRow>);
/// `(at, kind, flags, type_version, collection_id, payload)` of a stored record, `at` its
/// id or, in a keyed collection, its key.
type RawRow<'py, At> = (At, &'static str, u8, u32, u64, Bound<'py, PyBytes>);

fn raw_row<'py, At>(py: Python<'py>, at: At, v: &Value) -> RawRow<'py, At> {
    let h = v.header();
    let payload = PyBytes::new(py, v);
    (
        at,
        h.kind.name(),
        h.flags,
        h.type_version,
        h.collection_id,
        payload,
    )
}

#[pyclass(frozen, extends = Reads, subclass, module = "obj._obj", name = "Db")]
pub struct Db {
    shared: Arc<Shared>,
}

impl Db {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs `scan` on a snapshot of the database `target` is read from (this one or an
    /// attached one), taken now, without the GIL.
    fn dump_with<T: Send>(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        scan: impl FnOnce(&ReadTxn, &str) -> obj_core::Result<T> + Send,
    ) -> PyResult<T> {
        let (place, target) = resolve(&self.shared, args::read_target(target)?)?;
        let shared = match &place {
            Place::Here => &self.shared,
            Place::Attached(attached) => attached,
        };
        let snap = shared.db.begin_read().map_err(to_py)?;
        let collection = target.collection();
        py.detach(|| scan(&snap, collection)).map_err(to_py)
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
        self.shared.write_alone(py, dt, |txn| match id {
            None => txn
                .insert_doc(collection, kind, version, bytes)
                .map(|id| (id, false)),
            Some(id) => txn
                .put_doc(collection, id, kind, version, bytes)
                .map(|replaced| (id, replaced)),
        })
    }
}

#[pymethods]
impl Db {
    /// Opens (or creates) the database at `path`. Waits up to `busy_timeout` seconds for
    /// another process that holds the file. The options are checked here (`options.rs`);
    /// `obj.Db` gives each its default from `_defaults()`.
    #[new]
    #[pyo3(signature = (
        path, *, read_only, busy_timeout, durability, page_size, cache_size,
        checkpoint_frames, sync, compression, encryption_key, locking, mode = "open_or_create",
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        read_only: &Bound<'_, PyAny>,
        busy_timeout: &Bound<'_, PyAny>,
        durability: &Bound<'_, PyAny>,
        page_size: &Bound<'_, PyAny>,
        cache_size: &Bound<'_, PyAny>,
        checkpoint_frames: &Bound<'_, PyAny>,
        sync: &Bound<'_, PyAny>,
        compression: &Bound<'_, PyAny>,
        encryption_key: &Bound<'_, PyAny>,
        locking: &Bound<'_, PyAny>,
        mode: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let opts = options::Given {
            read_only,
            busy_timeout,
            durability,
            page_size,
            cache_size,
            checkpoint_frames,
            sync,
            compression,
            encryption_key,
            locking,
        }
        .options()?
        .mode(options::open_mode(mode)?);
        // Opening waits for the file lock and replays the WAL: both can take a while.
        let db = if path.as_os_str() == ":memory:" {
            CoreDb::memory(opts)
        } else {
            py.detach(move || CoreDb::open(path, opts))
        }
        .map_err(error::open_to_py)?;
        let shared = Arc::new(Shared::new(db));
        Ok(
            PyClassInitializer::from(Reads::new(Origin::Db(shared.clone())))
                .add_subclass(Db { shared }),
        )
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

    /// Stores each document under a new id, in order, in one transaction of its own, and
    /// returns the ids: `insert_many(docs)` for `@obj.document` instances,
    /// `insert_many(collection, values)` for bytes or dicts. A bad item writes nothing.
    #[pyo3(signature = (documents, values = None, /))]
    fn insert_many<'py>(
        &self,
        py: Python<'py>,
        documents: &Bound<'py, PyAny>,
        values: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<u64>> {
        let shared = &self.shared;
        shared.write_with(py, |txn, local| {
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
        self.shared
            .write_alone(py, None, |txn| txn.delete(collection, id))
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
    ) -> PyResult<Vec<RawRow<'py, u64>>> {
        let rows = self.dump_with(py, target, |snap, collection| {
            snap.scan(collection, 1, max_records)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, v)| raw_row(py, id, &v))
            .collect())
    }

    /// As `_dump_raw`, for a keyed collection, in key order: `(key, kind, flags,
    /// type_version, collection_id, payload)`.
    #[pyo3(signature = (target, max_records, /))]
    fn _dump_raw_keys<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        max_records: usize,
    ) -> PyResult<Vec<RawRow<'py, Bound<'py, PyBytes>>>> {
        let rows = self.dump_with(py, target, |snap, collection| {
            snap.scan_keys(
                collection,
                Edge::Unbounded,
                Edge::Unbounded,
                false,
                max_records,
            )
        })?;
        Ok(rows
            .into_iter()
            .map(|(key, v)| raw_row(py, PyBytes::new(py, &key), &v))
            .collect())
    }

    /// Attaches the database `handle` (an `obj.Db` opened read-only) under `namespace`:
    /// reads of `"namespace.collection"` then go to it, from this handle and from its
    /// transactions. False (and nothing attached) when the namespace is taken.
    #[pyo3(signature = (namespace, handle, /))]
    fn _attach(&self, namespace: &str, handle: &Bound<'_, Db>) -> bool {
        let shared = handle.get().shared.clone();
        self.shared
            .attach(namespace, shared, handle.clone().into_any().unbind())
    }

    /// Forgets the database attached under `namespace` and returns its handle (None if
    /// none is); closing it is the caller's.
    #[pyo3(signature = (namespace, /))]
    fn _detach(&self, py: Python<'_>, namespace: &str) -> Option<Py<PyAny>> {
        self.shared
            .detach(namespace)
            .map(|a| a.handle.clone_ref(py))
    }

    /// Forgets every attached database and returns their handles.
    fn _detach_all(&self, py: Python<'_>) -> Vec<Py<PyAny>> {
        self.shared
            .detach_all()
            .into_iter()
            .map(|(_, a)| a.handle.clone_ref(py))
            .collect()
    }

    /// The attached namespaces and their handles, in the order they were attached.
    fn _attachments(&self, py: Python<'_>) -> Vec<(String, Py<PyAny>)> {
        self.shared
            .attachments()
            .into_iter()
            .map(|(ns, a)| (ns, a.handle.clone_ref(py)))
            .collect()
    }

    /// Sizes and counts of the latest commit: `(page_size, page_count, free_pages,
    /// wal_frames, collections)`, each collection `(name, kind, doc_count, file_size_bytes,
    /// indexes)` with `kind` "id" or "keyed", and each index `(name, kind, key_paths, status, file_size_bytes)`.
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
                (
                    c.name,
                    c.kind.name(),
                    c.doc_count,
                    c.file_size_bytes,
                    indexes,
                    c.expired,
                )
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
    /// version through its `migrate` or `migrations` (one write transaction, recorded in
    /// the change log as `action="migrate"`) and returns how many were rewritten. The
    /// first write of the class does the same; this is for handles that
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
        // Recorded in the change log as a migration unless a `db.context` names the action.
        let mut ctx =
            crate::context::current_context(py, shared.context_key())?.unwrap_or_default();
        ctx.action.get_or_insert_with(|| "migrate".to_owned());
        txn.set_context(ctx);
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

    /// The live snapshots: `(commit_seq, readers, oldest_seq, oldest_age, other_readers,
    /// other_marks, other_oldest_seq, other_oldest_age)`: this handle's (oldest None when
    /// there is no reader, ages in seconds), then those of other handles and processes.
    #[allow(clippy::type_complexity)]
    fn _readers(
        &self,
    ) -> (
        u64,
        u64,
        Option<u64>,
        Option<f64>,
        u64,
        u64,
        Option<u64>,
        Option<f64>,
    ) {
        let r = self.shared.db.readers();
        (
            r.commit_seq,
            r.readers,
            r.oldest.map(|(seq, _)| seq),
            r.oldest.map(|(_, age)| age.as_secs_f64()),
            r.other_readers,
            r.other_marks,
            r.other_oldest,
            r.other_oldest_age.map(|age| age.as_secs_f64()),
        )
    }

    /// In a child after `fork()`: the handle is the parent's; every later call refuses.
    fn _after_fork(&self) {
        self.shared.db.forget_after_fork();
    }

    /// Makes every commit so far durable now (a no-op under durability "immediate").
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.shared.db.flush()).map_err(to_py)
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

    /// Turns the change log on (`images` "keys", "new", "old" or "both", with retention),
    /// changes its settings, or (`images` None) turns it off, in a commit of its own;
    /// True if anything changed.
    #[pyo3(signature = (images, max_records = None, max_age_micros = None))]
    fn _set_changes(
        &self,
        py: Python<'_>,
        images: Option<&str>,
        max_records: Option<u64>,
        max_age_micros: Option<u64>,
    ) -> PyResult<bool> {
        self.shared
            .refuse_if_writer_here("changing the change log")?;
        let settings = images
            .map(|i| changes::settings(i, max_records, max_age_micros))
            .transpose()?;
        py.detach(|| self.shared.db.set_changes(settings))
            .map_err(to_py)
    }

    /// The change log as the latest commit sees it: `(images, max_records,
    /// max_age_micros, oldest, next_seq)`, or None when the database keeps none.
    fn _change_log(&self) -> PyResult<Option<ChangeLogRow>> {
        use obj_core::changes::ChangeReads;
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        Ok(snap.change_log().map_err(to_py)?.map(|i| {
            let r = i.settings.retention;
            (
                i.settings.images.name(),
                r.max_records,
                r.max_age_micros,
                i.oldest,
                i.next_seq,
            )
        }))
    }

    /// One batch of change records after `since`: `(changes, through, done, commit)`, the
    /// read going on after `through`, `done` once it reached the end of the log (or
    /// `until`), `commit` the commit number of the snapshot read (for `_wait_commit`).
    #[pyo3(signature = (since, until, collections, max_entries))]
    fn _changes(
        &self,
        py: Python<'_>,
        since: u64,
        until: Option<u64>,
        collections: Option<Vec<String>>,
        max_entries: usize,
    ) -> PyResult<(Vec<changes::Change>, u64, bool, u64)> {
        let snap = self.shared.db.begin_read().map_err(to_py)?;
        let commit = snap.commit_seq();
        let (batch, through, done) =
            changes::read_batch(py, &snap, since, until, collections, max_entries)?;
        Ok((batch, through, done, commit))
    }

    /// Waits (the interpreter released, signals checked every tenth of a second) until a
    /// commit after number `after` is visible or `timeout` seconds pass (None: no limit);
    /// returns the latest commit number.
    #[pyo3(signature = (after, timeout))]
    fn _wait_commit(&self, py: Python<'_>, after: u64, timeout: Option<f64>) -> PyResult<u64> {
        let deadline = timeout.map(|t| std::time::Instant::now() + secs(t));
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(std::time::Instant::now())
                    .min(std::time::Duration::from_millis(100)),
                None => std::time::Duration::from_millis(100),
            };
            let seen = py
                .detach(|| self.shared.db.wait_commit(after, Some(slice)))
                .map_err(to_py)?;
            if seen > after || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(seen);
            }
            py.check_signals()?;
        }
    }

    /// Applies change records (`obj.Change`s or their `to_bytes()`), each in a commit of
    /// its own; records this database already applied are skipped, a gap is refused.
    /// Returns how many were applied.
    fn _apply_changes(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<u64> {
        let mut applied = 0u64;
        for item in records.try_iter()? {
            let item = item?;
            let owned;
            let record = if let Ok(c) = item.cast::<changes::Change>() {
                owned = c.get().record().clone();
                &owned
            } else if let Ok(b) = item.cast::<PyBytes>() {
                owned = obj_core::changes::Record::from_bytes(b.as_bytes()).map_err(to_py)?;
                &owned
            } else {
                return Err(InvalidArgumentError::new_err(format!(
                    "apply_changes takes obj.Change records (or their to_bytes()), not {}",
                    datum::type_name(&item)
                )));
            };
            let done = self.shared.write_with(py, |txn, _| {
                py.detach(|| txn.apply_record(record)).map_err(to_py)
            })?;
            applied += u64::from(done);
        }
        Ok(applied)
    }

    /// Undoes the document changes of change record `seq` in a commit of its own (its
    /// record says action "revert" unless a `db.context` says otherwise); returns the
    /// seq of that new record.
    fn _revert(&self, py: Python<'_>, seq: u64) -> PyResult<u64> {
        self.shared.write_with(py, |txn, _| {
            if txn.records_changes() && !self.shared.has_context(py)? {
                let mut ctx = crate::context::context(Some("revert".into()), None, None)?;
                let meta = pyo3::types::PyDict::new(py);
                meta.set_item("reverts", seq)?;
                ctx.meta = Some(datum::encode(&meta, "meta")?);
                txn.set_context(ctx);
            }
            let new_seq = txn.applied_seq().map_err(to_py)? + 1;
            py.detach(|| txn.revert(seq)).map_err(to_py)?;
            Ok(new_seq)
        })
    }

    /// The key `db.context(...)` files this handle's metadata under.
    fn _context_key(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
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
            Source::snapshot(&self.shared)?,
            target.collection().to_owned(),
            Decode::Stored,
        ))
    }

    /// Lazy `(key, (kind, type_version, document))` of every record of a keyed collection
    /// in key order, from a snapshot taken now: as `_records` for an id collection.
    #[pyo3(signature = (target, /))]
    fn _key_records(&self, target: &Bound<'_, PyAny>) -> PyResult<KeyIterator> {
        let target = args::target(target)?;
        Ok(KeyIterator::new(
            Source::snapshot(&self.shared)?,
            target.collection().to_owned(),
            Some(Decode::Stored),
            (Edge::Unbounded, Edge::Unbounded),
            false,
        ))
    }
}

/// A duration of `t` seconds (negative and NaN: none, huge: a year).
fn secs(t: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(t.max(0.0))
        .unwrap_or(std::time::Duration::from_secs(365 * 86400))
}

/// Right before `fork()` (from `os.register_at_fork`): the engine's background thread
/// holds none of its locks while the process forks.
#[pyfunction]
pub(crate) fn _before_fork() {
    CoreDb::before_fork();
}

/// Right after `fork()`, in the parent and in the child.
#[pyfunction]
pub(crate) fn _after_fork_anywhere() {
    CoreDb::after_fork();
}
