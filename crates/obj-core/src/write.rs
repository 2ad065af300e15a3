//! The write transaction: the single writer's private pages, collection states and index
//! maintenance, until [`WriteTxn::commit`] hands them to the engine state in one piece.

use crate::btree::{self, PageRead, PageWrite};
use crate::catalog::{self, CollectionKind, CollectionRecord, IndexDef, IndexSpec, NameMap, Root};
use crate::changelog::{self, EntryRef, Pending};
use crate::codec::{dynamic, Datum, Schema};
use crate::doc::{compress, DocHeader, DocKind, COMPRESS_MIN, FLAG_COMPRESSED};
use crate::error::{Error, Result};
use crate::format::{self, Meta};
use crate::freelist::{Allocator, FreePages};
use crate::index;
use crate::pager::{PageBuf, PageMap};
use crate::reader::{check_id, id_key, wrong_kind, ReadTxn, Reader, Source, Value};
use crate::spill::Spill;
use crate::state::{Commit, Shared, WriterGuard};
use crate::view::{CollView, TxnView};
use std::ops::Bound;
use std::sync::Arc;

/// Where a document write goes.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// The next id of an id collection.
    NewId,
    /// This id of an id collection.
    Id(u64),
    /// This key of a keyed collection.
    Key(&'a [u8]),
}

pub(crate) struct CollState {
    pub(crate) rec: CollectionRecord,
    pub(crate) dirty: bool,
    /// The root is new (created, or moved by compaction): publish it at commit.
    pub(crate) publish_root: bool,
    /// Index definitions, loaded on first use.
    pub(crate) indexes: Option<Arc<Vec<IndexDef>>>,
    pub(crate) indexes_changed: bool,
    /// A table's key types, once this transaction has read or fixed them (valid while the
    /// collection is not empty).
    pub(crate) table_keys: Option<crate::codec::keys::KeyTypes>,
}

/// The single writer. Changes are private until [`WriteTxn::commit`]; dropping the
/// transaction without committing rolls everything back.
pub struct WriteTxn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) base_seq: u64,
    pub(crate) meta: Meta,
    /// The header as the transaction began: a change to it alone still needs a commit.
    pub(crate) meta_at_start: Meta,
    pub(crate) dirty: PageMap<PageBuf>,
    /// Changed pages moved out of memory when `dirty` outgrew its budget.
    pub(crate) spill: Option<Spill>,
    pub(crate) colls: NameMap<CollState>,
    /// Schemas stored by this transaction, published to the shared cache at commit.
    pub(crate) new_schemas: Vec<(String, Arc<Schema>)>,
    pub(crate) alloc: Allocator,
    /// The record this commit appends, while the database keeps a change log.
    pub(crate) log: Option<Pending>,
    /// The writer lock, released when the transaction ends (commit, rollback or drop).
    writer: WriterGuard,
}

impl WriteTxn {
    pub(crate) fn new(writer: WriterGuard, shared: Arc<Shared>, base_seq: u64, meta: Meta) -> Self {
        WriteTxn {
            writer,
            shared,
            base_seq,
            meta_at_start: meta.clone(),
            meta,
            dirty: PageMap::default(),
            spill: None,
            colls: NameMap::default(),
            new_schemas: Vec::new(),
            alloc: Allocator::default(),
            log: None,
        }
    }

    /// Loads the change log's state when the database keeps one, so this transaction's
    /// changes are recorded.
    pub(crate) fn start_log(&mut self) -> Result<()> {
        if self.meta.required_features & format::FEATURE_CHANGES != 0 {
            let state = changelog::load(self, self.meta.catalog_root)?.ok_or_else(|| {
                Error::corrupt("the header says the file keeps a change log, the catalog has none")
            })?;
            self.log = Some(Pending::new(state));
        }
        Ok(())
    }

    /// Sets who makes this transaction's commit and why, as its change record will say
    /// (nothing is recorded when the database keeps no change log).
    pub fn set_context(&mut self, context: changelog::Context) {
        if let Some(log) = &mut self.log {
            log.context = context;
        }
    }

    /// True when this transaction's commit appends a change record.
    pub fn records_changes(&self) -> bool {
        self.log.as_ref().is_some_and(|l| !l.silent)
    }

