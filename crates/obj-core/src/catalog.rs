//! The catalog: a B-tree (root in the meta page) mapping names to the records that describe
//! collections. Keys are a one-byte kind prefix plus the name, so later record kinds
//! (schemas, index definitions) share the tree without colliding.

use crate::btree::{self, Cursor, PageRead, PageWrite};
use crate::codec::wire::{put_bytes, put_uvarint, WireReader};
use crate::codec::Schema;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

const COLLECTION_PREFIX: u8 = 0x01;
const SCHEMA_PREFIX: u8 = 0x02;
/// The change log's state (one record, format 4; see `changelog.rs`).
pub(crate) const CHANGE_LOG_KEY: &[u8] = &[0x04];
/// How far a replica has applied another database's change log (format 4).
pub(crate) const APPLIED_KEY: &[u8] = &[0x05];

/// Longest collection name, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A map keyed by collection name. Every read and write looks its collection up in one
/// (transaction state, the shared root and index caches), several times per call, so the
/// hash is FNV-1a: names are short and chosen by the application, not by an attacker, and
/// SipHash cost more than the B-tree descent of a point get.
pub(crate) type NameMap<V> =
    std::collections::HashMap<String, V, std::hash::BuildHasherDefault<NameHasher>>;

/// FNV-1a, 64-bit.
#[derive(Clone, Copy)]
pub(crate) struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// What a collection's primary tree is keyed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CollectionKind {
    /// Engine-assigned `u64` ids (big-endian in the tree), handed out by `insert`.
    #[default]
    Ids,
    /// Caller-given byte strings of 1 to [`MAX_KEY_LEN`] bytes, in byte order.
    Keyed,
}

impl CollectionKind {
    /// The kind as messages and `stat` name it.
    pub fn name(self) -> &'static str {
        match self {
            CollectionKind::Ids => "id",
            CollectionKind::Keyed => "keyed",
        }
    }

    /// The catalog's tag for the kind (absent from the record for `Ids`).
    fn tag(self) -> u64 {
        match self {
            CollectionKind::Ids => 0,
            CollectionKind::Keyed => 1,
        }
    }
}

/// Where a collection's primary tree starts, and what it is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Root {
    /// The root page (never moves, except by compaction).
    pub page: u64,
    /// The collection's kind.
    pub kind: CollectionKind,
}

impl CollectionRecord {
    /// The record's primary tree root and kind.
    pub fn primary(&self) -> Root {
        Root {
            page: self.root,
            kind: self.kind,
        }
    }
}

/// Longest key of a keyed collection, in bytes. A key and its document must fit the tree's
/// cells; longer keys are refused with `InvalidArgument`.
pub const MAX_KEY_LEN: usize = 1024;

/// What the catalog knows about one collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionRecord {
    /// Stable small number, unique per database.
    pub id: u64,
    /// Root page of the primary tree (never moves).
    pub root: u64,
    /// Next id `insert` hands out; ids are never reused. 0 once id `u64::MAX` was used.
    pub next_id: u64,
    /// Live documents.
    pub count: u64,
    /// What the primary tree is keyed by.
    pub kind: CollectionKind,
}

/// The record's first four fields, as format 1 wrote them (postcard).
#[derive(Serialize, Deserialize)]
struct RecordFields {
    id: u64,
    root: u64,
    next_id: u64,
    count: u64,
}

pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("collection name must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "collection name of {} bytes exceeds the limit of {MAX_NAME_LEN} bytes",
            name.len()
        )));
    }
    Ok(())
}

fn key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(COLLECTION_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Format 1 records are the four fields; format 2 appends the kind as a varint, only for
/// kinds other than `Ids`, so an id collection's record is the same bytes in both.
fn encode(rec: &CollectionRecord) -> Result<Vec<u8>> {
    let fields = RecordFields {
        id: rec.id,
        root: rec.root,
        next_id: rec.next_id,
        count: rec.count,
    };
    let mut bytes = postcard::to_allocvec(&fields).map_err(|e| Error::invalid(e.to_string()))?;
    if rec.kind != CollectionKind::Ids {
        put_uvarint(&mut bytes, rec.kind.tag());
    }
    Ok(bytes)
}

fn decode(name: &str, bytes: &[u8]) -> Result<CollectionRecord> {
    let damaged =
        |what: String| Error::corrupt(format!("catalog record of collection {name:?}: {what}"));
    let (f, rest): (RecordFields, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| damaged(e.to_string()))?;
    let kind = if rest.is_empty() {
        CollectionKind::Ids
    } else {
        let mut r = WireReader::new(rest);
        let kind = match r.uvarint()? {
            1 => CollectionKind::Keyed,
            tag => return Err(damaged(format!("unknown collection kind {tag}"))),
        };
        if !r.is_empty() {
            return Err(damaged("trailing bytes".into()));
        }
        kind
    };
    Ok(CollectionRecord {
        id: f.id,
        root: f.root,
        next_id: f.next_id,
        count: f.count,
        kind,
    })
}

/// Refuses a key a keyed collection cannot hold.
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key must not be empty (1 to 1024 bytes)"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "key of {} bytes exceeds the limit of {MAX_KEY_LEN} bytes",
            key.len()
        )));
    }
    Ok(())
}

