//! What one open database shares between its handle, transactions, iterators and cursors:
//! the engine handle and two caches of facts about document classes (by codec serial).
//!
//! - *schema checked*: the schema a codec decodes with equals the one the file stores for
//!   its `(collection, version)`. Stored schemas never change, so once true it stays true.
//! - *prepared*: the codec's schema and every index it declares are committed in the file,
//!   so a typed write needs no catalog work first.
//!
//! A write transaction keeps its own sets (its catalog changes are private until commit)
//! and merges them here when it commits.
//!
//! It also holds the databases attached under a namespace (`Db.attach`): reads of
//! `"namespace.collection"` resolve through them (see `source.rs`).

use crate::at::At;
use crate::codec::DocType;
use crate::error::{to_py, BusyError, InvalidArgumentError, ObjError};
use obj_core::query::{Access, Found, Plan, QueryScan};
use obj_core::{Db as CoreDb, DocKind, Pk, Reader, WriteTxn};
use parking_lot::{Mutex, RwLock};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::ThreadId;

pub(crate) struct Shared {
    pub(crate) db: CoreDb,
    schema_checked: RwLock<HashSet<u64>>,
    prepared: RwLock<HashSet<u64>>,
    /// Codecs whose collection was seen holding no record of an older version (see
    /// [`check_current`]); versions only move forward, so this stays true.
    current: RwLock<HashSet<u64>>,
    /// The newest version of each collection a write transaction of this handle has
    /// registered (committed or not: it only turns the fast path of older ones off).
    newest: RwLock<HashMap<String, u32>>,
    /// The thread whose `WriteTransaction` holds the writer, if any: a `Db`-level write
    /// from that same thread could only wait for itself.
    writer: Mutex<Option<ThreadId>>,
    /// The attached databases, in the order they were attached.
    attached: RwLock<Vec<(String, Arc<Attachment>)>>,
}

/// A database attached read-only under a namespace.
pub(crate) struct Attachment {
    pub(crate) shared: Arc<Shared>,
    /// The Python handle that owns it (`obj.Db`), closed by `Db.detach`.
    pub(crate) handle: Py<PyAny>,
    /// The codecs of document classes declared for `"namespace.collection"`, compiled for
    /// the bare collection name the attached file uses (by the class codec's serial).
    rebased: Mutex<HashMap<u64, Py<DocType>>>,
}

impl Attachment {
    /// The codec of `dt` (declared for `"namespace.<collection>"`) compiled for
    /// `collection`: it builds instances of the same classes, and its schema checks look
    /// `collection` up in the attached file.
    pub(crate) fn rebased<'py>(
        &self,
        dt: &Bound<'py, DocType>,
        collection: &str,
    ) -> PyResult<Bound<'py, DocType>> {
        let py = dt.py();
        let serial = dt.get().serial();
        if let Some(known) = self.rebased.lock().get(&serial) {
            return Ok(known.bind(py).clone());
        }
        let rebased = rebase(dt, collection)?;
        self.rebased.lock().insert(serial, rebased.clone().unbind());
        Ok(rebased)
    }
}

/// `(version, description, indexes, history classes, migrate, migrations)` of a document
/// class, as `obj.document` records it in `__obj_declaration__`.
type Declaration<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Vec<Bound<'py, PyAny>>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// Compiles the declaration of `dt`'s class (and of its history) again for `collection`,
/// from the `__obj_declaration__` the `@obj.document` decorator leaves on the class.
fn rebase<'py>(dt: &Bound<'py, DocType>, collection: &str) -> PyResult<Bound<'py, DocType>> {
    let py = dt.py();
    let cls = dt.getattr(intern!(py, "cls"))?;
    let (version, description, indexes, history, migrate, migrations): Declaration<'py> =
        cls.getattr(intern!(py, "__obj_declaration__"))?.extract()?;
    let mut past = Vec::with_capacity(history.len());
    for older in history {
        let older = older
            .getattr(intern!(py, "__obj_doctype__"))?
            .cast_into::<DocType>()?;
        past.push(rebase(&older, collection)?);
    }
    let past = PyList::new(py, past)?;
    Ok(py
        .get_type::<DocType>()
        .call1((
            collection,
            version,
            description,
            indexes,
            past,
            migrate,
            migrations,
        ))?
        .cast_into::<DocType>()?)
}