    /// The state of `collection`, created (of kind `create`) if missing and `create` is set.
    fn state(
        &mut self,
        collection: &str,
        create: Option<CollectionKind>,
    ) -> Result<Option<&mut CollState>> {
        catalog::check_name(collection)?;
        if !self.colls.contains_key(collection) {
            let rec = match catalog::load(self, self.meta.catalog_root, collection)? {
                Some(rec) => CollState {
                    rec,
                    dirty: false,
                    publish_root: false,
                    indexes: None,
                    indexes_changed: false,
                    table_keys: None,
                },
                None if create.is_some() => {
                    let root = btree::create(self)?;
                    let id = self.meta.next_collection_id;
                    self.meta.next_collection_id += 1;
                    let rec = CollectionRecord {
                        id,
                        root,
                        next_id: 1,
                        count: 0,
                        kind: create.unwrap_or_default(),
                    };
                    // Stored now so catalog listings inside this transaction include it.
                    catalog::store(self, self.meta.catalog_root, collection, &rec)?;
                    CollState {
                        rec,
                        dirty: true,
                        publish_root: true,
                        indexes: Some(Arc::new(Vec::new())),
                        indexes_changed: false,
                        table_keys: None,
                    }
                }
                None => return Ok(None),
            };
            self.colls.insert(collection.to_string(), rec);
        }
        Ok(self.colls.get_mut(collection))
    }

    /// The state of `collection`, created as an id collection if missing.
    pub(crate) fn writable_state(&mut self, collection: &str) -> Result<&mut CollState> {
        self.state_of_kind(collection, None)
    }

    /// The state of `collection`, created of kind `want` if missing (an id collection when
    /// None); with `want` set, an existing collection of another kind is refused.
    fn state_of_kind(
        &mut self,
        collection: &str,
        want: Option<CollectionKind>,
    ) -> Result<&mut CollState> {
        let st = self
            .state(collection, Some(want.unwrap_or_default()))?
            .ok_or_else(|| {
                Error::corrupt(format!("collection {collection:?} could not be created"))
            })?;
        match want {
            Some(kind) if st.rec.kind != kind => Err(wrong_kind(collection, st.rec.kind)),
            _ => Ok(st),
        }
    }

    /// Creates `collection` as a collection of `kind` if it does not exist; returns true if
    /// it created it. One of another kind is `InvalidArgument`.
    pub fn create_collection(&mut self, collection: &str, kind: CollectionKind) -> Result<bool> {
        self.check_usable()?;
        // (A store calls this before each batch: one lookup when it is already there.)
        if let Some(st) = self.colls.get(collection) {
            return match st.rec.kind == kind {
                true => Ok(false),
                false => Err(wrong_kind(collection, st.rec.kind)),
            };
        }
        let existed = self.state(collection, None)?.is_some();
        self.state_of_kind(collection, Some(kind))?;
        if !existed {
            if let Some(log) = &mut self.log {
                log.push(collection, EntryRef::Create(kind));
            }
        }
        Ok(!existed)
    }

    /// Records the shape of `collection` at `schema.version`, or checks it against the one
    /// already stored: a different shape is `InvalidArgument`, never a silent mis-decode.
    pub fn register_schema(&mut self, collection: &str, schema: &Schema) -> Result<Arc<Schema>> {
        let root = self.meta.catalog_root;
        // Versions only move forward: once a newer version is stored (and older records
        // may have been migrated to it, their schemas dropped), an older one cannot come
        // back and mix records the newer class no longer describes into the collection.
        if let Some(newer) = catalog::list_schemas(self, root, collection)?
            .iter()
            .map(|s| s.version)
            .filter(|v| *v > schema.version)
            .max()
        {
            return Err(Error::invalid(format!(
                "collection {collection:?} holds documents of version {newer}, so version {} \
                 can no longer be written; write with the version-{newer} class",
                schema.version
            )));
        }
        if let Some(stored) = self.schema(collection, schema.version)? {
            if let Some(diff) = schema.difference(&stored) {
                return Err(Error::invalid(format!(
                    "collection {collection:?} version {} is stored with a different shape: {diff}; \
                     use another collection name or bump the version",
                    schema.version
                )));
            }
            return Ok(stored);
        }
        catalog::store_schema(self, root, collection, schema)?;
        if let Some(log) = &mut self.log {
            log.push(collection, EntryRef::Schema(schema));
        }
        let schema = Arc::new(schema.clone());
        self.new_schemas
            .push((collection.to_string(), schema.clone()));
        Ok(schema)
    }

