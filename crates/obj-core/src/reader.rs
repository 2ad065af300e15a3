//! Reading: the [`Reader`] trait (every read a snapshot offers, written once over
//! [`PageRead`] and a few lookups each kind of snapshot answers its own way), the stored
//! [`Value`], the id-order [`Iter`], and [`ReadTxn`], a pinned commit.

use crate::btree::{self, Cursor, PageRead, TreeValue};
use crate::catalog::{self, CollectionKind, CollectionRecord, IndexDef, IndexKind, Root};
use crate::codec::Schema;
use crate::codec::{dynamic, Datum};
use crate::doc::{expand, DocHeader, DocKind, FLAG_COMPRESSED};
use crate::error::{Error, Result};
use crate::format::Meta;
use crate::index::{Direction, IndexScan};
use crate::pager::PageBuf;
use crate::state::Snapshot;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// Where a document sits: its id in an id collection, its key in a keyed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pk {
    /// An id collection's document id.
    Id(u64),
    /// A keyed collection's key.
    Key(Vec<u8>),
}

impl Pk {
    /// The id, for a document of an id collection.
    pub fn id(&self) -> Option<u64> {
        match self {
            Pk::Id(id) => Some(*id),
            Pk::Key(_) => None,
        }
    }
}

/// A stored document: its header plus its payload, which is what it dereferences to.
/// Small payloads are borrowed from a shared page image, so reading one copies nothing.
#[derive(Clone)]
pub struct Value {
    header: DocHeader,
    payload: TreeValue,
}