pub fn load<R: PageRead>(r: &R, catalog_root: u64, name: &str) -> Result<Option<CollectionRecord>> {
    match btree::get(r, catalog_root, &key(name))? {
        Some(v) => Ok(Some(decode(name, &v)?)),
        None => Ok(None),
    }
}

pub fn store<W: PageWrite>(
    w: &mut W,
    catalog_root: u64,
    name: &str,
    rec: &CollectionRecord,
) -> Result<()> {
    btree::put(w, catalog_root, &key(name), &encode(rec)?)?;
    Ok(())
}

/// Every collection, in name order.
pub fn list<R: PageRead>(r: &R, catalog_root: u64) -> Result<Vec<(String, CollectionRecord)>> {
    let mut out = Vec::new();
    let mut cursor = Cursor::seek(r, catalog_root, Some(&[COLLECTION_PREFIX]))?;
    while let Some((page, i)) = cursor.next(r)? {
        let k = btree::node::key(&page, i);
        if k.first() != Some(&COLLECTION_PREFIX) {
            break;
        }
        let name = std::str::from_utf8(&k[1..])
            .map_err(|_| Error::corrupt("catalog holds a collection name that is not UTF-8"))?
            .to_string();
        let value = btree::TreeValue::from_leaf(r, &page, i)?;
        let rec = decode(&name, &value)?;
        out.push((name, rec));
    }
    Ok(out)
}

fn schema_key(collection: &str, version: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(collection.len() + 6);
    k.push(SCHEMA_PREFIX);
    k.extend_from_slice(collection.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub fn load_schema<R: PageRead>(
    r: &R,
    catalog_root: u64,
    collection: &str,
    version: u32,
) -> Result<Option<Schema>> {
    match btree::get(r, catalog_root, &schema_key(collection, version))? {
        Some(v) => {
            let schema = Schema::from_bytes(&v).map_err(|e| {
                Error::corrupt(format!(
                    "stored schema of {collection:?} version {version}: {e}"
                ))
            })?;
            if schema.version != version {
                return Err(Error::corrupt(format!(
                    "stored schema of {collection:?} has the wrong version"
                )));
            }
            Ok(Some(schema))
        }
        None => Ok(None),
    }
}

pub fn store_schema<W: PageWrite>(
    w: &mut W,
    catalog_root: u64,
    collection: &str,
    schema: &Schema,
) -> Result<()> {
    btree::put(
        w,
        catalog_root,
        &schema_key(collection, schema.version),
        &schema.to_bytes(),
    )?;
    Ok(())
}

/// Removes the stored schema of `collection` at `version` (once no record of that version
/// is left); true if there was one.
pub fn delete_schema<W: PageWrite>(
    w: &mut W,
    catalog_root: u64,
    collection: &str,
    version: u32,
) -> Result<bool> {
    btree::delete(w, catalog_root, &schema_key(collection, version))
}

/// Every stored schema of a collection, by version.
pub fn list_schemas<R: PageRead>(
    r: &R,
    catalog_root: u64,
    collection: &str,
) -> Result<Vec<Schema>> {
    let mut prefix = vec![SCHEMA_PREFIX];
    prefix.extend_from_slice(collection.as_bytes());
    prefix.push(0);
    let mut out = Vec::new();
    let mut cursor = Cursor::seek(r, catalog_root, Some(&prefix))?;
    while let Some((page, i)) = cursor.next(r)? {
        let k = btree::node::key(&page, i);
        if !k.starts_with(&prefix) || k.len() != prefix.len() + 4 {
            break;
        }
        let value = btree::TreeValue::from_leaf(r, &page, i)?;
        out.push(
            Schema::from_bytes(&value)
                .map_err(|e| Error::corrupt(format!("stored schema of {collection:?}: {e}")))?,
        );
    }
    Ok(out)
}

const INDEX_PREFIX: u8 = 0x03;

/// How an index maps a document to keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// One entry per document: the value at the path.
    Standard,
    /// Like standard, and no two documents may share a (non-null) value.
    Unique,
    /// One entry per distinct element of the list at the path.
    Each,
    /// One entry per document: the tuple of the values at the paths.
    Composite,
    /// A table's expiry times (no paths): one entry per expiring document, its expiry time
    /// (u64 BE microseconds) then its key, so expired documents are a prefix of the tree.
    Expiry,
}

impl IndexKind {
    /// The kind as the catalog, `stat` and messages name it.
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Standard => "standard",
            IndexKind::Unique => "unique",
            IndexKind::Each => "each",
            IndexKind::Composite => "composite",
            IndexKind::Expiry => "expiry",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            IndexKind::Standard => 0,
            IndexKind::Unique => 1,
            IndexKind::Each => 2,
            IndexKind::Composite => 3,
            IndexKind::Expiry => 4,
        }
    }

    pub(crate) fn of(code: u64) -> Option<Self> {
        match code {
            0 => Some(IndexKind::Standard),
            1 => Some(IndexKind::Unique),
            2 => Some(IndexKind::Each),
            3 => Some(IndexKind::Composite),
            4 => Some(IndexKind::Expiry),
            _ => None,
        }
    }
}

