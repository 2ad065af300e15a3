//! Read and write transactions.
//!
//! A [`ReadTxn`] pins a snapshot (a commit number) until it is dropped. A [`WriteTxn`] holds
//! the writer lock, keeps its changed pages private until `commit`, and rolls back when
//! dropped uncommitted.

use crate::btree::{self, Cursor, PageRead, PageWrite, TreeValue};
use crate::catalog::{self, CollectionRecord, IndexDef, IndexKind, IndexSpec};
use crate::codec::Schema;
use crate::codec::{dynamic, Datum};
use crate::db::Shared;
use crate::doc::{compress, expand, DocHeader, DocKind, COMPRESS_MIN, FLAG_COMPRESSED};
use crate::error::{Error, Result};
use crate::format::{self, Meta, PageKind};
use crate::freelist;
use crate::index::{Direction, IndexScan};
use crate::pager::{PageBuf, PageMap};
use crate::view::{CollView, TxnView};
use std::collections::HashMap;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// A stored document: its header plus its payload, which is what it dereferences to.
/// Small payloads are borrowed from a shared page image, so reading one copies nothing.
#[derive(Clone)]
pub struct Value {
    header: DocHeader,
    payload: TreeValue,
}

impl Value {
    fn from_tree(stored: TreeValue) -> Result<Value> {
        let (header, len) = DocHeader::decode(&stored)?;
        if header.flags & FLAG_COMPRESSED != 0 {
            let plain = expand(&header, &stored[len..])?.into_owned();
            return Ok(Value {
                header,
                payload: TreeValue::owned(plain),
            });
        }
        Ok(Value {
            header,
            payload: stored.skip(len),
        })
    }

    pub fn header(&self) -> DocHeader {
        self.header
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.payload.into_vec()
    }
}

impl std::ops::Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.payload
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value({:?}, {} bytes)", self.header.kind, self.len())
    }
}

fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn check_id(id: u64) -> Result<()> {
    if id == 0 {
        return Err(Error::invalid("document id must be >= 1"));
    }
    Ok(())
}

/// Operations shared by read and write transactions.
pub trait Reader: PageRead + Sized {
    #[doc(hidden)]
    fn record(&self, collection: &str) -> Result<Option<CollectionRecord>>;
    #[doc(hidden)]
    fn collection_root(&self, collection: &str) -> Result<Option<u64>>;
    #[doc(hidden)]
    fn catalog_root(&self) -> u64;
    #[doc(hidden)]
    fn check_usable(&self) -> Result<()>;
    #[doc(hidden)]
    fn cached_schema(&self, collection: &str, version: u32) -> Option<Arc<Schema>>;
    #[doc(hidden)]
    fn remember_schema(&self, collection: &str, schema: Arc<Schema>);