impl Value {
    pub(crate) fn from_tree(stored: TreeValue) -> Result<Value> {
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

    /// The document header (kind, type version, collection id).
    pub fn header(&self) -> DocHeader {
        self.header
    }

    /// The payload bytes, owned.
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

pub(crate) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn check_id(id: u64) -> Result<()> {
    if id == 0 {
        return Err(Error::invalid("document id must be >= 1"));
    }
    Ok(())
}

/// What each kind of snapshot answers its own way; every read in [`Reader`] is written
/// once over it. `pub` inside this private module, so other crates can name neither it
/// nor [`PageRead`]: [`Reader`] is sealed (only this crate's snapshots implement it).
pub trait Source: PageRead {
    /// The catalog record of `collection` as this snapshot sees it.
    fn record(&self, collection: &str) -> Result<Option<CollectionRecord>>;
    /// The root page and kind of `collection`'s primary tree.
    fn collection_root(&self, collection: &str) -> Result<Option<Root>>;
    /// The root page of the catalog.
    fn catalog_root(&self) -> u64;
    /// Refuses once the database is closed (or, for a writer, failed).
    fn check_usable(&self) -> Result<()>;
    /// A schema this snapshot already knows (its own or a committed one).
    fn cached_schema(&self, collection: &str, version: u32) -> Option<Arc<Schema>>;
    /// Keeps a schema read from the catalog for later reads.
    fn remember_schema(&self, collection: &str, schema: Arc<Schema>);
    /// The index definitions of `collection` in this snapshot.
    fn index_defs(&self, collection: &str) -> Result<Arc<Vec<IndexDef>>>;
}

/// Operations shared by read and write transactions and their views.
pub trait Reader: Source + Sized {
    /// The root of `collection`'s primary tree if the collection exists; one of the other
    /// kind than `want` is `InvalidArgument`.
    #[doc(hidden)]
    fn primary_root(&self, collection: &str, want: CollectionKind) -> Result<Option<u64>> {
        match self.collection_root(collection)? {
            Some(root) if root.kind == want => Ok(Some(root.page)),
            Some(root) => Err(wrong_kind(collection, root.kind)),
            None => Ok(None),
        }
    }

    /// What `collection` is keyed by (None if it does not exist).
    fn kind(&self, collection: &str) -> Result<Option<CollectionKind>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        Ok(self.collection_root(collection)?.map(|r| r.kind))
    }

    /// The document `id` of `collection`, or None.
    fn get(&self, collection: &str, id: u64) -> Result<Option<Value>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        check_id(id)?;
        match self.primary_root(collection, CollectionKind::Ids)? {
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
        let cursor = match (
            self.primary_root(collection, CollectionKind::Ids)?,
            start,
            end,
        ) {
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

    /// The document under `key` in the keyed collection `collection`, or None.
    fn get_key(&self, collection: &str, key: &[u8]) -> Result<Option<Value>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        catalog::check_key(key)?;
        match self.primary_root(collection, CollectionKind::Keyed)? {
            Some(root) => btree::get(self, root, key)?
                .map(Value::from_tree)
                .transpose(),
            None => Ok(None),
        }
    }

    /// The documents of a keyed collection whose keys lie between `lo` and `hi`, in byte
    /// order of the keys, or in reverse.
    fn key_range(
        &self,
        collection: &str,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<KeyIter<'_, Self>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        let bounds = KeyBounds::new(lo, hi);
        let cursor = match self.primary_root(collection, CollectionKind::Keyed)? {
            Some(root) if !bounds.is_empty() => Some(bounds.cursor(self, root, reverse)?),
            _ => None,
        };
        Ok(KeyIter {
            src: self,
            cursor,
            bounds,
            reverse,
        })
    }

    /// The documents of a keyed collection whose keys start with `prefix` (every one for
    /// an empty prefix), in key order or in reverse.
    fn key_prefix(
        &self,
        collection: &str,
        prefix: &[u8],
        reverse: bool,
    ) -> Result<KeyIter<'_, Self>> {
        let hi = crate::codec::keys::prefix_successor(prefix);
        let hi = match &hi {
            Some(h) => Bound::Excluded(h.as_slice()),
            None => Bound::Unbounded,
        };
        self.key_range(collection, Bound::Included(prefix), hi, reverse)
    }

    /// Up to `limit` documents of a keyed collection from `from` (inclusive) on, in key
    /// order or in reverse, none past `to` (exclusive): a resumable scan for callers that
    /// cannot hold a borrowing iterator (resume from the successor of the last key going
    /// forward, from the last key exclusive going backward).
    fn scan_keys(
        &self,
        collection: &str,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        self.key_range(collection, lo, hi, reverse)?
            .take(limit)
            .collect()
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

    /// The index definitions of `collection`, by name.
    fn indexes(&self, collection: &str) -> Result<Arc<Vec<IndexDef>>> {
        self.index_defs(collection)
    }

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
        match self.find_unique_pk(collection, name, values)? {
            Some(Pk::Id(id)) => Ok(Some(id)),
            Some(Pk::Key(_)) => Err(Error::invalid(format!(
                "collection {collection:?} is keyed: its documents have keys, not ids \
                 (find_unique_pk)"
            ))),
            None => Ok(None),
        }
    }

    /// Where the document whose unique index `name` holds `values` sits, in a collection
    /// of either kind.
    fn find_unique_pk(&self, collection: &str, name: &str, values: &[Datum]) -> Result<Option<Pk>> {
        let def = self.index(collection, name)?;
        let Some(pk) = unique_value(self, collection, &def, values)? else {
            return Ok(None);
        };
        // (The kind is looked up only on a hit: the entry holds a key or a big-endian id.)
        if self.kind(collection)? == Some(CollectionKind::Keyed) {
            return Ok(Some(Pk::Key(pk.to_vec())));
        }
        Ok(Some(Pk::Id(crate::index::pk_id(&pk)?)))
    }

    /// The key of the document of a keyed collection whose unique index `name` holds `values`.
    fn find_unique_key(
        &self,
        collection: &str,
        name: &str,
        values: &[Datum],
    ) -> Result<Option<Vec<u8>>> {
        let def = self.index(collection, name)?;
        Ok(unique_value(self, collection, &def, values)?.map(|pk| pk.to_vec()))
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
        let kind = self
            .collection_root(collection)?
            .map_or(CollectionKind::Ids, |r| r.kind);
        IndexScan::new(&def, kind, lo, hi, direction)
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

/// The primary key a unique index entry holds for `values`, borrowed from its page (an id
/// lookup needs no copy of it).
fn unique_value<R: Source>(
    r: &R,
    collection: &str,
    def: &IndexDef,
    values: &[Datum],
) -> Result<Option<TreeValue>> {
    if def.spec.kind != IndexKind::Unique {
        return Err(Error::invalid(format!(
            "index {:?} of {collection:?} is a {} index, not unique; use an index range instead",
            def.spec.name,
            def.spec.kind.name()
        )));
    }
    let key = crate::codec::keys::encode(values)?;
    btree::get(r, def.root, &key)
}

/// Using a collection as the other kind: the message says which kind it is.
pub(crate) fn wrong_kind(collection: &str, kind: CollectionKind) -> Error {
    match kind {
        CollectionKind::Keyed => Error::invalid(format!(
            "collection {collection:?} is a keyed collection (documents under keys, not ids); \
             read and write it by key"
        )),
        CollectionKind::Ids => Error::invalid(format!(
            "collection {collection:?} is an id collection (documents under ids, not keys); \
             read and write it by id, or use another name for keyed documents"
        )),
    }
}

/// Byte-string bounds of a key range.
#[derive(Clone, Debug)]
pub struct KeyBounds {
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
}

impl KeyBounds {
    fn new(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> KeyBounds {
        KeyBounds::owned((lo.map(<[u8]>::to_vec), hi.map(<[u8]>::to_vec)))
    }

    /// Bounds over any tree's keys (an index's as well as a collection's).
    pub(crate) fn owned((lo, hi): (Bound<Vec<u8>>, Bound<Vec<u8>>)) -> KeyBounds {
        KeyBounds { lo, hi }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match (&self.lo, &self.hi) {
            (Bound::Included(l), Bound::Included(h)) => l > h,
            (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h))
            | (Bound::Excluded(l), Bound::Included(h)) => l >= h,
            _ => false,
        }
    }

    pub(crate) fn below_lo(&self, key: &[u8]) -> bool {
        match &self.lo {
            Bound::Included(l) => key < l.as_slice(),
            Bound::Excluded(l) => key <= l.as_slice(),
            Bound::Unbounded => false,
        }
    }

    pub(crate) fn above_hi(&self, key: &[u8]) -> bool {
        match &self.hi {
            Bound::Included(h) => key > h.as_slice(),
            Bound::Excluded(h) => key >= h.as_slice(),
            Bound::Unbounded => false,
        }
    }

    /// A cursor at the first key in range (forward) or after the last (backward).
    pub(crate) fn cursor<R: PageRead>(&self, r: &R, root: u64, reverse: bool) -> Result<Cursor> {
        if reverse {
            let mut after;
            let before = match &self.hi {
                Bound::Excluded(h) => Some(h.as_slice()),
                // The last key <= h is the last key < h's successor (h ‖ 0x00).
                Bound::Included(h) => {
                    after = h.clone();
                    after.push(0);
                    Some(after.as_slice())
                }
                Bound::Unbounded => None,
            };
            Cursor::seek_back(r, root, before)
        } else {
            let mut after;
            let from = match &self.lo {
                Bound::Included(l) => Some(l.as_slice()),
                Bound::Excluded(l) => {
                    after = l.clone();
                    after.push(0);
                    Some(after.as_slice())
                }
                Bound::Unbounded => None,
            };
            Cursor::seek(r, root, from)
        }
    }
}

/// Iterator over `(key, value)` pairs of a keyed collection, in key order or in reverse.
pub struct KeyIter<'a, R: Reader> {
    src: &'a R,
    cursor: Option<Cursor>,
    bounds: KeyBounds,
    reverse: bool,
}

impl<R: Reader> KeyIter<'_, R> {
    /// The next key, without reading its value (counting, finding a table's first key).
    pub fn next_key(&mut self) -> Result<Option<Vec<u8>>> {
        self.step(false).map(|e| e.map(|(k, _)| k))
    }

    fn step(&mut self, with_value: bool) -> Result<Option<(Vec<u8>, Option<Value>)>> {
        let Some(cursor) = self.cursor.as_mut() else {
            return Ok(None);
        };
        let step = (|| {
            let entry = if self.reverse {
                cursor.prev(self.src)?
            } else {
                cursor.next(self.src)?
            };
            let Some((page, i)) = entry else {
                return Ok(None);
            };
            let key = btree::node::key(&page, i);
            let past = if self.reverse {
                self.bounds.below_lo(key)
            } else {
                self.bounds.above_hi(key)
            };
            if past {
                return Ok(None);
            }
            let value = if with_value {
                Some(Value::from_tree(TreeValue::from_leaf(self.src, &page, i)?)?)
            } else {
                None
            };
            Ok(Some((key.to_vec(), value)))
        })();
        if !matches!(step, Ok(Some(_))) {
            self.cursor = None;
        }
        step
    }
}

impl<R: Reader> Iterator for KeyIter<'_, R> {
    type Item = Result<(Vec<u8>, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step(true) {
            Ok(Some((key, Some(value)))) => Some(Ok((key, value))),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }
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

/// A consistent, read-only view of the database as of one commit. Cheap to clone; readers
/// never block the writer and never see its uncommitted or partial work.
#[derive(Clone)]
pub struct ReadTxn {
    pin: Arc<Snapshot>,
}

impl ReadTxn {
    pub(crate) fn new(pin: Snapshot) -> Self {
        ReadTxn { pin: Arc::new(pin) }
    }

    /// The pager this snapshot reads through.
    pub(crate) fn pager(&self) -> &crate::pager::Pager {
        &self.pin.shared.pager
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
        if self.pin.main_only {
            // (The log may restart under this snapshot: it reads the main file only.)
            return self.pin.shared.pager.read_main(no);
        }
        self.pin.shared.pager.read(no, self.pin.seq)
    }

    fn page_size(&self) -> usize {
        self.pin.shared.pager.page_size()
    }
}

impl Source for ReadTxn {
    fn record(&self, collection: &str) -> Result<Option<CollectionRecord>> {
        catalog::load(self, self.pin.meta.catalog_root, collection)
    }

    fn collection_root(&self, collection: &str) -> Result<Option<Root>> {
        if let Some(root) = self.pin.shared.cached_root(collection, self.pin.seq) {
            return Ok(Some(root));
        }
        let rec = self.record(collection)?;
        if let Some(rec) = &rec {
            self.pin
                .shared
                .offer_root(collection, rec.primary(), self.pin.seq);
        }
        Ok(rec.map(|r| r.primary()))
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
        self.pin
            .shared
            .cache_schema(collection, schema, self.pin.seq)
    }

    fn index_defs(&self, collection: &str) -> Result<Arc<Vec<IndexDef>>> {
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

impl Reader for ReadTxn {}