impl Shared {
    pub(crate) fn new(db: CoreDb) -> Self {
        Shared {
            db,
            schema_checked: RwLock::new(HashSet::new()),
            prepared: RwLock::new(HashSet::new()),
            current: RwLock::new(HashSet::new()),
            newest: RwLock::new(HashMap::new()),
            writer: Mutex::new(None),
            attached: RwLock::new(Vec::new()),
        }
    }

    /// Attaches `shared` (opened read-only by `handle`) under `namespace`; false when the
    /// namespace is taken.
    pub(crate) fn attach(&self, namespace: &str, shared: Arc<Shared>, handle: Py<PyAny>) -> bool {
        let mut attached = self.attached.write();
        if attached.iter().any(|(ns, _)| ns == namespace) {
            return false;
        }
        let attachment = Attachment {
            shared,
            handle,
            rebased: Mutex::new(HashMap::new()),
        };
        attached.push((namespace.to_owned(), Arc::new(attachment)));
        true
    }

    /// Forgets the database attached under `namespace`, if there is one.
    pub(crate) fn detach(&self, namespace: &str) -> Option<Arc<Attachment>> {
        let mut attached = self.attached.write();
        let at = attached.iter().position(|(ns, _)| ns == namespace)?;
        Some(attached.remove(at).1)
    }

    /// Forgets every attached database.
    pub(crate) fn detach_all(&self) -> Vec<(String, Arc<Attachment>)> {
        std::mem::take(&mut *self.attached.write())
    }

    /// The database attached under `namespace`.
    pub(crate) fn attachment(&self, namespace: &str) -> Option<Arc<Attachment>> {
        self.attached
            .read()
            .iter()
            .find(|(ns, _)| ns == namespace)
            .map(|(_, a)| a.clone())
    }

    /// The attached namespaces and their handles, in the order they were attached.
    pub(crate) fn attachments(&self) -> Vec<(String, Arc<Attachment>)> {
        self.attached.read().clone()
    }

    /// ObjError once the database is closed: iterators and transactions stop there, even
    /// with documents already fetched.
    pub(crate) fn check_open(&self) -> PyResult<()> {
        if self.db.is_closed() {
            return Err(ObjError::new_err(
                "the database has been closed; open it again to go on reading",
            ));
        }
        Ok(())
    }

    pub(crate) fn set_writer(&self, owner: Option<ThreadId>) {
        *self.writer.lock() = owner;
    }

    /// True when this thread's own write transaction holds the writer.
    pub(crate) fn writer_is_this_thread(&self) -> bool {
        *self.writer.lock() == Some(std::thread::current().id())
    }

    /// Refuses at once work that needs the writer (`what`) when this thread's own write
    /// transaction holds it: waiting would only time out.
    pub(crate) fn refuse_if_writer_here(&self, what: &str) -> PyResult<()> {
        if self.writer_is_this_thread() {
            return Err(BusyError::new_err(format!(
                "this thread has a write transaction open on this database, and {what} \
                 needs the writer, which only one transaction holds at a time; use the \
                 transaction's methods (tx.insert(...), tx.get(...), ...) inside it, or \
                 commit or roll it back first"
            )));
        }
        Ok(())
    }

    /// Starts a write transaction for a `Db`-level call; refuses at once when this thread
    /// already has one open (waiting would only time out).
    pub(crate) fn begin_write(&self, py: Python<'_>) -> PyResult<WriteTxn> {
        self.refuse_if_writer_here("a Db-level write")?;
        let mut txn = py.detach(|| self.db.begin_write()).map_err(to_py)?;
        if txn.records_changes() {
            if let Some(ctx) = crate::context::current_context(py, self.context_key())? {
                txn.set_context(ctx);
            }
        }
        Ok(txn)
    }

    /// The key `db.context(...)` files this handle's metadata under.
    pub(crate) fn context_key(&self) -> usize {
        self as *const Shared as usize
    }

    /// True when a `with db.context(...)` block of this handle is active here.
    pub(crate) fn has_context(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(crate::context::current_context(py, self.context_key())?.is_some())
    }

    /// True when `dt` needs no catalog work before a typed write: its schema and indexes
    /// are committed, and no newer version of its collection was prepared since (which
    /// would have migrated its records and refuses its writes).
    pub(crate) fn is_prepared(&self, dt: &DocType) -> bool {
        self.prepared.read().contains(&dt.serial())
            && self
                .newest
                .read()
                .get(dt.collection())
                .is_none_or(|v| *v <= dt.version())
    }