    /// The document `id` of `collection`, or None.
    fn get(&self, collection: &str, id: u64) -> Result<Option<Value>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        check_id(id)?;
        match self.collection_root(collection)? {
            Some(root) => btree::get(self, root, &id_key(id))?
                .map(Value::from_tree)
                .transpose(),
            None => Ok(None),
        }
    }

    /// Number of documents in `collection` (0 if it does not exist).
    fn count(&self, collection: &str) -> Result<u64> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        Ok(self.record(collection)?.map_or(0, |r| r.count))
    }

    /// Every document in id order.
    fn iter(&self, collection: &str) -> Result<Iter<'_, Self>> {
        self.range(collection, ..)
    }

    /// Documents whose id lies in `ids`, in id order.
    fn range<B: RangeBounds<u64>>(&self, collection: &str, ids: B) -> Result<Iter<'_, Self>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        let start = match ids.start_bound() {
            Bound::Included(&s) => Some(s),
            Bound::Excluded(&s) => s.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let end = match ids.end_bound() {
            Bound::Included(&e) => Some(e),
            Bound::Excluded(&e) => e.checked_sub(1),
            Bound::Unbounded => Some(u64::MAX),
        };
        let cursor = match (self.collection_root(collection)?, start, end) {
            (Some(root), Some(s), Some(e)) if s <= e => {
                Some(Cursor::seek(self, root, Some(&id_key(s)))?)
            }
            _ => None,
        };
        Ok(Iter {
            src: self,
            cursor,
            last: end.unwrap_or(0),
        })
    }

    /// Up to `limit` documents with id >= `from`, in id order: a resumable scan for callers
    /// that cannot hold a borrowing iterator.
    fn scan(&self, collection: &str, from: u64, limit: usize) -> Result<Vec<(u64, Value)>> {
        self.range(collection, from..)?.take(limit).collect()
    }

    /// The stored schema of `collection` at `version`, if one was registered.
    fn schema(&self, collection: &str, version: u32) -> Result<Option<Arc<Schema>>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        if let Some(s) = self.cached_schema(collection, version) {
            return Ok(Some(s));
        }
        let loaded =
            catalog::load_schema(self, self.catalog_root(), collection, version)?.map(Arc::new);
        if let Some(s) = &loaded {
            // A stored schema never changes, and one this transaction stored itself was
            // found above, so what the catalog holds here is committed: remember it.
            self.remember_schema(collection, s.clone());
        }
        Ok(loaded)
    }

    /// Every stored schema of `collection`, oldest version first.
    fn schemas(&self, collection: &str) -> Result<Vec<Schema>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        catalog::list_schemas(self, self.catalog_root(), collection)
    }

    /// Decodes a stored document into a [`Datum`] (None for raw bytes).
    fn decode_stored(&self, collection: &str, doc: &Value) -> Result<Option<Datum>> {
        let h = doc.header();
        self.decode_payload(collection, h.kind, h.type_version, doc)
    }

    /// The stored schema of typed documents of `collection` at `version`, or an error that
    /// says to register it.
    #[doc(hidden)]
    fn typed_schema(&self, collection: &str, version: u32) -> Result<Arc<Schema>> {
        self.schema(collection, version)?.ok_or_else(|| {
            Error::invalid(format!(
                "no schema is stored for {collection:?} version {version}; register it before writing or reading typed documents"
            ))
        })
    }

    #[doc(hidden)]
    fn decode_payload(
        &self,
        collection: &str,
        kind: DocKind,
        version: u32,
        payload: &[u8],
    ) -> Result<Option<Datum>> {
        match kind {
            DocKind::Raw => Ok(None),
            DocKind::Value => Ok(Some(Datum::decode(payload)?)),
            DocKind::Typed => {
                let schema = self.typed_schema(collection, version)?;
                Ok(Some(dynamic::decode(&schema.root, payload)?))
            }
        }
    }

    /// Every index of `collection`, by name.
    fn indexes(&self, collection: &str) -> Result<Arc<Vec<IndexDef>>>;

    /// The index `name` of `collection`, or `NotFound`.
    fn index(&self, collection: &str, name: &str) -> Result<IndexDef> {
        self.indexes(collection)?
            .iter()
            .find(|d| d.spec.name == name)
            .cloned()
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "collection {collection:?} has no index named {name:?}"
                ))
            })
    }

    /// The id of the document whose unique index `name` holds `values`.
    fn find_unique(&self, collection: &str, name: &str, values: &[Datum]) -> Result<Option<u64>> {
        let def = self.index(collection, name)?;
        if def.spec.kind != IndexKind::Unique {
            return Err(Error::invalid(format!(
                "index {name:?} of {collection:?} is a {} index, not unique; use an index range instead",
                def.spec.kind.name()
            )));
        }
        let key = crate::codec::keys::encode(values)?;
        match btree::get(self, def.root, &key)? {
            Some(v) => Ok(Some(crate::index::entry_id(IndexKind::Unique, &key, &v)?)),
            None => Ok(None),
        }
    }

    /// A scan of index `name` between inclusive bounds (None = unbounded), in key order.
    fn index_scan(
        &self,
        collection: &str,
        name: &str,
        lo: Option<&[Datum]>,
        hi: Option<&[Datum]>,
    ) -> Result<IndexScan> {
        self.index_walk(collection, name, lo, hi, Direction::Forward)
    }

    /// A scan of index `name` between inclusive bounds, in key order or its exact reverse.
    fn index_walk(
        &self,
        collection: &str,
        name: &str,
        lo: Option<&[Datum]>,
        hi: Option<&[Datum]>,
        direction: Direction,
    ) -> Result<IndexScan> {
        let def = self.index(collection, name)?;
        IndexScan::new(def.root, def.spec.kind, lo, hi, direction)
    }

    /// Names of all collections, sorted.
    fn collections(&self) -> Result<Vec<String>> {
        self.check_usable()?;
        Ok(catalog::list(self, self.catalog_root())?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }
}

