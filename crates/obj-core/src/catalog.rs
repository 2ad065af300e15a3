//! The catalog: a B-tree (root in the meta page) mapping names to the records that describe
//! collections. Keys are a one-byte kind prefix plus the name, so later record kinds
//! (schemas, index definitions) share the tree without colliding.

use crate::btree::{self, Cursor, PageRead, PageWrite};
use crate::codec::Schema;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

const COLLECTION_PREFIX: u8 = 0x01;
const SCHEMA_PREFIX: u8 = 0x02;

/// Longest collection name, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 255;

/// What the catalog knows about one collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionRecord {
    /// Stable small number, unique per database.
    pub id: u64,
    /// Root page of the primary tree (never moves).
    pub root: u64,
    /// Next id `insert` hands out; ids are never reused.
    pub next_id: u64,
    /// Live documents.
    pub count: u64,
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

fn decode(name: &str, bytes: &[u8]) -> Result<CollectionRecord> {
    postcard::from_bytes(bytes)
        .map_err(|e| Error::corrupt(format!("catalog record of collection {name:?}: {e}")))
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
    let bytes = postcard::to_allocvec(rec).map_err(|e| Error::invalid(e.to_string()))?;
    btree::put(w, catalog_root, &key(name), &bytes)?;
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