/// What an index is: its name, kind and the dotted field paths it reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexSpec {
    /// The index name, unique within its collection.
    pub name: String,
    /// How entries are derived from a document.
    pub kind: IndexKind,
    /// Dotted field paths the index reads (one, or several for a composite index).
    pub paths: Vec<String>,
}

/// A stored index: its spec, its tree and whether it is ready for queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDef {
    /// What the index is.
    pub spec: IndexSpec,
    /// Root page of the index tree.
    pub root: u64,
    /// False while an index has not been filled yet.
    pub ready: bool,
}

fn index_prefix(collection: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(collection.len() + 2);
    k.push(INDEX_PREFIX);
    k.extend_from_slice(collection.as_bytes());
    k.push(0);
    k
}

impl IndexDef {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(self.spec.kind.code());
        put_uvarint(&mut out, self.spec.paths.len() as u64);
        for p in &self.spec.paths {
            put_bytes(&mut out, p.as_bytes());
        }
        put_uvarint(&mut out, self.root);
        out.push(u8::from(self.ready));
        out
    }

    fn from_bytes(name: String, bytes: &[u8]) -> Result<IndexDef> {
        let mut r = WireReader::new(bytes);
        let kind = IndexKind::of(u64::from(r.u8()?))
            .ok_or_else(|| Error::corrupt("unknown index kind"))?;
        let n = r.len(1)?;
        let mut paths = Vec::with_capacity(n);
        for _ in 0..n {
            paths.push(r.str()?.to_string());
        }
        let root = r.uvarint()?;
        let ready = r.bool()?;
        r.finish()?;
        Ok(IndexDef {
            spec: IndexSpec { name, kind, paths },
            root,
            ready,
        })
    }
}

pub fn store_index<W: PageWrite>(
    w: &mut W,
    catalog_root: u64,
    collection: &str,
    def: &IndexDef,
) -> Result<()> {
    let mut key = index_prefix(collection);
    key.extend_from_slice(def.spec.name.as_bytes());
    btree::put(w, catalog_root, &key, &def.to_bytes())?;
    Ok(())
}

/// Every index of a collection, by name.
pub fn list_indexes<R: PageRead>(
    r: &R,
    catalog_root: u64,
    collection: &str,
) -> Result<Vec<IndexDef>> {
    let prefix = index_prefix(collection);
    let mut out = Vec::new();
    let mut cursor = Cursor::seek(r, catalog_root, Some(&prefix))?;
    while let Some((page, i)) = cursor.next(r)? {
        let k = btree::node::key(&page, i);
        if !k.starts_with(&prefix) {
            break;
        }
        let name = std::str::from_utf8(&k[prefix.len()..])
            .map_err(|_| Error::corrupt("index name is not UTF-8"))?
            .to_string();
        let value = btree::TreeValue::from_leaf(r, &page, i)?;
        out.push(
            IndexDef::from_bytes(name, &value)
                .map_err(|e| Error::corrupt(format!("index definition of {collection:?}: {e}")))?,
        );
    }
    Ok(out)
}