/// Iterator over `(id, value)` pairs of a collection, in id order.
pub struct Iter<'a, R: Reader> {
    src: &'a R,
    cursor: Option<Cursor>,
    last: u64,
}

impl<R: Reader> Iterator for Iter<'_, R> {
    type Item = Result<(u64, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        let cursor = self.cursor.as_mut()?;
        let step = (|| {
            let Some((page, i)) = cursor.next(self.src)? else {
                return Ok(None);
            };
            let key = btree::node::key(&page, i);
            let id: [u8; 8] = key
                .try_into()
                .map_err(|_| Error::corrupt("document key is not 8 bytes long"))?;
            let id = u64::from_be_bytes(id);
            if id > self.last {
                return Ok(None);
            }
            Ok(Some((
                id,
                Value::from_tree(TreeValue::from_leaf(self.src, &page, i)?)?,
            )))
        })();
        match step {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.cursor = None;
                None
            }
            Err(e) => {
                self.cursor = None;
                Some(Err(e))
            }
        }
    }
}

/// Encoded index keys (without id) to remove and to add for one index.
type IndexChange = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The part of a snapshot that must be released when the last user is gone.
struct Pin {
    shared: Arc<Shared>,
    seq: u64,
    meta: Meta,
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.shared.unpin_reader(self.seq);
    }
}

/// A consistent, read-only view of the database as of one commit. Cheap to clone; readers
/// never block the writer and never see its uncommitted or partial work.
#[derive(Clone)]
pub struct ReadTxn {
    pin: Arc<Pin>,
}

impl ReadTxn {
    pub(crate) fn new(shared: Arc<Shared>, seq: u64, meta: Meta) -> Self {
        ReadTxn {
            pin: Arc::new(Pin { shared, seq, meta }),
        }
    }

    /// The commit this snapshot sees.
    pub fn commit_seq(&self) -> u64 {
        self.pin.seq
    }

    pub(crate) fn meta(&self) -> &Meta {
        &self.pin.meta
    }
}

impl PageRead for ReadTxn {
    fn page(&self, no: u64) -> Result<PageBuf> {
        if no >= self.pin.meta.page_count {
            return Err(Error::corrupt_page(
                no,
                "page number beyond the database size",
            ));
        }
        self.pin.shared.pager.read(no, self.pin.seq)
    }

    fn page_size(&self) -> usize {
        self.pin.shared.pager.page_size()
    }
}

impl Reader for ReadTxn {
    fn record(&self, collection: &str) -> Result<Option<CollectionRecord>> {
        catalog::load(self, self.pin.meta.catalog_root, collection)
    }

    fn collection_root(&self, collection: &str) -> Result<Option<u64>> {
        if let Some(root) = self.pin.shared.cached_root(collection, self.pin.seq) {
            return Ok(Some(root));
        }
        let rec = self.record(collection)?;
        if let Some(rec) = &rec {
            self.pin
                .shared
                .offer_root(collection, rec.root, self.pin.seq);
        }
        Ok(rec.map(|r| r.root))
    }

    fn catalog_root(&self) -> u64 {
        self.pin.meta.catalog_root
    }

    fn check_usable(&self) -> Result<()> {
        self.pin.shared.check_open()
    }

    fn cached_schema(&self, collection: &str, version: u32) -> Option<Arc<Schema>> {
        self.pin.shared.cached_schema(collection, version)
    }