    /// Forgets the stored schema of `collection` at `version`. For a caller that has just
    /// rewritten every record of that version at another one (a migration): no record may
    /// still need it. Returns whether one was stored.
    pub fn drop_schema(&mut self, collection: &str, version: u32) -> Result<bool> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        self.new_schemas
            .retain(|(c, s)| !(c == collection && s.version == version));
        let root = self.meta.catalog_root;
        let dropped = catalog::delete_schema(self, root, collection, version)?;
        if let (true, Some(log)) = (dropped, &mut self.log) {
            log.push(collection, EntryRef::DropSchema(version));
        }
        Ok(dropped)
    }

    /// Stores raw bytes under a new id (one more than the highest id ever used) and
    /// returns the id.
    pub fn insert(&mut self, collection: &str, value: &[u8]) -> Result<u64> {
        self.insert_doc(collection, DocKind::Raw, 0, value)
    }

    /// Stores raw bytes under `id`, replacing any document there; returns true if it
    /// replaced one. Later `insert`s hand out ids above `id`.
    pub fn put(&mut self, collection: &str, id: u64, value: &[u8]) -> Result<bool> {
        self.put_doc(collection, id, DocKind::Raw, 0, value)
    }

    fn stored(
        &self,
        collection: &str,
        kind: DocKind,
        type_version: u32,
        payload: &[u8],
        expires_at: Option<u64>,
    ) -> Vec<u8> {
        let collection_id = self.colls.get(collection).map_or(0, |st| st.rec.id);
        let compressed = (self.meta.required_features & format::FEATURE_LZ4 != 0
            && payload.len() >= COMPRESS_MIN)
            .then(|| compress(payload))
            .flatten();
        let header = DocHeader {
            kind,
            flags: if compressed.is_some() {
                FLAG_COMPRESSED
            } else {
                0
            },
            type_version,
            collection_id,
            expires_at,
        };
        let body = compressed.as_deref().unwrap_or(payload);
        let mut buf = Vec::with_capacity(body.len() + 12);
        header.encode_into(&mut buf);
        buf.extend_from_slice(body);
        buf
    }

    /// Like [`WriteTxn::insert`] for a payload of the given kind and schema version.
    pub fn insert_doc(
        &mut self,
        collection: &str,
        kind: DocKind,
        type_version: u32,
        payload: &[u8],
    ) -> Result<u64> {
        Ok(self
            .write_doc(collection, None, kind, type_version, payload)?
            .0)
    }

    /// Like [`WriteTxn::put`] for a payload of the given kind and schema version.
    pub fn put_doc(
        &mut self,
        collection: &str,
        id: u64,
        kind: DocKind,
        type_version: u32,
        payload: &[u8],
    ) -> Result<bool> {
        check_id(id)?;
        Ok(self
            .write_doc(collection, Some(id), kind, type_version, payload)?
            .1)
    }

    /// Encodes `doc` (a map of field name → value) by the schema stored for `collection` at
    /// `type_version` and stores it as a typed document under `id` (a new id when None), as
    /// the class that owns the schema would have written it. Returns the id and whether a
    /// document was replaced. A value that does not fit the schema, or a version with no
    /// stored schema, is `InvalidArgument` and changes nothing.
    pub fn write_typed(
        &mut self,
        collection: &str,
        id: Option<u64>,
        type_version: u32,
        doc: &Datum,
    ) -> Result<(u64, bool)> {
        if let Some(id) = id {
            check_id(id)?;
        }
        let payload = self.encode_typed(collection, type_version, doc)?;
        self.write_doc(collection, id, DocKind::Typed, type_version, &payload)
    }

    /// As [`WriteTxn::write_typed`], under `key` of a keyed collection (created keyed if
    /// missing), replacing any document there; returns true if it replaced one.
    pub fn write_typed_key(
        &mut self,
        collection: &str,
        key: &[u8],
        type_version: u32,
        doc: &Datum,
    ) -> Result<bool> {
        catalog::check_key(key)?;
        let payload = self.encode_typed(collection, type_version, doc)?;
        self.put_key_doc(collection, key, DocKind::Typed, type_version, &payload)
    }

    /// The typed payload of `doc` by the schema stored for `collection` at `type_version`.
    fn encode_typed(
        &mut self,
        collection: &str,
        type_version: u32,
        doc: &Datum,
    ) -> Result<Vec<u8>> {
        let schema = self.typed_schema(collection, type_version)?;
        dynamic::encode(&schema.root, doc)
    }

    /// Stores raw bytes under `key` in the keyed collection `collection` (created if
    /// missing), replacing any document there; returns true if it replaced one.
    pub fn put_key(&mut self, collection: &str, key: &[u8], value: &[u8]) -> Result<bool> {
        self.put_key_doc(collection, key, DocKind::Raw, 0, value)
    }

    /// Like [`WriteTxn::put_key`] for a payload of the given kind and schema version.
    pub fn put_key_doc(
        &mut self,
        collection: &str,
        key: &[u8],
        kind: DocKind,
        type_version: u32,
        payload: &[u8],
    ) -> Result<bool> {
        self.put_key_doc_until(collection, key, kind, type_version, payload, None)
    }

    /// Like [`WriteTxn::put_key_doc`] for a document that expires at `expires_at`
    /// (microseconds since the Unix epoch; None: never). Table reads treat an expired
    /// document as gone; the collection's Expiry index, if it has one, lists the time.
    pub fn put_key_doc_until(
        &mut self,
        collection: &str,
        key: &[u8],
        kind: DocKind,
        type_version: u32,
        payload: &[u8],
        expires_at: Option<u64>,
    ) -> Result<bool> {
        catalog::check_key(key)?;
        let target = Target::Key(key);
        let (_, replaced) =
            self.write_at(collection, target, kind, type_version, payload, expires_at)?;
        Ok(replaced)
    }

    /// Stores a document (under a new id when `id` is None) and maintains the collection's
    /// indexes. Returns the id and whether a document was replaced.
    fn write_doc(
        &mut self,
        collection: &str,
        id: Option<u64>,
        kind: DocKind,
        type_version: u32,
        payload: &[u8],
    ) -> Result<(u64, bool)> {
        let target = match id {
            Some(id) => Target::Id(id),
            None => Target::NewId,
        };
        self.write_at(collection, target, kind, type_version, payload, None)
    }

    /// Stores a document at `target` and maintains the collection's indexes. Unique
    /// violations are found before anything changes, so a refused write leaves no trace.
    /// Returns the id (0 for a key) and whether a document was replaced.
    fn write_at(
        &mut self,
        collection: &str,
        target: Target<'_>,
        kind: DocKind,
        type_version: u32,
        payload: &[u8],
        expires_at: Option<u64>,
    ) -> Result<(u64, bool)> {
        self.check_usable()?;
        let want = match target {
            Target::Key(_) => CollectionKind::Keyed,
            _ => CollectionKind::Ids,
        };
        let (root, id) = {
            let st = self.state_of_kind(collection, Some(want))?;
            let id = match target {
                Target::Id(id) => id,
                Target::NewId if st.rec.next_id == 0 => {
                    return Err(Error::invalid(format!(
                        "collection {collection:?} has used every id up to 2**64-1; no ids are left for insert (use upsert with an explicit id)"
                    )))
                }
                Target::NewId => st.rec.next_id,
                Target::Key(_) => 0,
            };
            (st.rec.root, id)
        };
        let id_bytes = id_key(id);
        let pk: &[u8] = match target {
            Target::Key(key) => key,
            _ => &id_bytes,
        };
        let defs = self.index_defs(collection)?;
        let keep_old = self.log.as_ref().is_some_and(|l| l.images().keeps_old());
        // An insert takes an id above every id ever used: nothing can be stored there.
        let old = match target {
            Target::NewId => None,
            _ if defs.is_empty() && !keep_old => None,
            _ => btree::get(self, root, pk)?,
        };
        let old_image = match (&old, keep_old) {
            (Some(v), true) => Some(v.to_vec()),
            _ => None,
        };
        let changes = if defs.is_empty() {
            Vec::new()
        } else {
            let new_doc = self.decode_new(collection, kind, type_version, payload, &defs)?;
            let (old_doc, old_expires) = match old {
                Some(stored) => {
                    let stored = Value::from_tree(stored)?;
                    let h = stored.header();
                    let view =
                        self.index_view(collection, h.kind, h.type_version, &stored, &defs)?;
                    (view, h.expires_at)
                }
                None => (None, None),
            };
            let change = index::Change {
                collection,
                keyed: want == CollectionKind::Keyed,
                pk,
                old: old_doc.as_ref(),
                new: new_doc.as_ref(),
                old_expires,
                new_expires: expires_at,
                building: false,
            };
            index::plan_changes(self, &defs, &change)?
        };
        let value = self.stored(collection, kind, type_version, payload, expires_at);
        let replaced = btree::put(self, root, pk, &value)?;
        index::apply_changes(self, &defs, pk, changes)?;
        if let Some(log) = &mut self.log {
            let keyed = want == CollectionKind::Keyed;
            log.data(
                collection,
                keyed,
                pk,
                replaced,
                old_image.as_deref(),
                Some(&value),
            );
        }
        if let Some(st) = self.colls.get_mut(collection) {
            if want == CollectionKind::Ids {
                // 0 means every id has been handed out (the id after u64::MAX).
                st.rec.next_id = match (st.rec.next_id, id.checked_add(1)) {
                    (0, _) | (_, None) => 0,
                    (next, Some(after)) => next.max(after),
                };
            }
            if !replaced {
                st.rec.count += 1;
            }
            st.dirty = true;
        }
        Ok((id, replaced))
    }

    /// Removes document `id`; returns whether it existed.
    pub fn delete(&mut self, collection: &str, id: u64) -> Result<bool> {
        self.check_usable()?;
        check_id(id)?;
        self.delete_at(collection, CollectionKind::Ids, &id_key(id))
    }

    /// Removes the document under `key` of a keyed collection; returns whether it existed.
    pub fn delete_key(&mut self, collection: &str, key: &[u8]) -> Result<bool> {
        self.check_usable()?;
        catalog::check_key(key)?;
        self.delete_at(collection, CollectionKind::Keyed, key)
    }

    fn delete_at(&mut self, collection: &str, want: CollectionKind, pk: &[u8]) -> Result<bool> {
        let Some(st) = self.state(collection, None)? else {
            return Ok(false);
        };
        if st.rec.kind != want {
            return Err(wrong_kind(collection, st.rec.kind));
        }
        let root = st.rec.root;
        let defs = self.index_defs(collection)?;
        let keep_old = self.log.as_ref().is_some_and(|l| l.images().keeps_old());
        let old = match defs.is_empty() && !keep_old {
            true => None,
            false => match btree::get(self, root, pk)? {
                Some(stored) => Some(stored),
                None => return Ok(false),
            },
        };
        let old_image = old.as_ref().filter(|_| keep_old).map(|v| v.to_vec());
        if let (false, Some(stored)) = (defs.is_empty(), old) {
            let stored = Value::from_tree(stored)?;
            let h = stored.header();
            let old_doc = self.index_view(collection, h.kind, h.type_version, &stored, &defs)?;
            let change = index::Change {
                collection,
                keyed: want == CollectionKind::Keyed,
                pk,
                old: old_doc.as_ref(),
                new: None,
                old_expires: h.expires_at,
                new_expires: None,
                building: false,
            };
            let changes = index::plan_changes(self, &defs, &change)?;
            index::apply_changes(self, &defs, pk, changes)?;
        }
        let removed = btree::delete(self, root, pk)?;
        if removed {
            if let Some(st) = self.colls.get_mut(collection) {
                st.rec.count -= 1;
                st.dirty = true;
            }
            if let Some(log) = &mut self.log {
                let keyed = want == CollectionKind::Keyed;
                log.data(collection, keyed, pk, true, old_image.as_deref(), None);
            }
        }
        Ok(removed)
    }

    /// The indexes of `collection` as this transaction sees them.
    fn index_defs(&mut self, collection: &str) -> Result<Arc<Vec<IndexDef>>> {
        let Some(st) = self.colls.get(collection) else {
            return Ok(Arc::new(Vec::new()));
        };
        if let Some(defs) = &st.indexes {
            return Ok(defs.clone());
        }
        let defs = match self.shared.cached_indexes(collection, self.base_seq) {
            Some(defs) => defs,
            None => Arc::new(catalog::list_indexes(
                self,
                self.meta.catalog_root,
                collection,
            )?),
        };
        if let Some(st) = self.colls.get_mut(collection) {
            st.indexes = Some(defs.clone());
        }
        Ok(defs)
    }

    /// Decodes a payload about to be written; a payload that does not match its codec is
    /// the caller's mistake.
    /// The part of a document its indexes read: for a typed document only the top-level
    /// fields the index paths start with (the others are skipped, not built), the whole
    /// value otherwise. None for raw bytes.
    fn index_view(
        &self,
        collection: &str,
        kind: DocKind,
        version: u32,
        payload: &[u8],
        defs: &[IndexDef],
    ) -> Result<Option<Datum>> {
        if kind != DocKind::Typed {
            return self.decode_payload(collection, kind, version, payload);
        }
        let schema = self.typed_schema(collection, version)?;
        let mut heads: Vec<&str> = Vec::new();
        for path in defs.iter().flat_map(|d| &d.spec.paths) {
            let head = path.split('.').next().unwrap_or(path);
            if !heads.contains(&head) {
                heads.push(head);
            }
        }
        Ok(Some(dynamic::decode_fields_strict(
            &schema.root,
            payload,
            &heads,
        )?))
    }

    fn decode_new(
        &self,
        collection: &str,
        kind: DocKind,
        version: u32,
        payload: &[u8],
        defs: &[IndexDef],
    ) -> Result<Option<Datum>> {
        self.index_view(collection, kind, version, payload, defs)
            .map_err(|e| match e {
                Error::Corruption(m) => {
                    Error::invalid(format!("payload for {collection:?} does not decode: {m}"))
                }
                other => other,
            })
    }

    /// Creates the index if it does not exist (building it from the documents already in
    /// the collection), or rebuilds it if its definition changed. Returns true if it built.
    pub fn ensure_index(&mut self, collection: &str, spec: &IndexSpec) -> Result<bool> {
        self.check_usable()?;
        index::check_spec(spec)?;
        self.writable_state(collection)?;
        let defs = self.index_defs(collection)?;
        let old = defs.iter().find(|d| d.spec.name == spec.name);
        if old.is_some_and(|d| d.spec == *spec && d.ready) {
            return Ok(false);
        }
        let root = btree::create(self)?;
        let def = IndexDef {
            spec: spec.clone(),
            root,
            ready: true,
        };
        if let Err(e) = self.build_index(collection, &def) {
            // Give the half-built tree's pages back (the old index, if any, stays as it
            // was), so a caller that goes on and commits leaks nothing.
            btree::free_all(self, root)?;
            return Err(e);
        }
        if let Some(old) = old {
            btree::free_all(self, old.root)?;
        }
        let catalog_root = self.meta.catalog_root;
        catalog::store_index(self, catalog_root, collection, &def)?;
        let mut next: Vec<IndexDef> = defs
            .iter()
            .filter(|d| d.spec.name != spec.name)
            .cloned()
            .collect();
        next.push(def);
        next.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        if let Some(st) = self.colls.get_mut(collection) {
            st.indexes = Some(Arc::new(next));
            st.indexes_changed = true;
        }
        if let Some(log) = &mut self.log {
            log.push(collection, EntryRef::Index(spec));
        }
        Ok(true)
    }

    /// Fills a new index tree from the documents already stored, a batch at a time.
    fn build_index(&mut self, collection: &str, def: &IndexDef) -> Result<()> {
        let only = Arc::new(vec![def.clone()]);
        let keyed = self.record(collection)?.map(|r| r.kind) == Some(CollectionKind::Keyed);
        let mut from: Option<Vec<u8>> = None;
        loop {
            let batch: Vec<(Vec<u8>, Value)> = if keyed {
                let lo = match &from {
                    Some(k) => Bound::Excluded(k.as_slice()),
                    None => Bound::Unbounded,
                };
                self.scan_keys(collection, lo, Bound::Unbounded, false, 256)?
            } else {
                let start = from.as_deref().map_or(Ok(1), index::pk_id)?;
                let start = if from.is_some() { start + 1 } else { start };
                self.scan(collection, start, 256)?
                    .into_iter()
                    .map(|(id, v)| (id_key(id).to_vec(), v))
                    .collect()
            };
            let Some(last) = batch.last().map(|(pk, _)| pk.clone()) else {
                return Ok(());
            };
            for (pk, value) in batch {
                let doc = self.decode_stored(collection, &value)?;
                let change = index::Change {
                    collection,
                    keyed,
                    pk: &pk,
                    old: None,
                    new: doc.as_ref(),
                    old_expires: None,
                    new_expires: value.header().expires_at,
                    building: true,
                };
                let changes = index::plan_changes(self, &only, &change)?;
                index::apply_changes(self, &only, &pk, changes)?;
            }
            from = Some(last);
        }
    }

    /// Runs `f` with the change log's capture off: for writes that are not a user's data
    /// change of their own (a blob's chunks; its header is recorded).
    pub(crate) fn unlogged<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let log = self.log.take();
        let result = f(self);
        self.log = log;
        result
    }

    /// Hands out the next number of `collection`'s id counter, at least `at_least` (the
    /// ids `insert` uses in an id collection; a keyed collection's is free for its kind to
    /// use, as blob ids).
    pub(crate) fn take_id(&mut self, collection: &str, at_least: u64) -> Result<u64> {
        let st = self.writable_state(collection)?;
        let id = match st.rec.next_id {
            0 => 0,
            next => next.max(at_least),
        };
        if id == 0 {
            return Err(Error::invalid(format!(
                "collection {collection:?} has used every id"
            )));
        }
        // 0 once the last id is handed out, as for inserts.
        st.rec.next_id = id.checked_add(1).unwrap_or(0);
        st.dirty = true;
        Ok(id)
    }

    /// Makes every change durable (per the durability option) and visible to new readers.
    pub fn commit(mut self) -> Result<()> {
        self.check_usable()?;
        let changed: Vec<(String, CollectionRecord)> = self
            .colls
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(n, s)| (n.clone(), s.rec.clone()))
            .collect();
        let spilled = self.spill.as_ref().is_some_and(|s| s.len() > 0);
        if self.dirty.is_empty()
            && !spilled
            && changed.is_empty()
            && self.meta == self.meta_at_start
        {
            return Ok(());
        }
        let catalog_root = self.meta.catalog_root;
        if let Some(log) = self.log.take() {
            changelog::append(&mut self, catalog_root, log, crate::clock::now_micros())?;
        }
        for (name, rec) in &changed {
            catalog::store(&mut self, catalog_root, name, rec)?;
        }
        // Pages above the size (moved away by a compaction) are no longer part of the file.
        let size = self.meta.page_count;
        self.dirty.retain(|no, _| *no < size);
        if let Some(spill) = &mut self.spill {
            spill.retain(|no| no < size);
        }
        self.meta.commit_seq += 1;
        self.meta.wal_generation = self.shared.wal_generation();
        let meta = self.meta.clone();
        meta.write_to(self.page_new(0)?);
        let mut pages: Vec<(u64, PageBuf)> = std::mem::take(&mut self.dirty).into_iter().collect();
        pages.sort_unstable_by_key(|(no, _)| *no);
        for (no, page) in &mut pages {
            format::seal_page(*no, Arc::make_mut(page).as_mut_slice());
        }
        let new_roots = self
            .colls
            .iter()
            .filter(|(_, s)| s.publish_root)
            .map(|(n, s)| (n.clone(), s.rec.primary()))
            .collect();
        let indexes = self
            .colls
            .iter()
            .filter_map(|(n, s)| match (s.indexes_changed, &s.indexes) {
                (true, Some(defs)) => Some((n.clone(), defs.clone())),
                _ => None,
            })
            .collect();
        let commit = Commit {
            base_seq: self.base_seq,
            pages,
            spilled: self
                .spill
                .take()
                .map(|s| s.view())
                .filter(|v| !v.is_empty()),
            meta,
            new_roots,
            schemas: std::mem::take(&mut self.new_schemas),
            indexes,
        };
        self.shared.commit(&self.writer, commit)
    }

    /// A frozen view of this transaction as it is now, its own writes included: later
    /// writes do not show in it. Iterators and queries inside the transaction read one.
    pub fn view(&self) -> Result<TxnView> {
        self.check_usable()?;
        let base = ReadTxn::new(self.shared.pin(self.base_seq, self.meta_at_start.clone()));
        let colls = self
            .colls
            .iter()
            .map(|(name, st)| {
                let view = CollView {
                    rec: st.rec.clone(),
                    indexes: st.indexes.clone(),
                };
                (name.clone(), view)
            })
            .collect();
        Ok(TxnView::new(
            base,
            self.meta.clone(),
            self.dirty.clone(),
            self.spill.as_ref().map(Spill::view),
            colls,
            self.new_schemas.clone(),
        ))
    }

    /// Discards every change (same as dropping the transaction).
    pub fn rollback(self) {}
}

