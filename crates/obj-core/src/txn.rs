//! Read and write transactions.
//!
//! A [`ReadTxn`] pins a snapshot (a commit number) until it is dropped. A [`WriteTxn`] holds
//! the writer lock, keeps its changed pages private until `commit`, and rolls back when
//! dropped uncommitted.

use crate::btree::{self, Cursor, PageRead, PageWrite, TreeValue};
use crate::catalog::{self, CollectionRecord};
use crate::codec::Schema;
use crate::db::Shared;
use crate::doc::{DocHeader, DocKind};
use crate::error::{Error, Result};
use crate::format::{self, Meta, PageKind};
use crate::freelist;
use crate::pager::{PageBuf, PageMap};
use std::collections::HashMap;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::Ordering;
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
        Ok(catalog::load_schema(self, self.catalog_root(), collection, version)?.map(Arc::new))
    }

    /// Every stored schema of `collection`, oldest version first.
    fn schemas(&self, collection: &str) -> Result<Vec<Schema>> {
        self.check_usable()?;
        catalog::check_name(collection)?;
        catalog::list_schemas(self, self.catalog_root(), collection)
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
                .cache_root(collection, rec.root, self.pin.seq);
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
}

struct CollState {
    rec: CollectionRecord,
    dirty: bool,
    created: bool,
}

/// The single writer. Changes are private until [`WriteTxn::commit`]; dropping the
/// transaction without committing rolls everything back.
pub struct WriteTxn {
    shared: Arc<Shared>,
    base_seq: u64,
    meta: Meta,
    dirty: PageMap<PageBuf>,
    colls: HashMap<String, CollState>,
    /// Schemas stored by this transaction, published to the shared cache at commit.
    new_schemas: Vec<(String, Arc<Schema>)>,
    finished: bool,
}

impl WriteTxn {
    pub(crate) fn new(shared: Arc<Shared>, base_seq: u64, meta: Meta) -> Self {
        WriteTxn {
            shared,
            base_seq,
            meta,
            dirty: PageMap::default(),
            colls: HashMap::new(),
            new_schemas: Vec::new(),
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
                    created: false,
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
                        created: true,
                    }
                }
                None => return Ok(None),
            };
            self.colls.insert(collection.to_string(), rec);
        }
        Ok(self.colls.get_mut(collection))
    }

    fn writable_state(&mut self, collection: &str) -> Result<&mut CollState> {
        self.state(collection, true)?.ok_or_else(|| {
            Error::corrupt(format!("collection {collection:?} could not be created"))
        })
    }

    /// Records the shape of `collection` at `schema.version`, or checks it against the one
    /// already stored: a different shape is `InvalidArgument`, never a silent mis-decode.
    pub fn register_schema(&mut self, collection: &str, schema: &Schema) -> Result<Arc<Schema>> {
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
        let root = self.meta.catalog_root;
        catalog::store_schema(self, root, collection, schema)?;
        let schema = Arc::new(schema.clone());
        self.new_schemas
            .push((collection.to_string(), schema.clone()));
        Ok(schema)
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
        let header = DocHeader {
            kind,
            flags: 0,
            type_version,
            collection_id,
        };
        let mut buf = Vec::with_capacity(payload.len() + 12);
        header.encode_into(&mut buf);
        buf.extend_from_slice(payload);
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
        self.check_usable()?;
        let (root, id) = {
            let st = self.writable_state(collection)?;
            (st.rec.root, st.rec.next_id)
        };
        let value = self.stored(collection, kind, type_version, payload);
        let replaced = btree::put(self, root, &id_key(id), &value)?;
        if replaced {
            return Err(Error::corrupt(format!(
                "id {id} of {collection:?} already in use"
            )));
        }
        if let Some(st) = self.colls.get_mut(collection) {
            st.rec.next_id = id + 1;
            st.rec.count += 1;
            st.dirty = true;
        }
        Ok(id)
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
        self.check_usable()?;
        check_id(id)?;
        let root = self.writable_state(collection)?.rec.root;
        let value = self.stored(collection, kind, type_version, payload);
        let replaced = btree::put(self, root, &id_key(id), &value)?;
        if let Some(st) = self.colls.get_mut(collection) {
            st.rec.next_id = st.rec.next_id.max(id.saturating_add(1));
            if !replaced {
                st.rec.count += 1;
            }
            st.dirty = true;
        }
        Ok(replaced)
    }

    /// Removes document `id`; returns whether it existed.
    pub fn delete(&mut self, collection: &str, id: u64) -> Result<bool> {
        self.check_usable()?;
        check_id(id)?;
        let Some(st) = self.state(collection, false)? else {
            return Ok(false);
        };
        let root = st.rec.root;
        let removed = btree::delete(self, root, &id_key(id))?;
        if removed {
            if let Some(st) = self.colls.get_mut(collection) {
                st.rec.count -= 1;
                st.dirty = true;
            }
        }
        Ok(removed)
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
        if self.dirty.is_empty() && changed.is_empty() {
            self.finished = true;
            self.shared.release_writer();
            return Ok(());
        }
        let catalog_root = self.meta.catalog_root;
        for (name, rec) in &changed {
            catalog::store(&mut self, catalog_root, name, rec)?;
        }
        self.meta.commit_seq += 1;
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
            .filter(|(_, s)| s.created)
            .map(|(n, s)| (n.clone(), s.rec.root))
            .collect();
        let result = self
            .shared
            .commit_pages(self.base_seq, pages, meta, &created);
        if result.is_ok() {
            for (collection, schema) in std::mem::take(&mut self.new_schemas) {
                self.shared.cache_schema(&collection, schema);
            }
        }
        self.finished = true;
        self.shared.release_writer();
        result
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
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(Error::Closed(
                "an earlier write to the log failed; reopen the database to continue".into(),
            ));
        }
        Ok(())
    }
}