    /// A write transaction registered `version` of `collection`.
    fn note_version(&self, collection: &str, version: u32) {
        let mut newest = self.newest.write();
        let v = newest.entry(collection.to_owned()).or_insert(version);
        *v = (*v).max(version);
    }

    /// Runs `f` in a write transaction of its own (after preparing `doctype`'s class) and
    /// commits: one `Db`-level write.
    pub(crate) fn write_alone<R>(
        &self,
        py: Python<'_>,
        doctype: Option<&DocType>,
        f: impl FnOnce(&mut WriteTxn) -> obj_core::Result<R>,
    ) -> PyResult<R> {
        self.write_with(py, |txn, local| {
            if let Some(dt) = doctype {
                prepare(py, txn, local, self, dt)?;
            }
            f(txn).map_err(to_py)
        })
    }

    /// Runs `f` in a write transaction of its own, with the facts it establishes about
    /// document classes, and commits; those facts are kept once the commit succeeded.
    pub(crate) fn write_with<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut WriteTxn, &mut Local) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut txn = self.begin_write(py)?;
        let mut local = Local::default();
        let result = f(&mut txn, &mut local)?;
        py.detach(|| txn.commit()).map_err(to_py)?;
        self.mark_prepared(local.prepared);
        self.mark_checked(local.checked);
        Ok(result)
    }

    /// Makes sure the file holds `dt`'s schema and every index it declares (building
    /// missing indexes from the documents already stored, in a write of its own), as a
    /// `Db`-level index read needs. Nothing to do for a class already prepared, or on a
    /// read-only handle or in the thread that holds the writer (which read what exists:
    /// a missing index is then NotFoundError).
    pub(crate) fn ensure_ready(&self, py: Python<'_>, dt: &DocType) -> PyResult<()> {
        if self.is_prepared(dt) {
            return Ok(());
        }
        let snap = self.db.begin_read().map_err(to_py)?;
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
            self.mark_prepared([dt.serial()]);
            self.mark_checked([dt.serial()]);
            return Ok(());
        }
        if self.db.is_read_only() || self.writer_is_this_thread() {
            return Ok(());
        }
        self.write_alone(py, Some(dt), |_| Ok(()))
    }

    pub(crate) fn mark_prepared(&self, serials: impl IntoIterator<Item = u64>) {
        self.prepared.write().extend(serials);
    }

    pub(crate) fn mark_checked(&self, serials: impl IntoIterator<Item = u64>) {
        self.schema_checked.write().extend(serials);
    }
}

/// The facts a write transaction established itself (not yet committed).
#[derive(Clone, Default)]
pub(crate) struct Local {
    pub(crate) prepared: HashSet<u64>,
    pub(crate) checked: HashSet<u64>,
}

/// Where schema checks are looked up and recorded: the database's sets for a committed
/// snapshot, plus a write transaction's own.
pub(crate) struct Checks<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) local: Option<&'a mut Local>,
}

impl<'a> Checks<'a> {
    /// The checks of a committed snapshot of `shared`.
    pub(crate) fn committed(shared: &'a Shared) -> Self {
        Checks {
            shared,
            local: None,
        }
    }

    /// Makes sure the record written at `version` decodes with the codec `dt` picks for it:
    /// the schema stored in the file for that version must be the codec's shape.
    pub(crate) fn check_schema<R: Reader>(
        &mut self,
        py: Python<'_>,
        r: &R,
        dt: &DocType,
        version: u32,
    ) -> PyResult<()> {
        let Some(codec) = dt.codec_for(version) else {
            return Err(crate::codec::unknown_version(py, dt, version));
        };
        let serial = codec.serial();
        if self.shared.schema_checked.read().contains(&serial)
            || self
                .local
                .as_ref()
                .is_some_and(|l| l.checked.contains(&serial))
        {
            return Ok(());
        }
        let stored = r.schema(codec.collection(), version).map_err(to_py)?;
        let Some(stored) = stored else {
            return Err(InvalidArgumentError::new_err(format!(
                "the file stores no schema for {:?} version {version}, so its typed records \
                 cannot be decoded",
                codec.collection()
            )));
        };
        if let Some(diff) = codec.schema().difference(&stored) {
            return Err(InvalidArgumentError::new_err(format!(
                "{} does not match the shape this file stores for {:?} version {version}: \
                 {diff}; use another collection name or bump version=",
                codec.class_name(py),
                codec.collection()
            )));
        }
        match &mut self.local {
            Some(local) => {
                local.checked.insert(serial);
            }
            None => self.shared.mark_checked([serial]),
        }
        Ok(())
    }
}