impl WriteTxn {
    /// How many changed pages stay in memory before some move to the spill file.
    fn dirty_budget(&self) -> usize {
        let bytes = (self.shared.opts().cache_size / 4).max(4 << 20);
        (bytes / self.page_size()).max(64)
    }

    /// The spilled image of page `no`, if it is spilled.
    fn spilled(&self, no: u64) -> Result<Option<Vec<u8>>> {
        match &self.spill {
            Some(s) if s.contains(no) => s.get(&self.shared.pager, no),
            _ => Ok(None),
        }
    }

    /// Moves half of the changed pages (never `keep` or the header page) to the spill file
    /// once they outgrow the budget, so a transaction's memory stays bounded whatever it
    /// writes.
    fn maybe_spill(&mut self, keep: u64) -> Result<()> {
        let budget = self.dirty_budget();
        if self.dirty.len() <= budget {
            return Ok(());
        }
        if self.spill.is_none() {
            let slot = self.shared.pager.physical_size();
            self.spill = Some(Spill::create(self.shared.path(), slot)?);
        }
        let mut victims: Vec<u64> = self
            .dirty
            .keys()
            .copied()
            .filter(|no| *no != keep && *no != 0)
            .collect();
        victims.sort_unstable();
        // The highest page numbers are the newest (freshly allocated data pages, written
        // once); the low ones are more often tree nodes the transaction goes back to.
        let from = victims.len().saturating_sub(budget / 2);
        let moved: Vec<(u64, PageBuf)> = victims[from..]
            .iter()
            .filter_map(|no| self.dirty.remove(no).map(|p| (*no, p)))
            .collect();
        let spill = self
            .spill
            .as_mut()
            .ok_or_else(|| Error::corrupt("the spill file vanished"))?;
        for batch in moved.chunks(256) {
            spill.put(&self.shared.pager, batch)?;
        }
        Ok(())
    }