    fn remember_schema(&self, collection: &str, schema: Arc<Schema>) {
        self.pin.shared.cache_schema(collection, schema)
    }

    fn indexes(&self, collection: &str) -> Result<Arc<Vec<IndexDef>>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        let shared = &self.pin.shared;
        if let Some(defs) = shared.cached_indexes(collection, self.pin.seq) {
            return Ok(defs);
        }
        let defs = Arc::new(catalog::list_indexes(
            self,
            self.pin.meta.catalog_root,
            collection,
        )?);
        shared.offer_indexes(collection, self.pin.seq, defs.clone());
        Ok(defs)
    }
}

pub(crate) struct CollState {
    pub(crate) rec: CollectionRecord,
    pub(crate) dirty: bool,
    /// The root is new (created, or moved by compaction): publish it at commit.
    pub(crate) publish_root: bool,
    /// Index definitions, loaded on first use.
    pub(crate) indexes: Option<Arc<Vec<IndexDef>>>,
    pub(crate) indexes_changed: bool,
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
    pub(crate) colls: HashMap<String, CollState>,
    /// Schemas stored by this transaction, published to the shared cache at commit.
    pub(crate) new_schemas: Vec<(String, Arc<Schema>)>,
    pub(crate) finished: bool,
    /// During compaction: the free pages below the target size, handed out lowest first.
    pub(crate) compact_holes: Option<std::collections::VecDeque<u64>>,
}

impl WriteTxn {
    pub(crate) fn new(shared: Arc<Shared>, base_seq: u64, meta: Meta) -> Self {
        WriteTxn {
            shared,
            base_seq,
            meta_at_start: meta.clone(),
            meta,
            dirty: PageMap::default(),
            colls: HashMap::new(),
            new_schemas: Vec::new(),
            compact_holes: None,
            finished: false,
        }
    }

    fn state(&mut self, collection: &str, create: bool) -> Result<Option<&mut CollState>> {
        catalog::check_name(collection)?;
        if !self.colls.contains_key(collection) {
            let rec = match catalog::load(self, self.meta.catalog_root, collection)? {
                Some(rec) => CollState {
                    rec,
                    dirty: false,
                    publish_root: false,
                    indexes: None,
                    indexes_changed: false,
                },
                None if create => {
                    let root = btree::create(self)?;
                    let id = self.meta.next_collection_id;
                    self.meta.next_collection_id += 1;
                    let rec = CollectionRecord {
                        id,
                        root,
                        next_id: 1,
                        count: 0,
                    };
                    // Stored now so catalog listings inside this transaction include it.
                    catalog::store(self, self.meta.catalog_root, collection, &rec)?;
                    CollState {
                        rec,
                        dirty: true,
                        publish_root: true,
                        indexes: Some(Arc::new(Vec::new())),
                        indexes_changed: false,
                    }
                }
                None => return Ok(None),
            };
            self.colls.insert(collection.to_string(), rec);
        }
        Ok(self.colls.get_mut(collection))
    }

    pub(crate) fn writable_state(&mut self, collection: &str) -> Result<&mut CollState> {
        self.state(collection, true)?.ok_or_else(|| {
            Error::corrupt(format!("collection {collection:?} could not be created"))
        })
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
        catalog::delete_schema(self, root, collection, version)
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
        let schema = self.typed_schema(collection, type_version)?;
        let payload = dynamic::encode(&schema.root, doc)?;
        self.write_doc(collection, id, DocKind::Typed, type_version, &payload)
    }