/// The versions of `dt`'s collection older than `dt` whose schemas the file stores: as
/// long as one is stored, records of that version may exist.
fn older_versions<R: Reader>(r: &R, dt: &DocType) -> PyResult<Vec<u32>> {
    Ok(r.schemas(dt.collection())
        .map_err(to_py)?
        .iter()
        .map(|s| s.version)
        .filter(|v| *v < dt.version())
        .collect())
}

/// Refuses a read whose answer the engine computes from stored fields (a filter, a sort,
/// an index) while the collection still holds records of an older version than `dt`:
/// those fields are the old shape's, so the answer would disagree with decoding through
/// `dt`. A read-write `Db` migrates them first (see [`prepare`]); read transactions and
/// read-only handles cannot, so they say what to run.
pub(crate) fn check_current<R: Reader>(
    py: Python<'_>,
    r: &R,
    shared: &Shared,
    dt: &DocType,
) -> PyResult<()> {
    let serial = dt.serial();
    if shared.current.read().contains(&serial) || shared.is_prepared(dt) {
        return Ok(());
    }
    let collection = dt.collection();
    if let Some(v) = older_versions(r, dt)?.first() {
        return Err(InvalidArgumentError::new_err(format!(
            "{collection:?} may still hold documents written at version {v}, which {cls} \
             (version {now}) reads by migrating them; filters, sorts and index lookups see \
             stored fields, so they need those documents migrated first: call \
             db.migrate({cls}) on a read-write handle (any write of a {cls} also does it)",
            cls = dt.class_name(py),
            now = dt.version(),
        )));
    }
    shared.current.write().insert(serial);
    Ok(())
}

/// Rewrites every record of `dt`'s collection stored at an older version through `dt`'s
/// migration (decode with the old class, `migrate`, encode with `dt`), in the caller's
/// write transaction, then forgets the older schemas. Indexes are maintained by the
/// rewrites, so a unique value that only exists after migration is checked like any
/// other. Returns how many records were rewritten.
///
/// `migrate` runs while the transaction is held: it must not use the database.
pub(crate) fn migrate_older(
    py: Python<'_>,
    txn: &mut WriteTxn,
    checks: &mut Checks<'_>,
    dt: &DocType,
) -> PyResult<u64> {
    let collection = dt.collection();
    let older = older_versions(&*txn, dt)?;
    if older.is_empty() {
        return Ok(0);
    }
    // Every document, by id or by key: the engine's query scan with no filter. A rewrite
    // replaces a document in place, so the scan goes on past it between batches.
    let mut scan =
        QueryScan::new(&*txn, collection, &Plan::unsorted(Access::Scan, None)).map_err(to_py)?;
    let mut rewritten = 0u64;
    loop {
        let batch = scan.next_batch(&*txn, 256).map_err(to_py)?;
        if batch.is_empty() {
            break;
        }
        let mut updates = Vec::new();
        for Found { pk, value, .. } in batch {
            let h = value.header();
            if h.kind != DocKind::Typed || !older.contains(&h.type_version) {
                continue;
            }
            let context = |e: PyErr| {
                InvalidArgumentError::new_err(format!(
                    "cannot migrate {} of {collection:?} from version {} to {} ({}): {}",
                    At::from(&pk).describe(collection).0,
                    h.type_version,
                    dt.version(),
                    dt.class_name(py),
                    e.value(py)
                ))
            };
            let decoded = if dt.migrates_by_function(h.type_version) {
                crate::codec::decode_old(&*txn, collection, &value)
                    .and_then(|d| crate::datum::to_py(py, &d))
                    .and_then(|d| dt.migrate_dict(py, h.type_version, d))
            } else {
                checks
                    .check_schema(py, &*txn, dt, h.type_version)
                    .and_then(|()| dt.decode_doc(py, h.type_version, &value))
            };
            let doc = decoded.map_err(context)?;
            let payload = dt.encode_doc(&doc).map_err(context)?;
            updates.push((pk, payload));
        }
        for (pk, payload) in updates {
            let written = match &pk {
                Pk::Id(id) => txn.put_doc(collection, *id, DocKind::Typed, dt.version(), &payload),
                Pk::Key(key) => {
                    txn.put_key_doc(collection, key, DocKind::Typed, dt.version(), &payload)
                }
            };
            written.map_err(|e| {
                InvalidArgumentError::new_err(format!(
                    "cannot migrate {} of {collection:?} to version {} ({}): {}",
                    At::from(&pk).describe(collection).0,
                    dt.version(),
                    dt.class_name(py),
                    to_py(e).value(py)
                ))
            })?;
            rewritten += 1;
        }
    }
    for v in older {
        txn.drop_schema(collection, v).map_err(to_py)?;
    }
    Ok(rewritten)
}