    /// Forgets a changed page altogether (freed or moved by compaction).
    pub(crate) fn forget_page(&mut self, no: u64) {
        self.dirty.remove(&no);
        if let Some(s) = &mut self.spill {
            s.remove(no);
        }
    }
}

impl PageRead for WriteTxn {
    fn page(&self, no: u64) -> Result<PageBuf> {
        if let Some(page) = self.dirty.get(&no) {
            return Ok(page.clone());
        }
        if let Some(page) = self.spilled(no)? {
            return Ok(Arc::new(page));
        }
        if no >= self.meta.page_count {
            return Err(Error::corrupt_page(
                no,
                "page number beyond the database size",
            ));
        }
        self.shared.pager.read(no, self.base_seq)
    }

    fn page_size(&self) -> usize {
        self.shared.pager.page_size()
    }
}

impl PageWrite for WriteTxn {
    fn page_mut(&mut self, no: u64) -> Result<&mut [u8]> {
        if !self.dirty.contains_key(&no) {
            let page = self.page(no)?;
            if let Some(s) = &mut self.spill {
                s.remove(no);
            }
            self.dirty.insert(no, page);
            self.maybe_spill(no)?;
        }
        let page = self
            .dirty
            .get_mut(&no)
            .ok_or_else(|| Error::corrupt_page(no, "vanished"))?;
        Ok(Arc::make_mut(page).as_mut_slice())
    }