    /// Stores a document (under a new id when `id` is None) and maintains the collection's
    /// indexes. Unique violations are found before anything changes, so a refused write
    /// leaves no trace. Returns the id and whether a document was replaced.
    fn write_doc(
        &mut self,
        collection: &str,
        id: Option<u64>,
        kind: DocKind,
        type_version: u32,
        payload: &[u8],
    ) -> Result<(u64, bool)> {
        self.check_usable()?;
        let id_given = id.is_some();
        let (root, id) = {
            let st = self.writable_state(collection)?;
            let id = match id {
                Some(id) => id,
                None if st.rec.next_id == 0 => {
                    return Err(Error::invalid(format!(
                        "collection {collection:?} has used every id up to 2**64-1; no ids are left for insert (use upsert with an explicit id)"
                    )))
                }
                None => st.rec.next_id,
            };
            (st.rec.root, id)
        };
        let defs = self.index_defs(collection)?;
        let changes = if defs.is_empty() {
            Vec::new()
        } else {
            let new_doc = self.decode_new(collection, kind, type_version, payload, &defs)?;
            // An insert takes an id above every id ever used: nothing can be stored there.
            let old = match id_given {
                true => btree::get(self, root, &id_key(id))?,
                false => None,
            };
            let old_doc = match old {
                Some(stored) => {
                    let stored = Value::from_tree(stored)?;
                    let h = stored.header();
                    self.index_view(collection, h.kind, h.type_version, &stored, &defs)?
                }
                None => None,
            };
            self.plan_index_changes(
                collection,
                &defs,
                id,
                old_doc.as_ref(),
                new_doc.as_ref(),
                false,
            )?
        };
        let value = self.stored(collection, kind, type_version, payload);
        let replaced = btree::put(self, root, &id_key(id), &value)?;
        self.apply_index_changes(&defs, id, changes)?;
        if let Some(st) = self.colls.get_mut(collection) {
            // 0 means every id has been handed out (the id after u64::MAX).
            st.rec.next_id = match (st.rec.next_id, id.checked_add(1)) {
                (0, _) | (_, None) => 0,
                (next, Some(after)) => next.max(after),
            };
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
        let Some(st) = self.state(collection, false)? else {
            return Ok(false);
        };
        let root = st.rec.root;
        let defs = self.index_defs(collection)?;
        if !defs.is_empty() {
            let Some(stored) = btree::get(self, root, &id_key(id))? else {
                return Ok(false);
            };
            let stored = Value::from_tree(stored)?;
            let h = stored.header();
            let old_doc = self.index_view(collection, h.kind, h.type_version, &stored, &defs)?;
            let changes =
                self.plan_index_changes(collection, &defs, id, old_doc.as_ref(), None, false)?;
            self.apply_index_changes(&defs, id, changes)?;
        }
        let removed = btree::delete(self, root, &id_key(id))?;
        if removed {
            if let Some(st) = self.colls.get_mut(collection) {
                st.rec.count -= 1;
                st.dirty = true;
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
        crate::index::check_spec(spec)?;
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
        Ok(true)
    }

    /// Fills a new index tree from the documents already stored, a batch at a time.
    fn build_index(&mut self, collection: &str, def: &IndexDef) -> Result<()> {
        let only = Arc::new(vec![def.clone()]);
        let mut from = 1u64;
        loop {
            let batch = self.scan(collection, from, 256)?;
            let Some(last) = batch.last().map(|(id, _)| *id) else {
                return Ok(());
            };
            for (id, value) in batch {
                let doc = self.decode_stored(collection, &value)?;
                let changes =
                    self.plan_index_changes(collection, &only, id, None, doc.as_ref(), true)?;
                self.apply_index_changes(&only, id, changes)?;
            }
            from = last + 1;
        }
    }

    /// Index entries to remove and add when a document changes from `old` to `new`,
    /// checking unique indexes first.
    fn plan_index_changes(
        &self,
        collection: &str,
        defs: &[IndexDef],
        id: u64,
        old: Option<&Datum>,
        new: Option<&Datum>,
        building: bool,
    ) -> Result<Vec<IndexChange>> {
        let mut plan = Vec::with_capacity(defs.len());
        for def in defs {
            let before = match old {
                Some(d) => crate::index::keys_for(&def.spec, d)?,
                None => Vec::new(),
            };
            let after = match new {
                Some(d) => crate::index::keys_for(&def.spec, d).map_err(|e| match e {
                    Error::InvalidArgument(m) => {
                        Error::invalid(format!("index {:?} of {collection:?}: {m}", def.spec.name))
                    }
                    other => other,
                })?,
                None => Vec::new(),
            };
            let remove: Vec<Vec<u8>> = before
                .iter()
                .filter(|k| after.binary_search(k).is_err())
                .cloned()
                .collect();
            let add: Vec<Vec<u8>> = after
                .iter()
                .filter(|k| before.binary_search(k).is_err())
                .cloned()
                .collect();
            if def.spec.kind == IndexKind::Unique {
                for key in &add {
                    if let Some(v) = btree::get(self, def.root, key)? {
                        let other = crate::index::entry_id(IndexKind::Unique, key, &v)?;
                        if other != id {
                            let shown = new
                                .and_then(|d| d.path(&def.spec.paths[0]))
                                .map(Datum::to_string)
                                .unwrap_or_default();
                            let name = &def.spec.name;
                            if building {
                                return Err(Error::invalid(format!(
                                    "cannot build unique index {name:?} of {collection:?}: documents {other} \
                                     and {id} both hold {shown}; change or delete one of them (by \
                                     collection name, e.g. update({collection:?}, {id}, ...)), or \
                                     declare the field with obj.Index instead of obj.Unique"
                                )));
                            }
                            return Err(Error::invalid(format!(
                                "unique index {name:?} of {collection:?} already holds {shown} (document {other})"
                            )));
                        }
                    }
                }
            }
            plan.push((remove, add));
        }
        Ok(plan)
    }

    fn apply_index_changes(
        &mut self,
        defs: &[IndexDef],
        id: u64,
        plan: Vec<IndexChange>,
    ) -> Result<()> {
        for (def, (remove, add)) in defs.iter().zip(plan) {
            let kind = def.spec.kind;
            for key in remove {
                btree::delete(self, def.root, &crate::index::entry_key(kind, &key, id))?;
            }
            for key in add {
                let value = if kind == IndexKind::Unique {
                    id.to_be_bytes().to_vec()
                } else {
                    Vec::new()
                };
                btree::put(
                    self,
                    def.root,
                    &crate::index::entry_key(kind, &key, id),
                    &value,
                )?;
            }
        }
        Ok(())
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
        if self.dirty.is_empty() && changed.is_empty() && self.meta == self.meta_at_start {
            self.finished = true;
            self.shared.release_writer();
            return Ok(());
        }
        let catalog_root = self.meta.catalog_root;
        for (name, rec) in &changed {
            catalog::store(&mut self, catalog_root, name, rec)?;
        }
        // Pages above the size (moved away by a compaction) are no longer part of the file.
        let size = self.meta.page_count;
        self.dirty.retain(|no, _| *no < size);
        self.meta.commit_seq += 1;
        self.meta.wal_generation = self.shared.wal_generation();
        let meta = self.meta.clone();
        meta.write_to(self.page_new(0)?);
        let mut pages: Vec<(u64, PageBuf)> = std::mem::take(&mut self.dirty).into_iter().collect();
        pages.sort_unstable_by_key(|(no, _)| *no);
        for (no, page) in &mut pages {
            format::seal_page(*no, Arc::make_mut(page).as_mut_slice());
        }
        let created: Vec<(String, u64)> = self
            .colls
            .iter()
            .filter(|(_, s)| s.publish_root)
            .map(|(n, s)| (n.clone(), s.rec.root))
            .collect();
        let result = self
            .shared
            .commit_pages(self.base_seq, pages, meta, &created);
        if result.is_ok() {
            for (collection, schema) in std::mem::take(&mut self.new_schemas) {
                self.shared.cache_schema(&collection, schema);
            }
            for (collection, st) in &self.colls {
                if let (true, Some(defs)) = (st.indexes_changed, &st.indexes) {
                    self.shared
                        .publish_indexes(collection, self.base_seq + 1, defs.clone());
                }
            }
        }
        self.finished = true;
        self.shared.release_writer();
        result
    }

    /// A frozen view of this transaction as it is now, its own writes included: later
    /// writes do not show in it. Iterators and queries inside the transaction read one.
    pub fn view(&self) -> Result<TxnView> {
        self.check_usable()?;
        let base = self
            .shared
            .pin_snapshot(self.base_seq, self.meta_at_start.clone());
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
            colls,
            self.new_schemas.clone(),
        ))
    }

    /// Discards every change (same as dropping the transaction).
    pub fn rollback(mut self) {
        self.finished = true;
        self.shared.release_writer();
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.release_writer();
        }
    }
}