/// `insert_many(docs)` / `insert_many(collection, values)`: each item stored under a new
/// id in `txn`, in order, one boundary crossing for the whole batch (the arguments of each
/// item are those of `insert`). Returns the ids in order; the first bad item raises, and
/// what came before it is in `txn` (a `Db`-level call then rolls it all back).
pub(crate) fn insert_each(
    py: Python<'_>,
    txn: &mut WriteTxn,
    local: &mut Local,
    shared: &Shared,
    documents: &Bound<'_, PyAny>,
    values: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<u64>> {
    let (name, items) = match values {
        Some(values) => (Some(documents), values),
        None if documents.is_instance_of::<pyo3::types::PyString>() => {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "insert_many(collection, values) is missing its values (an iterable of bytes \
                 or dicts)",
            ))
        }
        None => (None, documents),
    };
    if items.is_instance_of::<pyo3::types::PyBytes>()
        || items.is_instance_of::<pyo3::types::PyDict>()
    {
        return Err(InvalidArgumentError::new_err(
            "insert_many takes an iterable of documents (a list, a generator...), not one \
             document; use insert() for one",
        ));
    }
    let mut ids = Vec::with_capacity(items.len().unwrap_or(0));
    for item in items.try_iter()? {
        let item = item?;
        let doc = match name {
            Some(name) => crate::args::insert_args(name, crate::args::Given::Value(item))?,
            None if item.is_instance_of::<pyo3::types::PyString>() => {
                return Err(InvalidArgumentError::new_err(format!(
                    "insert_many(docs): item {} is a str, not a document; to store bytes or \
                     dicts by collection name, call insert_many(collection, values)",
                    ids.len()
                )))
            }
            None => crate::args::insert_args(&item, crate::args::Given::Missing)?,
        };
        if let Some(dt) = &doc.doctype {
            prepare(py, txn, local, shared, dt.get())?;
        }
        let id = txn
            .insert_doc(
                &doc.collection,
                doc.kind,
                doc.version,
                doc.payload.as_slice(),
            )
            .map_err(to_py)?;
        ids.push(id);
    }
    Ok(ids)
}

/// Stores the codec's schema (or checks it against the stored one), migrates records of
/// older versions to it ([`migrate_older`]) and creates, or backfills, every index it
/// declares. Runs once per class and write transaction; returns how many records it
/// migrated.
pub(crate) fn prepare(
    py: Python<'_>,
    txn: &mut WriteTxn,
    local: &mut Local,
    shared: &Shared,
    dt: &DocType,
) -> PyResult<u64> {
    let serial = dt.serial();
    if local.prepared.contains(&serial) || shared.is_prepared(dt) {
        return Ok(0);
    }
    let collection = dt.collection();
    txn.register_schema(collection, dt.schema())
        .map_err(|e| match e {
            obj_core::Error::InvalidArgument(m) => {
                InvalidArgumentError::new_err(format!("{}: {m}", dt.class_name(py)))
            }
            other => to_py(other),
        })?;
    shared.note_version(collection, dt.version());
    let migrated = {
        let mut checks = Checks {
            shared,
            local: Some(&mut *local),
        };
        migrate_older(py, txn, &mut checks, dt)?
    };
    // Building an index over existing documents can take a while.
    py.detach(|| {
        for spec in dt.index_specs() {
            txn.ensure_index(collection, spec)?;
        }
        Ok(())
    })
    .map_err(to_py)?;
    local.prepared.insert(serial);
    local.checked.insert(serial);
    Ok(migrated)
}