    fn page_new(&mut self, no: u64) -> Result<&mut [u8]> {
        let size = self.page_size();
        if !self.dirty.contains_key(&no) {
            if let Some(s) = &mut self.spill {
                s.remove(no);
            }
            self.dirty.insert(no, Arc::new(vec![0u8; size]));
            self.maybe_spill(no)?;
        }
        let page = self
            .dirty
            .entry(no)
            .or_insert_with(|| Arc::new(vec![0u8; size]));
        let buf = Arc::make_mut(page).as_mut_slice();
        buf.fill(0);
        Ok(buf)
    }

    fn alloc_page(&mut self) -> Result<u64> {
        let mut alloc = std::mem::take(&mut self.alloc);
        let result = alloc.alloc(self);
        self.alloc = alloc;
        result
    }

    fn free_page(&mut self, no: u64) -> Result<()> {
        let mut alloc = std::mem::take(&mut self.alloc);
        let result = alloc.free(self, no);
        self.alloc = alloc;
        result
    }
}

impl FreePages for WriteTxn {
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    fn trunk_mut(&mut self, no: u64) -> Result<&mut [u8]> {
        self.page_mut(no)
    }

    fn fresh(&mut self, no: u64) -> Result<&mut [u8]> {
        self.page_new(no)
    }