impl PageRead for WriteTxn {
    fn page(&self, no: u64) -> Result<PageBuf> {
        if let Some(page) = self.dirty.get(&no) {
            return Ok(page.clone());
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
            self.dirty.insert(no, page);
        }
        let page = self
            .dirty
            .get_mut(&no)
            .ok_or_else(|| Error::corrupt_page(no, "vanished"))?;
        Ok(Arc::make_mut(page).as_mut_slice())
    }

    fn page_new(&mut self, no: u64) -> Result<&mut [u8]> {
        let size = self.page_size();
        let page = self
            .dirty
            .entry(no)
            .or_insert_with(|| Arc::new(vec![0u8; size]));
        let buf = Arc::make_mut(page).as_mut_slice();
        buf.fill(0);
        Ok(buf)
    }

    fn alloc_page(&mut self) -> Result<u64> {
        if let Some(holes) = &mut self.compact_holes {
            if let Some(no) = holes.pop_front() {
                return Ok(no);
            }
            let no = self.meta.page_count;
            self.meta.page_count += 1;
            return Ok(no);
        }
        let head = self.meta.free_head;
        if head == 0 {
            let no = self.meta.page_count;
            self.meta.page_count += 1;
            return Ok(no);
        }
        let trunk = self.page_mut(head)?;
        if trunk[0] != PageKind::FreeTrunk as u8 {
            return Err(Error::corrupt_page(head, "expected a freelist trunk"));
        }
        let no = match freelist::pop(trunk) {
            Some(no) => no,
            None => {
                self.meta.free_head = freelist::next(trunk);
                head
            }
        };
        if no == 0 || no >= self.meta.page_count {
            return Err(Error::corrupt_page(
                head,
                format!("freelist names page {no} out of range"),
            ));
        }
        self.meta.free_count = self
            .meta
            .free_count
            .checked_sub(1)
            .ok_or_else(|| Error::corrupt_page(0, "free page count underflow"))?;
        Ok(no)
    }

    fn free_page(&mut self, no: u64) -> Result<()> {
        debug_assert!(no != 0 && no < self.meta.page_count);
        self.dirty.remove(&no);
        if let Some(holes) = &mut self.compact_holes {
            holes.push_back(no);
            return Ok(());
        }
        let head = self.meta.free_head;
        if head != 0 {
            let trunk = self.page_mut(head)?;
            if trunk[0] != PageKind::FreeTrunk as u8 {
                return Err(Error::corrupt_page(head, "expected a freelist trunk"));
            }
            if freelist::push(trunk, no) {
                self.meta.free_count += 1;
                return Ok(());
            }
        }
        freelist::init(self.page_new(no)?, head);
        self.meta.free_head = no;
        self.meta.free_count += 1;
        Ok(())
    }
}

impl Reader for WriteTxn {
    fn record(&self, collection: &str) -> Result<Option<CollectionRecord>> {
        if let Some(st) = self.colls.get(collection) {
            return Ok(Some(st.rec.clone()));
        }
        catalog::load(self, self.meta.catalog_root, collection)
    }

    fn collection_root(&self, collection: &str) -> Result<Option<u64>> {
        if let Some(st) = self.colls.get(collection) {
            return Ok(Some(st.rec.root));
        }
        if let Some(root) = self.shared.cached_root(collection, self.base_seq) {
            return Ok(Some(root));
        }
        Ok(self.record(collection)?.map(|r| r.root))
    }

    fn catalog_root(&self) -> u64 {
        self.meta.catalog_root
    }

    fn indexes(&self, collection: &str) -> Result<Arc<Vec<IndexDef>>> {
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
        self.shared.cache_schema(collection, schema)
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