    fn discard(&mut self, no: u64) {
        self.forget_page(no);
    }
}

impl Source for WriteTxn {
    fn record(&self, collection: &str) -> Result<Option<CollectionRecord>> {
        if let Some(st) = self.colls.get(collection) {
            return Ok(Some(st.rec.clone()));
        }
        catalog::load(self, self.meta.catalog_root, collection)
    }

    fn collection_root(&self, collection: &str) -> Result<Option<Root>> {
        if let Some(st) = self.colls.get(collection) {
            return Ok(Some(st.rec.primary()));
        }
        if let Some(root) = self.shared.cached_root(collection, self.base_seq) {
            return Ok(Some(root));
        }
        Ok(self.record(collection)?.map(|r| r.primary()))
    }

    fn catalog_root(&self) -> u64 {
        self.meta.catalog_root
    }

    fn index_defs(&self, collection: &str) -> Result<Arc<Vec<IndexDef>>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        if let Some(defs) = self.colls.get(collection).and_then(|st| st.indexes.clone()) {
            return Ok(defs);
        }
        if let Some(defs) = self.shared.cached_indexes(collection, self.base_seq) {
            return Ok(defs);
        }
        Ok(Arc::new(catalog::list_indexes(
            self,
            self.meta.catalog_root,
            collection,
        )?))
    }

    fn remember_schema(&self, collection: &str, schema: Arc<Schema>) {
        self.shared.cache_schema(collection, schema, self.base_seq)
    }

    fn cached_schema(&self, collection: &str, version: u32) -> Option<Arc<Schema>> {
        if let Some(s) = self
            .new_schemas
            .iter()
            .find(|(c, s)| c == collection && s.version == version)
        {
            return Some(s.1.clone());
        }
        self.shared.cached_schema(collection, version)
    }

    fn check_usable(&self) -> Result<()> {
        self.shared.check_open()?;
        self.shared.check_not_failed()
    }
}

impl Reader for WriteTxn {}
